#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <openssl/evp.h>

#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/sha256.h"
#include "temp_dir.h"
#include "test_data.h"

using namespace pylon::signing;
using nlohmann::json;
using pylon::Bytes;
using pylon::Secret;

namespace {
Bytes unhex(const std::string& s) {
    return hex_decode(s).value();
}
}  // namespace

TEST_CASE("Ed25519 reproduces the RFC 8032 section 7.1 vectors") {
    const auto data = pylon::test::load_test_json("rfc8032_ed25519.json");
    int checked = 0;
    for (const auto& v : data["vectors"]) {
        const std::string name = v["name"];
        INFO(name);
        auto key = PrivateKey::from_ed25519_seed(unhex(v["secret_key"]));
        REQUIRE(key.ok());
        CHECK(hex_encode(key->public_key().raw()) == v["public_key"].get<std::string>());
        const Bytes msg = unhex(v["message"]);
        auto sig = key->sign(msg);
        REQUIRE(sig.ok());
        CHECK(hex_encode(*sig) == v["signature"].get<std::string>());
        CHECK(key->public_key().verify(msg, *sig).ok());
        // Any flipped bit in the signature or the message is refused.
        Bytes bad_sig = *sig;
        bad_sig[10] ^= 0x01;
        CHECK(key->public_key().verify(msg, bad_sig).error().code() == Errc::bad_signature);
        Bytes bad_msg = msg;
        bad_msg.push_back(0);
        CHECK(key->public_key().verify(bad_msg, *sig).error().code() == Errc::bad_signature);
        ++checked;
    }
    CHECK(checked >= 4);
}

TEST_CASE("ECDSA P-256 verification follows the Wycheproof vectors") {
    const auto data = pylon::test::load_test_json("wycheproof_ecdsa_secp256r1_sha256.json");
    int valid = 0, invalid = 0;
    for (const auto& group : data["testGroups"]) {
        const auto& k = group.contains("publicKey") ? group["publicKey"] : group["key"];
        auto key = PublicKey::from_raw(KeyType::ecdsa_p256, unhex(k["uncompressed"]));
        REQUIRE(key.ok());
        for (const auto& t : group["tests"]) {
            INFO("tcId " << t["tcId"] << ": " << t["comment"]);
            const auto result = t["result"].get<std::string>();
            auto sig = hex_decode(t["sig"].get<std::string>());
            auto r = sig ? key->verify(unhex(t["msg"]), *sig) : pylon::Result<void>(sig.error());
            if (result == "valid") {
                CHECK(r.ok());
                ++valid;
            } else if (result == "invalid") {
                CHECK_FALSE(r.ok());
                ++invalid;
            }
            // "acceptable" cases may go either way (e.g. BER encodings).
        }
    }
    CHECK(valid > 10);
    CHECK(invalid > 10);
}

TEST_CASE("Generated keys sign and verify, and reject other keys' signatures") {
    for (KeyType type : {KeyType::ed25519, KeyType::ecdsa_p256, KeyType::ecdsa_p384}) {
        INFO(to_string(type));
        auto a = PrivateKey::generate(type);
        auto b = PrivateKey::generate(type);
        REQUIRE(a.ok());
        REQUIRE(b.ok());
        CHECK(a->key_id() != b->key_id());
        auto sig = a->sign(std::string_view("hello"));
        REQUIRE(sig.ok());
        CHECK(a->public_key().verify(std::string_view("hello"), *sig).ok());
        CHECK(b->public_key().verify(std::string_view("hello"), *sig).error().code() ==
              Errc::bad_signature);
        CHECK(a->public_key().verify(std::string_view("hellO"), *sig).error().code() ==
              Errc::bad_signature);
        CHECK_FALSE(a->public_key().verify(std::string_view("hello"), Bytes{}).ok());
    }
}

TEST_CASE("Public keys round-trip through PEM, DER and TUF JSON") {
    for (KeyType type : {KeyType::ed25519, KeyType::ecdsa_p256, KeyType::ecdsa_p384}) {
        INFO(to_string(type));
        auto key = PrivateKey::generate(type).value();
        const auto& pub = key.public_key();
        const std::string pem = pub.to_pem();
        CHECK(pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0) == 0);
        auto from_pem = PublicKey::from_pem(pem);
        REQUIRE(from_pem.ok());
        CHECK(*from_pem == pub);
        CHECK(from_pem->key_id() == pub.key_id());
        CHECK(*PublicKey::from_der(pub.to_der()) == pub);
        CHECK(*PublicKey::from_tuf(pub.to_tuf()) == pub);
    }
}

TEST_CASE("Key IDs are the SHA-256 of the canonical TUF key object") {
    auto key = PrivateKey::from_ed25519_seed(
                   unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
                   .value();
    const std::string canonical =
        R"({"keytype":"ed25519","keyval":{"public":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"},"scheme":"ed25519"})";
    unsigned char md[32];
    unsigned int len = 0;
    REQUIRE(EVP_Digest(canonical.data(), canonical.size(), md, &len, EVP_sha256(), nullptr) == 1);
    CHECK(key.key_id() == hex_encode(pylon::ByteView(md, len)));

    auto ec = PrivateKey::generate(KeyType::ecdsa_p256).value();
    const std::string ec_canonical = R"({"keytype":"ecdsa","keyval":{"public":")" +
                                     ec.public_key().to_pem() +
                                     R"("},"scheme":"ecdsa-sha2-nistp256"})";
    CHECK(ec.key_id() == to_hex(sha256(std::string_view(ec_canonical))));
    auto p384 = PrivateKey::generate(KeyType::ecdsa_p384).value();
    const std::string p384_canonical = R"({"keytype":"ecdsa","keyval":{"public":")" +
                                       p384.public_key().to_pem() +
                                       R"("},"scheme":"ecdsa-sha2-nistp384"})";
    CHECK(p384.key_id() == to_hex(sha256(std::string_view(p384_canonical))));
}

TEST_CASE("ECDSA keys of one curve do not pass for the other") {
    auto p256 = PrivateKey::generate(KeyType::ecdsa_p256).value();
    auto p384 = PrivateKey::generate(KeyType::ecdsa_p384).value();
    CHECK(p256.public_key().raw().size() == 65);
    CHECK(p384.public_key().raw().size() == 97);
    CHECK(PublicKey::from_raw(KeyType::ecdsa_p384, p256.public_key().raw()).error().code() ==
          Errc::bad_key);
    json tuf = p384.public_key().to_tuf();
    tuf["scheme"] = "ecdsa-sha2-nistp256";
    CHECK(PublicKey::from_tuf(tuf).error().code() == Errc::bad_key);
    const auto sig = p384.sign(std::string_view("m")).value();
    CHECK(p256.public_key().verify(std::string_view("m"), sig).error().code() ==
          Errc::bad_signature);
}

TEST_CASE("Malformed public keys are refused with bad_key") {
    CHECK(PublicKey::from_pem("not a key").error().code() == Errc::bad_key);
    CHECK(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
              .error()
              .code() == Errc::bad_key);
    CHECK(PublicKey::from_raw(KeyType::ed25519, Bytes(31)).error().code() == Errc::bad_key);
    Bytes off_curve(65, 0x01);
    off_curve[0] = 0x04;
    CHECK(PublicKey::from_raw(KeyType::ecdsa_p256, off_curve).error().code() == Errc::bad_key);
    CHECK(PublicKey::from_tuf(nlohmann::json{{"keytype", "rsa"},
                                             {"scheme", "rsassa-pss-sha256"},
                                             {"keyval", {{"public", "x"}}}})
              .error()
              .code() == Errc::bad_key);
}

TEST_CASE("Private keys round-trip through PKCS#8 PEM") {
    for (KeyType type : {KeyType::ed25519, KeyType::ecdsa_p256, KeyType::ecdsa_p384}) {
        INFO(to_string(type));
        auto key = PrivateKey::generate(type).value();
        auto pem = key.to_pkcs8_pem();
        REQUIRE(pem.ok());
        CHECK(pem->rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
        CHECK_FALSE(PrivateKey::is_encrypted(*pem));
        auto back = PrivateKey::parse(*pem);
        REQUIRE(back.ok());
        CHECK(back->public_key() == key.public_key());
        auto sig = back->sign(std::string_view("m")).value();
        CHECK(key.public_key().verify(std::string_view("m"), sig).ok());
    }
}

TEST_CASE("Encrypted private keys need the right passphrase") {
    pylon::test::TempDir dir;
    for (KeyType type : {KeyType::ed25519, KeyType::ecdsa_p256, KeyType::ecdsa_p384}) {
        INFO(to_string(type));
        auto key = PrivateKey::generate(type).value();
        const Secret pass("correct horse battery staple");
        const auto path = dir / (std::string(to_string(type)) + ".key");
        REQUIRE(key.save(path, &pass, KdfStrength::interactive).ok());
        struct stat st {};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
        const std::string text = pylon::test::read_all(path);
        CHECK(PrivateKey::is_encrypted(text));
        CHECK(text.find("PRIVATE KEY") == std::string::npos);

        CHECK(PrivateKey::load(path).error().code() == Errc::encrypted_key);
        const Secret wrong("incorrect horse");
        CHECK(PrivateKey::load(path, &wrong).error().code() == Errc::wrong_passphrase);
        auto loaded = PrivateKey::load(path, &pass);
        REQUIRE(loaded.ok());
        CHECK(loaded->public_key() == key.public_key());

        // A tampered ciphertext or hostile KDF parameters are refused, not obeyed.
        std::string tampered = text;
        tampered.replace(tampered.find("\"opslimit\": 2"), 13, "\"opslimit\": 999999");
        CHECK(PrivateKey::parse(tampered, &pass).error().code() == Errc::bad_key);
    }
    CHECK(PrivateKey::parse("{}", nullptr).error().code() == Errc::bad_key);
}

TEST_CASE("Unencrypted private keys are saved 0600") {
    pylon::test::TempDir dir;
    auto key = PrivateKey::generate(KeyType::ecdsa_p256).value();
    const auto path = dir / "plain.key";
    REQUIRE(key.save(path, nullptr).ok());
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(PrivateKey::load(path)->public_key() == key.public_key());
}
