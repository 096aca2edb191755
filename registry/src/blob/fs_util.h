// Small POSIX helpers for the filesystem blob store: errors in the blob category, full
// reads/writes at an offset, session ids, and best-effort cleanup.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"
#include "pylon/registry/blob/blob_store.h"
#include "pylon/signing/sha256.h"

namespace pylon::registry::blob::detail {

// Errc::io naming the operation and the OS reason ("fsync /x/y: No space left on device").
Error io_error(int err, std::string_view what);

[[nodiscard]] Result<void> pwrite_all(int fd, ByteView data, std::uint64_t offset,
                                      std::string_view what);
// Hashes bytes [0, length) of `fd` into `hasher` (pread, so the file position is untouched).
[[nodiscard]] Result<void> hash_prefix(int fd, std::uint64_t length, signing::Sha256& hasher,
                                       std::string_view what);
[[nodiscard]] Result<struct ::stat> fstat_fd(int fd, std::string_view what);

// 128 bits from the kernel's CSPRNG as 32 lowercase hex characters.
[[nodiscard]] Result<std::string> random_session_id();

// Creates `dir` if missing; when it created it, fsyncs the parent so the entry is durable.
[[nodiscard]] Result<void> make_dir_durable(const std::filesystem::path& dir);
// Removes a file or a tree; logs (never fails) when the OS refuses.
void remove_quietly(const std::filesystem::path& path) noexcept;

// Converts between time points and the milliseconds since the epoch stored in info.json.
std::int64_t to_millis(Clock::time_point t) noexcept;
Clock::time_point from_millis(std::int64_t ms) noexcept;
Clock::time_point mtime_of(const struct ::stat& st) noexcept;

}  // namespace pylon::registry::blob::detail
