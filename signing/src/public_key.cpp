// PublicKey: parsing (PEM/DER SPKI, raw, TUF), key IDs and signature verification.
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <nlohmann/json.hpp>

#include "ed25519_der.h"
#include "key_handle.h"
#include "openssl_util.h"
#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/json.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/sha256.h"

namespace pylon::signing {

using detail::ec_curve;
using detail::EcCurve;

std::string_view to_string(KeyType type) noexcept {
    switch (type) {
        case KeyType::ed25519:
            return "ed25519";
        case KeyType::ecdsa_p256:
            return "ecdsa-p256";
        case KeyType::ecdsa_p384:
            return "ecdsa-p384";
    }
    return "unknown";
}

Result<KeyType> parse_key_type(std::string_view name) {
    if (name == "ed25519") return KeyType::ed25519;
    if (name == "ecdsa-p256" || name == "ecdsa" || name == "p256") return KeyType::ecdsa_p256;
    if (name == "ecdsa-p384" || name == "p384") return KeyType::ecdsa_p384;
    return Error(Errc::bad_key, "unknown key type '" + std::string(name) +
                                    "' (expected ed25519, ecdsa-p256 or ecdsa-p384)");
}

namespace detail {

Result<ossl::Pkey> pkey_from_raw_public(KeyType type, ByteView raw) {
    if (type == KeyType::ed25519) {
        if (raw.size() != crypto_sign_PUBLICKEYBYTES) {
            return Error(Errc::bad_key,
                         "an Ed25519 public key is 32 bytes, got " + std::to_string(raw.size()));
        }
        ossl::Pkey pkey(
            EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
        if (!pkey)
            return Error(Errc::bad_key, "invalid Ed25519 public key: " + ossl::take_errors());
        return pkey;
    }
    const EcCurve& curve = ec_curve(type);
    if (raw.size() != 2 * curve.field_bytes + 1 && raw.size() != curve.field_bytes + 1) {
        return Error(Errc::bad_key, std::string("a ") + curve.display + " public key is a " +
                                        std::to_string(2 * curve.field_bytes + 1) + "- or " +
                                        std::to_string(curve.field_bytes + 1) +
                                        "-byte SEC1 point, got " + std::to_string(raw.size()) +
                                        " bytes");
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(curve.group),
                                         0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                          const_cast<std::uint8_t*>(raw.data()), raw.size()),
        OSSL_PARAM_construct_end()};
    ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* out = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        return Error(Errc::bad_key, std::string("invalid ") + curve.display +
                                        " public key: " + ossl::take_errors());
    }
    ossl::Pkey pkey(out);
    // fromdata does not check that the point is on the curve; a public-key check does.
    ossl::PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) {
        return Error(Errc::bad_key,
                     std::string(curve.display) +
                         " public key is not a valid curve point: " + ossl::take_errors());
    }
    return pkey;
}

Result<std::pair<KeyType, Bytes>> raw_public_from_pkey(EVP_PKEY* pkey) {
    const int id = EVP_PKEY_get_base_id(pkey);
    if (id == EVP_PKEY_ED25519) {
        Bytes raw(32);
        std::size_t len = raw.size();
        if (EVP_PKEY_get_raw_public_key(pkey, raw.data(), &len) != 1 || len != 32) {
            return Error(Errc::bad_key, "cannot read Ed25519 public key: " + ossl::take_errors());
        }
        return std::pair{KeyType::ed25519, std::move(raw)};
    }
    if (id == EVP_PKEY_EC) {
        char group[64] = {};
        std::size_t glen = 0;
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen);
        const std::string_view name(group, glen);
        KeyType type;
        if (name == ec_curve(KeyType::ecdsa_p256).group) {
            type = KeyType::ecdsa_p256;
        } else if (name == ec_curve(KeyType::ecdsa_p384).group) {
            type = KeyType::ecdsa_p384;
        } else {
            return Error(Errc::bad_key, "unsupported elliptic curve '" + std::string(name) +
                                            "' (P-256 and P-384 are supported)");
        }
        const EcCurve& curve = ec_curve(type);
        // Ask for the uncompressed form whatever form the key was read in.
        EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       "uncompressed");
        Bytes raw(2 * curve.field_bytes + 1);
        std::size_t len = 0;
        if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, raw.data(),
                                            raw.size(), &len) != 1 ||
            len != raw.size()) {
            return Error(Errc::bad_key, std::string("cannot read ") + curve.display +
                                            " public key: " + ossl::take_errors());
        }
        return std::pair{type, std::move(raw)};
    }
    return Error(Errc::bad_key,
                 std::string("unsupported key algorithm ") +
                     (EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?") +
                     " (expected Ed25519 or ECDSA P-256/P-384)");
}

}  // namespace detail

Result<PublicKey> PublicKey::make(KeyType type, Bytes raw) {
    PublicKey key;
    key.type_ = type;
    if (type == KeyType::ed25519) {
        // Held as its 32 bytes only: libsodium verifies, and the DER form is fixed (no OpenSSL).
        if (raw.size() != crypto_sign_PUBLICKEYBYTES) {
            return Error(Errc::bad_key,
                         "an Ed25519 public key is 32 bytes, got " + std::to_string(raw.size()));
        }
        key.raw_ = std::move(raw);
        PYLON_TRY_ASSIGN(std::string canonical, canonical_json(key.to_tuf()));
        key.key_id_ = to_hex(sha256(canonical));
        return key;
    }
    PYLON_TRY_ASSIGN(auto pkey, detail::pkey_from_raw_public(type, raw));
    PYLON_TRY_ASSIGN(auto normalized, detail::raw_public_from_pkey(pkey.get()));
    key.raw_ = std::move(normalized.second);
    key.handle_ = std::make_shared<detail::KeyHandle>(std::move(pkey));
    PYLON_TRY_ASSIGN(std::string canonical, canonical_json(key.to_tuf()));
    key.key_id_ = to_hex(sha256(canonical));
    return key;
}

Result<PublicKey> PublicKey::from_raw(KeyType type, ByteView raw) {
    return make(type, Bytes(raw.begin(), raw.end()));
}

Result<PublicKey> PublicKey::from_der(ByteView der) {
    if (auto raw = detail::ed25519_payload(der, detail::kEd25519SpkiPrefix)) {
        return make(KeyType::ed25519, Bytes(raw->begin(), raw->end()));
    }
    const unsigned char* p = der.data();
    ossl::Pkey pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
    if (!pkey)
        return Error(Errc::bad_key, "not a DER SubjectPublicKeyInfo: " + ossl::take_errors());
    if (p != der.data() + der.size())
        return Error(Errc::bad_key, "trailing bytes after the public key");
    PYLON_TRY_ASSIGN(auto raw, detail::raw_public_from_pkey(pkey.get()));
    return make(raw.first, std::move(raw.second));
}

Result<PublicKey> PublicKey::from_pem(std::string_view pem) {
    if (pem.size() > 64 * 1024) return Error(Errc::bad_key, "public key PEM is too large");
    if (pem.find("-----BEGIN PUBLIC KEY-----") == std::string_view::npos) {
        return Error(Errc::bad_key, "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)");
    }
    if (auto der = detail::pem_body(pem, "PUBLIC KEY")) {
        if (auto raw = detail::ed25519_payload(*der, detail::kEd25519SpkiPrefix)) {
            return make(KeyType::ed25519, Bytes(raw->begin(), raw->end()));
        }
    }
    auto bio = ossl::mem_bio(pem);
    ossl::Pkey pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!pkey) return Error(Errc::bad_key, "unreadable PEM public key: " + ossl::take_errors());
    PYLON_TRY_ASSIGN(auto raw, detail::raw_public_from_pkey(pkey.get()));
    return make(raw.first, std::move(raw.second));
}

Result<PublicKey> PublicKey::from_tuf(const nlohmann::json& key) {
    if (!key.is_object() || !key.contains("keytype") || !key["keytype"].is_string() ||
        !key.contains("scheme") || !key["scheme"].is_string() || !key.contains("keyval") ||
        !key["keyval"].is_object() || !key["keyval"].contains("public") ||
        !key["keyval"]["public"].is_string()) {
        return Error(Errc::bad_key, "TUF key needs string keytype, scheme and keyval.public");
    }
    const auto& keytype = key["keytype"].get_ref<const std::string&>();
    const auto& scheme = key["scheme"].get_ref<const std::string&>();
    const auto& pub = key["keyval"]["public"].get_ref<const std::string&>();
    if (keytype == "ed25519" && scheme == "ed25519") {
        auto raw = hex_decode(pub);
        if (!raw) return Error(Errc::bad_key, "Ed25519 TUF key: keyval.public is not hex");
        return make(KeyType::ed25519, std::move(*raw));
    }
    for (KeyType t : {KeyType::ecdsa_p256, KeyType::ecdsa_p384}) {
        const std::string_view want = ec_curve(t).tuf_scheme;
        if ((keytype == "ecdsa" || keytype == want) && scheme == want) {
            PYLON_TRY_ASSIGN(PublicKey k, from_pem(pub));
            if (k.type() != t)
                return Error(Errc::bad_key,
                             "TUF key with scheme " + scheme + " holds another curve");
            return k;
        }
    }
    return Error(Errc::bad_key,
                 "unsupported TUF key (keytype '" + keytype + "', scheme '" + scheme + "')");
}

Bytes PublicKey::to_der() const {
    if (type_ == KeyType::ed25519) return detail::ed25519_der(detail::kEd25519SpkiPrefix, raw_);
    unsigned char* out = nullptr;
    const int len = i2d_PUBKEY(handle_->pkey.get(), &out);
    if (len <= 0) std::abort();  // encoding a key we built and checked cannot fail
    Bytes der(out, out + len);
    OPENSSL_free(out);
    return der;
}

std::string PublicKey::to_pem() const {
    return detail::pem_encode(to_der(), "PUBLIC KEY");
}

nlohmann::json PublicKey::to_tuf() const {
    if (type_ == KeyType::ed25519) {
        return {{"keytype", "ed25519"},
                {"scheme", "ed25519"},
                {"keyval", {{"public", hex_encode(raw_)}}}};
    }
    return {{"keytype", "ecdsa"},
            {"scheme", ec_curve(type_).tuf_scheme},
            {"keyval", {{"public", to_pem()}}}};
}

Result<void> PublicKey::verify(ByteView message, ByteView signature) const {
    if (type_ == KeyType::ed25519) {
        if (signature.size() != crypto_sign_BYTES) {
            return Error(Errc::bad_signature, "an Ed25519 signature is 64 bytes, got " +
                                                  std::to_string(signature.size()));
        }
        if (crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                        raw_.data()) != 0) {
            return Error(Errc::bad_signature,
                         "Ed25519 signature does not verify with key " + key_id_.substr(0, 16));
        }
        return {};
    }
    const EcCurve& curve = ec_curve(type_);
    if (signature.empty() || signature.size() > 2 * curve.field_bytes + 9) {
        return Error(Errc::bad_signature, std::string("an ECDSA ") + curve.display +
                                              " DER signature is at most " +
                                              std::to_string(2 * curve.field_bytes + 9) +
                                              " bytes, got " + std::to_string(signature.size()));
    }
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx ||
        EVP_DigestVerifyInit(ctx.get(), nullptr, curve.md(), nullptr, handle_->pkey.get()) != 1) {
        return Error(Errc::crypto_failure, "ECDSA verify init failed: " + ossl::take_errors());
    }
    const int rc = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                                    message.size());
    ossl::take_errors();
    if (rc != 1) {
        return Error(Errc::bad_signature, std::string("ECDSA ") + curve.display +
                                              " signature does not verify with key " +
                                              key_id_.substr(0, 16));
    }
    return {};
}

}  // namespace pylon::signing
