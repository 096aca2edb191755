// Tests of the TUF repository: the files it writes are checked only through the metadata API
// (parse, verify_threshold), the way a client would read them.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "pylon/signing/sha256.h"
#include "pylon/signing/tuf/repository.h"
#include "temp_dir.h"

using namespace pylon::signing;
using namespace pylon::signing::tuf;
using pylon::test::read_all;
using pylon::test::TempDir;
namespace fs = std::filesystem;

namespace {

const Time kNow = std::chrono::sys_days{std::chrono::year{2030} / 1 / 1};

PrivateKey new_key() {
    return PrivateKey::generate(KeyType::ed25519).value();
}

template <typename T>
Metadata<T> load(const fs::path& dir, const std::string& name) {
    INFO(name);
    auto md = Metadata<T>::parse(read_all(dir / "metadata" / name));
    REQUIRE(md);
    return std::move(*md);
}

// Every snapshot/timestamp reference matches the bytes of the file it names.
void check_references(const fs::path& dir) {
    const auto ts = load<Timestamp>(dir, "timestamp.json");
    const auto snap_name = std::to_string(ts.signed_.snapshot_meta.version) + ".snapshot.json";
    const std::string snap_bytes = read_all(dir / "metadata" / snap_name);
    CHECK(ts.signed_.snapshot_meta.length == static_cast<std::int64_t>(snap_bytes.size()));
    CHECK(ts.signed_.snapshot_meta.hashes.at("sha256") == to_hex(sha256(snap_bytes)));
    CHECK(read_all(dir / "metadata" / "snapshot.json") == snap_bytes);
    const auto snap = load<Snapshot>(dir, snap_name);
    CHECK(snap.signed_.version == ts.signed_.snapshot_meta.version);
    for (const auto& [name, meta] : snap.signed_.meta) {
        INFO(name);
        const std::string bytes =
            read_all(dir / "metadata" / (std::to_string(meta.version) + "." + name));
        CHECK(meta.length == static_cast<std::int64_t>(bytes.size()));
        CHECK(meta.hashes.at("sha256") == to_hex(sha256(bytes)));
        CHECK(read_all(dir / "metadata" / name) == bytes);
        CHECK(Metadata<Targets>::parse(bytes)->signed_.version == meta.version);
    }
}

// Checks the top-level roles against `root` (the newest root).
void check_signatures(const fs::path& dir) {
    const auto root = load<Root>(dir, "root.json").signed_;
    const auto ts = load<Timestamp>(dir, "timestamp.json");
    CHECK(verify_with(ts, "timestamp", root.keys, root.roles.at("timestamp")));
    const auto snap = load<Snapshot>(dir, "snapshot.json");
    CHECK(verify_with(snap, "snapshot", root.keys, root.roles.at("snapshot")));
    const auto targets = load<Targets>(dir, "targets.json");
    CHECK(verify_with(targets, "targets", root.keys, root.roles.at("targets")));
    if (targets.signed_.delegations) {
        for (const auto& d : targets.signed_.delegations->roles) {
            if (!fs::exists(dir / "metadata" / (d.name + ".json"))) continue;
            const auto md = load<Targets>(dir, d.name + ".json");
            CHECK(verify_with(md, d.name, targets.signed_.delegations->keys, d.role_keys()));
        }
    }
}

struct Keys {
    PrivateKey root1 = new_key(), root2 = new_key(), root3 = new_key();
    PrivateKey targets = new_key(), snapshot = new_key(), timestamp = new_key();
    PrivateKey acme = new_key();

    CreateOptions options() const {
        CreateOptions o;
        o.root.keys = {root1.public_key()};
        o.targets.keys = {targets.public_key()};
        o.snapshot.keys = {snapshot.public_key()};
        o.timestamp.keys = {timestamp.public_key()};
        return o;
    }
    Signers online() const {
        Signers s;
        s.add("snapshot", snapshot).add("timestamp", timestamp);
        return s;
    }
};

}  // namespace

TEST_CASE("tuf repository: create, targets, delegation, root rotation") {
    TempDir tmp;
    const fs::path dir = tmp / "repo";
    Keys k;
    auto repo = Repository::create(dir, k.options()).value();
    {
        Signers s = k.online();
        s.add("root", k.root1).add("targets", k.targets);
        auto report = repo.publish(s, kNow);
        REQUIRE(report);
        CHECK(report->written.back() == "timestamp.json");
    }
    for (const char* f : {"1.root.json", "root.json", "1.targets.json", "targets.json",
                          "1.snapshot.json", "snapshot.json", "timestamp.json"}) {
        CHECK(fs::exists(dir / "metadata" / f));
    }
    auto root1 = load<Root>(dir, "1.root.json");
    CHECK(root1.signed_.version == 1);
    CHECK(root1.signed_.consistent_snapshot);
    CHECK(root1.signed_.expires == kNow + std::chrono::days{365});
    CHECK(verify_with(root1, "root", root1.signed_.keys, root1.signed_.roles.at("root")));
    CHECK(load<Timestamp>(dir, "timestamp.json").signed_.expires == kNow + std::chrono::days{1});
    CHECK(load<Snapshot>(dir, "snapshot.json").signed_.expires == kNow + std::chrono::days{7});
    CHECK(load<Targets>(dir, "targets.json").signed_.expires == kNow + std::chrono::days{90});
    check_references(dir);
    check_signatures(dir);

    SECTION("targets and a delegated namespace") {
        const std::string model = "weights";
        auto added = repo.add_target("models/base/a.gguf", pylon::as_bytes(model),
                                     Json{{"model", "base"}, {"quant", "q4_0"}});
        REQUIRE(added);
        const std::string hex = to_hex(sha256(model));
        CHECK(added->hashes.at("sha256") == hex);
        CHECK(read_all(dir / "targets" / "models" / "base" / (hex + ".a.gguf")) == model);

        DelegationSpec acme;
        acme.name = "acme";
        acme.keys = {k.acme.public_key()};
        acme.paths = std::vector<std::string>{"acme/*"};
        REQUIRE(repo.delegate(acme));
        CHECK(repo.delegate(acme).error().code() == Errc::invalid_argument);
        const std::string acme_model = "acme weights";
        REQUIRE(repo.add_target("acme/m.gguf", pylon::as_bytes(acme_model), std::nullopt, "acme"));
        auto outside =
            repo.add_target("other/m.gguf", pylon::as_bytes(acme_model), std::nullopt, "acme");
        CHECK(outside.error().code() == Errc::invalid_argument);
        CHECK(repo.add_target("../x", pylon::as_bytes(model)).error().code() ==
              Errc::invalid_argument);

        Signers s = k.online();
        s.add("targets", k.targets).add("acme", k.acme);
        REQUIRE(repo.publish(s, kNow));
        CHECK(fs::exists(dir / "metadata" / "2.targets.json"));
        CHECK(fs::exists(dir / "metadata" / "1.acme.json"));
        CHECK(fs::exists(dir / "metadata" / "2.snapshot.json"));
        CHECK(fs::exists(dir / "targets" / "acme" / (to_hex(sha256(acme_model)) + ".m.gguf")));
        const auto targets = load<Targets>(dir, "2.targets.json");
        CHECK(targets.signed_.targets.at("models/base/a.gguf").custom->at("quant") == "q4_0");
        CHECK(load<Targets>(dir, "1.acme.json").signed_.targets.count("acme/m.gguf") == 1);
        CHECK(load<Timestamp>(dir, "timestamp.json").signed_.version == 2);
        check_references(dir);
        check_signatures(dir);

        // The publisher alone updates its namespace; snapshot and timestamp follow.
        REQUIRE(repo.remove_target("acme/m.gguf", "acme"));
        Signers publisher;
        publisher.add("acme", k.acme);
        REQUIRE(repo.publish(publisher, kNow, PublishScope::roles_only));
        CHECK(fs::exists(dir / "metadata" / "2.acme.json"));
        CHECK(!fs::exists(dir / "metadata" / "3.snapshot.json"));
        REQUIRE(repo.publish(k.online(), kNow));
        CHECK(load<Snapshot>(dir, "3.snapshot.json").signed_.meta.at("acme.json").version == 2);
        check_references(dir);

        // Reopened from disk, the repository carries on.
        auto again = Repository::open(dir).value();
        CHECK(again.targets_roles() == std::vector<std::string>{"targets", "acme"});
        CHECK(again.changed().empty());
        REQUIRE(again.publish(k.online(), kNow));
        CHECK(load<Timestamp>(dir, "timestamp.json").signed_.version == 4);
        CHECK(load<Timestamp>(dir, "timestamp.json").signed_.snapshot_meta.version == 3);
    }

    SECTION("missing or wrong keys: an error naming the role, nothing written") {
        REQUIRE(repo.bump("targets"));
        auto no_keys = repo.publish(k.online(), kNow);
        REQUIRE(!no_keys);
        CHECK(no_keys.error().code() == Errc::threshold_not_met);
        CHECK(no_keys.error().what().find("targets") != std::string::npos);
        Signers wrong = k.online();
        wrong.add("targets", k.snapshot);
        CHECK(repo.publish(wrong, kNow).error().code() == Errc::invalid_argument);
        CHECK(!fs::exists(dir / "metadata" / "2.targets.json"));
        CHECK(repo.changed().count("targets") == 1);
    }

    SECTION("root rotation 1 -> 2 -> 3") {
        // 2: root1 + root2, threshold 2.
        REQUIRE(repo.change_keys("root", KeyChange{{k.root2.public_key()}, {}, 2}));
        Signers s = k.online();
        s.add("root", k.root1).add("root", k.root2);
        REQUIRE(repo.publish(s, kNow));
        const auto r1 = load<Root>(dir, "1.root.json").signed_;
        const auto r2 = load<Root>(dir, "2.root.json");
        CHECK(r2.signed_.version == 2);
        CHECK(r2.signed_.roles.at("root").threshold == 2);
        CHECK(verify_with(r2, "root", r1.keys, r1.roles.at("root")));
        CHECK(verify_with(r2, "root", r2.signed_.keys, r2.signed_.roles.at("root")));

        // 3: drop root1, add root3, threshold 2. Needs 2 of v2's keys (root1, root2) and 2 of
        // v3's (root2, root3): with root2 and root3 only, v2's threshold is not met.
        REQUIRE(repo.change_keys("root",
                                 KeyChange{{k.root3.public_key()},
                                           {Key::from_public_key(k.root1.public_key()).key_id()},
                                           std::nullopt}));
        Signers short_of_old = k.online();
        short_of_old.add("root", k.root2).add("root", k.root3);
        auto refused = repo.publish(short_of_old, kNow);
        CHECK(refused.error().code() == Errc::threshold_not_met);
        CHECK(!fs::exists(dir / "metadata" / "3.root.json"));
        s.add("root", k.root3);
        REQUIRE(repo.publish(s, kNow));
        const auto r3 = load<Root>(dir, "3.root.json");
        CHECK(r3.signed_.version == 3);
        CHECK(r3.signed_.keys.count(Key::from_public_key(k.root1.public_key()).key_id()) == 0);
        CHECK(r3.signed_.roles.at("root").keyids.size() == 2);
        CHECK(verify_with(r3, "root", r2.signed_.keys, r2.signed_.roles.at("root")));
        CHECK(verify_with(r3, "root", r3.signed_.keys, r3.signed_.roles.at("root")));
        CHECK(read_all(dir / "metadata" / "root.json") ==
              read_all(dir / "metadata" / "3.root.json"));
        check_signatures(dir);
    }

    SECTION("rotating the timestamp key re-signs with the new key") {
        PrivateKey ts2 = new_key();
        const auto old_id = Key::from_public_key(k.timestamp.public_key()).key_id();
        REQUIRE(repo.change_keys("timestamp", KeyChange{{ts2.public_key()}, {old_id}, {}}));
        CHECK(repo.change_keys("timestamp", KeyChange{{}, {}, 3}).error().code() ==
              Errc::invalid_argument);
        Signers s;
        s.add("root", k.root1).add("snapshot", k.snapshot).add("timestamp", ts2);
        REQUIRE(repo.publish(s, kNow));
        CHECK(fs::exists(dir / "metadata" / "2.root.json"));
        check_signatures(dir);
    }

    SECTION("unknown fields survive re-signing") {
        auto doc = Json::parse(read_all(dir / "metadata" / "targets.json"));
        doc["signed"]["x-vendor"] = {{"kept", true}};
        doc["signed"]["targets"]["old.bin"] = {
            {"length", 1}, {"hashes", {{"sha256", std::string(64, 'a')}}}, {"x-extra", 7}};
        std::ofstream(dir / "metadata" / "targets.json", std::ios::trunc) << doc.dump(1);
        auto reopened = Repository::open(dir).value();
        REQUIRE(reopened.add_target("new.bin", pylon::as_bytes(std::string("new"))));
        Signers s = k.online();
        s.add("targets", k.targets);
        REQUIRE(reopened.publish(s, kNow));
        const auto out = Json::parse(read_all(dir / "metadata" / "2.targets.json"));
        CHECK(out["signed"]["x-vendor"]["kept"] == true);
        CHECK(out["signed"]["targets"]["old.bin"]["x-extra"] == 7);
        check_signatures(dir);
        check_references(dir);
    }

    SECTION("a target from a file, and expiry refresh") {
        const std::string content(3 * 1024 * 1024 + 17, 'x');
        const auto src = tmp.write("big.bin", content);
        auto added = repo.add_target_file("big/big.bin", src, Json{{"licence", "apache-2.0"}});
        REQUIRE(added);
        CHECK(added->length == content.size());
        CHECK(read_all(dir / "targets" / "big" / (to_hex(sha256(content)) + ".big.bin")) ==
              content);
        REQUIRE(repo.set_expiry("targets", kNow + std::chrono::days{3}));
        REQUIRE(repo.bump("root"));
        Signers s = k.online();
        s.add("targets", k.targets).add("root", k.root1);
        REQUIRE(repo.publish(s, kNow + std::chrono::days{1}));
        CHECK(load<Targets>(dir, "2.targets.json").signed_.expires == kNow + std::chrono::days{3});
        CHECK(load<Root>(dir, "2.root.json").signed_.expires == kNow + std::chrono::days{366});
        check_references(dir);
        check_signatures(dir);
    }
}

TEST_CASE("tuf repository: refuses bad input") {
    TempDir tmp;
    Keys k;
    CreateOptions o = k.options();
    o.root.threshold = 2;
    CHECK(Repository::create(tmp / "r", o).error().code() == Errc::invalid_argument);
    o = k.options();
    o.snapshot.keys.clear();
    CHECK(Repository::create(tmp / "r", o).error().code() == Errc::invalid_argument);
    CHECK(Repository::open(tmp / "none").error().code() == Errc::not_initialized);

    auto repo = Repository::create(tmp / "r", k.options()).value();
    DelegationSpec bad;
    bad.name = "../evil";
    bad.keys = {k.acme.public_key()};
    bad.paths = std::vector<std::string>{"x/*"};
    CHECK(repo.delegate(bad).error().code() == Errc::invalid_argument);
    bad.name = "snapshot";
    CHECK(repo.delegate(bad).error().code() == Errc::invalid_argument);
    bad.name = "ok";
    bad.path_hash_prefixes = std::vector<std::string>{"ab"};
    CHECK(repo.delegate(bad).error().code() == Errc::invalid_argument);  // both kinds
    CHECK(repo.remove_target("nope").error().code() == Errc::target_not_found);
    CHECK(repo.bump("nobody").error().code() == Errc::invalid_argument);
    CHECK(repo.change_keys("root", KeyChange{{}, {"00"}, {}}).error().code() ==
          Errc::invalid_argument);
}
