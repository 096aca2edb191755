// Interop with the openssl CLI: keys written by Pylon are read by OpenSSL, and P-256
// signatures cross in both directions.
#include <catch2/catch.hpp>

#include <fstream>

#include "process.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/keys.h"
#include "temp_dir.h"

using pylon::test::read_all;
using pylon::test::run_process;
using pylon::test::TempDir;
namespace signing = pylon::signing;

TEST_CASE("openssl pkey -pubin reads keys written by pylon key public") {
    TempDir dir;
    for (std::string type : {"ed25519", "ecdsa-p256", "ecdsa-p384"}) {
        INFO(type);
        const auto prefix = (dir / type).string();
        REQUIRE(run_process({pylon::test::pylon_binary(), "key", "generate", "--type", type,
                             "--out", prefix})
                    .exit_code == 0);
        auto pub = run_process({pylon::test::pylon_binary(), "key", "public", prefix + ".key"});
        REQUIRE(pub.exit_code == 0);
        const auto pem = dir.write(type + "-public.pem", pub.out);
        auto text =
            run_process({"openssl", "pkey", "-pubin", "-in", pem.string(), "-text", "-noout"});
        INFO(text.err);
        REQUIRE(text.exit_code == 0);
        CHECK(text.out.find(type == "ed25519"      ? "ED25519 Public-Key"
                            : type == "ecdsa-p256" ? "Public-Key: (256 bit)"
                                                   : "Public-Key: (384 bit)") != std::string::npos);
        // OpenSSL re-encodes the same key byte for byte.
        auto reencoded = run_process({"openssl", "pkey", "-pubin", "-in", pem.string()});
        CHECK(reencoded.out == pub.out);
        // The private key file is PKCS#8 that OpenSSL reads, and derives the same public key.
        auto derived = run_process({"openssl", "pkey", "-in", prefix + ".key", "-pubout"});
        CHECK(derived.out == pub.out);
    }
}

TEST_CASE("a P-256 signature made by openssl dgst verifies in Pylon") {
    TempDir dir;
    const auto key_pem = dir / "ossl.key";
    REQUIRE(run_process({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                         "ec_paramgen_curve:P-256", "-out", key_pem.string()})
                .exit_code == 0);
    auto pub_pem = run_process({"openssl", "pkey", "-in", key_pem.string(), "-pubout"});
    REQUIRE(pub_pem.exit_code == 0);
    const auto msg = dir.write("msg.bin", "model bytes to be signed by openssl");
    const auto sig_path = dir / "msg.sig";
    REQUIRE(run_process({"openssl", "dgst", "-sha256", "-sign", key_pem.string(), "-out",
                         sig_path.string(), msg.string()})
                .exit_code == 0);
    auto pub = signing::PublicKey::from_pem(pub_pem.out);
    REQUIRE(pub.ok());
    const std::string sig = read_all(sig_path);
    CHECK(pub->verify(read_all(msg), pylon::as_bytes(sig)).ok());
    CHECK(pub->verify(std::string_view("other message"), pylon::as_bytes(sig)).error().code() ==
          signing::Errc::bad_signature);
    // OpenSSL's private key is readable by Pylon and signs for the same public key.
    auto priv = signing::PrivateKey::from_pkcs8_pem(read_all(key_pem));
    REQUIRE(priv.ok());
    CHECK(priv->public_key() == *pub);
}

TEST_CASE("a P-256 signature made by Pylon verifies with openssl dgst -verify") {
    TempDir dir;
    auto key = signing::PrivateKey::generate(signing::KeyType::ecdsa_p256).value();
    const auto pub = dir.write("pub.pem", key.public_key().to_pem());
    const std::string message = "model bytes signed by pylon";
    const auto msg = dir.write("msg.bin", message);
    const auto sig = key.sign(message).value();
    const auto sig_path = dir.write("msg.sig", pylon::to_string(sig));
    auto ok = run_process({"openssl", "dgst", "-sha256", "-verify", pub.string(), "-signature",
                           sig_path.string(), msg.string()});
    INFO(ok.out << ok.err);
    CHECK(ok.exit_code == 0);
    CHECK(ok.out.find("Verified OK") != std::string::npos);
    const auto tampered = dir.write("tampered.bin", message + "!");
    auto bad = run_process({"openssl", "dgst", "-sha256", "-verify", pub.string(), "-signature",
                            sig_path.string(), tampered.string()});
    CHECK(bad.exit_code != 0);
}

TEST_CASE("an Ed25519 signature made by Pylon verifies with openssl pkeyutl") {
    TempDir dir;
    auto key = signing::PrivateKey::generate(signing::KeyType::ed25519).value();
    const auto pub = dir.write("pub.pem", key.public_key().to_pem());
    const std::string message = "ed25519 message";
    const auto msg = dir.write("msg.bin", message);
    const auto sig_path = dir.write("msg.sig", pylon::to_string(key.sign(message).value()));
    auto ok = run_process({"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub.string(),
                           "-rawin", "-in", msg.string(), "-sigfile", sig_path.string()});
    INFO(ok.out << ok.err);
    CHECK(ok.exit_code == 0);
    CHECK(ok.out.find("Signature Verified Successfully") != std::string::npos);
}
