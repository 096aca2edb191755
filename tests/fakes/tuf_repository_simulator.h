// TufRepositorySimulator: an in-memory TUF repository for client tests. It holds editable
// metadata for every role and the keys that sign it, publishes signed bytes under URLs, and
// serves them through the Fetcher interface, recording every URL asked for.
//
// Tests edit the public members (versions, expiries, keys, delegations, signers), call publish()
// or publish_root(), and may then tamper with the served bytes in `files` directly. Nothing is
// re-signed behind a test's back.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/fetcher.h"
#include "pylon/signing/tuf/metadata.h"

namespace pylon::test {

class TufRepositorySimulator : public signing::tuf::Fetcher {
public:
    using KeyPtr = std::shared_ptr<const signing::PrivateKey>;
    using Time = signing::tuf::Time;

    static constexpr const char* kMetadataUrl = "https://repo.test/metadata/";
    static constexpr const char* kTargetsUrl = "https://repo.test/targets/";

    // Version 1 of every role, one fresh Ed25519 key per role, threshold 1, expiring 30 days
    // after `now`; root v1 and everything else published.
    TufRepositorySimulator();

    static KeyPtr new_key();

    // Adds `key` to top-level `role` in root and to that role's signers.
    void add_key(const std::string& role, const KeyPtr& key);
    // Replaces every key of top-level `role` by one new key (root is not re-published).
    void rotate_keys(const std::string& role);

    // Signs root with signers["root"] plus `extra_signers` (e.g. the previous root keys) and
    // serves it as "<version>.root.json".
    void publish_root(const std::vector<KeyPtr>& extra_signers = {});
    // Signs every targets role, then snapshot (listing their versions, and lengths and hashes
    // when meta_hashes), then timestamp, and serves them ("<V>.<role>.json" and "<role>.json").
    void publish();
    // Bumps the version of `role` ("targets", a delegated role, "snapshot" or "timestamp")
    // and every role above it (targets -> snapshot -> timestamp), then publish().
    void bump(const std::string& role);

    // Delegates from `parent` to a new role `role` with one new key; the role's metadata starts
    // empty at version 1. Returns the delegation entry in the parent (to edit paths etc.).
    signing::tuf::DelegatedRole& add_delegation(const std::string& parent, const std::string& role,
                                                std::vector<std::string> paths,
                                                bool terminating = false);
    // Adds a target with `content` to `role`'s metadata and serves its bytes (under both the
    // plain path and the consistent "<dir>/<sha256>.<name>" path). Call publish() after.
    void add_target(const std::string& path, const std::string& content,
                    const std::string& role = "targets");

    // Targets metadata of `role` ("targets" or a delegated role).
    signing::tuf::Metadata<signing::tuf::Targets>& targets_of(const std::string& role);
    // The bytes of a metadata file as published, e.g. "1.root.json", "timestamp.json".
    std::string metadata_bytes(const std::string& name) const;

    // Fetcher: serves `files`, too_large beyond max_length, fetch_failed for unknown URLs.
    [[nodiscard]] Result<Bytes> fetch(const std::string& url, std::uint64_t max_length) override;

    Time now;  // the reference time tests run the client at
    signing::tuf::Metadata<signing::tuf::Root> root;
    signing::tuf::Metadata<signing::tuf::Timestamp> timestamp;
    signing::tuf::Metadata<signing::tuf::Snapshot> snapshot;
    signing::tuf::Metadata<signing::tuf::Targets> targets;
    std::map<std::string, signing::tuf::Metadata<signing::tuf::Targets>> delegated;
    std::map<std::string, std::vector<KeyPtr>> signers;  // role -> keys publish() signs with
    bool meta_hashes = true;  // snapshot/timestamp list lengths and hashes, not just versions
    std::map<std::string, Bytes> files;  // URL -> bytes served
    std::vector<std::string> fetched;    // every URL asked for, in order
};

}  // namespace pylon::test
