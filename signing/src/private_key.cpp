// PrivateKey: generation, signing, PKCS#8 import/export and saving to disk.
//
// Ed25519 keys are held as libsodium's 64-byte secret key (seed || public key) and sign with
// libsodium; their fixed PKCS#8 form is read and written without OpenSSL (ed25519_der.h), which
// reads only other forms. ECDSA keys (P-256, P-384) are OpenSSL EVP_PKEYs.
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <array>

#include "ed25519_der.h"
#include "encrypted_key.h"
#include "key_handle.h"
#include "openssl_util.h"
#include "pylon/common/file_io.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/keys.h"

namespace pylon::signing {
namespace {

Result<void> sodium_ready() {
    if (sodium_init() < 0) return Error(Errc::crypto_failure, "libsodium failed to initialise");
    return {};
}

// A passphrase callback that refuses: OpenSSL must never prompt on a terminal.
int no_passphrase(char*, int, int, void*) {
    return -1;
}

}  // namespace

struct PrivateKey::Impl {
    KeyType type = KeyType::ed25519;
    std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> ed_sk{};  // Ed25519 only
    ossl::Pkey ec;                                                 // ECDSA only
    ~Impl() { sodium_memzero(ed_sk.data(), ed_sk.size()); }

    // Impl is nested in PrivateKey, so these may use its private constructor.
    static Result<PrivateKey> from_seed(ByteView seed) {
        PYLON_TRY(sodium_ready());
        if (seed.size() != crypto_sign_SEEDBYTES) {
            return Error(Errc::bad_key,
                         "an Ed25519 seed is 32 bytes, got " + std::to_string(seed.size()));
        }
        auto impl = std::make_unique<Impl>();
        std::array<std::uint8_t, crypto_sign_PUBLICKEYBYTES> pk{};
        crypto_sign_seed_keypair(pk.data(), impl->ed_sk.data(), seed.data());
        PYLON_TRY_ASSIGN(PublicKey pub, PublicKey::from_raw(KeyType::ed25519, pk));
        return PrivateKey(std::move(impl), std::move(pub));
    }

    static Result<PrivateKey> from_pkey(ossl::Pkey pkey) {
        const int id = EVP_PKEY_get_base_id(pkey.get());
        if (id == EVP_PKEY_ED25519) {
            std::array<std::uint8_t, 32> seed{};
            std::size_t len = seed.size();
            if (EVP_PKEY_get_raw_private_key(pkey.get(), seed.data(), &len) != 1 || len != 32) {
                return Error(Errc::bad_key,
                             "cannot read Ed25519 private key: " + ossl::take_errors());
            }
            auto key = from_seed(seed);
            sodium_memzero(seed.data(), seed.size());
            return key;
        }
        if (id != EVP_PKEY_EC) {
            return Error(
                Errc::bad_key,
                "unsupported private key algorithm (expected Ed25519 or ECDSA P-256/P-384)");
        }
        PYLON_TRY_ASSIGN(auto raw, detail::raw_public_from_pkey(pkey.get()));
        ossl::PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
        if (!check || EVP_PKEY_pairwise_check(check.get()) != 1) {
            return Error(Errc::bad_key,
                         "ECDSA private key is inconsistent: " + ossl::take_errors());
        }
        PYLON_TRY_ASSIGN(PublicKey pub, PublicKey::from_raw(raw.first, raw.second));
        auto impl = std::make_unique<Impl>();
        impl->type = raw.first;
        impl->ec = std::move(pkey);
        return PrivateKey(std::move(impl), std::move(pub));
    }

    // An OpenSSL view of the key, for PKCS#8 export.
    Result<ossl::Pkey> to_pkey() const {
        if (type != KeyType::ed25519) {
            EVP_PKEY_up_ref(ec.get());
            return ossl::Pkey(ec.get());
        }
        ossl::Pkey pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, ed_sk.data(),
                                                     crypto_sign_SEEDBYTES));
        if (!pkey)
            return Error(Errc::crypto_failure, "cannot export Ed25519 key: " + ossl::take_errors());
        return pkey;
    }
};

PrivateKey::PrivateKey(std::unique_ptr<Impl> impl, PublicKey pub)
    : impl_(std::move(impl)), public_key_(std::move(pub)) {}
PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
PrivateKey& PrivateKey::operator=(PrivateKey&&) noexcept = default;
PrivateKey::~PrivateKey() = default;

Result<PrivateKey> PrivateKey::from_ed25519_seed(ByteView seed) {
    return Impl::from_seed(seed);
}

Result<PrivateKey> PrivateKey::generate(KeyType type) {
    PYLON_TRY(sodium_ready());
    if (type == KeyType::ed25519) {
        std::array<std::uint8_t, crypto_sign_SEEDBYTES> seed{};
        randombytes_buf(seed.data(), seed.size());
        auto key = Impl::from_seed(seed);
        sodium_memzero(seed.data(), seed.size());
        return key;
    }
    const auto& curve = detail::ec_curve(type);
    ossl::Pkey pkey(EVP_EC_gen(curve.group));
    if (!pkey) {
        return Error(Errc::crypto_failure,
                     std::string(curve.display) + " key generation failed: " + ossl::take_errors());
    }
    return Impl::from_pkey(std::move(pkey));
}

Result<PrivateKey> PrivateKey::from_pkcs8_der(ByteView der) {
    // Ed25519's fixed PKCS#8 form without OpenSSL (its decoders initialise a provider).
    if (auto seed = detail::ed25519_payload(der, detail::kEd25519Pkcs8Prefix)) {
        return Impl::from_seed(*seed);
    }
    const unsigned char* p = der.data();
    ossl::Pkey pkey(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
    if (!pkey) return Error(Errc::bad_key, "not a DER private key: " + ossl::take_errors());
    if (p != der.data() + der.size())
        return Error(Errc::bad_key, "trailing bytes after the private key");
    return Impl::from_pkey(std::move(pkey));
}

Result<PrivateKey> PrivateKey::from_pkcs8_pem(std::string_view pem) {
    if (pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos) {
        return Error(Errc::bad_key,
                     "PKCS#8 keys encrypted by OpenSSL are not supported; use "
                     "`openssl pkey -in KEY -out PLAIN` or a Pylon encrypted key");
    }
    if (auto der = detail::pem_body(pem, "PRIVATE KEY")) {
        auto seed = detail::ed25519_payload(*der, detail::kEd25519Pkcs8Prefix);
        auto key = seed ? std::optional(Impl::from_seed(*seed)) : std::nullopt;
        sodium_memzero(der->data(), der->size());
        if (key) return std::move(*key);
    }
    auto bio = ossl::mem_bio(pem);
    ossl::Pkey pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
    if (!pkey) return Error(Errc::bad_key, "unreadable PEM private key: " + ossl::take_errors());
    return Impl::from_pkey(std::move(pkey));
}

bool PrivateKey::is_encrypted(std::string_view text) noexcept {
    return detail::looks_like_encrypted_key(text);
}

Result<PrivateKey> PrivateKey::parse(std::string_view text, const Secret* passphrase) {
    if (is_encrypted(text)) {
        if (!passphrase) {
            return Error(Errc::encrypted_key,
                         "the private key is encrypted: a passphrase is needed");
        }
        PYLON_TRY_ASSIGN(Bytes der, detail::decrypt_key(text, *passphrase));
        auto key = from_pkcs8_der(der);
        sodium_memzero(der.data(), der.size());
        return key;
    }
    if (text.find("-----BEGIN PUBLIC KEY-----") != std::string_view::npos) {
        return Error(Errc::bad_key, "this is a public key; signing needs the private key");
    }
    if (text.find("-----BEGIN") == std::string_view::npos) {
        return Error(Errc::bad_key,
                     "not a private key (neither PKCS#8 PEM nor a Pylon encrypted key)");
    }
    return from_pkcs8_pem(text);
}

Result<PrivateKey> PrivateKey::load(const std::filesystem::path& path, const Secret* passphrase) {
    auto text = read_file(path, 64 * 1024);
    if (!text) return std::move(text).error().with_context("reading private key");
    auto key = parse(*text, passphrase);
    sodium_memzero(text->data(), text->size());
    if (!key) return std::move(key).error().with_context(path.string());
    return key;
}

Result<Bytes> PrivateKey::sign(ByteView message) const {
    if (impl_->type == KeyType::ed25519) {
        Bytes sig(crypto_sign_BYTES);
        crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(),
                             impl_->ed_sk.data());
        return sig;
    }
    const auto& curve = detail::ec_curve(impl_->type);
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    Bytes sig(2 * curve.field_bytes + 9);  // the largest DER ECDSA signature for the curve
    std::size_t len = sig.size();
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, curve.md(), nullptr, impl_->ec.get()) != 1 ||
        EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1) {
        return Error(Errc::crypto_failure, "ECDSA sign failed: " + ossl::take_errors());
    }
    sig.resize(len);
    return sig;
}

Result<Bytes> PrivateKey::to_pkcs8_der() const {
    if (impl_->type == KeyType::ed25519) {
        return detail::ed25519_der(detail::kEd25519Pkcs8Prefix,
                                   ByteView(impl_->ed_sk.data(), crypto_sign_SEEDBYTES));
    }
    PYLON_TRY_ASSIGN(ossl::Pkey pkey, impl_->to_pkey());
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || i2d_PKCS8PrivateKey_bio(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr,
                                        nullptr) != 1) {
        return Error(Errc::crypto_failure, "PKCS#8 encoding failed: " + ossl::take_errors());
    }
    std::string der = ossl::bio_contents(bio.get());
    Bytes out(der.begin(), der.end());
    sodium_memzero(der.data(), der.size());
    return out;
}

Result<std::string> PrivateKey::to_pkcs8_pem() const {
    if (impl_->type == KeyType::ed25519) {
        PYLON_TRY_ASSIGN(Bytes der, to_pkcs8_der());
        std::string pem = detail::pem_encode(der, "PRIVATE KEY");
        sodium_memzero(der.data(), der.size());
        return pem;
    }
    PYLON_TRY_ASSIGN(ossl::Pkey pkey, impl_->to_pkey());
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr,
                                         nullptr) != 1) {
        return Error(Errc::crypto_failure, "PKCS#8 PEM encoding failed: " + ossl::take_errors());
    }
    return ossl::bio_contents(bio.get());
}

Result<std::string> PrivateKey::to_encrypted(const Secret& passphrase, KdfStrength strength) const {
    PYLON_TRY_ASSIGN(Bytes der, to_pkcs8_der());
    auto out = detail::encrypt_key(der, type(), passphrase, strength);
    sodium_memzero(der.data(), der.size());
    return out;
}

Result<void> PrivateKey::save(const std::filesystem::path& path, const Secret* passphrase,
                              KdfStrength strength) const {
    Result<std::string> text = passphrase ? to_encrypted(*passphrase, strength) : to_pkcs8_pem();
    if (!text) return std::move(text).error();
    auto written = write_file_atomic(path, *text, 0600);
    sodium_memzero(text->data(), text->size());
    return written;
}

}  // namespace pylon::signing
