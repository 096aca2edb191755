// The parts of HttpClient that need no socket: the net error category, methods, header fields.
#include <algorithm>
#include <cctype>

#include "pylon/net/http_client.h"

namespace pylon::net {
namespace {

class NetCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "net"; }
    std::string message(int value) const override {
        switch (static_cast<Errc>(value)) {
            case Errc::ok:
                return "ok";
            case Errc::invalid_request:
                return "invalid request";
            case Errc::connection_failed:
                return "connection failed";
            case Errc::timeout:
                return "timed out";
            case Errc::tls_failed:
                return "TLS failed";
            case Errc::too_large:
                return "response too large";
            case Errc::protocol_error:
                return "HTTP protocol error";
            case Errc::file_error:
                return "local file error";
            case Errc::cancelled:
                return "cancelled";
        }
        return "unknown net error";
    }
};

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

const std::error_category& net_category() noexcept {
    static const NetCategory category;
    return category;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), net_category()};
}

std::string_view to_string(Method method) noexcept {
    switch (method) {
        case Method::get:
            return "GET";
        case Method::head:
            return "HEAD";
        case Method::post:
            return "POST";
        case Method::put:
            return "PUT";
        case Method::patch:
            return "PATCH";
        case Method::delete_:
            return "DELETE";
    }
    return "GET";
}

void HttpHeaders::add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string> HttpHeaders::get(std::string_view name) const {
    for (const auto& [n, v] : fields_) {
        if (iequals(n, name)) return v;
    }
    return std::nullopt;
}

}  // namespace pylon::net
