// URL parsing for the HTTP client: absolute http(s) URLs and redirect resolution (RFC 3986,
// the subset an HTTP client meets; no percent-decoding: the path is sent as given).
#include "pylon/net/url.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

namespace pylon::net {

namespace {

Error bad_url(std::string_view text, std::string_view why) {
    return Error(Errc::invalid_argument,
                 "invalid URL '" + std::string(text) + "': " + std::string(why));
}

// Characters that may not appear in a request target or Host header.
bool has_forbidden_char(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
    });
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// Removes "." and ".." segments (RFC 3986 section 5.2.4) from an absolute path.
std::string remove_dot_segments(std::string_view path) {
    std::vector<std::string_view> out;
    std::size_t pos = 1;  // skip the leading "/"
    bool trailing_slash = false;
    while (pos <= path.size()) {
        std::size_t end = path.find('/', pos);
        if (end == std::string_view::npos) end = path.size();
        const std::string_view seg = path.substr(pos, end - pos);
        trailing_slash = (seg == "." || seg == "..");
        if (seg == "..") {
            if (!out.empty()) out.pop_back();
        } else if (seg != ".") {
            out.push_back(seg);
        }
        pos = end + 1;
    }
    std::string result;
    for (const auto seg : out) {
        result += '/';
        result += seg;
    }
    if (trailing_slash || result.empty()) result += '/';
    return result;
}

}  // namespace

std::string Url::authority() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    std::string out = ipv6 ? "[" + host + "]" : host;
    const bool default_port =
        (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
    if (!default_port) out += ":" + std::to_string(port);
    return out;
}

std::string Url::to_string() const {
    return scheme + "://" + authority() + target;
}

Result<Url> parse_url(std::string_view text) {
    if (has_forbidden_char(text)) return bad_url(text, "contains spaces or control characters");
    const std::size_t colon = text.find("://");
    if (colon == std::string_view::npos) return bad_url(text, "not an absolute URL");
    Url url;
    url.scheme = lower(text.substr(0, colon));
    if (url.scheme != "http" && url.scheme != "https") {
        return bad_url(text, "scheme is not http or https");
    }
    std::string_view rest = text.substr(colon + 3);
    const std::size_t auth_end = rest.find_first_of("/?#");
    const std::string_view auth = rest.substr(0, auth_end);
    rest = auth_end == std::string_view::npos ? std::string_view{} : rest.substr(auth_end);
    if (auth.find('@') != std::string_view::npos) return bad_url(text, "user info is not allowed");

    std::string_view host = auth;
    std::string_view port;
    if (!auth.empty() && auth.front() == '[') {
        const std::size_t close = auth.find(']');
        if (close == std::string_view::npos) return bad_url(text, "unterminated IPv6 address");
        host = auth.substr(1, close - 1);
        const std::string_view after = auth.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return bad_url(text, "junk after IPv6 address");
            port = after.substr(1);
        }
    } else if (const std::size_t c = auth.rfind(':'); c != std::string_view::npos) {
        host = auth.substr(0, c);
        port = auth.substr(c + 1);
    }
    if (host.empty()) return bad_url(text, "empty host");
    url.host = lower(host);
    url.port = url.scheme == "https" ? 443 : 80;
    if (!port.empty()) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
            return bad_url(text, "bad port");
        }
        url.port = static_cast<std::uint16_t>(value);
    }
    const std::size_t hash = rest.find('#');
    if (hash != std::string_view::npos) rest = rest.substr(0, hash);
    if (rest.empty() || rest.front() == '?') {
        url.target = "/" + std::string(rest);
    } else {
        url.target = std::string(rest);
    }
    return url;
}

Result<Url> resolve_url(const Url& base, std::string_view location) {
    if (location.find("://") != std::string_view::npos) return parse_url(location);
    if (has_forbidden_char(location)) return bad_url(location, "contains spaces or controls");
    if (location.starts_with("//")) return parse_url(base.scheme + ":" + std::string(location));
    Url url = base;
    std::string_view loc = location;
    const std::size_t hash = loc.find('#');
    if (hash != std::string_view::npos) loc = loc.substr(0, hash);
    std::string path;
    std::string query;
    const std::size_t q = loc.find('?');
    if (q != std::string_view::npos) {
        query = std::string(loc.substr(q));
        loc = loc.substr(0, q);
    }
    if (loc.empty()) {
        // Same path; a query alone replaces the base query.
        const std::size_t bq = base.target.find('?');
        path = base.target.substr(0, bq);
        if (query.empty() && bq != std::string::npos) query = base.target.substr(bq);
    } else if (loc.front() == '/') {
        path = std::string(loc);
    } else {
        std::string base_path = base.target.substr(0, base.target.find('?'));
        path = base_path.substr(0, base_path.rfind('/') + 1) + std::string(loc);
    }
    url.target = remove_dot_segments(path) + query;
    return url;
}

}  // namespace pylon::net
