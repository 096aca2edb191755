// The device identity on disk: made 0600 in a 0700 directory, refused when others may read it,
// and an already-enrolled device refuses a second enrolment without contacting any registry.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "pylon/agent/enroll.h"
#include "temp_dir.h"

using namespace pylon::agent;

namespace {

mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("the device key and identity are private, and a shared one is refused",
          "[agent][identity]") {
    pylon::test::TempDir dir;
    const auto state = dir / "state";
    IdentityStore store(state);
    CHECK(store.load().value() == std::nullopt);
    auto key = store.device_key();
    REQUIRE(key);
    CHECK(mode_of(state) == 0700);
    CHECK(mode_of(store.dir()) == 0700);
    CHECK(mode_of(store.dir() / "device.key") == 0600);
    // The same key on the next call.
    CHECK(store.device_key()->key_id() == key->key_id());

    Identity id;
    id.registry = "http://127.0.0.1:1";
    id.device_id = 7;
    id.fleet = "edge";
    id.name = "dev-1";
    id.director_key_json =
        pylon::signing::tuf::Key::from_public_key(key->public_key()).to_json().dump();
    REQUIRE(store.save(id, pylon::Secret("pyd_secret")));
    CHECK(mode_of(store.dir() / "credential") == 0600);
    CHECK(mode_of(store.dir() / "identity.json") == 0600);
    auto back = store.load();
    REQUIRE(back);
    REQUIRE(*back);
    CHECK((*back)->binding() == pylon::signing::tuf::DeviceBinding{7, "edge", "dev-1"});
    CHECK(store.credential()->reveal() == "pyd_secret");
    CHECK(store.director_key()->key_id() == key->key_id());

    // Readable by others: refused, naming the file.
    REQUIRE(::chmod((store.dir() / "credential").c_str(), 0644) == 0);
    auto shared = store.credential();
    REQUIRE_FALSE(shared);
    CHECK_THAT(shared.error().message(), Catch::Contains("credential"));
    REQUIRE(::chmod((store.dir() / "device.key").c_str(), 0640) == 0);
    CHECK_FALSE(store.device_key());

    // Enrolled already: refused before any network call (the registry URL is unreachable).
    EnrollOptions o;
    o.registry = "http://127.0.0.1:1";
    o.token = pylon::Secret("pye_x");
    auto again = enroll(state, o);
    REQUIRE_FALSE(again);
    CHECK_THAT(again.error().message(), Catch::Contains("already enrolled as edge/dev-1"));
}
