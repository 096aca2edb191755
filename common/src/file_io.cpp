#include "pylon/common/file_io.h"
#include "pylon/common/unique_fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>

namespace pylon {
namespace {

// write_file_atomic's temporary files: "<name>" + kTempMarker + 12 random characters.
constexpr std::string_view kTempMarker = ".tmp.";

std::string temp_suffix() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s(kTempMarker);
    for (int i = 0; i < 12; ++i) s += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
    return s;
}

Result<void> write_all(int fd, ByteView data, const std::string& what) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error::from_errno(errno, "write " + what);
        }
        done += static_cast<std::size_t>(n);
    }
    return {};
}

}  // namespace

bool constant_time_equal(ByteView a, ByteView b) noexcept {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
    return diff == 0;
}

Result<void> fsync_directory(const std::filesystem::path& dir) {
    UniqueFd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return Error::from_errno(errno, "open directory " + dir.string());
    if (::fsync(fd.get()) != 0) return Error::from_errno(errno, "fsync directory " + dir.string());
    return {};
}

Result<void> write_file_atomic(const std::filesystem::path& path, ByteView data, mode_t mode) {
    if (path.filename().empty()) {
        return Error(Errc::invalid_argument, "not a file path: " + path.string());
    }
    const std::filesystem::path dir = path.parent_path();
    std::filesystem::path tmp;
    int raw = -1;
    for (int attempt = 0; attempt < 16 && raw < 0; ++attempt) {
        tmp = path;
        tmp += temp_suffix();
        raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (raw < 0 && errno != EEXIST) return Error::from_errno(errno, "create " + tmp.string());
    }
    if (raw < 0)
        return Error(Errc::io_error, "could not create a temporary file beside " + path.string());
    UniqueFd fd(raw);
    auto fail = [&](Error e) -> Result<void> {
        ::unlink(tmp.c_str());
        return e;
    };
    if (auto r = write_all(fd.get(), data, tmp.string()); !r) return fail(std::move(r).error());
    if (::fsync(fd.get()) != 0) return fail(Error::from_errno(errno, "fsync " + tmp.string()));
    if (::close(fd.release()) != 0) return fail(Error::from_errno(errno, "close " + tmp.string()));
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        return fail(Error::from_errno(errno, "rename to " + path.string()));
    }
    return fsync_directory(dir);
}

Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data,
                               mode_t mode) {
    return write_file_atomic(path, as_bytes(data), mode);
}

Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_size) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return Error::from_errno(errno, "open " + path.string());
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::from_errno(errno, "stat " + path.string());
    if (!S_ISREG(st.st_mode))
        return Error(Errc::invalid_argument, "not a regular file: " + path.string());
    if (static_cast<std::uint64_t>(st.st_size) > max_size) {
        return Error(Errc::limit_exceeded, path.string() + " is " + std::to_string(st.st_size) +
                                               " bytes, more than the limit of " +
                                               std::to_string(max_size));
    }
    std::string out;
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (true) {
        if (done == out.size()) {
            // The file may have grown since fstat: read on, within the limit.
            if (out.size() >= max_size) {
                char probe;
                ssize_t n = ::read(fd.get(), &probe, 1);
                if (n > 0)
                    return Error(Errc::limit_exceeded, path.string() +
                                                           " is larger than the limit of " +
                                                           std::to_string(max_size) + " bytes");
                break;
            }
            out.resize(std::min(max_size, out.size() + 4096));
        }
        ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error::from_errno(errno, "read " + path.string());
        }
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    out.resize(done);
    return out;
}

Result<void> remove_interrupted_writes(const std::filesystem::path& dir, int depth) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (it.depth() >= depth) it.disable_recursion_pending();
        const std::string name = it->path().filename().string();
        const auto mark = name.rfind(kTempMarker);
        if (mark == std::string::npos || mark == 0 ||
            name.size() != mark + kTempMarker.size() + 12 || !it->is_regular_file(ec)) {
            continue;
        }
        if (!fs::remove(it->path(), ec) && ec) {
            return Error(Errc::io_error, "remove " + it->path().string() + ": " + ec.message());
        }
    }
    if (ec && ec != std::errc::no_such_file_or_directory) {
        return Error(Errc::io_error, "list " + dir.string() + ": " + ec.message());
    }
    return {};
}

}  // namespace pylon
