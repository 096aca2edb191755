#include "pylon/common/error.h"

#include <cstring>

namespace pylon {
namespace {

class CommonCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "pylon"; }
    std::string message(int value) const override {
        switch (static_cast<Errc>(value)) {
            case Errc::ok:
                return "ok";
            case Errc::invalid_argument:
                return "invalid argument";
            case Errc::not_found:
                return "not found";
            case Errc::io_error:
                return "I/O error";
            case Errc::parse_error:
                return "parse error";
            case Errc::limit_exceeded:
                return "limit exceeded";
            case Errc::permission_denied:
                return "permission denied";
            case Errc::unsupported:
                return "unsupported";
            case Errc::internal:
                return "internal error";
        }
        return "unknown error";
    }
};

}  // namespace

const std::error_category& common_category() noexcept {
    static const CommonCategory category;
    return category;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), common_category()};
}

Error Error::from_errno(int err, std::string_view what) {
    Errc code = Errc::io_error;
    if (err == ENOENT || err == ENOTDIR) code = Errc::not_found;
    if (err == EACCES || err == EPERM) code = Errc::permission_denied;
    return Error(code, std::string(what) + ": " + std::strerror(err));
}

Error&& Error::with_context(std::string ctx) && {
    context_.insert(context_.begin(), std::move(ctx));
    return std::move(*this);
}

Error& Error::with_context(std::string ctx) & {
    context_.insert(context_.begin(), std::move(ctx));
    return *this;
}

std::string Error::what() const {
    std::string out;
    for (const auto& c : context_) {
        out += c;
        out += ": ";
    }
    out += message_;
    return out;
}

std::string Error::to_string() const {
    return what() + " [" + code_.category().name() + ":" + std::to_string(code_.value()) + "]";
}

}  // namespace pylon
