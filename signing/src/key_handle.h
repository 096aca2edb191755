// detail::KeyHandle and helpers shared by the key implementation files.
#pragma once

#include <utility>

#include "openssl_util.h"
#include "pylon/common/result.h"
#include "pylon/signing/keys.h"

namespace pylon::signing::detail {

struct KeyHandle {
    explicit KeyHandle(ossl::Pkey p) : pkey(std::move(p)) {}
    ossl::Pkey pkey;
};

// The parameters of a supported ECDSA curve.
struct EcCurve {
    const char* group;       // OpenSSL group name
    const char* display;     // for messages
    const char* tuf_scheme;  // TUF/securesystemslib signature scheme
    std::size_t field_bytes;
    const EVP_MD* (*md)();  // the hash the curve signs with
};

inline const EcCurve& ec_curve(KeyType type) {
    static const EcCurve p256{"prime256v1", "P-256", "ecdsa-sha2-nistp256", 32, EVP_sha256};
    static const EcCurve p384{"secp384r1", "P-384", "ecdsa-sha2-nistp384", 48, EVP_sha384};
    return type == KeyType::ecdsa_p384 ? p384 : p256;
}

Result<ossl::Pkey> pkey_from_raw_public(KeyType type, ByteView raw);
Result<std::pair<KeyType, Bytes>> raw_public_from_pkey(EVP_PKEY* pkey);

}  // namespace pylon::signing::detail
