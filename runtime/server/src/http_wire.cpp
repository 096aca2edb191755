#include "http_wire.h"

#include <boost/beast/http/status.hpp>
#include <cstdio>

namespace pylon::runtime_server::wire {
namespace {

std::string field_value(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c != '\r' && c != '\n') out += c;
    }
    return out;
}

}  // namespace

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

std::string response_head(int status, std::string_view content_type,
                          std::optional<std::size_t> content_length, bool chunked,
                          const HeaderList& fields, bool close) {
    namespace bhttp = boost::beast::http;
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
    head += "Content-Type: " + field_value(content_type) + "\r\n";
    if (content_length) {
        head += "Content-Length: " + std::to_string(*content_length) + "\r\n";
    } else if (chunked) {
        head += "Transfer-Encoding: chunked\r\n";
    }
    for (const auto& [k, v] : fields) head += field_value(k) + ": " + field_value(v) + "\r\n";
    head += close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
    return head;
}

std::string chunk_frame(std::string_view data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out = size;
    out.append(data);
    out += "\r\n";
    return out;
}

}  // namespace pylon::runtime_server::wire
