// End-to-end tests of the pylon CLI, and interop with the openssl command-line tool.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "process.h"
#include "temp_dir.h"

using pylon::test::ProcessResult;
using pylon::test::read_all;
using pylon::test::run_process;
using pylon::test::TempDir;

namespace {

ProcessResult pylon_cli(std::vector<std::string> args,
                        const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), pylon::test::pylon_binary());
    return run_process(args, {}, env);
}

// Every failure: non-zero exit, and exactly one line on stderr that starts "pylon: error:".
void check_one_line_failure(const ProcessResult& r, const std::string& needle) {
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.rfind("pylon: error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find(needle) != std::string::npos);
}

void copy_model(const std::filesystem::path& from, const std::filesystem::path& to) {
    std::filesystem::create_directories(to.parent_path());
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

void flip_bit(const std::filesystem::path& p, std::size_t offset) {
    std::string data = read_all(p);
    data[offset] = static_cast<char>(data[offset] ^ 0x01);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

}  // namespace

TEST_CASE("every command has --help") {
    for (auto args : std::vector<std::vector<std::string>>{{"--help"},
                                                           {"key", "--help"},
                                                           {"key", "generate", "--help"},
                                                           {"key", "public", "--help"},
                                                           {"sign", "model", "--help"},
                                                           {"verify", "model", "--help"},
                                                           {"attest", "provenance", "--help"},
                                                           {"verify", "attestation", "--help"}}) {
        args.push_back("--help");
        auto r = pylon_cli(args);
        INFO(args[0]);
        CHECK(r.exit_code == 0);
        CHECK(r.out.find("Usage") != std::string::npos);
    }
}

TEST_CASE("sign and verify the sample model, then refuse tampering") {
    TempDir dir;
    for (std::string type : {"ed25519", "ecdsa-p256", "ecdsa-p384"}) {
        INFO(type);
        const auto prefix = (dir / type).string();
        auto gen = pylon_cli({"key", "generate", "--type", type, "--out", prefix});
        REQUIRE(gen.exit_code == 0);
        struct stat st {};
        REQUIRE(::stat((prefix + ".key").c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);

        const auto model = dir / ("model-" + type + ".gguf");
        copy_model(PYLON_SAMPLE_MODEL, model);
        auto sign = pylon_cli({"sign", "model", model.string(), "--key", prefix + ".key"});
        REQUIRE(sign.exit_code == 0);
        REQUIRE(std::filesystem::exists(model.string() + ".sig"));
        auto ok = pylon_cli({"verify", "model", model.string(), "--key", prefix + ".pub"});
        CHECK(ok.exit_code == 0);
        CHECK(ok.out.find("verified") != std::string::npos);

        // A key of the other type / another key is refused.
        auto other = pylon_cli({"key", "generate", "--type", type, "--out", prefix + "-other"});
        REQUIRE(other.exit_code == 0);
        check_one_line_failure(
            pylon_cli({"verify", "model", model.string(), "--key", prefix + "-other.pub"}),
            "verifying");

        // Truncated bundle.
        const auto bundle = model.string() + ".sig";
        const std::string full = read_all(bundle);
        const auto truncated = dir / "truncated.sig";
        std::ofstream(truncated, std::ios::binary) << full.substr(0, full.size() / 2);
        check_one_line_failure(pylon_cli({"verify", "model", model.string(), "--key",
                                          prefix + ".pub", "--bundle", truncated.string()}),
                               "verifying");

        // A flipped bit in the model.
        flip_bit(model, 1000);
        check_one_line_failure(
            pylon_cli({"verify", "model", model.string(), "--key", prefix + ".pub"}), "verifying");
    }
}

TEST_CASE("signing a directory refuses added, removed and renamed files") {
    TempDir dir;
    REQUIRE(pylon_cli({"key", "generate", "--type", "ecdsa-p256", "--out", (dir / "k").string()})
                .exit_code == 0);
    const auto model = dir / "model";
    copy_model(PYLON_SAMPLE_MODEL, model / "model.gguf");
    dir.write("model/config/params.json", "{\"ctx\": 512}");
    const std::string key = (dir / "k.key").string(), pub = (dir / "k.pub").string();
    REQUIRE(pylon_cli({"sign", "model", model.string(), "--key", key}).exit_code == 0);
    REQUIRE(pylon_cli({"verify", "model", model.string(), "--key", pub}).exit_code == 0);

    dir.write("model/extra.txt", "x");
    check_one_line_failure(pylon_cli({"verify", "model", model.string(), "--key", pub}),
                           "extra.txt");
    std::filesystem::remove(model / "extra.txt");

    std::filesystem::rename(model / "config/params.json", model / "config/params2.json");
    check_one_line_failure(pylon_cli({"verify", "model", model.string(), "--key", pub}), "params");
    std::filesystem::rename(model / "config/params2.json", model / "config/params.json");
    REQUIRE(pylon_cli({"verify", "model", model.string(), "--key", pub}).exit_code == 0);

    std::filesystem::remove(model / "config/params.json");
    check_one_line_failure(pylon_cli({"verify", "model", model.string(), "--key", pub}),
                           "params.json");
}

TEST_CASE("encrypted keys: passphrase from env or file, wrong passphrase refused") {
    TempDir dir;
    const auto prefix = (dir / "enc").string();
    auto gen = pylon_cli({"key", "generate", "--type", "ed25519", "--out", prefix, "--encrypt"},
                         {{"PYLON_KEY_PASSPHRASE", "open sesame"}});
    REQUIRE(gen.exit_code == 0);
    CHECK(read_all(prefix + ".key").find("pylon-encrypted-private-key") != std::string::npos);
    const auto model = dir / "m.gguf";
    copy_model(PYLON_SAMPLE_MODEL, model);

    check_one_line_failure(pylon_cli({"sign", "model", model.string(), "--key", prefix + ".key"}),
                           "encrypted");
    const auto wrong = dir.write("wrong.txt", "not it\n");
    check_one_line_failure(pylon_cli({"sign", "model", model.string(), "--key", prefix + ".key",
                                      "--passphrase-file", wrong.string()}),
                           "wrong passphrase");
    const auto right = dir.write("right.txt", "open sesame\n");
    CHECK(pylon_cli({"sign", "model", model.string(), "--key", prefix + ".key", "--passphrase-file",
                     right.string()})
              .exit_code == 0);
    CHECK(pylon_cli({"sign", "model", model.string(), "--key", prefix + ".key", "--passphrase-env",
                     "MY_PASS"},
                    {{"MY_PASS", "open sesame"}})
              .exit_code == 0);
    CHECK(pylon_cli({"verify", "model", model.string(), "--key", prefix + ".pub"}).exit_code == 0);
}

TEST_CASE("unreadable paths and bad arguments fail with one line") {
    TempDir dir;
    check_one_line_failure(
        pylon_cli({"sign", "model", (dir / "none").string(), "--key", (dir / "k").string()}),
        "none");
    check_one_line_failure(
        pylon_cli({"verify", "model", PYLON_SAMPLE_MODEL, "--key", (dir / "none.pub").string()}),
        "none.pub");
    check_one_line_failure(
        pylon_cli({"key", "generate", "--type", "rsa", "--out", (dir / "x").string()}), "rsa");
    check_one_line_failure(pylon_cli({"frobnicate"}), "frobnicate");
    REQUIRE(pylon_cli({"key", "generate", "--out", (dir / "x").string()}).exit_code == 0);
    check_one_line_failure(pylon_cli({"key", "generate", "--out", (dir / "x").string()}),
                           "already exists");
    // A public key where a private key is needed, and the other way round.
    check_one_line_failure(
        pylon_cli({"sign", "model", PYLON_SAMPLE_MODEL, "--key", (dir / "x.pub").string()}),
        "public key");
    check_one_line_failure(
        pylon_cli({"verify", "model", PYLON_SAMPLE_MODEL, "--key", (dir / "x.key").string()}),
        "private key");
}

TEST_CASE("provenance attestations sign and verify, and refuse other subjects") {
    TempDir dir;
    REQUIRE(pylon_cli({"key", "generate", "--type", "ecdsa-p256", "--out", (dir / "k").string()})
                .exit_code == 0);
    const auto model = dir / "m.gguf";
    copy_model(PYLON_SAMPLE_MODEL, model);
    const std::string att = (dir / "m.intoto.json").string();
    auto r = pylon_cli({"attest", "provenance", model.string(), "--key", (dir / "k.key").string(),
                        "--base-model-digest",
                        "sha256:5a9d168bd9d9e29302e0d604e9a4c97184057ad87661cd7e7cc4318fdeba6d9c",
                        "--base-model", "stories260K-f32.gguf", "--quantizer", "llama.cpp@b4747",
                        "--quantization", "Q8_0", "--target", "x86_64-avx2", "--out", att});
    REQUIRE(r.exit_code == 0);
    auto v = pylon_cli({"verify", "attestation", att, "--key", (dir / "k.pub").string(),
                        "--subject", model.string()});
    CHECK(v.exit_code == 0);
    CHECK(v.out.find("quantization: Q8_0") != std::string::npos);
    CHECK(v.out.find("https://slsa.dev/provenance/v1") != std::string::npos);

    const auto other = dir.write("other.bin", "not the model");
    check_one_line_failure(pylon_cli({"verify", "attestation", att, "--key",
                                      (dir / "k.pub").string(), "--subject", other.string()}),
                           "not a subject");
    check_one_line_failure(
        pylon_cli({"attest", "provenance", model.string(), "--key", (dir / "k.key").string(),
                   "--base-model-digest", "sha256:1234", "--quantizer", "q@1", "--quantization",
                   "Q8_0", "--target", "t", "--out", att}),
        "base-model-digest");
    // Changed predicate under the old signature.
    std::string text = read_all(att);
    REQUIRE(
        pylon_cli({"verify", "attestation", att, "--key", (dir / "k.pub").string()}).exit_code ==
        0);
    auto pos = text.find("\"payload\": \"");
    REQUIRE(pos != std::string::npos);
    text[pos + 20] = text[pos + 20] == 'A' ? 'B' : 'A';
    std::ofstream(att, std::ios::binary | std::ios::trunc) << text;
    check_one_line_failure(
        pylon_cli({"verify", "attestation", att, "--key", (dir / "k.pub").string()}), "verif");
}

TEST_CASE("pylon verifies bundles made by the reference model_signing tool") {
    const std::string data = std::string(PYLON_TEST_DATA) + "/oms";
    auto dir_model = pylon_cli({"verify", "model", data + "/v1.1.0-elliptic-key", "--key",
                                data + "/signing-key-pub.pem", "--bundle",
                                data + "/v1.1.0-elliptic-key/model.sig"});
    INFO(dir_model.err);
    CHECK(dir_model.exit_code == 0);
    CHECK(dir_model.out.find("2 files") != std::string::npos);
    auto file_model = pylon_cli({"verify", "model", data + "/v1.0.0-elliptic-key/signme-1", "--key",
                                 data + "/signing-key-pub.pem", "--bundle",
                                 data + "/v1.0.0-elliptic-key/model.sig"});
    INFO(file_model.err);
    CHECK(file_model.exit_code == 0);
}
