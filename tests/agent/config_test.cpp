// The agent's TOML configuration: the shipped example parses to the documented defaults,
// environment variables override the file, unknown keys and values out of range are refused.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "pylon/agent/daemon.h"
#include "temp_dir.h"

using namespace pylon::agent;

TEST_CASE("the example agent.toml parses to the defaults", "[agent][config]") {
    const std::string example = std::string(PYLON_TEST_DATA) + "/../../deploy/config/agent.toml";
    auto c = load_agent_config(example, true);
    REQUIRE(c);
    const AgentConfig d;
    CHECK(c->state_dir == d.state_dir);
    CHECK(c->poll_interval == d.poll_interval);
    CHECK(c->health_timeout == d.health_timeout);
    CHECK(c->serve_port == 8080);
    CHECK(c->model_id == "device-model");
    CHECK(c->accelerators.empty());
    // A missing file is the defaults unless required.
    CHECK(load_agent_config("/nonexistent/agent.toml", false));
    CHECK_FALSE(load_agent_config("/nonexistent/agent.toml", true));
}

TEST_CASE("agent config: environment overrides, refusals name the key", "[agent][config]") {
    pylon::test::TempDir dir;
    const auto f = dir.write("agent.toml", "[serve]\nport = 9000\n[device]\nregion = \"FR\"\n");
    ::setenv("PYLON_AGENT_SERVE_PORT", "9100", 1);
    auto c = load_agent_config(f, true);
    ::unsetenv("PYLON_AGENT_SERVE_PORT");
    REQUIRE(c);
    CHECK(c->serve_port == 9100);
    CHECK(c->region == "FR");

    auto refused = [&](const char* toml, const char* needle) {
        const auto bad = dir.write("bad.toml", toml);
        auto r = load_agent_config(bad, true);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message(), Catch::Contains(needle));
    };
    refused("[serve]\nprot = 1\n", "unknown key serve.prot");
    refused("[serve]\nport = 70000\n", "serve.port");
    refused("[update]\npoll_interval_s = 0\n", "update.poll_interval_s");
    refused("[device]\nregion = \"Germany\"\n", "device.region");
    refused("[serve]\nport = \"eighty\"\n", "serve.port");
}
