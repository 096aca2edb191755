// DSSE (Dead Simple Signing Envelope) v1: https://github.com/secure-systems-lab/dsse
//
// Signatures are over PAE(payloadType, payload) =
//   "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body     (LEN: ASCII decimal, no leading zeros)
// The envelope JSON: {"payload": b64, "payloadType": str, "signatures": [{"keyid": str, "sig":
// b64}]}. We write standard padded base64 and accept standard or URL-safe, padded or not.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"
#include "pylon/signing/keys.h"

namespace pylon::signing {

inline constexpr std::string_view kInTotoPayloadType = "application/vnd.in-toto+json";

std::string pae(std::string_view payload_type, ByteView payload);

struct DsseSignature {
    std::string keyid;  // may be empty
    Bytes sig;
};

struct Envelope {
    std::string payload_type;
    Bytes payload;
    std::vector<DsseSignature> signatures;

    nlohmann::json to_json() const;
    std::string to_json_text() const;  // compact, one line
    // Errc::malformed_envelope for anything that is not a well-formed envelope.
    [[nodiscard]] static Result<Envelope> from_json(const nlohmann::json& j);
    [[nodiscard]] static Result<Envelope> parse(std::string_view text);
};

// Signs with every key given (each adds one signature whose keyid is the key's TUF key ID).
[[nodiscard]] Result<Envelope> dsse_sign(std::string_view payload_type, ByteView payload,
                                         const std::vector<const PrivateKey*>& keys);

struct DsseVerified {
    std::string payload_type;
    Bytes payload;
    std::vector<std::string> key_ids;  // the distinct trusted keys whose signatures verified
};

// Verifies that at least `threshold` distinct keys of `trusted` signed the envelope. A
// signature whose keyid names a trusted key is checked against that key only; one with an
// empty or unknown keyid is tried against every trusted key. Each trusted key counts once,
// however many signatures it made. Errors: wrong_payload_type (when `expected_payload_type`
// is not empty and differs), threshold_not_met (naming how many of how many verified),
// untrusted_key / bad_signature when no signature verified and threshold is 1.
[[nodiscard]] Result<DsseVerified> dsse_verify(const Envelope& envelope,
                                               const std::vector<PublicKey>& trusted,
                                               std::size_t threshold,
                                               std::string_view expected_payload_type);

}  // namespace pylon::signing
