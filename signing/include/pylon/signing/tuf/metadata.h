// TUF metadata (specification 1.0.x, theupdateframework/specification tuf-spec.md): the four
// top-level roles and delegated targets, their JSON exactly as the spec writes it, signing, and
// threshold verification.
//
// Every file is {"signed": {...}, "signatures": [{"keyid": HEX, "sig": HEX}]}, the signature taken
// over the canonical JSON of "signed". Fields this code does not know are kept (in `unrecognized`
// at each level) and written back, so re-signing metadata made by another implementation does not
// drop anything. Keys use the securesystemslib format (see keys.h); a key of a type or scheme we
// do not support is kept but can never satisfy a threshold — it is not an error.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/errors.h"

namespace pylon::signing::tuf {

using Json = nlohmann::json;
using Time = std::chrono::sys_seconds;

inline constexpr std::string_view kSpecVersion = "1.0.31";

// "2030-01-01T00:00:00Z" (UTC, whole seconds, trailing Z); anything else is malformed_metadata.
[[nodiscard]] Result<Time> parse_time(std::string_view text);
std::string format_time(Time t);

// A public key as TUF metadata carries it.
struct Key {
    std::string keytype;
    std::string scheme;
    Json keyval = Json::object();
    Json unrecognized = Json::object();

    static Key from_public_key(const PublicKey& key);
    [[nodiscard]] static Result<Key> from_json(const Json& j);
    Json to_json() const;
    // The key usable for verification, or nullopt for an unsupported type/scheme.
    std::optional<PublicKey> public_key() const;
    // sha256 of the canonical JSON of this key object (how TUF names keys).
    std::string key_id() const;
};

// The keys allowed to sign a role, and how many must.
struct RoleKeys {
    std::vector<std::string> keyids;
    std::uint32_t threshold = 1;
    Json unrecognized = Json::object();
};

// What timestamp says about snapshot, and snapshot about targets files.
struct MetaFile {
    std::int64_t version = 1;
    std::optional<std::int64_t> length;
    std::map<std::string, std::string> hashes;  // algorithm -> hex
    Json unrecognized = Json::object();

    [[nodiscard]] static Result<MetaFile> from_json(const Json& j);
    Json to_json() const;
    // Checks length (if given) and every hash we support (sha256, sha512) against `data`.
    [[nodiscard]] Result<void> verify(ByteView data, std::string_view what) const;
};

struct TargetFile {
    std::uint64_t length = 0;
    std::map<std::string, std::string> hashes;  // at least one
    std::optional<Json> custom;
    Json unrecognized = Json::object();

    [[nodiscard]] static Result<TargetFile> from_json(const Json& j);
    static TargetFile from_data(ByteView data, std::optional<Json> custom = std::nullopt);
    Json to_json() const;
    [[nodiscard]] Result<void> verify(ByteView data, std::string_view what) const;
};

struct DelegatedRole {
    std::string name;
    std::vector<std::string> keyids;
    std::uint32_t threshold = 1;
    bool terminating = false;
    std::optional<std::vector<std::string>> paths;               // fnmatch-style patterns
    std::optional<std::vector<std::string>> path_hash_prefixes;  // hex prefixes of sha256(path)
    Json unrecognized = Json::object();

    // Whether this role may sign `target_path` (spec §5.6.7.2: '*' matches within one path
    // segment, path hash prefixes match the hex SHA-256 of the path).
    bool is_delegated_path(std::string_view target_path) const;
    RoleKeys role_keys() const { return {keyids, threshold, {}}; }
};

struct Delegations {
    std::map<std::string, Key> keys;
    std::vector<DelegatedRole> roles;  // in order: the order of the search
    Json unrecognized = Json::object();
};

// Fields every role has.
struct Common {
    std::string spec_version = std::string(kSpecVersion);
    std::int64_t version = 1;
    Time expires{};
    Json unrecognized = Json::object();

    bool is_expired(Time reference) const { return reference >= expires; }
};

struct Root : Common {
    static constexpr std::string_view kType = "root";
    bool consistent_snapshot = true;
    std::map<std::string, Key> keys;
    std::map<std::string, RoleKeys> roles;  // root, timestamp, snapshot, targets

    [[nodiscard]] static Result<Root> from_json(const Json& j);
    Json to_json() const;
    // Adds the key (under its key ID) to `role`; removes it with remove_key.
    void add_key(const std::string& role, const Key& key);
    void remove_key(const std::string& role, const std::string& keyid);
};

struct Timestamp : Common {
    static constexpr std::string_view kType = "timestamp";
    MetaFile snapshot_meta;  // meta["snapshot.json"]

    [[nodiscard]] static Result<Timestamp> from_json(const Json& j);
    Json to_json() const;
};

struct Snapshot : Common {
    static constexpr std::string_view kType = "snapshot";
    std::map<std::string, MetaFile> meta;  // "targets.json", "<delegated>.json"

    [[nodiscard]] static Result<Snapshot> from_json(const Json& j);
    Json to_json() const;
};

struct Targets : Common {
    static constexpr std::string_view kType = "targets";
    std::map<std::string, TargetFile> targets;
    std::optional<Delegations> delegations;

    [[nodiscard]] static Result<Targets> from_json(const Json& j);
    Json to_json() const;
};

struct Signature {
    std::string keyid;
    std::string sig;  // hex
    Json unrecognized = Json::object();
};

// Limits for parsing untrusted metadata.
inline constexpr std::size_t kMaxMetadataDepth = 32;

// A signed metadata file of role type T.
template <typename T>
struct Metadata {
    T signed_;
    std::vector<Signature> signatures;
    Json unrecognized = Json::object();
    // For parsed metadata: the canonical JSON of "signed" exactly as received, which is what
    // its signatures cover (so a field this code would write differently cannot break them).
    std::optional<std::string> received_signed_bytes;

    // Parses metadata bytes; checks "_type" (wrong_role_type) and every field's type.
    [[nodiscard]] static Result<Metadata> parse(std::string_view bytes);
    // The file's JSON text (pretty-printed, as python-tuf writes it).
    std::string to_bytes() const;
    // The bytes signatures cover: received_signed_bytes if set, else the canonical JSON of
    // signed_.to_json().
    [[nodiscard]] Result<std::string> signed_bytes() const;
    // Adds a signature by `key` over the current content (replacing any earlier one by the same
    // key ID); forgets received_signed_bytes, since signed_ may have been edited.
    [[nodiscard]] Result<void> sign(const PrivateKey& key);
    void clear_signatures() { signatures.clear(); }
};

// Verifies that `role`'s threshold of distinct keys from `keys` signed `signed_bytes`. Each
// authorised key ID counts once however many signatures carry it, and two key IDs for the same
// key material count once; signatures by unknown or unsupported keys are ignored. Errors:
// threshold_not_met, naming the role and the count.
[[nodiscard]] Result<void> verify_threshold(std::string_view role_name,
                                            const std::map<std::string, Key>& keys,
                                            const RoleKeys& role, std::string_view signed_bytes,
                                            const std::vector<Signature>& signatures);

// Convenience: verifies `md` as role `role_name` of `root` (or of delegations).
template <typename T>
[[nodiscard]] Result<void> verify_with(const Metadata<T>& md, std::string_view role_name,
                                       const std::map<std::string, Key>& keys,
                                       const RoleKeys& role) {
    PYLON_TRY_ASSIGN(std::string bytes, md.signed_bytes());
    return verify_threshold(role_name, keys, role, bytes, md.signatures);
}

extern template struct Metadata<Root>;
extern template struct Metadata<Timestamp>;
extern template struct Metadata<Snapshot>;
extern template struct Metadata<Targets>;

}  // namespace pylon::signing::tuf
