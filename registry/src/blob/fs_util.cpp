#include "fs_util.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "pylon/common/file_io.h"
#include "pylon/common/log.h"

namespace pylon::registry::blob::detail {

Error io_error(int err, std::string_view what) {
    return Error(Errc::io, fmt::format("{}: {}", what, std::strerror(err)));
}

Result<void> pwrite_all(int fd, ByteView data, std::uint64_t offset, std::string_view what) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n =
            ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error(errno, fmt::format("write {}", what));
        }
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Result<void> hash_prefix(int fd, std::uint64_t length, signing::Sha256& hasher,
                         std::string_view what) {
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    std::vector<std::uint8_t> buffer(kChunk);
    std::uint64_t done = 0;
    while (done < length) {
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, length - done));
        const ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error(errno, fmt::format("read {}", what));
        }
        if (n == 0) {
            return Error(Errc::io, fmt::format("read {}: file ended at {} bytes, expected {}", what,
                                               done, length));
        }
        hasher.update(ByteView(buffer.data(), static_cast<std::size_t>(n)));
        done += static_cast<std::uint64_t>(n);
    }
    return {};
}

Result<struct ::stat> fstat_fd(int fd, std::string_view what) {
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) return io_error(errno, fmt::format("stat {}", what));
    return st;
}

Result<std::string> random_session_id() {
    std::array<std::uint8_t, 16> bits{};
    std::size_t got = 0;
    while (got < bits.size()) {
        const ssize_t n = ::getrandom(bits.data() + got, bits.size() - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error(errno, "getrandom");
        }
        got += static_cast<std::size_t>(n);
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string id;
    id.reserve(32);
    for (const std::uint8_t b : bits) {
        id += kHex[b >> 4];
        id += kHex[b & 0xf];
    }
    return id;
}

Result<void> make_dir_durable(const std::filesystem::path& dir) {
    if (::mkdir(dir.c_str(), 0700) == 0) {
        auto synced = fsync_directory(dir.parent_path());
        if (!synced) return Error(Errc::io, synced.error().message());
        return {};
    }
    if (errno != EEXIST) return io_error(errno, "mkdir " + dir.string());
    struct ::stat st {};
    if (::lstat(dir.c_str(), &st) != 0) return io_error(errno, "stat " + dir.string());
    if (!S_ISDIR(st.st_mode)) return Error(Errc::io, dir.string() + " is not a directory");
    return {};
}

void remove_quietly(const std::filesystem::path& path) noexcept {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) log::warn("blob store: cannot remove {}: {}", path.string(), ec.message());
}

std::int64_t to_millis(Clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Clock::time_point from_millis(std::int64_t ms) noexcept {
    return Clock::time_point(
        std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

Clock::time_point mtime_of(const struct ::stat& st) noexcept {
    const auto since_epoch =
        std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec);
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(since_epoch));
}

}  // namespace pylon::registry::blob::detail
