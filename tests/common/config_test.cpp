#include <catch2/catch.hpp>

#include "pylon/common/config.h"
#include "temp_dir.h"

using pylon::Config;
using pylon::Errc;

namespace {
constexpr const char* kToml = R"(
[registry]
listen = "127.0.0.1:8443"
workers = 4
tls = false
ratio = 0.5
allowed = ["a", "b"]

[registry.blobs]
dir = "/var/lib/pylon/blobs"
)";
}  // namespace

TEST_CASE("Config reads typed values by dotted key") {
    auto c = Config::parse(kToml, "test.toml");
    REQUIRE(c.ok());
    c->set_environment({});
    CHECK(*c->get_string("registry.listen") == "127.0.0.1:8443");
    CHECK(*c->get_int("registry.workers") == 4);
    CHECK(*c->get_bool("registry.tls") == false);
    CHECK(*c->get_double("registry.ratio") == Approx(0.5));
    CHECK(*c->get_string("registry.blobs.dir") == "/var/lib/pylon/blobs");
    CHECK(*c->get_string_list("registry.allowed") == std::vector<std::string>{"a", "b"});
    CHECK(*c->get_int("registry.missing", 17) == 17);
    CHECK(c->file_keys().size() == 6);
}

TEST_CASE("Config reports missing keys and wrong types by name") {
    auto c = Config::parse(kToml, "test.toml");
    REQUIRE(c.ok());
    c->set_environment({});
    auto missing = c->get_string("registry.nope");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code() == Errc::not_found);
    auto wrong = c->get_int("registry.listen");
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.error().code() == Errc::parse_error);
    CHECK(wrong.error().message().find("registry.listen") != std::string::npos);
    // A wrong type is an error even when a default is given.
    CHECK_FALSE(c->get_int("registry.listen", 1).ok());
}

TEST_CASE("Environment variables override the file") {
    auto c = Config::parse(kToml, "test.toml");
    REQUIRE(c.ok());
    CHECK(c->env_name("registry.blobs.dir") == "PYLON_REGISTRY_BLOBS_DIR");
    c->set_environment({{"PYLON_REGISTRY_LISTEN", "0.0.0.0:9000"},
                        {"PYLON_REGISTRY_WORKERS", "8"},
                        {"PYLON_REGISTRY_TLS", "yes"},
                        {"PYLON_REGISTRY_ALLOWED", "x,y,z"},
                        {"PYLON_AGENT_NAME", "edge-1"}});
    CHECK(*c->get_string("registry.listen") == "0.0.0.0:9000");
    CHECK(*c->get_int("registry.workers") == 8);
    CHECK(*c->get_bool("registry.tls") == true);
    CHECK(*c->get_string_list("registry.allowed") == std::vector<std::string>{"x", "y", "z"});
    CHECK(*c->get_string("agent.name") == "edge-1");  // set only in the environment
    CHECK(c->has("agent.name"));
}

TEST_CASE("Malformed environment values are errors naming the variable") {
    auto c = Config::parse(kToml, "test.toml");
    REQUIRE(c.ok());
    c->set_environment({{"PYLON_REGISTRY_WORKERS", "8x"}, {"PYLON_REGISTRY_TLS", "maybe"}});
    auto w = c->get_int("registry.workers");
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().message().find("PYLON_REGISTRY_WORKERS") != std::string::npos);
    auto t = c->get_bool("registry.tls");
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().message().find("PYLON_REGISTRY_TLS") != std::string::npos);
}

TEST_CASE("Config parse errors name the file and line") {
    auto c = Config::parse("[registry]\nlisten = \n", "bad.toml");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code() == Errc::parse_error);
    CHECK(c.error().message().find("bad.toml:2") == 0);
}

TEST_CASE("Config::load_file reads a file and refuses oversize ones") {
    pylon::test::TempDir dir;
    auto path = dir.write("pylon.toml", kToml);
    auto c = Config::load_file(path);
    REQUIRE(c.ok());
    c->set_environment({});
    CHECK(*c->get_int("registry.workers") == 4);
    auto missing = Config::load_file(dir / "none.toml");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code() == Errc::not_found);
    auto big = dir.write("big.toml", std::string(Config::kMaxFileSize + 1, '#'));
    auto too_big = Config::load_file(big);
    REQUIRE_FALSE(too_big.ok());
    CHECK(too_big.error().code() == Errc::limit_exceeded);
}
