// TUF client (Updater): target search through delegations and target downloads, against the
// attacks that concern targets (arbitrary installation, endless data, wrong software, extraneous
// dependencies, unauthorised delegated paths, terminating delegations).
#include <catch2/catch.hpp>

#include "pylon/signing/encoding.h"
#include "pylon/signing/sha256.h"
#include "tuf_client_fixture.h"

using namespace pylon;
using namespace pylon::signing;
using namespace pylon::signing::tuf;
using pylon::test::read_all;
using pylon::test::TufClientFixture;
using pylon::test::TufRepositorySimulator;

namespace {

const std::string kMeta = TufRepositorySimulator::kMetadataUrl;
const std::string kTargets = TufRepositorySimulator::kTargetsUrl;

std::size_t count_fetched(const TufRepositorySimulator& repo, const std::string& url) {
    std::size_t n = 0;
    for (const auto& u : repo.fetched) n += u == url ? 1 : 0;
    return n;
}

std::string hashed_url(const std::string& dir, const std::string& content,
                       const std::string& name) {
    return kTargets + dir + hex_encode(sha256(content)) + "." + name;
}

}  // namespace

TEST_CASE("TUF client: download a target, verify it, and reuse the cached copy") {
    TufClientFixture f;
    f.repo.add_target("models/a.gguf", "model bytes");
    f.repo.publish();
    auto updater = f.updater();
    auto info = updater->get_targetinfo("models/a.gguf");  // refreshes first
    REQUIRE(info.ok());
    CHECK(info->role == "targets");
    CHECK(info->file.length == 11);
    const auto file = f.dir / "a.gguf.download";
    CHECK_FALSE(updater->find_cached_target(*info, file));
    REQUIRE(updater->download_target(*info, file).ok());
    CHECK(read_all(file) == "model bytes");
    const std::string url = hashed_url("models/", "model bytes", "a.gguf");
    CHECK(count_fetched(f.repo, url) == 1);
    // Cached: found, not downloaded again.
    auto cached = updater->find_cached_target(*info, file);
    REQUIRE(cached);
    CHECK(*cached == file);
    CHECK(count_fetched(f.repo, url) == 1);
    // A different local file is not the target.
    f.dir.write("a.gguf.download", "model bytez");
    CHECK_FALSE(updater->find_cached_target(*info, file));
}

TEST_CASE("TUF client: non-consistent snapshots download targets by plain path") {
    TufClientFixture f;
    f.repo.root.signed_.consistent_snapshot = false;
    f.repo.publish_root();
    f.dir.write("root.json", f.repo.metadata_bytes("1.root.json"));
    f.repo.add_target("a.bin", "abc");
    f.repo.publish();
    auto updater = f.updater();
    auto info = updater->get_targetinfo("a.bin");
    REQUIRE(info.ok());
    REQUIRE(updater->download_target(*info, f.dir.path().parent_path() / "pylon-tuf-a.bin").ok());
    CHECK(count_fetched(f.repo, kTargets + "a.bin") == 1);
    std::filesystem::remove(f.dir.path().parent_path() / "pylon-tuf-a.bin");
}

TEST_CASE("TUF client: arbitrary installation and endless data on targets") {
    TufClientFixture f;
    f.repo.add_target("models/a.gguf", "model bytes");
    f.repo.publish();
    auto updater = f.updater();
    REQUIRE(updater->refresh().ok());
    auto info = updater->get_targetinfo("models/a.gguf");
    REQUIRE(info.ok());
    const std::string url = hashed_url("models/", "model bytes", "a.gguf");
    const auto out = f.dir.path().parent_path() / (f.dir.path().filename().string() + "-a.gguf");
    const auto before = f.state();

    SECTION("bytes with another hash") {
        f.repo.files[url] = to_bytes("evil! bytes");
        auto r = updater->download_target(*info, out);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == tuf::Errc::hash_mismatch);
    }
    SECTION("shorter bytes") {
        f.repo.files[url] = to_bytes("model");
        auto r = updater->download_target(*info, out);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == tuf::Errc::length_mismatch);
    }
    SECTION("endless bytes") {
        f.repo.files[url] = to_bytes("model bytes and then some more");
        auto r = updater->download_target(*info, out);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == tuf::Errc::too_large);
    }
    CHECK_FALSE(std::filesystem::exists(out));
    CHECK(f.state() == before);
}

TEST_CASE("TUF client: wrong software (an absent target)") {
    TufClientFixture f;
    f.repo.add_target("models/a.gguf", "model bytes");
    f.repo.publish();
    REQUIRE(f.refresh().ok());
    const auto before = f.state();
    auto r = f.updater()->get_targetinfo("models/b.gguf");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == tuf::Errc::target_not_found);
    CHECK(f.state() == before);
}

TEST_CASE("TUF client: delegated targets are found and persisted under encoded names") {
    TufClientFixture f;
    f.repo.add_delegation("targets", "team/acme", {"acme/*"});
    f.repo.add_target("acme/m.gguf", "acme model", "team/acme");
    f.repo.publish();
    auto updater = f.updater();
    auto info = updater->get_targetinfo("acme/m.gguf");
    REQUIRE(info.ok());
    CHECK(info->role == "team/acme");
    CHECK(count_fetched(f.repo, kMeta + "1.team%2Facme.json") == 1);
    CHECK(f.state().count("team%2Facme.json") == 1);
    // A second updater uses the persisted delegated metadata without fetching it again.
    auto again = f.updater()->get_targetinfo("acme/m.gguf");
    REQUIRE(again.ok());
    CHECK(count_fetched(f.repo, kMeta + "1.team%2Facme.json") == 1);
}

TEST_CASE("TUF client: delegated roles cannot sign targets outside their paths") {
    TufClientFixture f;
    SECTION("paths (extraneous dependencies)") {
        f.repo.add_delegation("targets", "acme", {"acme/*"});
    }
    SECTION("path hash prefixes (unauthorised delegated paths)") {
        auto& d = f.repo.add_delegation("targets", "acme", {});
        d.paths.reset();
        const std::string h = hex_encode(sha256("acme/m.gguf"));
        d.path_hash_prefixes = std::vector<std::string>{h.substr(0, 2)};
    }
    f.repo.add_target("acme/m.gguf", "acme model", "acme");
    f.repo.add_target("other/x.gguf", "not acme's", "acme");
    f.repo.publish();
    auto updater = f.updater();
    REQUIRE(updater->get_targetinfo("acme/m.gguf").ok());
    auto r = updater->get_targetinfo("other/x.gguf");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == tuf::Errc::target_not_found);
}

TEST_CASE("TUF client: delegated metadata signed by a key not delegated is refused") {
    TufClientFixture f;
    f.repo.add_delegation("targets", "acme", {"acme/*"});
    f.repo.add_target("acme/m.gguf", "acme model", "acme");
    f.repo.signers["acme"] = {TufRepositorySimulator::new_key()};
    f.repo.publish();
    REQUIRE(f.refresh().ok());
    const auto before = f.state();
    auto r = f.updater()->get_targetinfo("acme/m.gguf");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == tuf::Errc::threshold_not_met);
    CHECK(f.state() == before);
}

TEST_CASE("TUF client: delegation search order and terminating delegations") {
    TufClientFixture f;
    const bool terminating = GENERATE(true, false);
    INFO("terminating " << terminating);
    f.repo.add_delegation("targets", "first", {"models/*"}, terminating);
    f.repo.add_delegation("targets", "second", {"models/*"});
    f.repo.add_delegation("first", "nested", {"models/*"});
    f.repo.add_target("models/in-nested.gguf", "n", "nested");
    f.repo.add_target("models/in-second.gguf", "s", "second");
    f.repo.publish();
    auto updater = f.updater();
    // Preorder depth-first: "nested" (under "first") is searched before "second".
    auto nested = updater->get_targetinfo("models/in-nested.gguf");
    REQUIRE(nested.ok());
    CHECK(nested->role == "nested");
    CHECK(count_fetched(f.repo, kMeta + "1.second.json") == 0);
    auto second = updater->get_targetinfo("models/in-second.gguf");
    if (terminating) {
        REQUIRE_FALSE(second.ok());
        CHECK(second.error().code() == tuf::Errc::target_not_found);
        CHECK(count_fetched(f.repo, kMeta + "1.second.json") == 0);
    } else {
        REQUIRE(second.ok());
        CHECK(second->role == "second");
    }
}

TEST_CASE("TUF client: the search visits at most max_delegations roles") {
    TufClientFixture f;
    std::string parent = "targets";
    for (int i = 0; i < 5; ++i) {
        const std::string role = "r" + std::to_string(i);
        f.repo.add_delegation(parent, role, {"*"});
        parent = role;
    }
    f.repo.add_target("deep.bin", "deep", parent);
    f.repo.publish();
    f.config.max_delegations = 5;  // targets + r0..r3: r4 is never reached
    auto r = f.updater()->get_targetinfo("deep.bin");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == tuf::Errc::target_not_found);
    f.config.max_delegations = 6;
    CHECK(f.updater()->get_targetinfo("deep.bin").ok());
}
