// The device API against a real server and PostgreSQL: fleets and enrolment tokens, enrolment
// with proof of key possession, per-device director documents (signed, growing versions, the
// best-fitting build of the assigned release, identical to the image repository's target),
// operator assignments, and signed status reports.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>
#include <vector>

#include "api_fixture.h"
#include "device_helpers.h"
#include "pylon/signing/dsse.h"
#include "pylon/signing/json.h"
#include "pylon/signing/tuf/director.h"

using namespace pylon;
using namespace pylon::registry_api::test;
using signing::tuf::DeviceBinding;
using signing::tuf::verify_director_document;

namespace {

std::string report(const signing::PrivateKey& key, const Json& payload) {
    const std::string text = payload.dump();
    return signing::dsse_sign("application/vnd.pylon.device-report+json", as_bytes(text), {&key})
        .value()
        .to_json_text();
}

signing::tuf::Time now() {
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

}  // namespace

TEST_CASE("devices enrol with a fleet token and proof that they hold their key",
          "[registry_api][devices]") {
    ApiServer s;
    const std::string token = fleet_token(s, 2);
    const auto key = new_key();

    // A proof by another key: refused, and the token's use is not counted.
    const auto other = new_key();
    Reply bad = s.post("/v1/device/enroll", token, enrol_body("dev-1", key, other));
    CHECK(bad.status == 422);
    CHECK(bad.error_code() == "bad_signature");
    // A proof over other values (the hardware changed after signing).
    Json tampered = enrol_body("dev-1", key, key);
    tampered["hardware"]["ram_mb"] = 65536;
    CHECK(s.post("/v1/device/enroll", token, tampered).status == 422);
    CHECK(s.post("/v1/device/enroll", "pye_nope", enrol_body("dev-1", key, key)).status == 401);
    CHECK(s.post("/v1/device/enroll", "", enrol_body("dev-1", key, key)).status == 401);
    Json no_hw = enrol_body("dev-1", key, key);
    no_hw.erase("hardware");
    CHECK(s.post("/v1/device/enroll", token, no_hw).status == 400);

    const Enrolled d = enrol(s, token, "dev-1", key);
    CHECK(d.credential.rfind("pyd_", 0) == 0);
    // The same name again (with a valid proof by a new key): conflict.
    const auto k2 = new_key();
    CHECK(s.post("/v1/device/enroll", token, enrol_body("dev-1", k2, k2)).status == 409);
    enrol(s, token, "dev-2", new_key());
    // Used up (max_uses 2).
    const auto k3 = new_key();
    const Reply used = s.post("/v1/device/enroll", token, enrol_body("dev-3", k3, k3));
    CHECK(used.status == 401);
    CHECK_THAT(used.error_message(), Catch::Contains("used up"));

    // The device sees itself with its credential, nothing else; API tokens are not credentials.
    const Reply self = s.get("/v1/device", d.credential);
    REQUIRE(self.status == 200);
    CHECK(self.json().at("name") == "dev-1");
    CHECK(self.json().at("hardware") == kHardware);
    CHECK(s.get("/v1/device", s.admin()).status == 401);
    CHECK(s.get("/v1/devices", d.credential).status == 401);
    // Operators list devices (admin only).
    const Reply list = s.get("/v1/devices?fleet=edge", s.admin());
    REQUIRE(list.status == 200);
    CHECK(list.json().at("items").size() == 2);
    CHECK(s.get("/v1/devices", s.create_token({"read"})).status == 403);
    const Reply tokens = s.get("/v1/fleets/edge/enrollment-tokens", s.admin());
    REQUIRE(tokens.status == 200);
    CHECK(tokens.json().at("items").at(0).at("uses") == 2);
    CHECK_FALSE(tokens.json().at("items").at(0).contains("token"));

    // A revoked device's credential stops working.
    REQUIRE(s.call(Method::delete_, "/v1/devices/" + d.id, s.admin()).status == 204);
    CHECK(s.get("/v1/device", d.credential).status == 401);
}

TEST_CASE("the director names the best-fitting build of the assigned release, newer each time",
          "[registry_api][devices]") {
    ApiServer s;
    AcmeSetup a(s);
    s.add_build(a.release, s.build_body("avx2", a.digest, a.blob.size(), {"avx2"}),
                a.publish_token);
    s.add_build(a.release, s.build_body("avx512", a.digest, a.blob.size(), {"avx2", "avx512f"}),
                a.publish_token);
    const auto targets = s.release_targets(a.release, a.read_token);
    const Reply published =
        s.publish(a.release, a.publish_token, s.sign_role("acme", targets, a.key));
    INFO(published.body);
    REQUIRE(published.status == 200);
    s.create_release("acme", "tiny", "2.0.0", a.publish_token);  // stays a draft

    const std::string token = fleet_token(s);
    const auto key = new_key();
    const Enrolled d = enrol(s, token, "dev-1", key);

    // Nothing assigned: a document naming no target, with the reason.
    const Reply first = s.get("/v1/device/director", d.credential);
    REQUIRE(first.status == 200);
    auto doc1 = verify_director_document(first.body, d.director, d.binding, 0, now());
    REQUIRE(doc1);
    CHECK_FALSE(doc1->target_path);
    CHECK_THAT(doc1->note, Catch::Contains("no release is assigned"));
    // Asked again while fresh: the same document.
    CHECK(s.get("/v1/device/director", d.credential).body == first.body);

    const std::string assign = "/v1/devices/" + d.id + "/release";
    CHECK(s.call(Method::put, assign, s.admin(),
                 Json{{"model", "acme/tiny"}, {"version", "2.0.0"}}.dump())
              .status == 409);
    CHECK(s.call(Method::put, assign, a.publish_token,
                 Json{{"model", "acme/tiny"}, {"version", "1.0.0"}}.dump())
              .status == 403);
    const Reply assigned = s.call(Method::put, assign, s.admin(),
                                  Json{{"model", "acme/tiny"}, {"version", "1.0.0"}}.dump());
    INFO(assigned.body);
    REQUIRE(assigned.status == 200);
    CHECK(assigned.json().at("desired").at("version") == "1.0.0");

    const Reply second = s.get("/v1/device/director", d.credential);
    REQUIRE(second.status == 200);
    auto doc2 = verify_director_document(second.body, d.director, d.binding, doc1->version, now());
    REQUIRE(doc2);
    CHECK(doc2->version > doc1->version);
    REQUIRE(doc2->target_path);
    // The device has avx2 but not avx512f.
    CHECK(*doc2->target_path == "acme/tiny/1.0.0/avx2/model.gguf");
    const auto& image = targets.at(*doc2->target_path);
    CHECK(doc2->target.length == image.length);
    CHECK(doc2->target.hashes == image.hashes);
    CHECK(doc2->target.custom == image.custom);
    // The first document replayed after the second: refused as a rollback.
    auto replay = verify_director_document(first.body, d.director, d.binding, doc2->version, now());
    REQUIRE_FALSE(replay);
    CHECK(replay.error().code() == signing::tuf::Errc::rollback);
    // Another device cannot use this one's document.
    CHECK_FALSE(verify_director_document(
        second.body, d.director, DeviceBinding{d.binding.id + 1, "edge", "dev-2"}, 0, now()));

    // New hardware (now with avx512f): a new version naming the more specific build.
    Json hw = kHardware;
    hw["isa"] = {"avx2", "avx512f", "fma"};
    REQUIRE(s.call(Method::put, "/v1/device/hardware", d.credential, hw.dump()).status == 200);
    const Reply third = s.get("/v1/device/director", d.credential);
    auto doc3 = verify_director_document(third.body, d.director, d.binding, doc2->version, now());
    REQUIRE(doc3);
    REQUIRE(doc3->target_path);
    CHECK(*doc3->target_path == "acme/tiny/1.0.0/avx512/model.gguf");

    // Hardware no build fits: no target, the reasons named.
    hw["arch"] = "aarch64";
    hw["isa"] = {"neon"};
    REQUIRE(s.call(Method::put, "/v1/device/hardware", d.credential, hw.dump()).status == 200);
    auto doc4 = verify_director_document(s.get("/v1/device/director", d.credential).body,
                                         d.director, d.binding, doc3->version, now());
    REQUIRE(doc4);
    CHECK_FALSE(doc4->target_path);
    CHECK_THAT(doc4->note, Catch::Contains("built for x86_64, the device is aarch64"));
    CHECK(
        s.call(Method::put, "/v1/device/hardware", d.credential, R"({"arch":"BAD ARCH"})").status ==
        400);
}

TEST_CASE("a director long poll waits without a thread and wakes on an assignment",
          "[registry_api][devices]") {
    ApiServer s;
    AcmeSetup a(s);
    s.add_build(a.release, s.build_body("avx2", a.digest, a.blob.size(), {"avx2"}),
                a.publish_token);
    const auto targets = s.release_targets(a.release, a.read_token);
    REQUIRE(s.publish(a.release, a.publish_token, s.sign_role("acme", targets, a.key)).status ==
            200);
    const std::string token = fleet_token(s);
    const auto key = new_key();
    const Enrolled d = enrol(s, token, "dev-1", key);

    const Reply first = s.get("/v1/device/director", d.credential);
    REQUIRE(first.status == 200);
    auto doc1 = verify_director_document(first.body, d.director, d.binding, 0, now());
    REQUIRE(doc1);
    const std::string etag = first.header("ETag");
    CHECK(etag == "\"" + std::to_string(doc1->version) + "\"");

    using Clock = std::chrono::steady_clock;
    auto conditional = [&](const std::string& inm, const std::string& prefer) {
        net::HttpHeaders h;
        h.add("If-None-Match", inm);
        if (!prefer.empty()) h.add("Prefer", prefer);
        return s.call(Method::get, "/v1/device/director", d.credential, {}, std::move(h));
    };
    // Unchanged and no wait asked: 304 at once.
    CHECK(conditional(etag, "").status == 304);
    // Unchanged, wait=1: 304 after about a second, the preference applied.
    auto t0 = Clock::now();
    const Reply waited = conditional(etag, "respond-async, wait=1");
    CHECK(waited.status == 304);
    CHECK(waited.header("Preference-Applied") == "wait=1");
    CHECK(Clock::now() - t0 >= std::chrono::milliseconds(900));
    // The device holds an older version: the current document at once, whatever the wait.
    t0 = Clock::now();
    const Reply stale = conditional("\"" + std::to_string(doc1->version - 1) + "\"", "wait=30");
    CHECK(stale.status == 200);
    CHECK(stale.body == first.body);
    CHECK(Clock::now() - t0 < std::chrono::seconds(5));
    // A malformed preference is ignored: no wait.
    CHECK(conditional(etag, "wait=soon").status == 304);

    // Waiting polls of several devices park at once (more than the server's worker threads);
    // an assignment wakes this device's poll with the new document, through PostgreSQL's
    // change notification.
    std::vector<std::thread> pollers;
    std::vector<unsigned> statuses(10, 0);  // Catch2 assertions stay on this thread
    std::string woken_body;
    Clock::duration woken_after{};
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        pollers.emplace_back([&, i] {
            auto client = net::HttpClient::create("http://127.0.0.1:" + std::to_string(s.port()));
            if (!client) {
                statuses[i] = 1;
                return;
            }
            net::HttpRequest rq;
            rq.target = "/v1/device/director";
            rq.headers.add("Authorization", "Bearer " + d.credential);
            rq.headers.add("If-None-Match", etag);
            rq.headers.add("Prefer", i == 0 ? "wait=30" : "wait=3");
            rq.server_wait = std::chrono::seconds(30);
            const auto start = Clock::now();
            auto r = (*client)->send(rq);
            if (!r) {
                statuses[i] = 2;
                return;
            }
            statuses[i] = r->status;
            if (i == 0) {
                woken_body = r->body;
                woken_after = Clock::now() - start;
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    // Still parked, and the server answers other requests meanwhile.
    CHECK(std::count(statuses.begin(), statuses.end(), 0u) == 10);
    CHECK(s.get("/healthz").status == 200);
    const Reply assigned = s.call(Method::put, "/v1/devices/" + d.id + "/release", s.admin(),
                                  Json{{"model", "acme/tiny"}, {"version", "1.0.0"}}.dump());
    REQUIRE(assigned.status == 200);
    for (auto& t : pollers) t.join();
    // Every poll of this device woke with the new document (none waited out its 3 s).
    for (const auto st : statuses) CHECK(st == 200);
    CHECK(woken_after < std::chrono::seconds(3));
    auto doc2 = verify_director_document(woken_body, d.director, d.binding, doc1->version, now());
    REQUIRE(doc2);
    REQUIRE(doc2->target_path);
    CHECK(*doc2->target_path == "acme/tiny/1.0.0/avx2/model.gguf");
}

TEST_CASE("status reports are accepted only signed by the device's own key",
          "[registry_api][devices]") {
    ApiServer s;
    AcmeSetup a(s);
    s.add_build(a.release, s.build_body("avx2", a.digest, a.blob.size()), a.publish_token);
    const auto targets = s.release_targets(a.release, a.read_token);
    REQUIRE(s.publish(a.release, a.publish_token, s.sign_role("acme", targets, a.key)).status ==
            200);
    const std::string token = fleet_token(s);
    const auto key = new_key();
    const Enrolled d = enrol(s, token, "dev-1", key);

    const Json healthy = {
        {"state", "healthy"},
        {"current", {{"namespace", "acme"}, {"model", "tiny"}, {"version", "1.0.0"}}},
        {"target", "acme/tiny/1.0.0/avx2/model.gguf"}};
    Reply r = s.call(Method::post, "/v1/device/reports", d.credential, report(key, healthy));
    INFO(r.body);
    REQUIRE(r.status == 202);
    Reply dev = s.get("/v1/devices/" + d.id, s.admin());
    REQUIRE(dev.status == 200);
    CHECK(dev.json().at("update_state") == "healthy");
    CHECK(dev.json().at("current").at("version") == "1.0.0");

    // Signed by another key, unsigned, an unknown state, an unknown release: refused.
    CHECK(s.call(Method::post, "/v1/device/reports", d.credential, report(new_key(), healthy))
              .status == 422);
    CHECK(s.call(Method::post, "/v1/device/reports", d.credential, healthy.dump()).status == 400);
    CHECK(s.call(Method::post, "/v1/device/reports", d.credential,
                 report(key, {{"state", "exploded"}}))
              .status == 400);
    Json ghost = healthy;
    ghost["current"]["version"] = "9.9.9";
    CHECK(s.call(Method::post, "/v1/device/reports", d.credential, report(key, ghost)).status ==
          400);
    CHECK(s.call(Method::post, "/v1/device/reports", "", report(key, healthy)).status == 401);

    const Json failed = {{"state", "failed"}, {"error", "health check: no answer in 5 s"}};
    REQUIRE(s.call(Method::post, "/v1/device/reports", d.credential, report(key, failed)).status ==
            202);
    dev = s.get("/v1/devices/" + d.id, s.admin());
    CHECK(dev.json().at("update_state") == "failed");
    CHECK(dev.json().at("last_error") == "health check: no answer in 5 s");
    CHECK(dev.json().at("current").at("version") == "1.0.0");
    const Reply events = s.get("/v1/devices/" + d.id + "/events", s.admin());
    REQUIRE(events.status == 200);
    const Json all = events.json();
    const Json& newest = all.at("items").at(0);
    CHECK(newest.at("kind") == "report");
    CHECK(newest.at("details").at("report") == failed);
    CHECK(newest.at("details").at("envelope").contains("signatures"));
}
