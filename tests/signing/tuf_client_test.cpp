// TUF client (Updater) against the top-level metadata attacks of the TUF specification: each test
// checks the error code naming the attack and that the client's trusted files did not change.
#include <catch2/catch.hpp>

#include "tuf_client_fixture.h"

using namespace pylon;
using namespace pylon::signing;
using namespace pylon::signing::tuf;
using pylon::test::TufClientFixture;
using pylon::test::TufRepositorySimulator;

namespace {

const std::string kMeta = TufRepositorySimulator::kMetadataUrl;

bool was_fetched(const TufRepositorySimulator& repo, const std::string& name) {
    for (const auto& u : repo.fetched) {
        if (u == kMeta + name) return true;
    }
    return false;
}

// Pads a JSON document with trailing whitespace to `size` bytes.
Bytes padded(const std::string& json, std::size_t size) {
    std::string s = json;
    s.resize(size, ' ');
    return to_bytes(s);
}

}  // namespace

TEST_CASE("TUF client: first refresh trusts every role and keeps only non-versioned files") {
    TufClientFixture f;
    REQUIRE(f.refresh().ok());
    const auto state = f.state();
    std::vector<std::string> names;
    for (const auto& [name, bytes] : state) names.push_back(name);
    CHECK(names ==
          std::vector<std::string>{"root.json", "snapshot.json", "targets.json", "timestamp.json"});
    CHECK(f.repo.fetched ==
          std::vector<std::string>{kMeta + "2.root.json", kMeta + "timestamp.json",
                                   kMeta + "1.snapshot.json", kMeta + "1.targets.json"});
    // Nothing new: only the next root and the timestamp are asked for.
    f.repo.fetched.clear();
    REQUIRE(f.refresh().ok());
    CHECK(f.repo.fetched ==
          std::vector<std::string>{kMeta + "2.root.json", kMeta + "timestamp.json"});
    CHECK(f.state() == state);
    // A new targets version comes through the whole chain.
    f.repo.bump("targets");
    REQUIRE(f.refresh().ok());
    CHECK(f.trusted_version("timestamp.json") == 2);
    CHECK(f.trusted_version("snapshot.json") == 2);
    CHECK(f.trusted_version("targets.json") == 2);
}

TEST_CASE("TUF client: no trusted root is not_initialized") {
    TufClientFixture f;
    std::filesystem::remove(f.dir / "root.json");
    REQUIRE_REFRESH_REFUSED(f, tuf::Errc::not_initialized);
}

TEST_CASE("TUF client: non-consistent snapshots fetch plain names") {
    TufClientFixture f;
    f.repo.root.signed_.consistent_snapshot = false;
    f.repo.publish_root();
    f.dir.write("root.json", f.repo.metadata_bytes("1.root.json"));
    REQUIRE(f.refresh().ok());
    CHECK(was_fetched(f.repo, "snapshot.json"));
    CHECK(was_fetched(f.repo, "targets.json"));
    CHECK_FALSE(was_fetched(f.repo, "1.snapshot.json"));
}

TEST_CASE("TUF client: rollback attacks") {
    TufClientFixture f;
    f.repo.bump("targets");  // every role at version 2
    REQUIRE(f.refresh().ok());

    SECTION("timestamp") {
        f.repo.timestamp.signed_.version = 1;
        f.repo.publish();
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::rollback);
    }
    SECTION("snapshot (a newer timestamp naming an older snapshot)") {
        f.repo.snapshot.signed_.version = 1;
        f.repo.timestamp.signed_.version = 3;
        f.repo.publish();
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::rollback);
    }
    SECTION("targets (a newer snapshot naming an older targets)") {
        f.repo.targets.signed_.version = 1;
        f.repo.snapshot.signed_.version = 3;
        f.repo.timestamp.signed_.version = 3;
        f.repo.publish();
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::rollback);
    }
    SECTION("root") {
        f.repo.files[kMeta + "2.root.json"] = to_bytes(f.repo.metadata_bytes("1.root.json"));
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::rollback);
    }
}

TEST_CASE("TUF client: a snapshot that drops a targets file is a rollback") {
    TufClientFixture f;
    f.repo.add_delegation("targets", "acme", {"acme/*"});
    f.repo.publish();
    REQUIRE(f.refresh().ok());
    f.repo.delegated.clear();
    f.repo.targets.signed_.delegations.reset();
    f.repo.bump("targets");
    REQUIRE_REFRESH_REFUSED(f, tuf::Errc::rollback);
}

TEST_CASE("TUF client: indefinite freeze (expired metadata)") {
    TufClientFixture f;
    const auto later = f.repo.now + std::chrono::days{31};  // past the 30-day roles
    const auto far = f.repo.now + std::chrono::days{300};

    SECTION("root") {
        REQUIRE(f.refresh().ok());
        f.clock = f.repo.now + std::chrono::days{366};
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::expired);
    }
    SECTION("timestamp") {
        f.repo.snapshot.signed_.expires = far;
        f.repo.targets.signed_.expires = far;
        f.repo.publish();
        REQUIRE(f.refresh().ok());
        f.clock = later;
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::expired);
    }
    SECTION("a new timestamp that is already expired") {
        REQUIRE(f.refresh().ok());
        f.repo.timestamp.signed_.expires = f.repo.now - std::chrono::days{1};
        f.repo.bump("timestamp");
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::expired);
    }
    SECTION("snapshot") {
        f.repo.timestamp.signed_.expires = far;
        f.repo.targets.signed_.expires = far;
        f.repo.publish();
        REQUIRE(f.refresh().ok());
        f.clock = later;
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::expired);
    }
    SECTION("targets") {
        f.repo.timestamp.signed_.expires = far;
        f.repo.snapshot.signed_.expires = far;
        f.repo.publish();
        REQUIRE(f.refresh().ok());
        f.clock = later;
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::expired);
    }
}

TEST_CASE("TUF client: malicious mirrors (signatures by keys the root does not trust)") {
    TufClientFixture f;
    REQUIRE(f.refresh().ok());

    SECTION("root") {
        f.repo.root.signed_.version = 2;
        f.repo.signers["root"] = {TufRepositorySimulator::new_key()};
        f.repo.publish_root();
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::threshold_not_met);
    }
    for (const char* role : {"timestamp", "snapshot", "targets"}) {
        DYNAMIC_SECTION(role) {
            f.repo.signers[role] = {TufRepositorySimulator::new_key()};
            f.repo.bump(role == std::string("timestamp") ? "timestamp" : "targets");
            REQUIRE_REFRESH_REFUSED(f, tuf::Errc::threshold_not_met);
        }
    }
    SECTION("a corrupted signature by the right key") {
        f.repo.timestamp.signed_.version = 2;
        REQUIRE(f.repo.timestamp.sign(*f.repo.signers["timestamp"][0]).ok());
        auto& sig = f.repo.timestamp.signatures[0].sig;
        sig[0] = sig[0] == '0' ? '1' : '0';
        f.repo.files[kMeta + "timestamp.json"] = to_bytes(f.repo.timestamp.to_bytes());
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::threshold_not_met);
    }
}

TEST_CASE("TUF client: mix-and-match") {
    TufClientFixture f;
    REQUIRE(f.refresh().ok());

    SECTION("snapshot names a targets version other than the one served") {
        f.repo.meta_hashes = false;
        f.repo.bump("targets");
        f.repo.files[kMeta + "2.targets.json"] = f.repo.files[kMeta + "1.targets.json"];
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::version_mismatch);
    }
    SECTION("timestamp names a snapshot version other than the one served") {
        f.repo.meta_hashes = false;
        f.repo.bump("snapshot");
        f.repo.files[kMeta + "2.snapshot.json"] = f.repo.files[kMeta + "1.snapshot.json"];
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::version_mismatch);
    }
    SECTION("snapshot bytes differ from the hash the timestamp signed") {
        f.repo.bump("snapshot");
        auto& bytes = f.repo.files[kMeta + "2.snapshot.json"];
        std::string s = to_string(bytes);
        const auto at = s.find("\"version\": 2");
        REQUIRE(at != std::string::npos);
        s.replace(at, 12, "\"version\": 3");  // same length, other content
        bytes = to_bytes(s);
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::hash_mismatch);
    }
    SECTION("targets bytes differ from the hash the snapshot signed") {
        f.repo.bump("targets");
        f.repo.files[kMeta + "2.targets.json"].back() ^= 0x01;
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::hash_mismatch);
    }
    SECTION("targets shorter than the length the snapshot signed") {
        f.repo.bump("targets");
        f.repo.files[kMeta + "2.targets.json"].pop_back();
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::length_mismatch);
    }
}

TEST_CASE("TUF client: endless data") {
    TufClientFixture f;
    REQUIRE(f.refresh().ok());

    SECTION("root beyond 512 KiB") {
        f.repo.files[kMeta + "2.root.json"] =
            padded(f.repo.metadata_bytes("1.root.json"), 512 * 1024 + 1);
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::too_large);
    }
    SECTION("timestamp beyond 16 KiB") {
        f.repo.bump("timestamp");
        f.repo.files[kMeta + "timestamp.json"] =
            padded(f.repo.metadata_bytes("timestamp.json"), 16 * 1024 + 1);
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::too_large);
    }
    SECTION("snapshot beyond the length the timestamp signed") {
        f.repo.bump("snapshot");
        f.repo.files[kMeta + "2.snapshot.json"].push_back(' ');
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::too_large);
    }
    SECTION("snapshot beyond the configured limit when no length is signed") {
        f.repo.meta_hashes = false;
        f.config.max_snapshot_length = 4096;
        f.repo.bump("snapshot");
        f.repo.files[kMeta + "2.snapshot.json"] =
            padded(f.repo.metadata_bytes("2.snapshot.json"), 4097);
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::too_large);
    }
    SECTION("targets beyond the configured limit when no length is signed") {
        f.repo.meta_hashes = false;
        f.config.max_targets_length = 4096;
        f.repo.bump("targets");
        f.repo.files[kMeta + "2.targets.json"] =
            padded(f.repo.metadata_bytes("2.targets.json"), 4097);
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::too_large);
    }
}

TEST_CASE("TUF client: fast-forward attack, then recovery by key rotation") {
    TufClientFixture f;
    REQUIRE(f.refresh().ok());
    const std::string role = GENERATE(std::string("timestamp"), std::string("snapshot"));
    INFO(role);
    // The attacker holds the online key and signs version 1000.
    if (role == "timestamp") {
        f.repo.timestamp.signed_.version = 1000;
    } else {
        f.repo.snapshot.signed_.version = 1000;
        f.repo.timestamp.signed_.version = 1000;
    }
    f.repo.publish();
    REQUIRE(f.refresh().ok());
    CHECK(f.trusted_version(role + ".json") == 1000);
    // The repository's real next version is now refused...
    f.repo.timestamp.signed_.version = 3;
    f.repo.snapshot.signed_.version = 3;
    f.repo.publish();
    REQUIRE_REFRESH_REFUSED(f, tuf::Errc::rollback);
    // ...until a new root rotates the compromised key: the client forgets timestamp and
    // snapshot (§5.3.11) and accepts the real versions.
    const auto old_root = f.repo.signers["root"];
    f.repo.rotate_keys(role);
    f.repo.root.signed_.version = 2;
    f.repo.publish_root();
    f.repo.publish();
    REQUIRE(f.refresh().ok());
    CHECK(f.trusted_version("root.json") == 2);
    CHECK(f.trusted_version("timestamp.json") == 3);
    CHECK(f.trusted_version("snapshot.json") == 3);
}

TEST_CASE("TUF client: key compromise below threshold") {
    TufClientFixture f;
    // Root v2: timestamp and root need two signatures each.
    const auto ts2 = TufRepositorySimulator::new_key();
    const auto root2 = TufRepositorySimulator::new_key();
    f.repo.add_key("timestamp", ts2);
    f.repo.root.signed_.roles["timestamp"].threshold = 2;
    f.repo.add_key("root", root2);
    f.repo.root.signed_.roles["root"].threshold = 2;
    f.repo.root.signed_.version = 2;
    f.repo.publish_root();
    f.repo.publish();
    REQUIRE(f.refresh().ok());
    CHECK(f.trusted_version("root.json") == 2);

    SECTION("timestamp signed by one of two keys") {
        f.repo.signers["timestamp"] = {ts2};
        f.repo.bump("timestamp");
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::threshold_not_met);
    }
    SECTION("timestamp signed twice by the same key: duplicate key IDs count once") {
        f.repo.signers["timestamp"] = {ts2};
        f.repo.timestamp.signed_.version = 2;
        f.repo.publish();
        f.repo.timestamp.signatures.push_back(f.repo.timestamp.signatures[0]);
        f.repo.files[kMeta + "timestamp.json"] = to_bytes(f.repo.timestamp.to_bytes());
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::threshold_not_met);
    }
    SECTION("root v3 signed by one of two root keys") {
        f.repo.root.signed_.version = 3;
        f.repo.signers["root"] = {root2};
        f.repo.publish_root();
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::threshold_not_met);
    }
}

TEST_CASE("TUF client: root rotation chain with threshold changes and key removal") {
    TufClientFixture f;
    const auto k1 = f.repo.signers["root"];
    const auto k2 = TufRepositorySimulator::new_key();
    const auto k3 = TufRepositorySimulator::new_key();
    // v2: root keys {k2, k3}, threshold 2, k1 removed; cross-signed by k1.
    const auto k1_ids = f.repo.root.signed_.roles["root"].keyids;
    for (const auto& id : k1_ids) f.repo.root.signed_.remove_key("root", id);
    f.repo.signers["root"].clear();
    f.repo.add_key("root", k2);
    f.repo.add_key("root", k3);
    f.repo.root.signed_.roles["root"].threshold = 2;
    f.repo.root.signed_.version = 2;
    f.repo.publish_root(k1);
    // v3: threshold back to 1, signed by k2 and k3.
    f.repo.root.signed_.roles["root"].threshold = 1;
    f.repo.root.signed_.version = 3;
    f.repo.publish_root();
    REQUIRE(f.refresh().ok());
    CHECK(f.trusted_version("root.json") == 3);
    CHECK(was_fetched(f.repo, "2.root.json"));
    CHECK(was_fetched(f.repo, "3.root.json"));
    CHECK(was_fetched(f.repo, "4.root.json"));

    SECTION("the removed key alone no longer signs a root") {
        f.repo.root.signed_.version = 4;
        f.repo.signers["root"] = k1;
        f.repo.publish_root();
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::threshold_not_met);
    }
    SECTION("a root that skips a version") {
        f.repo.root.signed_.version = 5;
        f.repo.publish_root();
        f.repo.files[kMeta + "4.root.json"] = f.repo.files[kMeta + "5.root.json"];
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::version_mismatch);
    }
    SECTION("a new root must also be signed by its own keys") {
        f.repo.root.signed_.version = 4;
        f.repo.rotate_keys("root");
        f.repo.signers["root"] = {k2};  // signed only by the old root's key
        f.repo.publish_root();
        REQUIRE_REFRESH_REFUSED(f, tuf::Errc::threshold_not_met);
    }
}

TEST_CASE("TUF client: unknown key types and schemes in root are ignored") {
    TufClientFixture f;
    Key unknown_type;
    unknown_type.keytype = "x-quantum";
    unknown_type.scheme = "x-quantum-sig";
    unknown_type.keyval = {{"public", "abcd"}};
    Key unknown_scheme = Key::from_public_key(TufRepositorySimulator::new_key()->public_key());
    unknown_scheme.scheme = "x-unknown-scheme";
    f.repo.root.signed_.add_key("timestamp", unknown_type);
    f.repo.root.signed_.add_key("timestamp", unknown_scheme);
    f.repo.root.signed_.version = 2;
    f.repo.publish_root();
    REQUIRE(f.refresh().ok());
    CHECK(f.trusted_version("root.json") == 2);
    CHECK(f.trusted_version("timestamp.json") == 1);
}
