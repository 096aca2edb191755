#include "pylon/signing/tuf/errors.h"

#include <string>

namespace pylon::signing::tuf {
namespace {

class TufCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "tuf"; }
    std::string message(int value) const override {
        switch (static_cast<Errc>(value)) {
            case Errc::ok:
                return "ok";
            case Errc::malformed_metadata:
                return "malformed metadata";
            case Errc::wrong_role_type:
                return "wrong role type";
            case Errc::threshold_not_met:
                return "signature threshold not met";
            case Errc::expired:
                return "metadata expired";
            case Errc::rollback:
                return "version rollback";
            case Errc::version_mismatch:
                return "version mismatch";
            case Errc::length_mismatch:
                return "length mismatch";
            case Errc::hash_mismatch:
                return "hash mismatch";
            case Errc::too_large:
                return "file too large";
            case Errc::target_not_found:
                return "target not found";
            case Errc::fetch_failed:
                return "fetch failed";
            case Errc::not_initialized:
                return "no trusted root";
            case Errc::invalid_argument:
                return "invalid argument";
        }
        return "unknown TUF error";
    }
};

}  // namespace

const std::error_category& tuf_category() noexcept {
    static const TufCategory category;
    return category;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), tuf_category()};
}

}  // namespace pylon::signing::tuf
