// Device-side helpers for the registry API tests: a fleet with an enrolment token, and devices
// enrolled with a DSSE proof of their key.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "api_fixture.h"
#include "pylon/signing/dsse.h"
#include "pylon/signing/json.h"
#include "pylon/signing/tuf/director.h"

namespace pylon::registry_api::test {

using signing::tuf::DeviceBinding;

inline const Json kHardware = {{"arch", "x86_64"},
                               {"isa", {"avx2", "fma"}},
                               {"accelerators", Json::array()},
                               {"ram_mb", 4096},
                               {"cpu_model", "test"}};

inline std::string fleet_token(ApiServer& s, int max_uses = 5) {
    REQUIRE(s.post("/v1/fleets", s.admin(), {{"name", "edge"}}).status == 201);
    const Reply t = s.post("/v1/fleets/edge/enrollment-tokens", s.admin(),
                           {{"name", "batch"}, {"max_uses", max_uses}});
    INFO(t.body);
    REQUIRE(t.status == 201);
    const std::string token = t.json().at("token");
    CHECK(token.rfind("pye_", 0) == 0);
    return token;
}

inline Json enrol_body(const std::string& name, const signing::PrivateKey& key,
                       const signing::PrivateKey& prover, const Json& hardware = kHardware) {
    const Json pub = signing::tuf::Key::from_public_key(key.public_key()).to_json();
    const std::string payload =
        signing::canonical_json(Json{{"name", name}, {"public_key", pub}, {"hardware", hardware}})
            .value();
    const auto env =
        signing::dsse_sign("application/vnd.pylon.enrollment+json", as_bytes(payload), {&prover})
            .value();
    return {{"name", name}, {"public_key", pub}, {"hardware", hardware}, {"proof", env.to_json()}};
}

struct Enrolled {
    std::string id, credential;
    signing::PublicKey director;
    DeviceBinding binding;
};

inline Enrolled enrol(ApiServer& s, const std::string& token, const std::string& name,
                      const signing::PrivateKey& key) {
    const Reply r = s.post("/v1/device/enroll", token, enrol_body(name, key, key));
    INFO(r.body);
    REQUIRE(r.status == 201);
    const Json j = r.json();
    const std::string id = j.at("device").at("id");
    return {id, j.at("credential"), signing::PublicKey::from_tuf(j.at("director_key")).value(),
            DeviceBinding{std::stoll(id), "edge", name}};
}

}  // namespace pylon::registry_api::test
