// OMS v1.0 bundles made by the reference tool, model_signing (sigstore/model-transparency),
// verified by Pylon as they are (tests/data/oms/README.md names the sources).
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "oms_test_support.h"
#include "pylon/signing/dsse.h"
#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/model_signature.h"
#include "test_data.h"

using namespace pylon::signing;
using nlohmann::json;
using pylon::as_bytes;
using pylon::test::expect_error;
using pylon::test::openssl_verify;
using pylon::test::payload_of;
using pylon::test::read_all;
using pylon::test::require_ok;
namespace fs = std::filesystem;

TEST_CASE("OMS: bundles made by the reference model_signing tool") {
    const fs::path data = fs::path(PYLON_TEST_DATA) / "oms";
    const std::string ref_pem = read_all(data / "signing-key-pub.pem");
    const auto key = PrivateKey::generate(KeyType::ecdsa_p256).value();

    SECTION("v1.1.0, directory model, key hint") {
        const fs::path model = data / "v1.1.0-elliptic-key";
        const std::string text = read_all(model / "model.sig");
        const json b = json::parse(text);
        // The hint is the SHA-256 of the signer's PEM, as public_key_hint computes it.
        CHECK(b["verificationMaterial"]["publicKey"]["hint"] == to_hex(sha256(ref_pem)));
        // Its P-384 signature is over our PAE of its payload.
        const auto payload = base64_decode(b["dsseEnvelope"]["payload"].get<std::string>()).value();
        const auto sig =
            base64_decode(b["dsseEnvelope"]["signatures"][0]["sig"].get<std::string>()).value();
        CHECK(openssl_verify(ref_pem, pae(kInTotoPayloadType, payload), sig, "SHA384"));

        // Our manifest of the same files is the one it signed, root digest included.
        ManifestOptions opts;
        opts.ignore_paths = {"model.sig", "ignore-me"};
        auto manifest = compute_manifest(model, opts);
        require_ok(manifest);
        const json st = payload_of(b);
        REQUIRE(manifest->files.size() == st["predicate"]["resources"].size());
        for (std::size_t i = 0; i < manifest->files.size(); ++i) {
            CHECK(manifest->files[i].name == st["predicate"]["resources"][i]["name"]);
            CHECK(to_hex(manifest->files[i].digest) == st["predicate"]["resources"][i]["digest"]);
        }
        CHECK(to_hex(manifest->root_digest()) == st["subject"][0]["digest"]["sha256"]);
        CHECK(to_hex(manifest->root_digest()) ==
              "92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4");

        // Our verifier reads its statement byte for byte (re-signed with a key Pylon supports),
        // taking model.sig and ignore-me from its ignore_paths.
        json ours = b;
        ours["verificationMaterial"]["publicKey"]["hint"] = public_key_hint(key.public_key());
        ours["dsseEnvelope"]["signatures"][0]["sig"] =
            base64_encode(key.sign(pae(kInTotoPayloadType, payload)).value());
        auto v = verify_model(model, ours.dump(), key.public_key());
        require_ok(v);
        CHECK(v->model_name == "v1.1.0-elliptic-key");
        CHECK(v->files.size() == 2);
        // The untouched bundle names another key.
        expect_error(verify_model(model, text, key.public_key()), Errc::untrusted_key);

        // And it verifies as it is, end to end, with the reference tool's P-384 key.
        const auto ref_key = PublicKey::from_pem(ref_pem);
        require_ok(ref_key);
        CHECK(ref_key->type() == KeyType::ecdsa_p384);
        auto as_is = verify_model(model, text, *ref_key);
        require_ok(as_is);
        CHECK(as_is->files.size() == 2);
    }
    SECTION("v1.0.0, single-file model, rawBytes and a null keyid") {
        const fs::path dir = data / "v1.0.0-elliptic-key";
        const std::string text = read_all(dir / "model.sig");
        const json b = json::parse(text);
        CHECK(b["dsseEnvelope"]["signatures"][0]["keyid"].is_null());
        const auto payload = base64_decode(b["dsseEnvelope"]["payload"].get<std::string>()).value();
        const auto sig =
            base64_decode(b["dsseEnvelope"]["signatures"][0]["sig"].get<std::string>()).value();
        CHECK(openssl_verify(ref_pem, pae(kInTotoPayloadType, payload), sig, "SHA384"));

        auto manifest = compute_manifest(dir / "signme-1");
        require_ok(manifest);
        const json st = payload_of(b);
        CHECK(st["predicate"]["resources"][0]["name"] == manifest->files[0].name);  // "."
        CHECK(to_hex(manifest->root_digest()) == st["subject"][0]["digest"]["sha256"]);

        json ours = b;
        ours["verificationMaterial"]["publicKey"]["rawBytes"] =
            base64_encode(as_bytes(key.public_key().to_pem()));
        ours["dsseEnvelope"]["signatures"][0]["sig"] =
            base64_encode(key.sign(pae(kInTotoPayloadType, payload)).value());
        require_ok(verify_model(dir / "signme-1", ours.dump(), key.public_key()));
        expect_error(verify_model(dir / "signme-1", text, key.public_key()), Errc::untrusted_key);

        const auto ref_key = PublicKey::from_pem(ref_pem);
        require_ok(ref_key);
        require_ok(verify_model(dir / "signme-1", text, *ref_key));
    }
}
