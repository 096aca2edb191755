// Rollouts in the catalog: selection by labels and hardware fit, waves, report-driven member
// states, thresholds, pause / resume / abort with rollback, one active rollout per device, the
// maintenance window, fleet rollbacks, licence checks and acceptances, events and audit entries.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "pg_test_support.h"
#include "pylon/catalog/catalog.h"
#include "pylon/catalog/errors.h"

using namespace pylon::catalog;
using pylon::catalog::test::CatalogFixture;
using pylon::catalog::test::digest_of;
using Json = nlohmann::json;

namespace {

std::string hash_of(const std::string& secret) {
    return digest_of(secret).substr(7);
}

// Fleet "edge" (region DE) with N devices; acme/tiny 1.0.0, 1.1.0 and 1.2.0 published (one
// x86_64 build); acme/geo 1.0.0 published with a licence that excludes DE; acme/gated 1.0.0
// published with a licence that needs acceptance.
struct RolloutFixture : CatalogFixture {
    explicit RolloutFixture(int devices = 10) {
        REQUIRE(catalog->create_fleet("edge", "", "DE", false));
        REQUIRE(catalog->create_enrollment_token("edge", "t", hash_of("enrol"), std::nullopt,
                                                 std::nullopt, "admin"));
        REQUIRE(catalog->create_namespace("acme", ""));
        REQUIRE(catalog->record_blob(digest_of("m"), 10));
        License mit;
        mit.spdx = "MIT";
        License geo;
        geo.spdx = "LicenseRef-geo";
        geo.regions_denied = {"DE"};
        License gated;
        gated.spdx = "LicenseRef-gated";
        gated.acceptance_required = true;
        publish("tiny", mit, {"1.0.0", "1.1.0", "1.2.0"});
        publish("geo", geo, {"1.0.0"});
        publish("gated", gated, {"1.0.0"});
        for (int i = 0; i < devices; ++i) {
            const std::string name = "dev-" + std::to_string(i);
            auto d = catalog->enroll_device(hash_of("enrol"), name, "key-" + name,
                                            R"({"arch":"x86_64","isa":["avx2"]})",
                                            hash_of("cred-" + name));
            REQUIRE(d);
            ids.push_back(d->id);
        }
    }
    void publish(const std::string& model, const License& l, std::vector<std::string> versions) {
        REQUIRE(catalog->create_model("acme", model, "", l));
        for (const auto& v : versions) {
            REQUIRE(catalog->create_release("acme", model, v, "", l));
            Build b;
            b.name = "cpu";
            b.target = HardwareTarget{"x86_64", {}, "none", 0};
            b.format = "gguf";
            b.quantization = "Q4_0";
            b.files = {BuildFile{"model.gguf", digest_of("m"), 10}};
            REQUIRE(catalog->add_build("acme", model, v, b));
            REQUIRE(catalog->publish_release("acme", model, v, {}));
        }
    }
    RolloutSpec spec(const std::string& version, std::vector<WaveSpec> waves) {
        RolloutSpec s;
        s.ns = "acme";
        s.model = "tiny";
        s.version = version;
        s.fleet = "edge";
        s.waves = std::move(waves);
        s.created_by = "alice";
        return s;
    }
    // A device reports what an agent reports after installing `version` (or failing to).
    void report(std::int64_t device, const std::string& version, bool ok) {
        auto rel = catalog->get_release("acme", "tiny", version);
        REQUIRE(rel);
        DeviceReport r;
        r.update_state = ok ? "healthy" : "rolled_back";
        if (ok) r.current_release_id = rel->id;
        r.error = ok ? "" : "health check failed";
        REQUIRE(catalog->record_device_report(device, r));
    }
    std::vector<RolloutDevice> members(std::int64_t rollout,
                                       std::optional<std::string> state = {}) {
        auto page = catalog->list_rollout_devices(rollout, state, PageRequest{"", 500});
        REQUIRE(page);
        return page->items;
    }
    std::vector<std::int64_t> ids;
};

WaveSpec percent(int p, double success = 1.0, double failure = 0.0) {
    WaveSpec w;
    w.percent = p;
    w.success_threshold = success;
    w.failure_threshold = failure;
    return w;
}

}  // namespace

TEST_CASE_METHOD(RolloutFixture, "a rollout advances wave by wave on device reports") {
    auto r = catalog->create_rollout(spec("1.0.0", {percent(20), percent(100)}));
    REQUIRE(r);
    CHECK(r->state == "running");
    REQUIRE(r->waves.size() == 2);
    CHECK(r->waves[0].devices == 2);  // 20% of 10
    CHECK(r->waves[1].devices == 8);  // the rest
    REQUIRE(catalog->advance_rollouts());
    auto canary = members(r->id, "assigned");
    REQUIRE(canary.size() == 2);
    // The canary's devices are assigned 1.0.0, the others not yet.
    for (const auto& m : canary) {
        CHECK(catalog->get_device(m.device_id)->desired->version == "1.0.0");
    }
    CHECK(members(r->id, "pending").size() == 8);
    // One succeeds: not enough for a success threshold of 1.
    report(canary[0].device_id, "1.0.0", true);
    REQUIRE(catalog->advance_rollouts());
    CHECK(catalog->get_rollout(r->id)->waves[1].state == "pending");
    report(canary[1].device_id, "1.0.0", true);
    REQUIRE(catalog->advance_rollouts());
    auto now = catalog->get_rollout(r->id);
    CHECK(now->waves[0].state == "succeeded");
    CHECK(now->waves[1].state == "running");
    for (const auto& m : members(r->id, "assigned")) report(m.device_id, "1.0.0", true);
    REQUIRE(catalog->advance_rollouts());
    now = catalog->get_rollout(r->id);
    CHECK(now->state == "completed");
    CHECK(now->finished_at);
    // Every state change is an event and an audit entry.
    auto events = catalog->list_rollout_events(r->id, PageRequest{});
    REQUIRE(events);
    std::vector<std::string> kinds;
    for (const auto& e : events->items) kinds.insert(kinds.begin(), e.kind);
    CHECK(kinds == std::vector<std::string>{"created", "wave_started", "wave_succeeded",
                                            "wave_started", "wave_succeeded", "completed"});
    AuditFilter f;
    f.action = "rollout.completed";
    CHECK(catalog->list_audit(PageRequest{}, f)->items.size() == 1);
}

TEST_CASE_METHOD(RolloutFixture, "failures past the threshold abort and roll back") {
    auto first = catalog->create_rollout(spec("1.0.0", {percent(100)}));
    REQUIRE(first);
    REQUIRE(catalog->advance_rollouts());
    for (auto id : ids) report(id, "1.0.0", true);
    REQUIRE(catalog->advance_rollouts());
    REQUIRE(catalog->get_rollout(first->id)->state == "completed");

    auto r = catalog->create_rollout(spec("1.1.0", {percent(50, 1.0, 0.2), percent(100)}));
    REQUIRE(r);
    REQUIRE(catalog->advance_rollouts());
    auto canary = members(r->id, "assigned");
    REQUIRE(canary.size() == 5);
    report(canary[0].device_id, "1.1.0", true);
    report(canary[1].device_id, "1.1.0", false);  // 1 of 5 = 20%: not past 20%
    REQUIRE(catalog->advance_rollouts());
    CHECK(catalog->get_rollout(r->id)->state == "running");
    report(canary[2].device_id, "1.1.0", false);  // 2 of 5 = 40%
    REQUIRE(catalog->advance_rollouts());
    auto now = catalog->get_rollout(r->id);
    CHECK(now->state == "rolled_back");
    CHECK_THAT(now->reason, Catch::Contains("wave 1: 2 of 5 devices failed"));
    CHECK(now->waves[1].state == "pending");
    CHECK_FALSE(now->waves[1].started_at);
    // Every device the rollout touched wants 1.0.0 again; the failed ones stay marked failed.
    for (auto id : ids) CHECK(catalog->get_device(id)->desired->version == "1.0.0");
    CHECK(members(r->id, "failed").size() == 2);
    CHECK(members(r->id, "rolled_back").size() == 3);
    // Nothing is active any more: a new rollout may take the devices.
    CHECK(catalog->create_rollout(spec("1.2.0", {percent(100)})));
}

TEST_CASE_METHOD(RolloutFixture, "pause, resume, abort; one active rollout per device") {
    auto r = catalog->create_rollout(spec("1.0.0", {percent(30), percent(100)}));
    REQUIRE(r);
    // A second rollout for the same devices is refused, naming the first.
    auto clash = catalog->create_rollout(spec("1.1.0", {percent(100)}));
    REQUIRE_FALSE(clash);
    CHECK(clash.error().code() == Errc::conflict);
    CHECK_THAT(clash.error().message(),
               Catch::Contains("already in active rollout " + std::to_string(r->id)));
    REQUIRE(catalog->pause_rollout(r->id, "bob", "looking at metrics"));
    CHECK(catalog->pause_rollout(r->id, "bob", "").error().code() == Errc::invalid_state);
    REQUIRE(catalog->advance_rollouts());
    CHECK(members(r->id, "assigned").empty());  // paused: no wave starts
    REQUIRE(catalog->resume_rollout(r->id, "bob"));
    REQUIRE(catalog->advance_rollouts());
    CHECK(members(r->id, "assigned").size() == 3);
    auto aborted = catalog->abort_rollout(r->id, "bob", "wrong release", false);
    REQUIRE(aborted);
    CHECK(aborted->state == "aborted");
    // Without rollback the assigned devices keep the release.
    for (const auto& m : members(r->id, "assigned")) {
        CHECK(catalog->get_device(m.device_id)->desired->version == "1.0.0");
    }
    CHECK(catalog->abort_rollout(r->id, "bob", "", true).error().code() == Errc::invalid_state);
}

TEST_CASE_METHOD(RolloutFixture, "selectors, incompatible devices and the maintenance window") {
    REQUIRE(catalog->set_device_labels(ids[0], R"({"site":"berlin"})"));
    REQUIRE(catalog->set_device_labels(ids[1], R"({"site":"berlin"})"));
    REQUIRE(catalog->set_device_labels(ids[2], R"({"site":"munich"})"));
    CHECK(catalog->set_device_labels(ids[0], R"({"site":1})").error().code() ==
          Errc::invalid_argument);
    auto s = spec("1.0.0", {percent(100)});
    s.selector = R"({"site":["berlin","munich"]})";
    // dev-1 has no build that fits (the callback says so).
    s.fit = [](const std::string& hw) -> std::optional<std::string> {
        return Json::parse(hw).contains("old") ? std::optional<std::string>("too old")
                                               : std::nullopt;
    };
    REQUIRE(catalog->update_device_hardware(ids[1], R"({"arch":"x86_64","old":true})"));
    // Outside the window (a one-minute window 12 hours from now): no wave starts.
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now + std::chrono::hours(12));
    std::tm tm{};
    gmtime_r(&t, &tm);
    const int start = tm.tm_hour * 60 + tm.tm_min;
    s.window = std::pair{start, (start + 1) % 1440};
    auto r = catalog->create_rollout(s);
    REQUIRE(r);
    CHECK(r->incompatible == 1);
    CHECK(r->waves[0].devices == 2);
    auto bad = members(r->id, "incompatible");
    REQUIRE(bad.size() == 1);
    CHECK(bad[0].device_id == ids[1]);
    CHECK(bad[0].reason == "too old");
    REQUIRE(catalog->advance_rollouts());
    CHECK(catalog->get_rollout(r->id)->waves[0].state == "pending");
    // Nothing matches: refused.
    auto none = spec("1.1.0", {percent(100)});
    none.selector = R"({"site":"paris"})";
    CHECK(catalog->create_rollout(none).error().code() == Errc::invalid_argument);
    // Malformed specs.
    CHECK(catalog->create_rollout(spec("1.1.0", {})).error().code() == Errc::invalid_argument);
    WaveSpec both = percent(10);
    both.count = 3;
    CHECK(catalog->create_rollout(spec("1.1.0", {both})).error().code() == Errc::invalid_argument);
}

TEST_CASE_METHOD(RolloutFixture, "licences are checked against the fleet at creation") {
    auto geo = spec("1.0.0", {percent(100)});
    geo.model = "geo";
    auto refused = catalog->create_rollout(geo);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code() == Errc::license_refused);
    CHECK_THAT(refused.error().message(), Catch::Contains("excludes region DE"));
    // Another region: allowed.
    REQUIRE(catalog->update_fleet("edge", "FR", false));
    CHECK(catalog->create_rollout(geo));

    auto gated = spec("1.0.0", {percent(100)});
    gated.model = "gated";
    gated.selector = R"({"none":"x"})";
    auto needs = catalog->create_rollout(gated);
    REQUIRE_FALSE(needs);
    CHECK(needs.error().code() == Errc::license_refused);
    CHECK_THAT(needs.error().message(), Catch::Contains("requires acceptance"));
    CHECK_FALSE(*catalog->find_license_acceptance("acme", "gated", "1.0.0"));
    auto a = catalog->accept_license("acme", "gated", "1.0.0", "carol");
    REQUIRE(a);
    CHECK(a->accepted_by == "carol");
    CHECK(a->spdx == "LicenseRef-gated");
    CHECK(a->license_sha256.size() == 64);
    // Accepting again keeps the first record.
    CHECK(catalog->accept_license("acme", "gated", "1.0.0", "dave")->accepted_by == "carol");
    // The licence passes now; the selector matches nothing (the devices are in the geo rollout).
    CHECK(catalog->create_rollout(gated).error().code() == Errc::invalid_argument);
}

TEST_CASE_METHOD(RolloutFixture, "a fleet rolls back in one step") {
    auto first = catalog->create_rollout(spec("1.0.0", {percent(100)}));
    REQUIRE(catalog->advance_rollouts());
    for (auto id : ids) report(id, "1.0.0", true);
    REQUIRE(catalog->advance_rollouts());
    auto second = catalog->create_rollout(spec("1.1.0", {percent(100)}));
    REQUIRE(second);
    REQUIRE(catalog->advance_rollouts());
    for (auto id : ids) report(id, "1.1.0", true);
    REQUIRE(catalog->advance_rollouts());
    REQUIRE(catalog->get_rollout(second->id)->state == "completed");

    auto back = catalog->rollback_fleet("edge", std::nullopt, "erin");
    REQUIRE(back);
    CHECK(back->rollout_id == second->id);
    CHECK(back->devices == 10);
    for (auto id : ids) CHECK(catalog->get_device(id)->desired->version == "1.0.0");
    CHECK(catalog->get_rollout(second->id)->state == "rolled_back");
    // Again without a version: nothing left to undo.
    CHECK(catalog->rollback_fleet("edge", std::nullopt, "erin").error().code() ==
          Errc::invalid_state);
    // To a named version.
    auto to = catalog->rollback_fleet("edge", std::string("1.2.0"), "erin");
    REQUIRE(to);
    CHECK(to->devices == 10);
    for (auto id : ids) CHECK(catalog->get_device(id)->desired->version == "1.2.0");
    CHECK(catalog->rollback_fleet("nowhere", std::nullopt, "erin").error().code() ==
          Errc::not_found);
    (void)first;
}
