// Request and response bodies of HttpClient as plain file and string I/O (no sockets): a body
// read piece by piece from a string or a file range, and one written to a string or a file.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "pylon/common/unique_fd.h"
#include "pylon/net/http_client.h"

namespace pylon::net::detail {

// A file descriptor closed at scope exit.

// Where the request body comes from: a string, or a range of an open file.
struct BodySource {
    const std::string* text = nullptr;
    int fd = -1;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::string path;

    Result<void> read(char* out, std::uint64_t at, std::size_t n) const {
        if (text) {
            std::copy_n(text->data() + at, n, out);
            return ok();
        }
        std::size_t done = 0;
        while (done < n) {
            const auto r =
                ::pread(fd, out + done, n - done, static_cast<off_t>(offset + at + done));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return Error(Errc::file_error, "reading " + path + ": " + strerror(errno));
            if (r == 0) return Error(Errc::file_error, path + " shrank while it was being sent");
            done += static_cast<std::size_t>(r);
        }
        return ok();
    }
};

// Where the response body goes: a string, or a file removed again unless the exchange succeeds.
struct BodySink {
    std::string* text = nullptr;
    int fd = -1;
    std::string path;

    Result<void> write(const char* data, std::size_t n) const {
        if (text) {
            text->append(data, n);
            return ok();
        }
        std::size_t done = 0;
        while (done < n) {
            const auto r = ::write(fd, data + done, n - done);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return Error(Errc::file_error, "writing " + path + ": " + strerror(errno));
            done += static_cast<std::size_t>(r);
        }
        return ok();
    }
};

}  // namespace pylon::net::detail
