// pylon-registry's configuration: the shipped example (deploy/config/registry.toml) sets every
// key to its default, a misspelt key is refused by name, and the embedded PostgreSQL is chosen
// only when no database is configured.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>

#include "pylon/common/config.h"
#include "pylon/registry/embedded_postgres.h"
#include "pylon/registry/registry.h"
#include "temp_dir.h"

using namespace pylon::registry;

TEST_CASE("the example registry.toml sets every key to its default", "[registry][config]") {
    const std::string example = std::string(PYLON_TEST_DATA) + "/../../deploy/config/registry.toml";
    auto file = pylon::Config::load_file(example);
    REQUIRE(file);
    for (auto key : registry_config_keys()) {
        INFO(key);
        CHECK(file->has(key));
    }
    auto c = RegistryConfig::from_config(*file);
    REQUIRE(c);
    const RegistryConfig d;
    CHECK(c->server.host == "127.0.0.1");
    CHECK(c->server.port == 8080);
    CHECK(c->data_dir == "/var/lib/pylon-registry");
    CHECK(c->database_url.empty());
    CHECK(c->embedded_postgres_user == d.embedded_postgres_user);
    CHECK(c->embedded_postgres_bin_dir.empty());
    CHECK(c->server.max_connections == d.server.max_connections);
    CHECK(c->server.header_timeout == d.server.header_timeout);
    CHECK(c->server.body_read_timeout == d.server.body_read_timeout);
    CHECK(c->server.idle_timeout == d.server.idle_timeout);
    CHECK(c->server.shutdown_grace == d.server.shutdown_grace);
    CHECK_FALSE(c->server.tls);
    CHECK(c->max_blob_size == d.max_blob_size);
    CHECK(c->upload_session_idle == d.upload_session_idle);
    CHECK(c->maintenance_interval == d.maintenance_interval);
    CHECK(c->rollout_interval == d.rollout_interval);
    CHECK_FALSE(c->tuf_root_file);
    CHECK_FALSE(c->tuf_snapshot_key_file);
}

TEST_CASE("registry config: an unknown key is refused by name", "[registry][config]") {
    pylon::test::TempDir dir;
    auto file =
        pylon::Config::load_file(dir.write("r.toml", "[registry]\nlisten_adress = \"x\"\n"));
    REQUIRE(file);
    auto c = RegistryConfig::from_config(*file);
    REQUIRE_FALSE(c);
    CHECK_THAT(c.error().what(), Catch::Contains("unknown key registry.listen_adress"));
    auto other = pylon::Config::load_file(dir.write("o.toml", "[server]\nport = 1\n"));
    REQUIRE(other);
    CHECK_FALSE(RegistryConfig::from_config(*other));
}

TEST_CASE("the embedded PostgreSQL is chosen only without any database setting",
          "[registry][config]") {
    // Saved and restored: the suite itself runs under pg_virtualenv's PG* variables.
    std::optional<std::string> saved[5];
    const char* vars[5] = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE"};
    for (int i = 0; i < 5; ++i) {
        if (const char* v = std::getenv(vars[i])) saved[i] = v;
        ::unsetenv(vars[i]);
    }
    CHECK(wants_embedded_postgres(""));
    CHECK(wants_embedded_postgres("embedded"));
    CHECK_FALSE(wants_embedded_postgres("postgresql://db/pylon"));
    ::setenv("PGDATABASE", "pylon", 1);
    CHECK_FALSE(wants_embedded_postgres(""));
    CHECK(wants_embedded_postgres("embedded"));
    ::unsetenv("PGDATABASE");
    ::setenv("PGHOST", "", 1);  // set but empty counts as unset
    CHECK(wants_embedded_postgres(""));
    for (int i = 0; i < 5; ++i) {
        if (saved[i]) {
            ::setenv(vars[i], saved[i]->c_str(), 1);
        } else {
            ::unsetenv(vars[i]);
        }
    }
}
