#include "pylon/signing/dsse.h"

#include <nlohmann/json.hpp>

#include <set>

#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/json.h"

namespace pylon::signing {
namespace {

constexpr std::size_t kMaxSignatures = 64;

Error malformed(std::string what) {
    return Error(Errc::malformed_envelope, "DSSE envelope: " + std::move(what));
}

}  // namespace

std::string pae(std::string_view payload_type, ByteView payload) {
    std::string out = "DSSEv1 ";
    out += std::to_string(payload_type.size());
    out += ' ';
    out += payload_type;
    out += ' ';
    out += std::to_string(payload.size());
    out += ' ';
    out += as_string_view(payload);
    return out;
}

nlohmann::json Envelope::to_json() const {
    nlohmann::json sigs = nlohmann::json::array();
    for (const auto& s : signatures)
        sigs.push_back({{"keyid", s.keyid}, {"sig", base64_encode(s.sig)}});
    return {
        {"payload", base64_encode(payload)}, {"payloadType", payload_type}, {"signatures", sigs}};
}

std::string Envelope::to_json_text() const {
    return to_json().dump();
}

Result<Envelope> Envelope::from_json(const nlohmann::json& j) {
    if (!j.is_object()) return malformed("not a JSON object");
    for (const char* field : {"payload", "payloadType"}) {
        if (!j.contains(field)) return malformed(std::string("missing \"") + field + "\"");
        if (!j[field].is_string())
            return malformed(std::string("\"") + field + "\" is not a string");
    }
    if (!j.contains("signatures")) return malformed("missing \"signatures\"");
    if (!j["signatures"].is_array()) return malformed("\"signatures\" is not an array");
    Envelope env;
    env.payload_type = j["payloadType"].get<std::string>();
    auto payload = base64_decode_any(j["payload"].get_ref<const std::string&>());
    if (!payload) return malformed("payload is not base64: " + payload.error().message());
    env.payload = std::move(*payload);
    const auto& sigs = j["signatures"];
    if (sigs.size() > kMaxSignatures)
        return malformed("more than " + std::to_string(kMaxSignatures) + " signatures");
    for (const auto& s : sigs) {
        if (!s.is_object() || !s.contains("sig") || !s["sig"].is_string()) {
            return malformed("a signature lacks a string \"sig\"");
        }
        DsseSignature sig;
        if (s.contains("keyid")) {
            if (!s["keyid"].is_string())
                return malformed("a signature's \"keyid\" is not a string");
            sig.keyid = s["keyid"].get<std::string>();
        }
        auto raw = base64_decode_any(s["sig"].get_ref<const std::string&>());
        if (!raw) return malformed("a signature is not base64: " + raw.error().message());
        sig.sig = std::move(*raw);
        env.signatures.push_back(std::move(sig));
    }
    return env;
}

Result<Envelope> Envelope::parse(std::string_view text) {
    auto j = parse_json(text);
    if (!j) return malformed(j.error().message());
    return from_json(*j);
}

Result<Envelope> dsse_sign(std::string_view payload_type, ByteView payload,
                           const std::vector<const PrivateKey*>& keys) {
    if (keys.empty()) return Error(Errc::bad_key, "DSSE: no signing key given");
    Envelope env;
    env.payload_type = std::string(payload_type);
    env.payload.assign(payload.begin(), payload.end());
    const std::string message = pae(payload_type, payload);
    for (const PrivateKey* key : keys) {
        PYLON_TRY_ASSIGN(Bytes sig, key->sign(message));
        env.signatures.push_back({key->key_id(), std::move(sig)});
    }
    return env;
}

Result<DsseVerified> dsse_verify(const Envelope& envelope, const std::vector<PublicKey>& trusted,
                                 std::size_t threshold, std::string_view expected_payload_type) {
    if (threshold == 0)
        return Error(Errc::threshold_not_met, "DSSE: a threshold of 0 would trust anything");
    if (!expected_payload_type.empty() && envelope.payload_type != expected_payload_type) {
        return Error(Errc::wrong_payload_type,
                     "DSSE payloadType is \"" + envelope.payload_type.substr(0, 128) +
                         "\", expected \"" + std::string(expected_payload_type) + "\"");
    }
    if (envelope.signatures.empty())
        return Error(Errc::malformed_envelope, "DSSE envelope has no signatures");
    const std::string message = pae(envelope.payload_type, envelope.payload);
    std::set<std::string> verified;  // key IDs of trusted keys with a valid signature
    std::size_t unknown_keyids = 0;  // signatures whose keyid names no trusted key
    for (const auto& sig : envelope.signatures) {
        // keyid is an unauthenticated hint: check the key it names, or every key if it names
        // none we trust (other signers use other key ID conventions).
        bool named = false;
        for (const auto& key : trusted) named = named || (sig.keyid == key.key_id());
        if (!named && !sig.keyid.empty()) ++unknown_keyids;
        for (const auto& key : trusted) {
            if (named && sig.keyid != key.key_id()) continue;
            if (verified.count(key.key_id())) continue;
            if (key.verify(message, sig.sig)) verified.insert(key.key_id());
        }
    }
    if (verified.size() >= threshold) {
        return DsseVerified{
            envelope.payload_type, envelope.payload, {verified.begin(), verified.end()}};
    }
    if (threshold == 1) {
        if (unknown_keyids == envelope.signatures.size()) {
            return Error(Errc::untrusted_key,
                         "DSSE envelope is signed only by keys that are not trusted");
        }
        return Error(Errc::bad_signature, "no DSSE signature verifies with a trusted key");
    }
    return Error(Errc::threshold_not_met, "DSSE: " + std::to_string(verified.size()) + " of " +
                                              std::to_string(threshold) +
                                              " required distinct trusted signatures verified");
}

}  // namespace pylon::signing
