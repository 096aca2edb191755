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

// fsyncs a directory so that a rename or create inside it is durable.
[[nodiscard]] Result<void> fsync_directory(const std::filesystem::path& dir);

}  // namespace pylon
