#include "pylon/registry/http/errors.h"

#include <string>

namespace pylon::registry::http {

namespace {

class HttpCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "pylon.registry.http"; }
    std::string message(int value) const override {
        switch (static_cast<Errc>(value)) {
            case Errc::ok:
                return "ok";
            case Errc::bad_config:
                return "bad server configuration";
            case Errc::tls_config:
                return "cannot load the TLS identity";
            case Errc::listen_failed:
                return "cannot listen";
            case Errc::bad_state:
                return "server in the wrong state";
        }
        return "unknown http error " + std::to_string(value);
    }
};

}  // namespace

const std::error_category& http_category() noexcept {
    static const HttpCategory category;
    return category;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), http_category()};
}

}  // namespace pylon::registry::http
