// File helpers with the guarantees Pylon's stored data relies on.
//
// write_file_atomic: readers see either the old content or the complete new content, never a
// mix, and after it returns the new content survives a power cut. On failure the old file is
// untouched and no temporary file is left behind.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"

namespace pylon {

// Writes `data` to a temporary file beside `path` (created with `mode`, before the umask), fsyncs
// it, renames it over `path` and fsyncs the directory.
[[nodiscard]] Result<void> write_file_atomic(const std::filesystem::path& path, ByteView data,
                                             mode_t mode = 0644);
[[nodiscard]] Result<void> write_file_atomic(const std::filesystem::path& path,
                                             std::string_view data, mode_t mode = 0644);

// Reads a whole regular file; refuses (Errc::limit_exceeded) a file larger than `max_size`.
[[nodiscard]] Result<std::string> read_file(const std::filesystem::path& path,
                                            std::size_t max_size);

// Removes the temporary files of write_file_atomic calls that a crash interrupted
// ("<name>.tmp.<12 random characters>", never complete, never read) in `dir` and its
// subdirectories down to `depth` levels. Only for a directory whose writer is not running (e.g.
// at start-up, under the writer's lock).
[[nodiscard]] Result<void> remove_interrupted_writes(const std::filesystem::path& dir,
                                                     int depth = 3);

// fsyncs a directory so that a rename or create inside it is durable.
[[nodiscard]] Result<void> fsync_directory(const std::filesystem::path& dir);

}  // namespace pylon
