// Url: the parts of an absolute http:// or https:// URL that an HTTP client needs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pylon/common/result.h"

namespace pylon::net {

struct Url {
    std::string scheme;  // "http" or "https", lower case
    std::string host;    // a name or an IP address; IPv6 without the brackets
    std::uint16_t port = 0;
    std::string target;  // path and query, starting with "/"; the fragment is dropped

    // "host" or "host:port" when the port is not the scheme's default (the Host header).
    std::string authority() const;
    std::string to_string() const;
};

// Parses an absolute http(s) URL. Refuses (Errc::invalid_argument) other schemes, user info,
// an empty host, a bad port and characters that may not appear in a request line (controls,
// spaces): a URL from a redirect is untrusted input.
[[nodiscard]] Result<Url> parse_url(std::string_view text);

// Resolves a redirect's Location against the URL that answered it: an absolute URL, a
// network-path reference ("//host/p"), an absolute path ("/p") or a relative path ("p").
[[nodiscard]] Result<Url> resolve_url(const Url& base, std::string_view location);

}  // namespace pylon::net
