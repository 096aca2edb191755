#include "api/errors.h"

#include <string>

#include "pylon/catalog/errors.h"
#include "pylon/registry/blob/errors.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/tuf/errors.h"

namespace pylon::registry::api {

namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "pylon.api"; }
    std::string message(int v) const override {
        return std::string(classify(Error(static_cast<Errc>(v), {})).code);
    }
};

HttpError api(Errc e) {
    switch (e) {
        case Errc::bad_request:
            return {400, "bad_request"};
        case Errc::invalid_json:
            return {400, "invalid_json"};
        case Errc::invalid_field:
            return {400, "invalid_field"};
        case Errc::unauthorized:
            return {401, "unauthorized"};
        case Errc::forbidden:
            return {403, "forbidden"};
        case Errc::not_found:
            return {404, "not_found"};
        case Errc::conflict:
            return {409, "conflict"};
        case Errc::invalid_state:
            return {409, "invalid_state"};
        case Errc::payload_too_large:
            return {413, "payload_too_large"};
        case Errc::range_invalid:
            return {416, "range_not_satisfiable"};
        case Errc::bad_signature:
            return {422, "bad_signature"};
        case Errc::digest_mismatch:
            return {422, "digest_mismatch"};
        case Errc::unavailable:
            return {503, "unavailable"};
        case Errc::license_refused:
            return {422, "license_refused"};
        case Errc::ok:
        case Errc::internal:
            break;
    }
    return {500, "internal"};
}

}  // namespace

const std::error_category& api_category() noexcept {
    static const Category category;
    return category;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), api_category()};
}

HttpError classify(const Error& error) {
    const std::error_code& c = error.code();
    if (c.category() == api_category()) return api(static_cast<Errc>(c.value()));
    if (c.category() == catalog::catalog_category()) {
        switch (static_cast<catalog::Errc>(c.value())) {
            case catalog::Errc::not_found:
                return api(Errc::not_found);
            case catalog::Errc::conflict:
                return api(Errc::conflict);
            case catalog::Errc::invalid_state:
                return api(Errc::invalid_state);
            case catalog::Errc::invalid_argument:
                return api(Errc::invalid_field);
            case catalog::Errc::database:
                return api(Errc::unavailable);
            case catalog::Errc::license_refused:
                return api(Errc::license_refused);
            default:
                break;
        }
    }
    if (c.category() == blob::blob_category()) {
        switch (static_cast<blob::Errc>(c.value())) {
            case blob::Errc::not_found:
            case blob::Errc::session_expired:
                return api(Errc::not_found);
            case blob::Errc::invalid_digest:
                return api(Errc::bad_request);
            case blob::Errc::digest_mismatch:
                return api(Errc::digest_mismatch);
            case blob::Errc::range_invalid:
                return api(Errc::range_invalid);
            case blob::Errc::session_busy:
                return {409, "session_busy"};
            case blob::Errc::too_large:
                return api(Errc::payload_too_large);
            default:
                break;
        }
    }
    if (c.category() == signing::tuf::tuf_category()) {
        switch (static_cast<signing::tuf::Errc>(c.value())) {
            case signing::tuf::Errc::threshold_not_met:
                return api(Errc::bad_signature);
            case signing::tuf::Errc::malformed_metadata:
            case signing::tuf::Errc::wrong_role_type:
            case signing::tuf::Errc::expired:
            case signing::tuf::Errc::invalid_argument:
                return {400, "invalid_metadata"};
            case signing::tuf::Errc::rollback:
            case signing::tuf::Errc::version_mismatch:
                return {409, "version_conflict"};
            case signing::tuf::Errc::target_not_found:
                return api(Errc::not_found);
            default:
                break;
        }
    }
    if (c.category() == signing::signing_category()) {
        switch (static_cast<signing::Errc>(c.value())) {
            case signing::Errc::crypto_failure:
                break;
            case signing::Errc::bad_encoding:
            case signing::Errc::bad_key:
            case signing::Errc::malformed_envelope:
            case signing::Errc::malformed_statement:
            case signing::Errc::non_canonical:
                return {400, "invalid_attestation"};
            default:
                return api(Errc::bad_signature);
        }
    }
    if (c.category() == common_category()) {
        switch (static_cast<pylon::Errc>(c.value())) {
            case pylon::Errc::invalid_argument:
            case pylon::Errc::parse_error:
                return api(Errc::bad_request);
            case pylon::Errc::not_found:
                return api(Errc::not_found);
            case pylon::Errc::limit_exceeded:
                return api(Errc::payload_too_large);
            case pylon::Errc::permission_denied:
                return api(Errc::forbidden);
            default:
                break;
        }
    }
    return api(Errc::internal);
}

}  // namespace pylon::registry::api
