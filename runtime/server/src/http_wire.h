// HTTP/1.1 response framing for http_server.cpp: the bytes of a response head and of body
// chunks. Plain string work, no sockets (and no Beast beyond its table of reason phrases).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "http_server.h"

namespace pylon::runtime_server::wire {

// ASCII lower case (header names, tokens).
std::string lower(std::string_view s);

// A response head: status line, Content-Type, then Content-Length (when given) or
// Transfer-Encoding: chunked (when `chunked`), the extra fields, Connection, and the blank
// line. Field names and values have CR and LF removed (they come from our own code, but a
// stray one must not split the head).
std::string response_head(int status, std::string_view content_type,
                          std::optional<std::size_t> content_length, bool chunked,
                          const HeaderList& fields, bool close);

// One chunk of a chunked body (`data` must not be empty: an empty chunk ends the body).
std::string chunk_frame(std::string_view data);
// The chunk that ends a chunked body (no trailers).
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace pylon::runtime_server::wire
