// Fuzzes DSSE envelope parsing and verification against a fixed key: never crash, never accept.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pylon/signing/dsse.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const pylon::signing::PublicKey key =
        pylon::signing::PrivateKey::from_ed25519_seed(pylon::Bytes(32, 7)).value().public_key();
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto env = pylon::signing::Envelope::parse(text);
    if (!env) return 0;
    // Serialising and parsing again gives the same envelope.
    auto again = pylon::signing::Envelope::parse(env->to_json_text());
    if (!again || again->payload != env->payload || again->payload_type != env->payload_type ||
        again->signatures.size() != env->signatures.size()) {
        std::abort();
    }
    // Nobody can forge a signature by the fixed key from random bytes.
    if (pylon::signing::dsse_verify(*env, {key}, 1, "").ok()) std::abort();
    return 0;
}
