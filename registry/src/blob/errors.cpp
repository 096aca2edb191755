#include "pylon/registry/blob/errors.h"

#include <string>

namespace pylon::registry::blob {
namespace {

class BlobCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "blob"; }
    std::string message(int value) const override {
        switch (static_cast<Errc>(value)) {
            case Errc::ok:
                return "ok";
            case Errc::not_found:
                return "not found";
            case Errc::invalid_digest:
                return "invalid digest";
            case Errc::digest_mismatch:
                return "digest mismatch";
            case Errc::range_invalid:
                return "invalid range";
            case Errc::session_busy:
                return "upload session busy";
            case Errc::too_large:
                return "blob too large";
            case Errc::session_expired:
                return "upload session expired";
            case Errc::io:
                return "I/O error";
        }
        return "unknown blob error";
    }
};

}  // namespace

const std::error_category& blob_category() noexcept {
    static const BlobCategory category;
    return category;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), blob_category()};
}

}  // namespace pylon::registry::blob
