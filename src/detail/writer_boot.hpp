// The boot a bus directory's last writer ran in: what tells recovery whether
// the page cache that writer wrote through is still the one in use.
//
// A writer's records reach a segment file through a shared mapping: they are
// in the page cache at once and on the disk when the kernel writes them back
// (or a flush makes it). A crash of the writing process loses none of them;
// only a power loss or an OS crash can, and then the system reboots. So a
// writable Bus::open records this boot's id in <dir>/writer.boot, and the
// next open compares it with its own boot's: the same id, and a check of
// each segment's first words and of the tail frame by frame finds every cut
// a crash can leave; another id (or none), and every segment is checked
// frame by frame with its checksums (TopicStore::recover).
//
// The record names the directory too (its st_dev and st_ino): a copy or a
// restored backup of a bus directory is another directory, whose files may
// hold what a crash left at any point, so its first open checks everything
// even in the boot the record was made in. A snapshot rolled back in place
// (the same device and inode) is not told apart: remove writer.boot after one.
#pragma once

#include <string_view>

#include "platform/files.hpp"
#include "ringbus/status.hpp"

namespace ringbus::detail {

inline constexpr std::string_view writer_boot_file = "writer.boot";

// True when <dir>/writer.boot holds this boot's id and this directory's
// identity. False when it holds another, is missing or unreadable, or the
// system gives no boot id: then recovery must not trust that the page cache
// kept every write.
bool same_boot_as_last_writer(const platform::FileDescriptor& bus_dir) noexcept;

// Records this boot's id and the directory's identity in <dir>/writer.boot
// (written as writer.boot.tmp, synced, renamed in, the directory synced). Called by a writable Bus::open
// after every topic is recovered, before the first append: a reboot in
// between leaves the old id, and the next open checks everything again.
// Nothing to do when the file already holds this boot's id or the system
// gives none.
Status record_writer_boot(const platform::FileDescriptor& bus_dir);

} // namespace ringbus::detail
