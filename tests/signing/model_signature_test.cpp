// OMS v1.0 model signatures: round trips, the bundle's exact JSON layout, every tamper case with
// its own error code. Bundles made by the reference tool: model_signature_reference_test.cpp.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

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
using pylon::test::TempDir;
namespace fs = std::filesystem;

namespace {

PrivateKey make_key(KeyType t) {
    return PrivateKey::generate(t).value();
}

// A small directory model: nested files, an empty file, and a .git directory that the default
// exclusions leave out.
fs::path make_model(const TempDir& tmp) {
    tmp.write("model/config.json", "{\"layers\": 2}\n");
    tmp.write("model/weights/part-0.bin", std::string(300000, '\x5a') + "end");
    tmp.write("model/weights/part-1.bin", "second shard");
    tmp.write("model/tokenizer.model", "tokens");
    tmp.write("model/empty", "");
    tmp.write("model/.git/HEAD", "ref: refs/heads/main\n");
    return tmp / "model";
}

// A bundle in the OMS layout around any payload, signed by `key` (for statements the signer
// would never write).
json bundle_around(std::string_view payload, const PrivateKey& key,
                   std::string_view payload_type = kInTotoPayloadType) {
    auto env = dsse_sign(payload_type, as_bytes(payload), {&key}).value();
    return {{"mediaType", kSigstoreBundleMediaType},
            {"verificationMaterial",
             {{"publicKey", {{"hint", public_key_hint(key.public_key())}}},
              {"tlogEntries", json::array()}}},
            {"dsseEnvelope",
             {{"payload", base64_encode(as_bytes(payload))},
              {"payloadType", payload_type},
              {"signatures", {{{"sig", base64_encode(env.signatures[0].sig)}, {"keyid", ""}}}}}}};
}

std::string hex_sha256_file(const fs::path& p) {
    return to_hex(sha256(read_all(p)));
}

const KeyType kKeyTypes[] = {KeyType::ecdsa_p256, KeyType::ed25519};

}  // namespace

TEST_CASE("OMS: a directory model signs and verifies with either key type") {
    for (KeyType t : kKeyTypes) {
        INFO(to_string(t));
        TempDir tmp;
        const auto model = make_model(tmp);
        const auto key = make_key(t);
        auto bundle = sign_model(model, key);
        require_ok(bundle);
        auto verified = verify_model(model, *bundle, key.public_key());
        require_ok(verified);
        CHECK(verified->model_name == "model");
        REQUIRE(verified->files.size() == 5);  // .git is excluded by default
        auto manifest = compute_manifest(model);
        require_ok(manifest);
        CHECK(verified->root_digest() == manifest->root_digest());
        CHECK(verified->files[0].name == "config.json");
        CHECK(to_hex(verified->files[0].digest) == hex_sha256_file(model / "config.json"));
        // Signing is deterministic apart from the signature itself.
        auto again = sign_model(model, key);
        require_ok(again);
        CHECK(payload_of(json::parse(*again)) == payload_of(json::parse(*bundle)));
    }
}

TEST_CASE("OMS: the bundle has the reference tool's JSON layout") {
    TempDir tmp;
    const auto model = make_model(tmp);
    const auto key = make_key(KeyType::ecdsa_p256);
    const std::string text = sign_model(model, key).value();
    CHECK(text.find('\n') == std::string::npos);  // compact, one line
    const json b = json::parse(text);

    std::vector<std::string> top;
    for (const auto& [k, v] : b.items()) top.push_back(k);
    CHECK(top == std::vector<std::string>{"dsseEnvelope", "mediaType", "verificationMaterial"});
    CHECK(b["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json");
    const auto& vm = b["verificationMaterial"];
    CHECK(vm["tlogEntries"] == json::array());
    CHECK(vm["publicKey"].size() == 1);
    CHECK(vm["publicKey"]["hint"] == to_hex(sha256(key.public_key().to_pem())));
    const auto& env = b["dsseEnvelope"];
    CHECK(env.size() == 3);
    CHECK(env["payloadType"] == "application/vnd.in-toto+json");
    REQUIRE(env["signatures"].size() == 1);
    CHECK(env["signatures"][0]["keyid"] == "");

    const json st = payload_of(b);
    CHECK(st.size() == 4);
    CHECK(st["_type"] == "https://in-toto.io/Statement/v1");
    CHECK(st["predicateType"] == "https://model_signing/signature/v1.0");
    REQUIRE(st["subject"].size() == 1);
    CHECK(st["subject"][0]["name"] == "model");
    const auto& pred = st["predicate"];
    CHECK(pred.size() == 2);
    CHECK(pred["serialization"] ==
          json{{"method", "files"},
               {"hash_type", "sha256"},
               {"allow_symlinks", false},
               {"ignore_paths", {".git", ".gitattributes", ".github", ".gitignore"}}});
    std::vector<std::string> names;
    std::string concatenated;  // raw digests, for the subject digest
    for (const auto& r : pred["resources"]) {
        CHECK(r.size() == 3);
        CHECK(r["algorithm"] == "sha256");
        const std::string name = r["name"];
        CHECK(r["digest"] == hex_sha256_file(model / name));
        names.push_back(name);
        concatenated += pylon::to_string(hex_decode(r["digest"].get<std::string>()).value());
    }
    CHECK(names == std::vector<std::string>{"config.json", "empty", "tokenizer.model",
                                            "weights/part-0.bin", "weights/part-1.bin"});
    CHECK(st["subject"][0]["digest"] == json{{"sha256", to_hex(sha256(concatenated))}});

    // The ECDSA signature is DER over SHA-256 of the DSSE PAE, checkable by OpenSSL alone.
    const auto sig = base64_decode(env["signatures"][0]["sig"].get<std::string>()).value();
    REQUIRE(!sig.empty());
    CHECK(sig[0] == 0x30);  // a DER SEQUENCE, not a raw r||s pair
    const auto payload = base64_decode(env["payload"].get<std::string>()).value();
    CHECK(
        openssl_verify(key.public_key().to_pem(), pae(kInTotoPayloadType, payload), sig, "SHA256"));
}

TEST_CASE("OMS: resources are ordered by path components, as the reference tool orders them") {
    TempDir tmp;
    for (const char* name : {"ab", "a.b", "a/b", "a-c", "B", "a/a/z", "\xc3\xa9"}) {
        tmp.write(std::string("m/") + name, name);
    }
    auto manifest = compute_manifest(tmp / "m");
    require_ok(manifest);
    std::vector<std::string> names;
    for (const auto& f : manifest->files) names.push_back(f.name);
    // Python: sorted(PurePosixPath(n) for n in ...) — "a/..." before "a-c" though '/' > '-'.
    CHECK(names == std::vector<std::string>{"B", "a/a/z", "a/b", "a-c", "a.b", "ab", "\xc3\xa9"});
}

TEST_CASE("OMS: each kind of tampering fails with its own error naming the file") {
    for (KeyType t : kKeyTypes) {
        INFO(to_string(t));
        TempDir tmp;
        const auto model = make_model(tmp);
        const auto key = make_key(t);
        const std::string bundle = sign_model(model, key).value();
        const auto pub = key.public_key();

        SECTION("a flipped bit") {
            std::string bytes = read_all(model / "weights/part-0.bin");
            bytes[1234] = static_cast<char>(bytes[1234] ^ 0x01);
            tmp.write("model/weights/part-0.bin", bytes);
            const auto msg = expect_error(verify_model(model, bundle, pub), Errc::digest_mismatch);
            CHECK_THAT(msg, Catch::Contains("weights/part-0.bin"));
        }
        SECTION("a renamed file") {
            fs::rename(model / "config.json", model / "config-old.json");
            const auto msg = expect_error(verify_model(model, bundle, pub), Errc::file_renamed);
            CHECK_THAT(msg, Catch::Contains("config.json -> config-old.json"));
        }
        SECTION("a file moved into another directory") {
            fs::rename(model / "weights/part-1.bin", model / "part-1.bin");
            const auto msg = expect_error(verify_model(model, bundle, pub), Errc::file_renamed);
            CHECK_THAT(msg, Catch::Contains("weights/part-1.bin -> part-1.bin"));
        }
        SECTION("an added file") {
            tmp.write("model/weights/extra.bin", "injected");
            const auto msg = expect_error(verify_model(model, bundle, pub), Errc::file_extra);
            CHECK_THAT(msg, Catch::Contains("weights/extra.bin"));
        }
        SECTION("a removed file") {
            fs::remove(model / "tokenizer.model");
            const auto msg = expect_error(verify_model(model, bundle, pub), Errc::file_missing);
            CHECK_THAT(msg, Catch::Contains("tokenizer.model"));
        }
        SECTION("a removed empty file whose digest another file does not share") {
            fs::remove(model / "empty");
            expect_error(verify_model(model, bundle, pub), Errc::file_missing);
        }
        SECTION("a changed predicate under the old signature") {
            // Re-sign nothing: list a modified file's new digest, keep the signature.
            tmp.write("model/config.json", "{\"layers\": 3}\n");
            json b = json::parse(bundle);
            json st = payload_of(b);
            for (auto& r : st["predicate"]["resources"]) {
                if (r["name"] == "config.json")
                    r["digest"] = hex_sha256_file(model / "config.json");
            }
            b["dsseEnvelope"]["payload"] = base64_encode(as_bytes(st.dump(2)));
            expect_error(verify_model(model, b.dump(), pub), Errc::bad_signature);
        }
        SECTION("a signature by another key") {
            const auto other = make_key(t);
            expect_error(verify_model(model, bundle, other.public_key()), Errc::untrusted_key);
            // Without the hint, the signature check itself refuses it.
            json b = json::parse(bundle);
            b["verificationMaterial"]["publicKey"].erase("hint");
            expect_error(verify_model(model, b.dump(), other.public_key()), Errc::bad_signature);
            // A bundle re-signed by another key but claiming the original key's hint.
            json forged = bundle_around(payload_of(json::parse(bundle)).dump(), other);
            forged["verificationMaterial"] = json::parse(bundle)["verificationMaterial"];
            expect_error(verify_model(model, forged.dump(), pub), Errc::bad_signature);
        }
        SECTION("a truncated bundle") {
            for (std::size_t n = 0; n < bundle.size(); n += 7) {
                INFO("truncated to " << n << " bytes");
                expect_error(verify_model(model, bundle.substr(0, n), pub),
                             Errc::malformed_envelope);
            }
        }
        SECTION("a wrong payloadType") {
            const std::string statement = payload_of(json::parse(bundle)).dump();
            const json b = bundle_around(statement, key, "application/json");
            expect_error(verify_model(model, b.dump(), pub), Errc::wrong_payload_type);
        }
    }
}

TEST_CASE("OMS: malformed bundles and statements are refused precisely") {
    TempDir tmp;
    const auto model = make_model(tmp);
    const auto key = make_key(KeyType::ecdsa_p256);
    const auto pub = key.public_key();
    const json good = json::parse(sign_model(model, key).value());
    const json statement = payload_of(good);

    SECTION("garbage and wrong shapes") {
        for (const char* text : {"", "null", "[]", "{}", "not json", "{\"mediaType\": 3}"}) {
            INFO(text);
            expect_error(verify_model(model, text, pub), Errc::malformed_envelope);
        }
        json b = good;
        b["dsseEnvelope"] = 5;
        expect_error(verify_model(model, b.dump(), pub), Errc::malformed_envelope);
        b = good;
        b.erase("dsseEnvelope");
        expect_error(verify_model(model, b.dump(), pub), Errc::malformed_envelope);
        b = good;
        b["dsseEnvelope"]["payload"] = "!!!not base64";
        expect_error(verify_model(model, b.dump(), pub), Errc::malformed_envelope);
        b = good;
        b["verificationMaterial"] = json::object();
        expect_error(verify_model(model, b.dump(), pub), Errc::malformed_envelope);
    }
    SECTION("another bundle media type") {
        json b = good;
        b["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.2+json";
        expect_error(verify_model(model, b.dump(), pub), Errc::malformed_envelope);
    }
    SECTION("another predicate type, validly signed") {
        json st = statement;
        st["predicateType"] = "https://slsa.dev/provenance/v1";
        expect_error(verify_model(model, bundle_around(st.dump(), key).dump(), pub),
                     Errc::wrong_predicate_type);
    }
    SECTION("not an in-toto statement") {
        json st = statement;
        st["_type"] = "https://in-toto.io/Statement/v0.1";
        expect_error(verify_model(model, bundle_around(st.dump(), key).dump(), pub),
                     Errc::malformed_statement);
        expect_error(verify_model(model, bundle_around("[1,2]", key).dump(), pub),
                     Errc::malformed_statement);
        st = statement;
        st["predicate"]["resources"] = json::array();
        expect_error(verify_model(model, bundle_around(st.dump(), key).dump(), pub),
                     Errc::malformed_statement);
        st = statement;
        st["predicate"]["resources"][1]["name"] = "../outside";
        expect_error(verify_model(model, bundle_around(st.dump(), key).dump(), pub),
                     Errc::malformed_statement);
        st = statement;
        st["predicate"]["resources"][1]["name"] = st["predicate"]["resources"][0]["name"];
        expect_error(verify_model(model, bundle_around(st.dump(), key).dump(), pub),
                     Errc::malformed_statement);
        st = statement;
        st["predicate"]["serialization"].erase("allow_symlinks");
        expect_error(verify_model(model, bundle_around(st.dump(), key).dump(), pub),
                     Errc::malformed_statement);
    }
    SECTION("a subject digest that is not the resources' digest") {
        json st = statement;
        st["subject"][0]["digest"]["sha256"] = std::string(64, '0');
        expect_error(verify_model(model, bundle_around(st.dump(), key).dump(), pub),
                     Errc::subject_mismatch);
        // Reordering resources changes the digest over them.
        st = statement;
        std::swap(st["predicate"]["resources"][0], st["predicate"]["resources"][1]);
        expect_error(verify_model(model, bundle_around(st.dump(), key).dump(), pub),
                     Errc::subject_mismatch);
    }
    SECTION("serializations Pylon does not implement") {
        json st = statement;
        st["predicate"]["serialization"]["method"] = "shards";
        st["predicate"]["serialization"]["shard_size"] = 1000000;
        expect_error(verify_model(model, bundle_around(st.dump(), key).dump(), pub),
                     pylon::Errc::unsupported);
        st = statement;
        st["predicate"]["serialization"]["hash_type"] = "blake2b";
        expect_error(verify_model(model, bundle_around(st.dump(), key).dump(), pub),
                     pylon::Errc::unsupported);
    }
    SECTION("fields other OMS producers write are accepted") {
        // No keyid (Go), keyid null (reference < v1.1.0), no tlogEntries, no ignore_paths, and
        // resources in another (consistent) order.
        json st = statement;
        st["predicate"]["serialization"].erase("ignore_paths");
        auto& res = st["predicate"]["resources"];
        std::reverse(res.begin(), res.end());
        std::string raw;
        for (const auto& r : res)
            raw += pylon::to_string(hex_decode(r["digest"].get<std::string>()).value());
        st["subject"][0]["digest"]["sha256"] = to_hex(sha256(raw));
        st["subject"][0]["name"] = "some other name";
        json b = bundle_around(st.dump(2), key);
        b["dsseEnvelope"]["signatures"][0].erase("keyid");
        b["verificationMaterial"].erase("tlogEntries");
        require_ok(verify_model(model, b.dump(), pub));
        b["dsseEnvelope"]["signatures"][0]["keyid"] = nullptr;
        auto v = verify_model(model, b.dump(), pub);
        require_ok(v);
        CHECK(v->model_name == "some other name");
        CHECK(v->files.front().name == "weights/part-1.bin");  // the signed order is kept
    }
}

TEST_CASE("OMS: a single-file model") {
    for (KeyType t : kKeyTypes) {
        INFO(to_string(t));
        TempDir tmp;
        const auto file = tmp.write("tiny.gguf", "GGUF\x03 pretend weights");
        const auto key = make_key(t);
        const std::string bundle = sign_model(file, key).value();
        const json st = payload_of(json::parse(bundle));
        CHECK(st["subject"][0]["name"] == "tiny.gguf");
        REQUIRE(st["predicate"]["resources"].size() == 1);
        CHECK(st["predicate"]["resources"][0]["name"] == ".");  // as the reference tool names it
        CHECK(st["predicate"]["resources"][0]["digest"] == hex_sha256_file(file));
        require_ok(verify_model(file, bundle, key.public_key()));

        // The OMS spec draft names the resource after the file instead; accept that too.
        json alt = st;
        alt["predicate"]["resources"][0]["name"] = "tiny.gguf";
        require_ok(verify_model(file, bundle_around(alt.dump(), key).dump(), key.public_key()));

        tmp.write("tiny.gguf", "GGUF\x03 pretend weightz");
        const auto msg =
            expect_error(verify_model(file, bundle, key.public_key()), Errc::digest_mismatch);
        CHECK_THAT(msg, Catch::Contains("tiny.gguf"));
    }
}

TEST_CASE("OMS: the bundle may live inside the model it signs") {
    TempDir tmp;
    const auto model = make_model(tmp);
    const auto key = make_key(KeyType::ecdsa_p256);

    SECTION("ignored by relative path, recorded in the signature") {
        ManifestOptions opts;
        opts.ignore_paths = {"model.sig"};
        const std::string bundle = sign_model(model, key, opts).value();
        tmp.write("model/model.sig", bundle);
        const auto ignore =
            payload_of(json::parse(bundle))["predicate"]["serialization"]["ignore_paths"];
        CHECK(std::find(ignore.begin(), ignore.end(), "model.sig") != ignore.end());
        // The verifier takes the exclusion from the signature; it need not be told again.
        auto v = verify_model(model, read_all(model / "model.sig"), key.public_key());
        require_ok(v);
        CHECK(v->ignore_paths == std::vector<std::string>{".git", ".gitattributes", ".github",
                                                          ".gitignore", "model.sig"});
    }
    SECTION("ignored by absolute path") {
        ManifestOptions opts;
        opts.ignore_paths = {(model / "model.sig").string()};
        const std::string bundle = sign_model(model, key, opts).value();
        tmp.write("model/model.sig", bundle);
        require_ok(verify_model(model, bundle, key.public_key(), opts));
    }
    SECTION("not ignored, it is an extra file") {
        const std::string bundle = sign_model(model, key).value();
        tmp.write("model/model.sig", bundle);
        const auto msg =
            expect_error(verify_model(model, bundle, key.public_key()), Errc::file_extra);
        CHECK_THAT(msg, Catch::Contains("model.sig"));
    }
}

TEST_CASE("OMS: ignore paths match from the model root, whole subtrees") {
    TempDir tmp;
    tmp.write("m/keep.bin", "k");
    tmp.write("m/cache/a", "a");
    tmp.write("m/cache/deep/b", "b");
    tmp.write("m/sub/cache", "not ignored: not at the root");
    tmp.write("m/cachefile", "not ignored: only a prefix of the name");
    tmp.write("m/.gitignore", "*.tmp");
    tmp.write("m/sub/.gitignore", "kept: git defaults apply at the root only");
    ManifestOptions opts;
    opts.ignore_paths = {"./cache/", "/elsewhere/entirely", "../m/keep.bin"};
    auto manifest = compute_manifest(tmp / "m", opts);
    require_ok(manifest);
    std::vector<std::string> names;
    for (const auto& f : manifest->files) names.push_back(f.name);
    CHECK(names ==
          std::vector<std::string>{"cachefile", "keep.bin", "sub/.gitignore", "sub/cache"});
    CHECK(manifest->ignore_paths ==
          std::vector<std::string>{".git", ".gitattributes", ".github", ".gitignore", "cache"});

    opts.ignore_git_paths = false;
    manifest = compute_manifest(tmp / "m", opts);
    require_ok(manifest);
    CHECK(manifest->files.front().name == ".gitignore");
}

TEST_CASE("OMS: symlinks, special files, bad names and empty models are refused") {
    TempDir tmp;
    tmp.write("m/real.bin", "data");
    SECTION("a symlink to a file") {
        fs::create_symlink(tmp / "m/real.bin", tmp / "m/link.bin");
        const auto msg = expect_error(compute_manifest(tmp / "m"), pylon::Errc::unsupported);
        CHECK_THAT(msg, Catch::Contains("link.bin"));
    }
    SECTION("a symlink to a directory") {
        fs::create_directory_symlink(tmp.path(), tmp / "m/loop");
        expect_error(compute_manifest(tmp / "m"), pylon::Errc::unsupported);
    }
    SECTION("a symlink inside an ignored directory is never looked at") {
        tmp.write("m/scratch/x", "x");
        fs::create_symlink("/etc/passwd", tmp / "m/scratch/link");
        ManifestOptions opts;
        opts.ignore_paths = {"scratch"};
        require_ok(compute_manifest(tmp / "m", opts));
    }
    SECTION("a FIFO") {
        REQUIRE(::mkfifo((tmp / "m/pipe").c_str(), 0600) == 0);
        const auto msg = expect_error(compute_manifest(tmp / "m"), pylon::Errc::unsupported);
        CHECK_THAT(msg, Catch::Contains("pipe"));
    }
    SECTION("a file name that is not UTF-8") {
        tmp.write("m/bad\xff.bin", "x");
        expect_error(compute_manifest(tmp / "m"), pylon::Errc::unsupported);
    }
    SECTION("nothing left to sign") {
        fs::create_directories(tmp / "empty/.git");
        tmp.write("empty/.git/config", "x");
        expect_error(compute_manifest(tmp / "empty"), pylon::Errc::invalid_argument);
        expect_error(sign_model(tmp / "empty", make_key(KeyType::ed25519)),
                     pylon::Errc::invalid_argument);
    }
    SECTION("a model that does not exist") {
        expect_error(compute_manifest(tmp / "nope"), pylon::Errc::not_found);
    }
    SECTION("the model path itself may be a symlink") {
        fs::create_directory_symlink(tmp / "m", tmp / "current");
        auto manifest = compute_manifest(tmp / "current");
        require_ok(manifest);
        CHECK(manifest->model_name == "current");
        CHECK(manifest->files.size() == 1);
    }
}
