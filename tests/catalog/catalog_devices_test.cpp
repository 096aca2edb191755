// Fleets, enrolment tokens, devices, assignments, director documents and reports.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

#include "pg_test_support.h"
#include "pylon/catalog/catalog.h"
#include "pylon/catalog/errors.h"

using namespace pylon::catalog;
using namespace std::chrono_literals;
using pylon::catalog::test::CatalogFixture;
using pylon::catalog::test::digest_of;

namespace {

std::string hash_of(const std::string& secret) {
    return digest_of(secret).substr(7);
}

const std::string kHardware = R"({"arch":"x86_64","isa":["avx2"],"ram_mb":4096})";

// Fleet "edge" with an enrolment token "enrol-1" (3 uses), and acme/tiny 1.0.0 published and
// 1.1.0 a draft.
struct DeviceFixture : CatalogFixture {
    DeviceFixture() {
        REQUIRE(catalog->create_fleet("edge", "edge boxes", "", false));
        REQUIRE(catalog->create_enrollment_token("edge", "batch 1", hash_of("enrol-1"), 3,
                                                 std::nullopt, "admin"));
        REQUIRE(catalog->create_namespace("acme", ""));
        License l;
        l.spdx = "MIT";
        REQUIRE(catalog->create_model("acme", "tiny", "", l));
        REQUIRE(catalog->record_blob(digest_of("m"), 10));
        for (const char* v : {"1.0.0", "1.1.0"}) {
            REQUIRE(catalog->create_release("acme", "tiny", v, "", l));
            Build b;
            b.name = "cpu";
            b.target = HardwareTarget{"x86_64", {}, "none", 0};
            b.format = "gguf";
            b.quantization = "Q4_0";
            b.files = {BuildFile{"model.gguf", digest_of("m"), 10}};
            REQUIRE(catalog->add_build("acme", "tiny", v, b));
        }
        REQUIRE(catalog->publish_release("acme", "tiny", "1.0.0", {}));
    }
    Device enroll(const std::string& name) {
        auto d = catalog->enroll_device(hash_of("enrol-1"), name, "key-of-" + name, kHardware,
                                        hash_of("cred-" + name));
        REQUIRE(d);
        return *d;
    }
};

}  // namespace

TEST_CASE_METHOD(CatalogFixture, "fleets: create, conflict, get, pages") {
    REQUIRE(catalog->create_fleet("a", "first", "", false));
    REQUIRE(catalog->create_fleet("b", "", "", false));
    CHECK(catalog->create_fleet("a", "", "", false).error().code() == Errc::conflict);
    CHECK(catalog->create_fleet("", "", "", false).error().code() == Errc::invalid_argument);
    CHECK(catalog->get_fleet("a")->description == "first");
    CHECK(catalog->get_fleet("zzz").error().code() == Errc::not_found);
    auto page = catalog->list_fleets(PageRequest{"", 1});
    REQUIRE(page);
    REQUIRE(page->items.size() == 1);
    REQUIRE(page->next);
    auto rest = catalog->list_fleets(PageRequest{*page->next, 5});
    REQUIRE(rest->items.size() == 1);
    CHECK(rest->items[0].name == "b");
    CHECK_FALSE(rest->next);
}

TEST_CASE_METHOD(DeviceFixture, "enrolment counts the token's uses and refuses dead tokens") {
    const Device d = enroll("dev-1");
    CHECK(d.fleet == "edge");
    CHECK(d.update_state == "idle");
    CHECK(nlohmann::json::parse(d.hardware) == nlohmann::json::parse(kHardware));
    CHECK(d.last_seen_at);
    CHECK(catalog->list_enrollment_tokens("edge", {})->items.at(0).uses == 1);

    // Same name or same key: conflict, and the use is not counted.
    auto dup =
        catalog->enroll_device(hash_of("enrol-1"), "dev-1", "other-key", kHardware, hash_of("x"));
    CHECK(dup.error().code() == Errc::conflict);
    dup = catalog->enroll_device(hash_of("enrol-1"), "dev-x", "key-of-dev-1", kHardware,
                                 hash_of("y"));
    CHECK(dup.error().code() == Errc::conflict);
    CHECK(catalog->list_enrollment_tokens("edge", {})->items.at(0).uses == 1);

    enroll("dev-2");
    enroll("dev-3");
    auto used_up =
        catalog->enroll_device(hash_of("enrol-1"), "dev-4", "k4", kHardware, hash_of("c4"));
    CHECK(used_up.error().code() == Errc::not_found);
    CHECK(catalog->enroll_device(hash_of("no-such-token"), "dev-5", "k5", kHardware, hash_of("c5"))
              .error()
              .code() == Errc::not_found);

    // Revoked and expired tokens.
    auto t = catalog->create_enrollment_token("edge", "", hash_of("enrol-2"), std::nullopt,
                                              std::nullopt, "admin");
    REQUIRE(t);
    REQUIRE(catalog->revoke_enrollment_token("edge", t->id));
    CHECK(catalog->enroll_device(hash_of("enrol-2"), "dev-6", "k6", kHardware, hash_of("c6"))
              .error()
              .code() == Errc::not_found);
    REQUIRE(catalog->create_enrollment_token("edge", "", hash_of("enrol-3"), std::nullopt,
                                             std::chrono::system_clock::now() - 1s, "admin"));
    CHECK(catalog->enroll_device(hash_of("enrol-3"), "dev-7", "k7", kHardware, hash_of("c7"))
              .error()
              .code() == Errc::not_found);

    // Bad values.
    CHECK(
        catalog->enroll_device(hash_of("enrol-1"), "d", "k", "[1]", hash_of("c")).error().code() ==
        Errc::invalid_argument);
    CHECK(
        catalog->enroll_device(hash_of("enrol-1"), "d", "k", kHardware, "not-hex").error().code() ==
        Errc::invalid_argument);
    CHECK(catalog->create_enrollment_token("edge", "", hash_of("z"), 0, std::nullopt, "")
              .error()
              .code() == Errc::invalid_argument);
    CHECK(catalog->create_enrollment_token("nope", "", hash_of("z"), 1, std::nullopt, "")
              .error()
              .code() == Errc::not_found);
}

TEST_CASE_METHOD(DeviceFixture, "concurrent enrolments never exceed a token's uses") {
    REQUIRE(catalog->create_enrollment_token("edge", "", hash_of("race"), 5, std::nullopt, ""));
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&, i] {
            for (int j = 0; j < 5; ++j) {
                const std::string n = "r" + std::to_string(i) + "-" + std::to_string(j);
                if (catalog->enroll_device(hash_of("race"), n, "k" + n, kHardware,
                                           hash_of("c" + n))) {
                    ++ok;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(ok == 5);
    CHECK(catalog->list_devices(std::string("edge"), {})->items.size() == 5);
}

TEST_CASE_METHOD(DeviceFixture, "devices are found by credential, listed, revoked") {
    const Device d = enroll("dev-1");
    enroll("dev-2");
    auto found = catalog->find_device_by_credential(hash_of("cred-dev-1"));
    REQUIRE(found);
    CHECK(found->id == d.id);
    CHECK(catalog->find_device_by_credential(hash_of("cred-nobody")).error().code() ==
          Errc::not_found);
    CHECK(catalog->get_device("edge", "dev-2")->name == "dev-2");
    CHECK(catalog->get_device(999999).error().code() == Errc::not_found);
    CHECK(catalog->list_devices(std::nullopt, {})->items.size() == 2);
    CHECK(catalog->list_devices(std::string("other"), {}).error().code() == Errc::not_found);

    auto hw = catalog->update_device_hardware(d.id, R"({"arch":"x86_64","isa":["avx512f"]})");
    REQUIRE(hw);
    CHECK(nlohmann::json::parse(hw->hardware)["isa"][0] == "avx512f");

    REQUIRE(catalog->revoke_device(d.id));
    CHECK(catalog->find_device_by_credential(hash_of("cred-dev-1")).error().code() ==
          Errc::not_found);
    CHECK(catalog->get_device(d.id)->revoked);
}

TEST_CASE_METHOD(DeviceFixture, "assignments need a published release") {
    const Device d = enroll("dev-1");
    auto a = catalog->assign_release(d.id, "acme", "tiny", "1.0.0", "ops");
    REQUIRE(a);
    REQUIRE(a->desired);
    CHECK(a->desired->version == "1.0.0");
    CHECK(a->desired->ns == "acme");
    CHECK(catalog->assign_release(d.id, "acme", "tiny", "1.1.0", "ops").error().code() ==
          Errc::invalid_state);
    CHECK(catalog->assign_release(d.id, "acme", "tiny", "9.9.9", "ops").error().code() ==
          Errc::not_found);
    CHECK(catalog->assign_release(424242, "acme", "tiny", "1.0.0", "ops").error().code() ==
          Errc::not_found);
    auto events = catalog->list_device_events(d.id, {});
    REQUIRE(events);
    CHECK(events->items.at(0).kind == "assigned");
    CHECK(events->items.back().kind == "enrolled");
}

TEST_CASE_METHOD(DeviceFixture,
                 "director documents: reused while fresh, re-issued with a higher "
                 "version on a new assignment or after half their life") {
    const Device d = enroll("dev-1");
    int signs = 0;
    std::optional<ReleaseName> last_named;
    const Catalog::DirectorSigner sign =
        [&](std::int64_t v, Timestamp exp,
            const std::optional<ReleaseName>& r) -> pylon::Result<std::string> {
        ++signs;
        last_named = r;
        return "doc-v" + std::to_string(v) + "-exp" + format_rfc3339(exp);
    };
    auto first = catalog->director_document(d.id, 3600s, sign);
    REQUIRE(first);
    CHECK(first->version == 1);
    CHECK_FALSE(first->release_id);
    CHECK_FALSE(last_named);
    CHECK(first->expires_at > std::chrono::system_clock::now() + 3500s);
    auto again = catalog->director_document(d.id, 3600s, sign);
    REQUIRE(again);
    CHECK(again->version == 1);
    CHECK(again->document == first->document);
    CHECK(signs == 1);

    REQUIRE(catalog->assign_release(d.id, "acme", "tiny", "1.0.0", "ops"));
    auto assigned = catalog->director_document(d.id, 3600s, sign);
    REQUIRE(assigned);
    CHECK(assigned->version == 2);
    REQUIRE(last_named);
    CHECK(last_named->version == "1.0.0");
    CHECK(signs == 2);

    // A 2-second lifetime is past half its life after a second: a new version.
    auto short1 = catalog->director_document(d.id, 2s, sign);
    REQUIRE(short1);
    CHECK(short1->version == 3);
    std::this_thread::sleep_for(1100ms);
    auto short2 = catalog->director_document(d.id, 2s, sign);
    REQUIRE(short2);
    CHECK(short2->version == 4);

    // A failing signer changes nothing.
    REQUIRE(catalog->assign_release(d.id, "acme", "tiny", "1.0.0", "ops"));
    const Catalog::DirectorSigner broken =
        [](std::int64_t, Timestamp,
           const std::optional<ReleaseName>&) -> pylon::Result<std::string> {
        return pylon::Error(pylon::Errc::internal, "no key");
    };
    auto failed = catalog->director_document(d.id, 1s, broken);
    CHECK_FALSE(failed);
    CHECK(catalog->get_device(d.id)->director_version == 4);
    CHECK(catalog->director_document(d.id, 1s, sign).error().code() == Errc::invalid_argument);
}

TEST_CASE_METHOD(DeviceFixture, "reports set the state, error and current release") {
    const Device d = enroll("dev-1");
    const auto rel = catalog->get_release("acme", "tiny", "1.0.0");
    REQUIRE(rel);
    DeviceReport r;
    r.update_state = "healthy";
    r.current_release_id = rel->id;
    r.body = R"({"state":"healthy","signature":"abc"})";
    auto after = catalog->record_device_report(d.id, r);
    REQUIRE(after);
    CHECK(after->update_state == "healthy");
    REQUIRE(after->current);
    CHECK(after->current->version == "1.0.0");

    r.update_state = "failed";
    r.current_release_id.reset();
    r.error = "health check: 9 s > 5 s";
    r.body = R"({"state":"failed"})";
    after = catalog->record_device_report(d.id, r);
    REQUIRE(after);
    CHECK(after->update_state == "failed");
    CHECK(after->last_error == "health check: 9 s > 5 s");
    REQUIRE(after->current);  // unchanged when the report names none
    CHECK(after->current->version == "1.0.0");

    r.update_state = "exploded";
    CHECK(catalog->record_device_report(d.id, r).error().code() == Errc::invalid_argument);
    r.update_state = "idle";
    r.body = "[]";
    CHECK(catalog->record_device_report(d.id, r).error().code() == Errc::invalid_argument);
    r.body = "{}";
    r.current_release_id = 987654;
    CHECK(catalog->record_device_report(d.id, r).error().code() == Errc::not_found);

    auto events = catalog->list_device_events(d.id, PageRequest{"", 1});
    REQUIRE(events);
    CHECK(events->items.at(0).kind == "report");
    CHECK(nlohmann::json::parse(events->items.at(0).details)["state"] == "failed");
    REQUIRE(events->next);
}
