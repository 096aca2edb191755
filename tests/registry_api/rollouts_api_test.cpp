// The rollout API against a real server and PostgreSQL: creation with its refusals (bad waves,
// licence, conflicts, no token scope), status, devices, events, pause / resume / abort, fleet
// settings, device labels, licence acceptances, fleet rollback.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "api_fixture.h"
#include "device_helpers.h"

using namespace pylon;
using namespace pylon::registry_api::test;

namespace {

// acme/tiny@1.0.0 published with one avx2 build; fleet "edge" with `n` enrolled devices.
struct RolloutSetup {
    explicit RolloutSetup(ApiServer& s, int n = 3) : a(s) {
        s.add_build(a.release, s.build_body("avx2", a.digest, a.blob.size(), {"avx2"}),
                    a.publish_token);
        const auto targets = s.release_targets(a.release, a.read_token);
        REQUIRE(s.publish(a.release, a.publish_token, s.sign_role("acme", targets, a.key)).status ==
                200);
        const std::string token = fleet_token(s, 10);
        for (int i = 0; i < n; ++i) {
            devices.push_back(enrol(s, token, "dev-" + std::to_string(i), new_key()));
        }
    }
    AcmeSetup a;
    std::vector<Enrolled> devices;
};

Json rollout_body(Json waves = Json::array({{{"percent", 100}}})) {
    return {{"model", "acme/tiny"}, {"version", "1.0.0"}, {"fleet", "edge"}, {"waves", waves}};
}

}  // namespace

TEST_CASE("rollouts are created, watched, paused, resumed and aborted over REST",
          "[registry_api][rollouts]") {
    ApiServer s;
    RolloutSetup setup(s);
    // Admin only.
    CHECK(s.post("/v1/rollouts", setup.a.publish_token, rollout_body()).status == 403);
    // Malformed specs name the field.
    for (const Json& waves : {Json::array(), Json::array({{{"percent", 0}}}),
                              Json::array({{{"count", 2}, {"percent", 5}}}),
                              Json::array({{{"percent", 50}, {"failure_threshold", 2}}}),
                              Json::array({{{"percent", 50}, {"surprise", 1}}})}) {
        const Reply r = s.post("/v1/rollouts", s.admin(), rollout_body(waves));
        INFO(waves.dump() << " -> " << r.body);
        CHECK(r.status == 400);
    }
    Json bad_window = rollout_body();
    bad_window["maintenance_window"] = "25:00-01:00";
    CHECK(s.post("/v1/rollouts", s.admin(), bad_window).status == 400);

    Json paused = rollout_body(Json::array({{{"count", 1}}, {{"percent", 100}}}));
    paused["start"] = false;
    const Reply created = s.post("/v1/rollouts", s.admin(), paused);
    INFO(created.body);
    REQUIRE(created.status == 201);
    const Json r = created.json();
    CHECK(r.at("state") == "pending");
    CHECK(r.at("devices") == 3);
    CHECK(r.at("waves").size() == 2);
    CHECK(r.at("waves")[0].at("devices") == 1);
    const std::string id = r.at("id");
    // The same devices cannot join another active rollout.
    const Reply clash = s.post("/v1/rollouts", s.admin(), rollout_body());
    CHECK(clash.status == 409);
    CHECK_THAT(clash.body, Catch::Contains("already in active rollout " + id));

    CHECK(s.post("/v1/rollouts/" + id + "/pause", s.admin(), Json::object()).status == 409);
    const Reply resumed = s.post("/v1/rollouts/" + id + "/resume", s.admin(), Json::object());
    REQUIRE(resumed.status == 200);
    CHECK(resumed.json().at("state") == "running");
    // The orchestrator (every second) starts the canary.
    Json now;
    for (int i = 0; i < 50; ++i) {
        now = s.get("/v1/rollouts/" + id, s.admin()).json();
        if (now.at("waves")[0].at("state") == "running") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(now.at("waves")[0].at("state") == "running");
    CHECK(now.at("waves")[0].at("assigned") == 1);
    const Json members = s.get("/v1/rollouts/" + id + "/devices?state=assigned", s.admin()).json();
    REQUIRE(members.at("items").size() == 1);
    CHECK(members.at("items")[0].at("wave") == 1);
    REQUIRE(s.post("/v1/rollouts/" + id + "/pause", s.admin(), {{"reason", "checking"}}).status ==
            200);
    const Reply aborted = s.post("/v1/rollouts/" + id + "/abort", s.admin(), Json::object());
    REQUIRE(aborted.status == 200);
    CHECK(aborted.json().at("state") == "rolled_back");
    const Json events = s.get("/v1/rollouts/" + id + "/events", s.admin()).json();
    std::vector<std::string> kinds;
    for (const auto& e : events.at("items"))
        kinds.insert(kinds.begin(), e.at("kind").get<std::string>());
    CHECK(kinds ==
          std::vector<std::string>{"created", "started", "wave_started", "paused", "rolled_back"});
    const Json list = s.get("/v1/rollouts?fleet=edge&state=rolled_back", s.admin()).json();
    CHECK(list.at("items").size() == 1);
    CHECK(s.get("/v1/rollouts/999", s.admin()).status == 404);
}

TEST_CASE("fleet settings, labels, licences and fleet rollback over REST",
          "[registry_api][rollouts]") {
    ApiServer s;
    RolloutSetup setup(s);
    // The fleet's region, checked against licences at rollout creation.
    REQUIRE(s.call(Method::put, "/v1/fleets/edge", s.admin(), R"({"region":"FR"})").status == 200);
    CHECK(s.call(Method::put, "/v1/fleets/edge", s.admin(), R"({"region":"france"})").status ==
          400);
    CHECK(s.get("/v1/fleets/edge", s.admin()).json().at("region") == "FR");
    // Labels select devices.
    CHECK(s.call(Method::put, "/v1/devices/" + setup.devices[0].id + "/labels", s.admin(),
                 R"({"labels":{"ring":"beta"}})")
              .status == 200);
    CHECK(s.call(Method::put, "/v1/devices/" + setup.devices[0].id + "/labels", s.admin(),
                 R"({"labels":{"ring":7}})")
              .status == 400);
    Json beta = rollout_body();
    beta["selector"] = {{"ring", "beta"}};
    const Reply one = s.post("/v1/rollouts", s.admin(), beta);
    INFO(one.body);
    REQUIRE(one.status == 201);
    CHECK(one.json().at("devices") == 1);
    // Licence acceptance is recorded with who and which terms.
    const Reply accepted = s.post("/v1/license-acceptances", s.admin(),
                                  {{"model", "acme/tiny"}, {"version", "1.0.0"}});
    INFO(accepted.body);
    REQUIRE(accepted.status == 201);
    CHECK(accepted.json().at("license_sha256").get<std::string>().size() == 64);
    CHECK_THAT(accepted.json().at("accepted_by").get<std::string>(),
               Catch::Contains("bootstrap-admin"));
    // Fleet rollback ends the rollout and undoes it.
    const Reply back = s.post("/v1/fleets/edge/rollback", s.admin(), Json::object());
    INFO(back.body);
    REQUIRE(back.status == 200);
    CHECK(back.json().at("rollout") == one.json().at("id"));
    CHECK(s.get("/v1/rollouts/" + one.json().at("id").get<std::string>(), s.admin())
              .json()
              .at("state") == "rolled_back");
    CHECK(s.post("/v1/fleets/edge/rollback", s.admin(), Json::object()).status == 409);
    CHECK(s.post("/v1/fleets/none/rollback", s.admin(), Json::object()).status == 404);
}
