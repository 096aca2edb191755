// The registry commands' logic that needs no registry: references, error lines, credentials,
// upload ranges, TUF target fields, output formatting, and usage errors of the pylon binary.
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>

#include "process.h"
#include "pylon/signing/tuf/metadata.h"
#include "registry_client.h"
#include "registry_format.h"
#include "registry_tuf.h"
#include "registry_upload.h"
#include "temp_dir.h"

using namespace pylon::cli;
using pylon::test::TempDir;
namespace tuf = pylon::signing::tuf;

namespace {

// Sets an environment variable for one scope.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const std::string& value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_, old_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("parse_model_ref takes NS/MODEL[@VERSION] and refuses the rest as usage errors") {
    const auto r = parse_model_ref("acme/tiny@1.2.0-rc.1", true);
    CHECK(r.ns == "acme");
    CHECK(r.model == "tiny");
    CHECK(r.version == "1.2.0-rc.1");
    CHECK(parse_model_ref("acme/tiny", false).version.empty());
    CHECK_THROWS_AS(parse_model_ref("acme/tiny", true), UsageError);
    CHECK_THROWS_AS(parse_model_ref("tiny@1.0.0", true), UsageError);
    CHECK_THROWS_AS(parse_model_ref("/tiny@1.0.0", true), UsageError);
    CHECK_THROWS_AS(parse_model_ref("acme/@1.0.0", true), UsageError);
    CHECK_THROWS_AS(parse_model_ref("a/b/c@1.0.0", true), UsageError);
    CHECK_THROWS_AS(parse_model_ref("acme/tiny@", false), UsageError);
}

TEST_CASE("format_api_error prints the registry's code, message and status") {
    CHECK(format_api_error(409, R"({"error":{"code":"conflict","message":"release exists"}})") ==
          "conflict: release exists (HTTP 409)");
    CHECK(format_api_error(502, "<html>bad gateway</html>") ==
          "http_502: the registry refused the request (HTTP 502)");
    CHECK(format_api_error(404, R"({"error":"nope"})") ==
          "http_404: the registry refused the request (HTTP 404)");
}

TEST_CASE("config_dir: PYLON_CONFIG_DIR, then XDG_CONFIG_HOME, then HOME") {
    ScopedEnv home("HOME", "/home/u");
    ScopedEnv xdg("XDG_CONFIG_HOME", "/xdg");
    {
        ScopedEnv pylon("PYLON_CONFIG_DIR", "/etc/p");
        CHECK(config_dir() == "/etc/p");
    }
    ::unsetenv("PYLON_CONFIG_DIR");
    CHECK(config_dir() == "/xdg/pylon");
    ::unsetenv("XDG_CONFIG_HOME");
    CHECK(config_dir() == "/home/u/.config/pylon");
}

TEST_CASE("credentials are saved 0600 and override rules hold") {
    TempDir dir;
    ScopedEnv env("PYLON_CONFIG_DIR", (dir / "cfg").string());
    CHECK_FALSE(load_credentials().has_value());
    save_credentials({"https://r.example:8443", "secret-token", "/ca.pem"});
    struct stat st {};
    REQUIRE(::stat((dir / "cfg" / "credentials.json").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    const auto loaded = load_credentials();
    REQUIRE(loaded);
    CHECK(loaded->registry == "https://r.example:8443");
    CHECK(loaded->token == "secret-token");
    CHECK(loaded->ca_file == "/ca.pem");

    RegistryOptions none;
    CHECK(none.resolve().token == "secret-token");

    SECTION("a token file overrides the saved token, trimmed") {
        RegistryOptions o;
        o.token_file = dir.write("t", "  other-token\n").string();
        CHECK(o.resolve().token == "other-token");
        CHECK(o.resolve().registry == "https://r.example:8443");
    }
    SECTION("another registry does not get the saved token") {
        RegistryOptions o;
        o.registry = "https://elsewhere.example/";
        CHECK_THROWS_AS(o.resolve(), CommandError);
        CHECK(o.resolve(false).registry == "https://elsewhere.example");
        CHECK(o.resolve(false).ca_file.empty());
    }
    SECTION("an empty token file is an error") {
        RegistryOptions o;
        o.token_file = dir.write("empty", "\n").string();
        CHECK_THROWS_AS(o.resolve(), CommandError);
    }
    SECTION("malformed credentials are refused") {
        CHECK_FALSE(parse_credentials("{\"registry\": 1}").ok());
        CHECK_FALSE(parse_credentials("not json").ok());
    }
    CHECK(registry_dir_name("https://r.example:8443/") == "https_r.example_8443");
    CHECK(tuf_metadata_dir("https://r.example:8443") ==
          dir / "cfg" / "tuf" / "https_r.example_8443");
}

TEST_CASE("upload ranges: what a session holds and the next Content-Range") {
    CHECK(parse_upload_range(std::nullopt) == 0u);
    CHECK(parse_upload_range(std::string("0-0")) == 1u);
    CHECK(parse_upload_range(std::string("0-67108863")) == 67108864u);
    CHECK(parse_upload_range(std::string("bytes=0-9")) == 10u);
    CHECK(parse_upload_range(std::string("bytes 0-9")) == 10u);
    CHECK_FALSE(parse_upload_range(std::string("5-9")).has_value());
    CHECK_FALSE(parse_upload_range(std::string("0-")).has_value());
    CHECK_FALSE(parse_upload_range(std::string("0-9x")).has_value());
    CHECK(content_range(0, 10) == "0-9");
    CHECK(content_range(67108864, 5) == "67108864-67108868");
}

TEST_CASE("target paths and custom fields fit the namespace's delegation") {
    TargetCustom c;
    c.ns = "acme";
    c.model = "tiny";
    c.version = "1.0.0";
    c.build = "x86_64-avx2-q8_0";
    c.target = {"x86_64", {"avx2", "fma"}, "none", 512};
    c.format = "gguf";
    c.quantization = "Q8_0";
    c.license = {{"spdx", "MIT"}, {"commercial_use", true}};
    const auto j = target_custom_json(c);
    CHECK(j["pylon"]["namespace"] == "acme");
    CHECK(j["pylon"]["build"] == "x86_64-avx2-q8_0");
    CHECK(j["pylon"]["target"]["isa"] == nlohmann::json::array({"avx2", "fma"}));
    CHECK(j["pylon"]["target"]["min_ram_mb"] == 512);
    CHECK(j["pylon"]["license"]["spdx"] == "MIT");

    const auto path = target_path("acme", "tiny", "1.0.0", "x86_64-avx2-q8_0", "model.gguf");
    CHECK(path == "acme/tiny/1.0.0/x86_64-avx2-q8_0/model.gguf");
    tuf::DelegatedRole role;
    role.name = "acme";
    role.paths = std::vector<std::string>{namespace_path_pattern("acme")};
    CHECK(role.is_delegated_path(path));
    CHECK_FALSE(role.is_delegated_path("other/tiny/1.0.0/b/model.gguf"));
    CHECK_FALSE(role.is_delegated_path("acme/tiny/1.0.0/model.gguf"));
}

TEST_CASE("a TUF root is trusted only when signed by its own root keys") {
    auto key = pylon::signing::PrivateKey::generate(pylon::signing::KeyType::ed25519);
    REQUIRE(key.ok());
    tuf::Metadata<tuf::Root> md;
    md.signed_.expires = tuf::Time(std::chrono::sys_days(std::chrono::year(2099) / 1 / 1));
    for (const auto* role : {"root", "targets", "snapshot", "timestamp"}) {
        md.signed_.add_key(role, tuf::Key::from_public_key(key->public_key()));
    }
    REQUIRE(md.sign(*key).ok());
    CHECK(parse_self_signed_root(md.to_bytes()).signed_.version == 1);

    md.clear_signatures();
    CHECK_THROWS_AS(parse_self_signed_root(md.to_bytes()), CommandError);
    CHECK_THROWS_AS(parse_self_signed_root("{}"), CommandError);
}

TEST_CASE("formatting: progress line, model table, release") {
    CHECK(format_progress("model.gguf", 50'000'000, 100'000'000, 2.0) ==
          "model.gguf   50%  50.0/100.0 MB  25.0 MB/s");
    CHECK(format_progress("m", 1'000'000, 0, 0.0) == "m  1.0 MB  0.0 MB/s");
    const auto table = format_models_table(nlohmann::json::parse(
        R"([{"namespace":"acme","name":"tiny","license":{"spdx":"MIT"},"description":"d"}])"));
    CHECK(contains(table, "acme/tiny"));
    CHECK(contains(table, "MIT"));
    const auto release = format_release(nlohmann::json::parse(R"({
        "namespace":"acme","model":"tiny","version":"1.0.0","state":"published",
        "license":{"spdx":"MIT","commercial_use":false,"regions_denied":["XX"]},
        "builds":[{"name":"b1","target":{"arch":"x86_64","isa":["avx2"],"accelerator":"none",
                   "min_ram_mb":512},"format":"gguf","quantization":"Q8_0",
                   "files":[{"name":"model.gguf","digest":"sha256:ab","size":3}]}],
        "attestations":[{"kind":"provenance","build":"b1","keyid":"k1"}]})"));
    CHECK(contains(release, "acme/tiny@1.0.0  (published)"));
    CHECK(contains(release, "no commercial use"));
    CHECK(contains(release, "regions denied: XX"));
    CHECK(contains(release, "build b1: x86_64 isa=avx2"));
    CHECK(contains(release, "model.gguf  3 bytes  sha256:ab"));
    CHECK(contains(release, "attestation provenance (build b1, key k1)"));
}

TEST_CASE("pylon registry commands: usage errors exit 2, missing credentials exit 1") {
    TempDir dir;
    const std::map<std::string, std::string> env{{"PYLON_CONFIG_DIR", (dir / "cfg").string()}};
    const auto pylon = pylon::test::pylon_binary();
    auto bad_ref = pylon::test::run_process(
        {pylon, "pull", "not-a-ref", "--target", "b", "--out", (dir / "o").string()}, {}, env);
    CHECK(bad_ref.exit_code == 2);
    CHECK(contains(bad_ref.err, "pylon: error: 'not-a-ref' is not NS/MODEL@VERSION"));

    auto no_token =
        pylon::test::run_process({pylon, "login", "--registry", "http://127.0.0.1:9"}, {}, env);
    CHECK(no_token.exit_code == 2);

    auto no_creds = pylon::test::run_process({pylon, "models", "list"}, {}, env);
    CHECK(no_creds.exit_code == 1);
    CHECK(contains(no_creds.err, "pylon: error: no registry"));
    CHECK(std::count(no_creds.err.begin(), no_creds.err.end(), '\n') == 1);
    CHECK_FALSE(std::filesystem::exists(dir / "o"));
}
