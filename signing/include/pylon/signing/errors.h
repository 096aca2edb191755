// Error codes of the signing library. Every verification failure has its own code so that
// callers (and tests) can tell a tampered file from a wrong key from a malformed envelope.
#pragma once

#include <system_error>

namespace pylon::signing {

enum class Errc {
    ok = 0,
    bad_encoding = 1,           // hex/base64/PEM/DER that does not decode
    bad_key = 2,                // a key that is malformed, of the wrong type, or unusable
    wrong_passphrase = 3,       // an encrypted private key did not decrypt
    encrypted_key = 4,          // a passphrase is needed to read this private key
    bad_signature = 5,          // a signature that does not verify with the key
    untrusted_key = 6,          // signed, but by no key we trust
    threshold_not_met = 7,      // fewer distinct trusted keys signed than required
    malformed_envelope = 8,     // DSSE/bundle JSON missing fields, wrong types, truncated
    wrong_payload_type = 9,     // DSSE payloadType is not the one expected
    malformed_statement = 10,   // in-toto statement/predicate does not follow its schema
    wrong_predicate_type = 11,  // a statement of another predicate type
    digest_mismatch = 12,       // bytes whose hash differs from the signed digest
    file_missing = 13,          // a signed file is absent
    file_extra = 14,            // a file present that the signature does not cover
    file_renamed = 15,          // a signed file now under another name
    subject_mismatch = 16,      // an attestation that does not name the given subject
    non_canonical = 17,         // JSON that canonical JSON cannot represent (floats, bad UTF-8)
    crypto_failure = 18,        // OpenSSL or libsodium failed unexpectedly
};

const std::error_category& signing_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

}  // namespace pylon::signing

template <>
struct std::is_error_code_enum<pylon::signing::Errc> : std::true_type {};
