// Error codes of the registry's HTTP server (start-up and configuration; request-level problems
// are HTTP responses, not Errors).
#pragma once

#include <system_error>

namespace pylon::registry::http {

enum class Errc {
    ok = 0,
    bad_config = 1,     // a ServerConfig value that cannot work (zero threads, missing key file)
    tls_config = 2,     // the certificate or key could not be loaded
    listen_failed = 3,  // resolving, binding or listening on the address failed
    bad_state = 4,      // start() on a server already started or stopped
};

const std::error_category& http_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

}  // namespace pylon::registry::http

template <>
struct std::is_error_code_enum<pylon::registry::http::Errc> : std::true_type {};
