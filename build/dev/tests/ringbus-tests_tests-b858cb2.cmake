add_test( [==[appended records come back in order with their offsets]==] /work/main/build/dev/tests/ringbus-tests [==[--test-case=appended records come back in order with their offsets]==])
set_tests_properties( [==[appended records come back in order with their offsets]==] PROPERTIES WORKING_DIRECTORY /work/main/build/dev/tests LABELS)
set( ringbus-tests_TESTS [==[appended records come back in order with their offsets]==])
