#include "target.h"

namespace pylon::registry::http::detail {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes %XX (and '+' as a space when `plus_is_space`). Refuses bad escapes and NUL, and, when
// `refuse_slash`, an encoded '/'.
std::optional<std::string> decode(std::string_view in, bool plus_is_space, bool refuse_slash) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return std::nullopt;
            const int hi = hex_value(in[i + 1]);
            const int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            const char d = static_cast<char>(hi * 16 + lo);
            if (d == '\0' || (refuse_slash && d == '/')) return std::nullopt;
            out.push_back(d);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

}  // namespace

std::string_view strip_query(std::string_view target) {
    return target.substr(0, target.find('?'));
}

std::optional<ParsedTarget> parse_target(std::string_view target) {
    if (target.empty() || target.front() != '/') return std::nullopt;
    const auto q = target.find('?');
    auto raw_path = target.substr(0, q);
    ParsedTarget out;
    auto path = decode(raw_path, false, true);
    if (!path) return std::nullopt;
    for (const char c : *path) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
    }
    // Every segment between slashes: refuse "." and "..".
    std::string_view rest(*path);
    rest.remove_prefix(1);
    while (true) {
        const auto slash = rest.find('/');
        const auto seg = rest.substr(0, slash);
        if (seg == "." || seg == "..") return std::nullopt;
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    out.path = std::move(*path);
    if (q == std::string_view::npos) return out;

    auto query = target.substr(q + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        if (!pair.empty()) {
            const auto eq = pair.find('=');
            auto name = decode(pair.substr(0, eq), true, false);
            auto value =
                decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1),
                       true, false);
            if (!name || !value) return std::nullopt;
            out.query.emplace_back(std::move(*name), std::move(*value));
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return out;
}

}  // namespace pylon::registry::http::detail
