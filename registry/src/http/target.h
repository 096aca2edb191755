// Request-target parsing: origin-form only ("/path?query"), percent-decoding with the checks
// that keep a decoded path safe to map onto storage.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pylon/registry/http/message.h"

namespace pylon::registry::http::detail {

struct ParsedTarget {
    std::string path;
    Params query;
};

// nullopt (→ 400) for: a target not starting with '/', a malformed %-escape, %00 anywhere,
// an encoded '/' (%2F) in the path, a "." or ".." path segment (raw or encoded), or a control
// character in the decoded path.
std::optional<ParsedTarget> parse_target(std::string_view target);

// The target with its query string removed (what the access log shows).
std::string_view strip_query(std::string_view target);

}  // namespace pylon::registry::http::detail
