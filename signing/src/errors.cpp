#include "pylon/signing/errors.h"

#include <string>

namespace pylon::signing {
namespace {

class SigningCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "signing"; }
    std::string message(int value) const override {
        switch (static_cast<Errc>(value)) {
            case Errc::ok:
                return "ok";
            case Errc::bad_encoding:
                return "bad encoding";
            case Errc::bad_key:
                return "bad key";
            case Errc::wrong_passphrase:
                return "wrong passphrase";
            case Errc::encrypted_key:
                return "key is encrypted";
            case Errc::bad_signature:
                return "bad signature";
            case Errc::untrusted_key:
                return "untrusted key";
            case Errc::threshold_not_met:
                return "signature threshold not met";
            case Errc::malformed_envelope:
                return "malformed envelope";
            case Errc::wrong_payload_type:
                return "wrong payload type";
            case Errc::malformed_statement:
                return "malformed statement";
            case Errc::wrong_predicate_type:
                return "wrong predicate type";
            case Errc::digest_mismatch:
                return "digest mismatch";
            case Errc::file_missing:
                return "file missing";
            case Errc::file_extra:
                return "extra file";
            case Errc::file_renamed:
                return "file renamed";
            case Errc::subject_mismatch:
                return "subject mismatch";
            case Errc::non_canonical:
                return "not representable in canonical JSON";
            case Errc::crypto_failure:
                return "cryptographic library failure";
        }
        return "unknown signing error";
    }
};

}  // namespace

const std::error_category& signing_category() noexcept {
    static const SigningCategory category;
    return category;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), signing_category()};
}

}  // namespace pylon::signing
