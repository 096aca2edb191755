// Tests of TufHost: the registry's TUF repository with only online keys, bootstrapped on first
// start, accepting client-signed targets roles (TargetsEditor), and read by the TUF client.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <map>

#include "pylon/common/file_io.h"
#include "pylon/registry/tuf/tuf_host.h"
#include "pylon/signing/sha256.h"
#include "pylon/signing/tuf/repository.h"
#include "pylon/signing/tuf/targets_editor.h"
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
using pylon::registry::tuf::SubmitReport;
using pylon::registry::tuf::TufHost;
using pylon::registry::tuf::TufHostOptions;
using pylon::test::read_all;
using pylon::test::TempDir;
namespace fs = std::filesystem;

namespace {

const Time kNow = std::chrono::sys_days{std::chrono::year{2030} / 1 / 1};
const std::string kModel = "acme/llama/1.0.0/x86_64-avx2/model.gguf";
const std::string kWeights = "pretend these are GGUF weights";

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

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

std::map<std::string, std::string> files_in(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        out[e.path().filename().string()] = read_all(e.path());
    return out;
}

struct HostFixture {
    TempDir tmp;
    fs::path dir = tmp / "tuf";
    Time clock = kNow;
    std::unique_ptr<TufHost> host;
    std::optional<PrivateKey> targets_key;  // the admin's, from offline-keys/
    PrivateKey acme = PrivateKey::generate(KeyType::ed25519).value();

    TufHostOptions options() {
        TufHostOptions o;
        o.clock = [this] { return clock; };
        return o;
    }

    HostFixture() {
        auto opened = TufHost::open(dir, options());
        REQUIRE(opened);
        host = std::move(*opened);
        targets_key.emplace(PrivateKey::load(dir / "offline-keys" / "targets.key").value());
    }

    // The admin delegates acme/*/*/*/* to the acme key (top-level targets v2).
    Result<SubmitReport> delegate_acme() {
        PYLON_TRY_ASSIGN(std::string current, host->current_role("targets"));
        PYLON_TRY_ASSIGN(auto editor, TargetsEditor::from_bytes(current));
        DelegationSpec spec;
        spec.name = "acme";
        spec.keys = {acme.public_key()};
        spec.paths = std::vector<std::string>{"acme/*/*/*/*"};
        PYLON_TRY(editor.set_delegation(spec));
        editor.set_expires(kNow + std::chrono::days(365));
        PYLON_TRY_ASSIGN(std::string bytes, editor.sign({&*targets_key}));
        return host->submit_role("targets", bytes);
    }

    std::string acme_role(std::int64_t version, const PrivateKey& key) {
        TargetsEditor editor = TargetsEditor::new_role();
        if (version > 1) {
            editor = TargetsEditor::from_bytes(host->current_role("acme").value()).value();
        }
        REQUIRE(editor.add_target(
            kModel, TargetFile::from_data(as_bytes(kWeights), Json{{"model", "llama"}})));
        editor.set_expires(kNow + std::chrono::days(90));
        REQUIRE(editor.next_version() == version);
        return editor.sign({&key}).value();
    }

    Result<TargetInfo> client_lookup(const std::string& path) {
        const fs::path client = tmp / "client";
        fs::create_directories(client);
        REQUIRE(
            write_file_atomic(client / "root.json", host->metadata_bytes("1.root.json").value()));
        FileFetcher fetcher;
        UpdaterConfig config;
        config.clock = [this] { return clock; };
        Updater updater(client, "file://" + host->metadata_dir().string() + "/",
                        "file:///nonexistent/", fetcher, config);
        PYLON_TRY(updater.refresh());
        return updater.get_targetinfo(path);
    }
};

std::string consistent_name(const std::string& path, const std::string& content) {
    const auto slash = path.rfind('/');
    return path.substr(0, slash + 1) + to_hex(sha256(content)) + "." + path.substr(slash + 1);
}

}  // namespace

TEST_CASE("TufHost: bootstrap writes private keys 0600 and a self-signed root") {
    HostFixture f;
    for (const char* key : {"keys/snapshot.key", "keys/timestamp.key", "offline-keys/root.key",
                            "offline-keys/targets.key"}) {
        INFO(key);
        CHECK(mode_of(f.dir / key) == 0600);
    }
    CHECK(mode_of(f.dir / "keys") == 0700);
    CHECK_FALSE(fs::exists(f.dir / "repo.bootstrap"));
    auto root = Metadata<Root>::parse(f.host->metadata_bytes("root.json").value());
    REQUIRE(root);
    CHECK(root->signed_.version == 1);
    CHECK(root->signed_.consistent_snapshot);
    CHECK(verify_with(*root, "root", root->signed_.keys, root->signed_.roles.at("root")));
    const auto root_key = PrivateKey::load(f.dir / "offline-keys" / "root.key").value();
    CHECK(root->signed_.roles.at("root").keyids == std::vector<std::string>{root_key.key_id()});
    CHECK(root->signed_.roles.at("targets").keyids ==
          std::vector<std::string>{f.targets_key->key_id()});
    const auto ts = Metadata<Timestamp>::parse(f.host->metadata_bytes("timestamp.json").value());
    REQUIRE(ts);
    CHECK(ts->signed_.expires == kNow + std::chrono::days(1));
    // The client accepts the fresh repository (no targets yet).
    auto none = f.client_lookup(kModel);
    REQUIRE_FALSE(none);
    CHECK(none.error().code() == Errc::target_not_found);

    // Opening again loads what is there; a key readable by others is refused.
    f.host.reset();
    REQUIRE(TufHost::open(f.dir, f.options()));
    REQUIRE(::chmod((f.dir / "keys" / "timestamp.key").c_str(), 0644) == 0);
    auto loose = TufHost::open(f.dir, f.options());
    REQUIRE_FALSE(loose);
    CHECK(loose.error().code() == pylon::Errc::permission_denied);
}

TEST_CASE("TufHost: namespace delegation, publisher role, resolve and client") {
    HostFixture f;
    auto delegated = f.delegate_acme();
    REQUIRE(delegated);
    CHECK(delegated->version == 2);
    CHECK(delegated->snapshot_version == 2);
    CHECK(delegated->pending == std::vector<std::string>{"acme"});
    auto d = f.host->delegation("acme");
    REQUIRE(d);
    CHECK(d->delegator == "targets");
    CHECK(d->role.threshold == 1);
    CHECK(d->role.paths == std::vector<std::string>{"acme/*/*/*/*"});
    REQUIRE(d->keys.size() == 1);
    CHECK(d->keys.begin()->first == f.acme.key_id());
    CHECK(f.host->delegation("beta").error().code() == pylon::Errc::not_found);
    CHECK(f.host->current_role("acme").error().code() == pylon::Errc::not_found);

    int checks = 0;
    auto accepted = f.host->submit_role(
        "acme", f.acme_role(1, f.acme),
        [&](const Metadata<Targets>& incoming, const Metadata<Targets>* previous) -> Result<void> {
            ++checks;
            CHECK(previous == nullptr);
            CHECK(incoming.signed_.targets.count(kModel));
            return {};
        });
    REQUIRE(accepted);
    CHECK(checks == 1);
    CHECK(accepted->version == 1);
    CHECK(accepted->pending.empty());
    CHECK(f.host->current_role("acme").value() == f.host->metadata_bytes("1.acme.json").value());

    const std::string name = consistent_name(kModel, kWeights);
    auto ref = f.host->resolve_target(name);
    REQUIRE(ref);
    CHECK(ref->path == kModel);
    CHECK(ref->sha256_hex == to_hex(sha256(kWeights)));
    CHECK(ref->length == kWeights.size());
    const std::string wrong_hash = consistent_name(kModel, "other bytes");
    CHECK(f.host->resolve_target(wrong_hash).error().code() == pylon::Errc::not_found);
    CHECK(f.host->resolve_target("acme/llama/1.0.0/x86_64-avx2/model.gguf").error().code() ==
          pylon::Errc::not_found);
    CHECK(f.host->resolve_target(consistent_name("acme/llama/9.9.9/cpu/model.gguf", kWeights))
              .error()
              .code() == pylon::Errc::not_found);

    auto info = f.client_lookup(kModel);
    REQUIRE(info);
    CHECK(info->role == "acme");
    CHECK(info->file.length == kWeights.size());
    CHECK(info->file.custom == Json{{"model", "llama"}});

    // A second host on the same directory (another replica) sees what this one published.
    auto replica = TufHost::open(f.dir, f.options());
    REQUIRE(replica);
    CHECK((*replica)->resolve_target(name));
}

TEST_CASE("TufHost: refused submissions change nothing on disk") {
    HostFixture f;
    REQUIRE(f.delegate_acme());
    REQUIRE(f.host->submit_role("acme", f.acme_role(1, f.acme)));
    const auto before = files_in(f.host->metadata_dir());
    const PrivateKey stranger = PrivateKey::generate(KeyType::ed25519).value();

    SECTION("a publisher role signed by another key") {
        auto r = f.host->submit_role("acme", f.acme_role(2, stranger));
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == Errc::threshold_not_met);
    }
    SECTION("a top-level targets signed by a publisher key") {
        auto editor = TargetsEditor::from_bytes(f.host->current_role("targets").value()).value();
        auto r = f.host->submit_role("targets", editor.sign({&f.acme}).value());
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == Errc::threshold_not_met);
    }
    SECTION("the caller's check refuses") {
        auto r = f.host->submit_role("acme", f.acme_role(2, f.acme),
                                     [](const Metadata<Targets>&, const Metadata<Targets>* prev) {
                                         CHECK(prev != nullptr);
                                         return Result<void>(Error(pylon::Errc::invalid_argument,
                                                                   "not this release's files"));
                                     });
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == pylon::Errc::invalid_argument);
    }
    SECTION("a replayed version") {
        const std::string v1 = f.host->current_role("acme").value();
        auto r = f.host->submit_role("acme", v1);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == Errc::rollback);
    }
    CHECK(files_in(f.host->metadata_dir()) == before);
    CHECK(f.host->resolve_target(consistent_name(kModel, kWeights)));
    // And the right submission still goes through afterwards.
    REQUIRE(f.host->submit_role("acme", f.acme_role(2, f.acme)));
}

TEST_CASE("TufHost: metadata file names") {
    HostFixture f;
    CHECK(f.host->metadata_bytes("timestamp.json"));
    CHECK(f.host->metadata_bytes("1.root.json").value() ==
          f.host->metadata_bytes("root.json").value());
    CHECK(f.host->metadata_bytes("1.snapshot.json"));
    for (const char* bad :
         {"../keys/snapshot.key", "snapshot.key", "..json", ".json", "", "a/../root.json",
          "/etc/passwd", "2.root.json", "root.json.tmp.x", ".timestamp.json"}) {
        INFO(bad);
        auto r = f.host->metadata_bytes(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == pylon::Errc::not_found);
    }
}

TEST_CASE("TufHost: refresh_if_expiring re-signs timestamp and snapshot near expiry") {
    HostFixture f;
    auto version = [&](const char* file) {
        return Json::parse(f.host->metadata_bytes(file).value())["signed"]["version"].get<int>();
    };
    REQUIRE(version("timestamp.json") == 1);
    CHECK(f.host->refresh_if_expiring(kNow + std::chrono::hours(1)).value() == false);
    CHECK(version("timestamp.json") == 1);

    const Time later = kNow + std::chrono::hours(13);  // past half of the 1-day lifetime
    CHECK(f.host->refresh_if_expiring(later).value() == true);
    CHECK(version("timestamp.json") == 2);
    CHECK(version("snapshot.json") == 1);
    const auto ts = Metadata<Timestamp>::parse(f.host->metadata_bytes("timestamp.json").value());
    CHECK(ts->signed_.expires == later + std::chrono::days(1));

    const Time days_later = kNow + std::chrono::days(4);  // past half of the 7-day snapshot
    CHECK(f.host->refresh_if_expiring(days_later).value() == true);
    CHECK(version("timestamp.json") == 3);
    CHECK(version("snapshot.json") == 2);
    f.clock = days_later;
    CHECK(f.client_lookup(kModel).error().code() == Errc::target_not_found);  // chain verifies
}

TEST_CASE("TufHost: bootstrap from a root and targets made offline") {
    TempDir tmp;
    const PrivateKey root = PrivateKey::generate(KeyType::ed25519).value();
    const PrivateKey targets = PrivateKey::generate(KeyType::ed25519).value();
    const PrivateKey snapshot = PrivateKey::generate(KeyType::ed25519).value();
    const PrivateKey timestamp = PrivateKey::generate(KeyType::ed25519).value();
    CreateOptions o;
    o.root.keys = {root.public_key()};
    o.targets.keys = {targets.public_key()};
    o.snapshot.keys = {snapshot.public_key()};
    o.timestamp.keys = {timestamp.public_key()};
    auto offline = Repository::create(tmp / "offline", o);
    REQUIRE(offline);
    Signers all;
    all.add("root", root).add("targets", targets);
    all.add("snapshot", snapshot).add("timestamp", timestamp);
    REQUIRE(offline->publish(all, kNow));
    REQUIRE(snapshot.save(tmp / "snapshot.key", nullptr));
    REQUIRE(timestamp.save(tmp / "timestamp.key", nullptr));

    TufHostOptions options;
    options.clock = [] { return kNow; };
    options.root_file = offline->metadata_dir() / "root.json";
    options.targets_file = offline->metadata_dir() / "targets.json";
    options.snapshot_key_file = tmp / "snapshot.key";
    SECTION("all four files") {
        options.timestamp_key_file = tmp / "timestamp.key";
        auto host = TufHost::open(tmp / "tuf", options);
        REQUIRE(host);
        CHECK((*host)->metadata_bytes("root.json").value() == read_all(*options.root_file));
        CHECK((*host)->current_role("targets").value() == read_all(*options.targets_file));
        CHECK_FALSE(fs::exists(tmp / "tuf" / "offline-keys"));
        CHECK(mode_of(tmp / "tuf" / "keys" / "timestamp.key") == 0600);
    }
    SECTION("the wrong online key") {
        options.timestamp_key_file = tmp / "snapshot.key";
        auto host = TufHost::open(tmp / "tuf", options);
        REQUIRE_FALSE(host);
        CHECK(host.error().code() == pylon::Errc::invalid_argument);
        CHECK_FALSE(fs::exists(tmp / "tuf" / "repo"));
    }
    SECTION("a missing file option") {
        auto host = TufHost::open(tmp / "tuf", options);
        REQUIRE_FALSE(host);
        CHECK(host.error().code() == pylon::Errc::invalid_argument);
    }
}
