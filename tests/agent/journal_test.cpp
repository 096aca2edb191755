// The journalled update state machine and the A/B slots: transitions, durable saves that leave
// the previous journal intact on failure, corrupted journals refused, the `current` link
// switched atomically, and the recovery decision for every state an interruption can leave.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "pylon/agent/journal.h"
#include "temp_dir.h"

using namespace pylon::agent;
namespace fs = std::filesystem;

namespace {

TargetRef sample_target(std::int64_t director_version = 3) {
    TargetRef t;
    t.path = "acme/tiny/1.0.0/x86_64-avx2-q4_0/model.gguf";
    t.length = 1234;
    t.sha256 = std::string(64, 'a');
    t.custom = {{"pylon", {{"version", "1.0.0"}}}};
    t.director_version = director_version;
    return t;
}

}  // namespace

TEST_CASE("update states follow the machine's arrows", "[agent][journal]") {
    using S = UpdateState;
    CHECK(transition_allowed(S::idle, S::downloading));
    CHECK(transition_allowed(S::healthy, S::downloading));
    CHECK(transition_allowed(S::rolled_back, S::downloading));
    CHECK(transition_allowed(S::downloading, S::verifying));
    CHECK(transition_allowed(S::verifying, S::staged));
    CHECK(transition_allowed(S::staged, S::activating));
    CHECK(transition_allowed(S::activating, S::healthy));
    CHECK(transition_allowed(S::activating, S::failed));
    CHECK(transition_allowed(S::failed, S::rolled_back));
    CHECK_FALSE(transition_allowed(S::idle, S::staged));
    CHECK_FALSE(transition_allowed(S::downloading, S::activating));
    CHECK_FALSE(transition_allowed(S::verifying, S::healthy));
    CHECK_FALSE(transition_allowed(S::healthy, S::failed));
    CHECK_FALSE(transition_allowed(S::failed, S::healthy));
    for (const char* name : {"idle", "downloading", "verifying", "staged", "activating", "healthy",
                             "failed", "rolled_back"}) {
        auto s = parse_update_state(name);
        REQUIRE(s);
        CHECK(to_string(*s) == name);
    }
    CHECK_FALSE(parse_update_state("installing"));
}

TEST_CASE("the journal is saved durably and refuses forbidden transitions", "[agent][journal]") {
    pylon::test::TempDir dir;
    JournalStore store(dir.path());
    auto j = store.load();
    REQUIRE(j);
    CHECK(j->state == UpdateState::idle);
    CHECK(j->sequence == 0);

    j->target = sample_target();
    j->slot = "b";
    REQUIRE(store.transition(*j, UpdateState::downloading));
    REQUIRE(store.transition(*j, UpdateState::verifying));
    struct stat st {};
    REQUIRE(::stat(store.path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    auto again = store.load();
    REQUIRE(again);
    CHECK(again->state == UpdateState::verifying);
    CHECK(again->sequence == 2);
    CHECK(again->slot == "b");
    REQUIRE(again->target);
    CHECK(*again->target == sample_target());

    // A forbidden arrow changes nothing, in memory or on disk.
    auto bad = store.transition(*again, UpdateState::healthy);
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message(), Catch::Contains("verifying cannot go to healthy"));
    CHECK(again->state == UpdateState::verifying);
    CHECK(store.load()->sequence == 2);
    // No temporary files are left beside it.
    int files = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++files;
    CHECK(files == 1);
}

TEST_CASE("a damaged journal is refused, never silently reset", "[agent][journal]") {
    pylon::test::TempDir dir;
    JournalStore store(dir.path());
    dir.write("journal.json", "{\"state\": \"downl");
    auto j = store.load();
    REQUIRE_FALSE(j);
    CHECK_THAT(j.error().message(), Catch::Contains("journal.json"));
    dir.write("journal.json", R"({"state":"staged","slot":"b","activation_attempts":0,"error":"",)"
                              R"("director_version":1,"sequence":4,"target":null})");
    j = store.load();
    REQUIRE_FALSE(j);
    CHECK_THAT(j.error().message(), Catch::Contains("without a target"));
    dir.write("journal.json", R"({"state":"idle","slot":"c","activation_attempts":0,"error":"",)"
                              R"("director_version":1,"sequence":4,"target":null})");
    REQUIRE_FALSE(store.load());
}

TEST_CASE("slots: the inactive one is staged, `current` switches atomically", "[agent][journal]") {
    pylon::test::TempDir dir;
    Slots slots(dir.path());
    REQUIRE(slots.init());
    CHECK(slots.active().value() == std::nullopt);
    CHECK(slots.inactive().value() == "a");
    CHECK(slots.installed("a").value() == std::nullopt);

    std::ofstream(slots.model_file("a")) << "model bytes";
    REQUIRE(slots.mark_installed("a", sample_target()));
    REQUIRE(slots.activate("a"));
    CHECK(slots.active().value() == "a");
    CHECK(slots.inactive().value() == "b");
    CHECK(fs::read_symlink(dir / "current") == "slots/a");
    // The link resolves to the model.
    CHECK(fs::exists(dir / "current" / "model.gguf"));
    REQUIRE(slots.installed("a").value());
    CHECK(*slots.installed("a").value() == sample_target());

    // A leftover link from an interrupted switch does not block the next one.
    REQUIRE(::symlink("slots/a", (dir / "current.new").c_str()) == 0);
    REQUIRE(slots.activate("b"));
    CHECK(slots.active().value() == "b");
    CHECK_FALSE(fs::exists(fs::symlink_status(dir / "current.new")));

    REQUIRE(slots.clear("a"));
    CHECK(slots.installed("a").value() == std::nullopt);
    CHECK(fs::is_empty(slots.dir("a")));
    CHECK_FALSE(slots.activate("c"));

    // `current` pointing anywhere else is an error, not a guess.
    fs::remove(dir / "current");
    fs::create_symlink("/etc", dir / "current");
    auto a = slots.active();
    REQUIRE_FALSE(a);
    CHECK_THAT(a.error().message(), Catch::Contains("not at a slot"));
}

TEST_CASE("recovery after an interruption in every state", "[agent][journal]") {
    using A = Recovery::Action;
    Journal j;
    j.target = sample_target();
    j.slot = "b";
    auto action = [&](UpdateState s, std::optional<std::string> active, int attempts = 0) {
        j.state = s;
        j.activation_attempts = attempts;
        return recover(j, active, 2).action;
    };
    CHECK(action(UpdateState::idle, std::nullopt) == A::none);
    CHECK(action(UpdateState::healthy, "b") == A::none);
    CHECK(action(UpdateState::rolled_back, "a") == A::none);
    CHECK(action(UpdateState::downloading, "a") == A::resume_download);
    CHECK(action(UpdateState::verifying, "a") == A::verify);
    CHECK(action(UpdateState::staged, "a") == A::activate);
    // Activating: the pointer already on the staged slot means the health check had passed.
    CHECK(action(UpdateState::activating, "b", 1) == A::commit);
    CHECK(action(UpdateState::activating, "a", 1) == A::activate);
    CHECK(action(UpdateState::activating, std::nullopt, 1) == A::activate);
    // Interrupted twice (a build that kills the process): roll back instead of looping.
    CHECK(action(UpdateState::activating, "a", 2) == A::roll_back);
    j.error = "health check: no answer within 5 s";
    j.state = UpdateState::failed;
    const Recovery r = recover(j, "a", 2);
    CHECK(r.action == A::roll_back);
    CHECK_THAT(r.reason, Catch::Contains("no answer within 5 s"));
}
