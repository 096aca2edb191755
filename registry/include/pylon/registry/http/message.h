// The HTTP request and response as handlers see them: plain data, no sockets, no Beast.
//
// A handler gets a fully parsed Request (path already percent-decoded and checked: the server
// refuses with 400, before routing, a path with %00, an encoded '/', a "." or ".." segment or a
// malformed %-escape) and returns a Response. The server adds Content-Length and Connection;
// for HEAD it sends the headers of the would-be body and never the body itself.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"
#include "pylon/common/unique_fd.h"

namespace pylon::registry::http {

// Header fields in arrival order; names compare case-insensitively.
class Headers {
public:
    using Field = std::pair<std::string, std::string>;

    // The first field named `name`, if any.
    std::optional<std::string_view> get(std::string_view name) const;
    bool contains(std::string_view name) const { return get(name).has_value(); }
    // Replaces every field named `name` by one (appended when there was none).
    void set(std::string_view name, std::string value);
    // Appends a field, keeping existing ones of the same name.
    void add(std::string name, std::string value);
    // Removes every field named `name`.
    void erase(std::string_view name);

    const std::vector<Field>& fields() const noexcept { return fields_; }
    bool empty() const noexcept { return fields_.empty(); }

private:
    std::vector<Field> fields_;
};

using Params = std::vector<std::pair<std::string, std::string>>;

struct Request {
    std::string method;  // upper case, as sent ("GET", "PUT", ...)
    std::string target;  // the raw request-target, query included
    std::string path;    // percent-decoded path, always starting with '/'
    Params query;        // decoded (name, value) pairs in order; '+' is a space
    Headers headers;
    std::string body;                             // buffered routes only; empty for streamed routes
    std::optional<std::uint64_t> content_length;  // as announced; nullopt when chunked or absent
    std::string remote_address;                   // "ip:port" of the peer
    std::string route;                            // the matched route's pattern ("" before routing)
    Params params;                                // route parameters ({name}, {name...})
    bool tls = false;
    bool http_1_0 = false;

    // The first query parameter named `name`.
    std::optional<std::string> query_param(std::string_view name) const;
    // A route parameter; an empty string when the route has no such parameter.
    const std::string& param(std::string_view name) const;
};

using pylon::UniqueFd;  // common/unique_fd.h

// `length` bytes of an open file from `offset`, sent after the headers (sendfile(2) on plain
// TCP). The file must hold them: a short file aborts the connection mid-body.
struct FileBody {
    UniqueFd fd;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

struct Response {
    int status = 200;
    Headers headers;
    std::string body;              // ignored when `file` is set
    std::optional<FileBody> file;  // sent instead of `body`

    // `value` serialised, Content-Type: application/json.
    static Response json(int status, const nlohmann::json& value);
    // {"error":{"code":CODE,"message":MESSAGE}}, Content-Type: application/json.
    static Response error(int status, std::string_view code, std::string_view message);
    static Response text(int status, std::string body,
                         std::string_view content_type = "text/plain; charset=utf-8");
    static Response empty(int status);
};

// Where a streamed request body goes, chunk by chunk, as it arrives. write() runs on an I/O
// thread: it must not block for long (write to a file, hash), never wait for the network or a
// database. An Error aborts the request: the client gets Hooks::error_response(error) and the
// connection is closed.
class BodySink {
public:
    virtual ~BodySink();
    [[nodiscard]] virtual Result<void> write(ByteView chunk) = 0;
};

}  // namespace pylon::registry::http
