// Tests of Repository::import_role: targets roles signed elsewhere (by publishers, or by the
// admin's offline targets key) staged as is, then published with only the online snapshot and
// timestamp keys, and read by the TUF client.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "pylon/common/file_io.h"
#include "pylon/signing/tuf/repository.h"
#include "pylon/signing/tuf/updater.h"
#include "temp_dir.h"

using pylon::as_bytes;
using pylon::Bytes;
using pylon::Error;
using pylon::read_file;
using pylon::Result;
using pylon::write_file_atomic;
using namespace pylon::signing;
using namespace pylon::signing::tuf;
using pylon::test::read_all;
using pylon::test::TempDir;
namespace fs = std::filesystem;

namespace {

const Time kNow = std::chrono::sys_days{std::chrono::year{2030} / 1 / 1};
const std::string kTarget = "acme/llama/1.0.0/x86_64-avx2/model.gguf";

// Serves "file://<path>" URLs from the local file system.
class FileFetcher : public Fetcher {
public:
    Result<Bytes> fetch(const std::string& url, std::uint64_t max_length) override {
        const std::string prefix = "file://";
        REQUIRE(url.rfind(prefix, 0) == 0);
        const fs::path path = url.substr(prefix.size());
        std::error_code ec;
        if (!fs::is_regular_file(path, ec)) return Error(Errc::fetch_failed, "no " + url);
        if (fs::file_size(path) > max_length) return Error(Errc::too_large, url);
        auto data = read_file(path, max_length);
        if (!data) return Error(Errc::fetch_failed, data.error().message());
        return Bytes(data->begin(), data->end());
    }
};

PrivateKey new_key() {
    return PrivateKey::generate(KeyType::ed25519).value();
}

std::string sign_targets(Targets content, const std::vector<const PrivateKey*>& keys) {
    Metadata<Targets> md;
    md.signed_ = std::move(content);
    for (const auto* k : keys) REQUIRE(md.sign(*k));
    return md.to_bytes();
}

Targets role_content(std::int64_t version, std::map<std::string, TargetFile> targets = {},
                     Time expires = kNow + std::chrono::days(30)) {
    Targets t;
    t.version = version;
    t.expires = expires;
    t.targets = std::move(targets);
    return t;
}

std::map<std::string, TargetFile> one_target(const std::string& path,
                                             const std::string& content = "weights") {
    return {{path, TargetFile::from_data(as_bytes(content), Json{{"model", "llama"}})}};
}

// Everything a failed import must leave alone: the staged roles and the files on disk.
struct State {
    std::map<std::string, std::string> roles;  // name -> staged signed JSON
    std::set<std::string, std::less<>> changed;
    std::map<std::string, std::string> files;

    static State of(const Repository& repo) {
        State s;
        for (const auto& name : repo.targets_roles()) {
            s.roles[name] = (*repo.targets(name))->signed_.to_json().dump();
        }
        s.changed = repo.changed();
        for (const auto& e : fs::directory_iterator(repo.metadata_dir())) {
            s.files[e.path().filename().string()] = read_all(e.path());
        }
        return s;
    }
    bool operator==(const State&) const = default;
};

struct Fixture {
    TempDir tmp;
    PrivateKey root = new_key(), targets = new_key(), snapshot = new_key(), timestamp = new_key(),
               acme = new_key(), duo1 = new_key(), duo2 = new_key(), stranger = new_key();
    Signers online;
    std::optional<Repository> repo;

    // Published: root, targets v1 delegating "acme" (acme/*/*/*/*) and "duo" (2 of 2 keys,
    // duo/*), snapshot, timestamp. acme and duo are pending.
    Fixture() {
        CreateOptions o;
        o.root.keys = {root.public_key()};
        o.targets.keys = {targets.public_key()};
        o.snapshot.keys = {snapshot.public_key()};
        o.timestamp.keys = {timestamp.public_key()};
        repo.emplace(Repository::create(tmp / "repo", o).value());
        DelegationSpec a{"acme", {acme.public_key()}, 1, false, {{"acme/*/*/*/*"}}, {}};
        REQUIRE(repo->delegate(a));
        DelegationSpec d{"duo", {duo1.public_key(), duo2.public_key()}, 2, false, {{"duo/*"}}, {}};
        REQUIRE(repo->delegate(d));
        Signers all;
        all.add("root", root).add("targets", targets);
        all.add("snapshot", snapshot).add("timestamp", timestamp);
        auto report = repo->publish(all, kNow);
        REQUIRE(report);
        REQUIRE(report->pending == std::vector<std::string>{"acme", "duo"});
        online.add("snapshot", snapshot).add("timestamp", timestamp);
    }

    Result<TargetInfo> client_lookup(const std::string& path) {
        const fs::path client = tmp / "client";
        fs::create_directories(client);
        REQUIRE(write_file_atomic(client / "root.json",
                                  read_all(repo->metadata_dir() / "1.root.json")));
        FileFetcher fetcher;
        UpdaterConfig config;
        config.clock = [] { return kNow; };
        Updater updater(client, "file://" + repo->metadata_dir().string() + "/",
                        "file://" + repo->targets_dir().string() + "/", fetcher, config);
        PYLON_TRY(updater.refresh());
        return updater.get_targetinfo(path);
    }

    void require_refused(const std::string& role, const std::string& bytes, std::error_code code) {
        const State before = State::of(*repo);
        auto r = repo->import_role(role, bytes, kNow);
        REQUIRE_FALSE(r);
        INFO(r.error().to_string());
        CHECK(r.error().code() == code);
        CHECK(State::of(*repo) == before);
    }
};

}  // namespace

TEST_CASE("import_role: a publisher's role is published as signed, with only online keys") {
    Fixture f;
    const std::string bytes = sign_targets(role_content(1, one_target(kTarget)), {&f.acme});
    REQUIRE(f.repo->import_role("acme", bytes, kNow));
    CHECK(f.repo->changed().count("acme"));
    auto report = f.repo->publish(f.online, kNow);
    REQUIRE(report);
    CHECK(report->written == std::vector<std::string>{"1.acme.json", "acme.json", "2.snapshot.json",
                                                      "snapshot.json", "timestamp.json"});
    CHECK(report->pending == std::vector<std::string>{"duo"});
    // Exactly the submitted bytes: not re-signed, not re-formatted.
    CHECK(read_all(f.repo->metadata_dir() / "1.acme.json") == bytes);
    CHECK(read_all(f.repo->metadata_dir() / "acme.json") == bytes);
    const auto snap = Metadata<Snapshot>::parse(read_all(f.repo->metadata_dir() / "snapshot.json"));
    REQUIRE(snap);
    CHECK(snap->signed_.meta.at("acme.json").version == 1);

    auto info = f.client_lookup(kTarget);
    REQUIRE(info);
    CHECK(info->role == "acme");
    CHECK(info->file.length == 7);
    CHECK(info->file.custom == Json{{"model", "llama"}});

    // The next version follows; the repository reopened from disk agrees.
    auto reopened = Repository::open(f.repo->dir());
    REQUIRE(reopened);
    const std::string v2 =
        sign_targets(role_content(2, one_target(kTarget, "weights v2")), {&f.acme});
    REQUIRE(reopened->import_role("acme", v2, kNow));
    REQUIRE(reopened->publish(f.online, kNow));
    CHECK(read_all(reopened->metadata_dir() / "2.acme.json") == v2);
}

TEST_CASE("import_role: refusals leave the repository unchanged") {
    Fixture f;
    REQUIRE(f.repo->import_role(
        "acme", sign_targets(role_content(1, one_target(kTarget)), {&f.acme}), kNow));
    REQUIRE(f.repo->publish(f.online, kNow));
    const auto next = [&](std::int64_t version, std::vector<const PrivateKey*> keys) {
        return sign_targets(role_content(version, one_target(kTarget, "other")), keys);
    };

    SECTION("signed by a key that is not the role's") {
        f.require_refused("acme", next(2, {&f.stranger}), Errc::threshold_not_met);
    }
    SECTION("signed by the targets key instead of the delegated one") {
        f.require_refused("acme", next(2, {&f.targets}), Errc::threshold_not_met);
    }
    SECTION("below threshold (one of two required keys)") {
        const std::string one = sign_targets(role_content(1, one_target("duo/f")), {&f.duo1});
        f.require_refused("duo", one, Errc::threshold_not_met);
        REQUIRE(f.repo->import_role(
            "duo", sign_targets(role_content(1, one_target("duo/f")), {&f.duo1, &f.duo2}), kNow));
    }
    SECTION("the same version again") {
        f.require_refused("acme", next(1, {&f.acme}), Errc::rollback);
    }
    SECTION("a version jump") {
        f.require_refused("acme", next(3, {&f.acme}), Errc::version_mismatch);
    }
    SECTION("expired") {
        const std::string bytes = sign_targets(
            role_content(2, one_target(kTarget), kNow - std::chrono::seconds(1)), {&f.acme});
        f.require_refused("acme", bytes, Errc::expired);
    }
    SECTION("a target path outside the delegation") {
        const std::string bytes = sign_targets(
            role_content(2, one_target("other/llama/1.0.0/cpu/model.gguf")), {&f.acme});
        const State before = State::of(*f.repo);
        auto r = f.repo->import_role("acme", bytes, kNow);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == Errc::invalid_argument);
        CHECK(r.error().message().find("other/llama/1.0.0/cpu/model.gguf") != std::string::npos);
        CHECK(State::of(*f.repo) == before);
    }
    SECTION("a path one segment short of the namespace pattern") {
        f.require_refused(
            "acme", sign_targets(role_content(2, one_target("acme/llama/model.gguf")), {&f.acme}),
            Errc::invalid_argument);
    }
    SECTION("an unknown role, or a top-level role that is not targets") {
        f.require_refused("nosuch", next(1, {&f.acme}), Errc::invalid_argument);
        f.require_refused("snapshot", next(2, {&f.snapshot}), Errc::invalid_argument);
    }
    SECTION("not targets metadata") {
        f.require_refused("acme", read_all(f.repo->metadata_dir() / "snapshot.json"),
                          Errc::wrong_role_type);
        f.require_refused("acme", "{\"signed\": 1}", Errc::malformed_metadata);
    }
    // Nothing refused above disturbed what was published: the client still finds the target.
    auto info = f.client_lookup(kTarget);
    REQUIRE(info);
    CHECK(info->role == "acme");
}

TEST_CASE("import_role: a new top-level targets adds and removes delegations") {
    Fixture f;
    REQUIRE(f.repo->import_role(
        "acme", sign_targets(role_content(1, one_target(kTarget)), {&f.acme}), kNow));
    REQUIRE(f.repo->publish(f.online, kNow));

    // The admin's v2: "acme" dropped, "beta" added, "duo" kept.
    Targets top = (*f.repo->targets("targets"))->signed_;
    top.version = 2;
    auto& d = *top.delegations;
    d.roles.erase(d.roles.begin());  // acme
    PrivateKey beta = new_key();
    const Key beta_key = Key::from_public_key(beta.public_key());
    d.keys[beta_key.key_id()] = beta_key;
    DelegatedRole role;
    role.name = "beta";
    role.keyids = {beta_key.key_id()};
    role.paths = std::vector<std::string>{"beta/*/*/*/*"};
    d.roles.push_back(role);

    SECTION("signed by the targets key: accepted") {
        REQUIRE(f.repo->import_role("targets", sign_targets(top, {&f.targets}), kNow));
        CHECK(f.repo->targets_roles() == std::vector<std::string>{"targets", "duo", "beta"});
        auto report = f.repo->publish(f.online, kNow);
        REQUIRE(report);
        CHECK(report->pending == std::vector<std::string>{"duo", "beta"});
        // The snapshot keeps acme's last entry: clients refuse a snapshot dropping a file.
        const auto snap =
            Metadata<Snapshot>::parse(read_all(f.repo->metadata_dir() / "snapshot.json"));
        REQUIRE(snap);
        CHECK(snap->signed_.meta.at("acme.json").version == 1);
        CHECK(snap->signed_.meta.at("targets.json").version == 2);

        auto gone = f.client_lookup(kTarget);
        REQUIRE_FALSE(gone);
        CHECK(gone.error().code() == Errc::target_not_found);

        const std::string path = "beta/m/1.0.0/cpu/m.gguf";
        REQUIRE(f.repo->import_role(
            "beta", sign_targets(role_content(1, one_target(path)), {&beta}), kNow));
        REQUIRE(f.repo->publish(f.online, kNow));
        auto found = f.client_lookup(path);
        REQUIRE(found);
        CHECK(found->role == "beta");
    }
    SECTION("signed by a delegated key: refused") {
        f.require_refused("targets", sign_targets(top, {&f.acme}), Errc::threshold_not_met);
    }
    SECTION("a delegated role name that is not a safe file name: refused") {
        top.delegations->roles.back().name = "../beta";
        f.require_refused("targets", sign_targets(top, {&f.targets}), Errc::invalid_argument);
    }
}
