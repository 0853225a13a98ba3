#----------------------------------------------------------------
# Generated CMake target import file for configuration "RelWithDebInfo".
#----------------------------------------------------------------

# Commands may need to know the format version.
set(CMAKE_IMPORT_FILE_VERSION 1)

# Import target "ringbus::ringbus" for configuration "RelWithDebInfo"
set_property(TARGET ringbus::ringbus APPEND PROPERTY IMPORTED_CONFIGURATIONS RELWITHDEBINFO)
set_target_properties(ringbus::ringbus PROPERTIES
  IMPORTED_LINK_INTERFACE_LANGUAGES_RELWITHDEBINFO "CXX"
  IMPORTED_LOCATION_RELWITHDEBINFO "${_IMPORT_PREFIX}/lib/libringbus.a"
  )

list(APPEND _cmake_import_check_targets ringbus::ringbus )
list(APPEND _cmake_import_check_files_for_ringbus::ringbus "${_IMPORT_PREFIX}/lib/libringbus.a" )

# Commands beyond this point should not need to know the version.
set(CMAKE_IMPORT_FILE_VERSION)
