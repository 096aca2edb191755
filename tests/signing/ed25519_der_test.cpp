// Ed25519 keys are read and written without OpenSSL (signing/src/ed25519_der.h): the encodings
// must be byte-identical to OpenSSL's own, keys OpenSSL writes must read back the same, and forms
// the fast path does not handle must still be read (through OpenSSL).
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "pylon/signing/keys.h"
#include "pylon/signing/sha256.h"

using namespace pylon::signing;

namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string bio_string(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

TEST_CASE("Ed25519 DER and PEM encodings are OpenSSL's, both ways", "[keys][ed25519]") {
    auto key = PrivateKey::generate(KeyType::ed25519);
    REQUIRE(key);
    auto der = key->to_pkcs8_der();
    REQUIRE(der);
    const unsigned char* p = der->data();
    Pkey parsed(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der->size())));
    REQUIRE(parsed);  // OpenSSL reads what we wrote ...
    BIO* bio = BIO_new(BIO_s_mem());
    REQUIRE(PEM_write_bio_PrivateKey(bio, parsed.get(), nullptr, nullptr, 0, nullptr, nullptr) ==
            1);
    auto pem = key->to_pkcs8_pem();
    REQUIRE(pem);
    CHECK(*pem == bio_string(bio));  // ... and writes exactly the same PEM
    BIO_free(bio);

    unsigned char* spki = nullptr;
    const int len = i2d_PUBKEY(parsed.get(), &spki);
    REQUIRE(len > 0);
    const pylon::Bytes openssl_spki(spki, spki + len);
    OPENSSL_free(spki);
    CHECK(key->public_key().to_der() == openssl_spki);

    // Keys OpenSSL made read back to the same key, through the fast path.
    Pkey fresh(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    REQUIRE(fresh);
    BIO* out = BIO_new(BIO_s_mem());
    REQUIRE(PEM_write_bio_PrivateKey(out, fresh.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
    const std::string fresh_pem = bio_string(out);
    BIO_free(out);
    auto read = PrivateKey::parse(fresh_pem, nullptr);
    REQUIRE(read);
    CHECK(read->type() == KeyType::ed25519);
    CHECK(*read->to_pkcs8_pem() == fresh_pem);
    auto sig = read->sign(pylon::as_bytes("message"));
    REQUIRE(sig);
    CHECK(read->public_key().verify(pylon::as_bytes("message"), *sig));
    auto pub = PublicKey::from_pem(read->public_key().to_pem());
    REQUIRE(pub);
    CHECK(pub->key_id() == read->public_key().key_id());
}

TEST_CASE("key forms outside Ed25519's fixed ones go to OpenSSL, altered ones are refused",
          "[keys][ed25519]") {
    // ECDSA keys: PEM whose body is not the Ed25519 form is read by OpenSSL as before.
    auto ec = PrivateKey::generate(KeyType::ecdsa_p256);
    REQUIRE(ec);
    auto ec_read = PrivateKey::parse(*ec->to_pkcs8_pem(), nullptr);
    REQUIRE(ec_read);
    CHECK(ec_read->type() == KeyType::ecdsa_p256);
    CHECK(ec_read->key_id() == ec->key_id());
    auto ec_pub = PublicKey::from_pem(ec->public_key().to_pem());
    REQUIRE(ec_pub);
    CHECK(ec_pub->type() == KeyType::ecdsa_p256);

    // PKCS#8 v2 (OneAsymmetricKey with the public key attached, RFC 8410 §7) is not the 48-byte
    // v1 form: the fast path declines it, and whatever OpenSSL makes of it, never another key.
    auto key = PrivateKey::generate(KeyType::ed25519);
    REQUIRE(key);
    auto v1 = key->to_pkcs8_der();
    REQUIRE(v1);
    const auto& pub = key->public_key().raw();
    pylon::Bytes v2 = {0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06,
                       0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
    v2.insert(v2.end(), v1->begin() + 16, v1->end());
    const pylon::Bytes tail = {0x81, 0x21, 0x00};
    v2.insert(v2.end(), tail.begin(), tail.end());
    v2.insert(v2.end(), pub.begin(), pub.end());
    REQUIRE(v2.size() == 0x53);
    if (auto read = PrivateKey::from_pkcs8_der(v2)) {
        CHECK(read->key_id() == key->key_id());
    }

    // A truncated or altered fixed form is refused, not misread.
    pylon::Bytes cut(v1->begin(), v1->end() - 1);
    CHECK_FALSE(PrivateKey::from_pkcs8_der(cut));
    auto spki = key->public_key().to_der();
    spki[8] ^= 0x01;  // the algorithm OID no longer Ed25519
    CHECK_FALSE(PublicKey::from_der(spki));
}
