// TUF metadata: JSON (de)serialisation of every role, signing and threshold verification.
#include "pylon/signing/tuf/metadata.h"

#include <fnmatch.h>

#include <cstdio>
#include <ctime>
#include <set>

#include "json_fields.h"
#include "pylon/signing/encoding.h"
#include "pylon/signing/json.h"
#include "pylon/signing/sha256.h"

namespace pylon::signing::tuf {

using detail::Fields;
using detail::merge_unrecognized;

namespace {

Error malformed(std::string what) {
    return Error(Errc::malformed_metadata, std::move(what));
}

Result<std::map<std::string, std::string>> read_hashes(const Json& j, const std::string& where) {
    std::map<std::string, std::string> out;
    for (const auto& [alg, v] : j.items()) {
        if (!v.is_string() || !hex_decode(v.get<std::string>())) {
            return malformed(where + ".hashes." + alg + " is not a hex string");
        }
        out[alg] = v.get<std::string>();
    }
    return out;
}

Result<std::vector<std::string>> read_strings(const Json& j, const std::string& where) {
    std::vector<std::string> out;
    for (const auto& v : j) {
        if (!v.is_string()) return malformed(where + " must hold only strings");
        out.push_back(v.get<std::string>());
    }
    return out;
}

Result<std::uint32_t> read_threshold(Fields& f) {
    PYLON_TRY_ASSIGN(std::int64_t t, f.integer("threshold"));
    if (t < 1 || t > 1024) return malformed(f.where() + ".threshold must be between 1 and 1024");
    return static_cast<std::uint32_t>(t);
}

Result<std::map<std::string, Key>> read_keys(const Json& j, const std::string& where) {
    std::map<std::string, Key> keys;
    for (const auto& [id, k] : j.items()) {
        auto key = Key::from_json(k);
        if (!key) return std::move(key).error().with_context(where + "." + id);
        keys.emplace(id, std::move(*key));
    }
    return keys;
}

Json keys_to_json(const std::map<std::string, Key>& keys) {
    Json out = Json::object();
    for (const auto& [id, k] : keys) out[id] = k.to_json();
    return out;
}

// Reads the fields all roles share; checks "_type".
Result<void> read_common(Fields& f, std::string_view type, Common& c) {
    PYLON_TRY_ASSIGN(std::string t, f.string("_type"));
    if (t != type) {
        return Error(Errc::wrong_role_type, "metadata is of type \"" + t.substr(0, 64) +
                                                "\", expected \"" + std::string(type) + "\"");
    }
    PYLON_TRY_ASSIGN(c.spec_version, f.string("spec_version"));
    if (c.spec_version.rfind("1.", 0) != 0) {
        return malformed("unsupported spec_version \"" + c.spec_version.substr(0, 32) + "\"");
    }
    PYLON_TRY_ASSIGN(c.version, f.integer("version"));
    if (c.version < 1) return malformed(std::string(type) + " version must be at least 1");
    PYLON_TRY_ASSIGN(std::string expires, f.string("expires"));
    PYLON_TRY_ASSIGN(c.expires, parse_time(expires));
    return {};
}

Json common_json(std::string_view type, const Common& c) {
    return {{"_type", type},
            {"spec_version", c.spec_version},
            {"version", c.version},
            {"expires", format_time(c.expires)}};
}

// One segment of a path pattern against one segment of a target path (shell-style: *, ?, [..]).
bool segments_match(const std::string& pattern, const std::string& segment) {
    return ::fnmatch(pattern.c_str(), segment.c_str(), 0) == 0;
}

std::vector<std::string> split_path(std::string_view p) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (true) {
        const auto slash = p.find('/', start);
        out.emplace_back(p.substr(start, slash == std::string_view::npos ? p.npos : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return out;
}

}  // namespace

Result<Time> parse_time(std::string_view text) {
    // Exactly YYYY-MM-DDTHH:MM:SSZ.
    if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
        text[13] != ':' || text[16] != ':' || text[19] != 'Z') {
        return malformed("expires \"" + std::string(text.substr(0, 40)) +
                         "\" is not YYYY-MM-DDTHH:MM:SSZ");
    }
    for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18}) {
        if (text[i] < '0' || text[i] > '9') return malformed("expires has a non-digit");
    }
    auto num = [&](std::size_t pos, std::size_t len) {
        int v = 0;
        for (std::size_t i = pos; i < pos + len; ++i) v = v * 10 + (text[i] - '0');
        return v;
    };
    const std::chrono::year_month_day ymd{std::chrono::year{num(0, 4)},
                                          std::chrono::month{static_cast<unsigned>(num(5, 2))},
                                          std::chrono::day{static_cast<unsigned>(num(8, 2))}};
    const int h = num(11, 2), m = num(14, 2), s = num(17, 2);
    if (!ymd.ok() || h > 23 || m > 59 || s > 60) return malformed("expires is not a valid date");
    return std::chrono::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{m} +
           std::chrono::seconds{s};
}

std::string format_time(Time t) {
    const auto days = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::year_month_day ymd{days};
    const std::chrono::hh_mm_ss hms{t - days};
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

// --- Key ---------------------------------------------------------------------------------------

Key Key::from_public_key(const PublicKey& key) {
    const Json j = key.to_tuf();
    Key k;
    k.keytype = j["keytype"];
    k.scheme = j["scheme"];
    k.keyval = j["keyval"];
    return k;
}

Result<Key> Key::from_json(const Json& j) {
    PYLON_TRY_ASSIGN(Fields f, Fields::of(j, "key"));
    Key k;
    PYLON_TRY_ASSIGN(k.keytype, f.string("keytype"));
    PYLON_TRY_ASSIGN(k.scheme, f.string("scheme"));
    PYLON_TRY_ASSIGN(const Json* keyval, f.required("keyval", "object"));
    k.keyval = *keyval;
    k.unrecognized = f.rest();
    return k;
}

Json Key::to_json() const {
    Json out = {{"keytype", keytype}, {"scheme", scheme}, {"keyval", keyval}};
    merge_unrecognized(out, unrecognized);
    return out;
}

std::optional<PublicKey> Key::public_key() const {
    auto k = PublicKey::from_tuf(to_json());
    if (!k) return std::nullopt;
    return std::move(*k);
}

std::string Key::key_id() const {
    auto canonical = canonical_json(to_json());
    return canonical ? to_hex(sha256(*canonical)) : std::string();
}

// --- MetaFile, TargetFile ------------------------------------------------------------------------

Result<MetaFile> MetaFile::from_json(const Json& j) {
    PYLON_TRY_ASSIGN(Fields f, Fields::of(j, "meta entry"));
    MetaFile m;
    PYLON_TRY_ASSIGN(m.version, f.integer("version"));
    if (m.version < 1) return malformed("meta entry version must be at least 1");
    PYLON_TRY_ASSIGN(const Json* length, f.optional("length", "integer"));
    if (length) {
        if (length->get<std::int64_t>() < 0) return malformed("meta entry length is negative");
        m.length = length->get<std::int64_t>();
    }
    PYLON_TRY_ASSIGN(const Json* hashes, f.optional("hashes", "object"));
    if (hashes) {
        PYLON_TRY_ASSIGN(m.hashes, read_hashes(*hashes, "meta entry"));
        if (m.hashes.empty()) return malformed("meta entry has an empty hashes object");
    }
    m.unrecognized = f.rest();
    return m;
}

Json MetaFile::to_json() const {
    Json out = {{"version", version}};
    if (length) out["length"] = *length;
    if (!hashes.empty()) out["hashes"] = hashes;
    merge_unrecognized(out, unrecognized);
    return out;
}

namespace {

// Checks the hashes we can compute; an unknown algorithm alone cannot vouch for anything.
Result<void> verify_hashes(const std::map<std::string, std::string>& hashes, ByteView data,
                           std::string_view what) {
    for (const auto& [alg, hex] : hashes) {
        if (alg == "sha256") {
            if (to_hex(sha256(data)) != hex) {
                return Error(Errc::hash_mismatch, std::string(what) + ": sha256 does not match");
            }
        }
    }
    return {};
}

}  // namespace

Result<void> MetaFile::verify(ByteView data, std::string_view what) const {
    if (length && static_cast<std::uint64_t>(*length) != data.size()) {
        return Error(Errc::length_mismatch, std::string(what) + " is " +
                                                std::to_string(data.size()) + " bytes, expected " +
                                                std::to_string(*length));
    }
    return verify_hashes(hashes, data, what);
}

Result<TargetFile> TargetFile::from_json(const Json& j) {
    PYLON_TRY_ASSIGN(Fields f, Fields::of(j, "target"));
    TargetFile t;
    PYLON_TRY_ASSIGN(std::int64_t length, f.integer("length"));
    if (length < 0) return malformed("target length is negative");
    t.length = static_cast<std::uint64_t>(length);
    PYLON_TRY_ASSIGN(const Json* hashes, f.required("hashes", "object"));
    PYLON_TRY_ASSIGN(t.hashes, read_hashes(*hashes, "target"));
    if (t.hashes.empty()) return malformed("target has no hashes");
    PYLON_TRY_ASSIGN(const Json* custom, f.optional("custom", "any"));
    if (custom) t.custom = *custom;
    t.unrecognized = f.rest();
    return t;
}

TargetFile TargetFile::from_data(ByteView data, std::optional<Json> custom) {
    TargetFile t;
    t.length = data.size();
    t.hashes["sha256"] = to_hex(sha256(data));
    t.custom = std::move(custom);
    return t;
}

Json TargetFile::to_json() const {
    Json out = {{"length", length}, {"hashes", hashes}};
    if (custom) out["custom"] = *custom;
    merge_unrecognized(out, unrecognized);
    return out;
}

Result<void> TargetFile::verify(ByteView data, std::string_view what) const {
    if (data.size() != length) {
        return Error(Errc::length_mismatch, std::string(what) + " is " +
                                                std::to_string(data.size()) + " bytes, expected " +
                                                std::to_string(length));
    }
    if (!hashes.count("sha256")) {
        return Error(Errc::hash_mismatch, std::string(what) + ": no sha256 hash to check against");
    }
    return verify_hashes(hashes, data, what);
}

// --- Delegations -------------------------------------------------------------------------------

bool DelegatedRole::is_delegated_path(std::string_view target_path) const {
    if (paths) {
        const auto target = split_path(target_path);
        for (const auto& pattern : *paths) {
            const auto parts = split_path(pattern);
            if (parts.size() != target.size()) continue;
            bool all = true;
            for (std::size_t i = 0; i < parts.size() && all; ++i) {
                all = segments_match(parts[i], target[i]);
            }
            if (all) return true;
        }
        return false;
    }
    if (path_hash_prefixes) {
        const std::string h = to_hex(sha256(target_path));
        for (const auto& prefix : *path_hash_prefixes) {
            if (h.rfind(prefix, 0) == 0) return true;
        }
    }
    return false;
}

namespace {

Result<Delegations> read_delegations(const Json& j) {
    PYLON_TRY_ASSIGN(Fields f, Fields::of(j, "delegations"));
    Delegations d;
    PYLON_TRY_ASSIGN(const Json* keys, f.required("keys", "object"));
    PYLON_TRY_ASSIGN(d.keys, read_keys(*keys, "delegations.keys"));
    PYLON_TRY_ASSIGN(const Json* roles, f.required("roles", "array"));
    std::set<std::string> names;
    for (const auto& r : *roles) {
        PYLON_TRY_ASSIGN(Fields rf, Fields::of(r, "delegated role"));
        DelegatedRole role;
        PYLON_TRY_ASSIGN(role.name, rf.string("name"));
        if (role.name.empty() || !names.insert(role.name).second || role.name == "root" ||
            role.name == "timestamp" || role.name == "snapshot" || role.name == "targets") {
            return malformed("delegated role name \"" + role.name.substr(0, 64) +
                             "\" is empty, repeated or a top-level role");
        }
        PYLON_TRY_ASSIGN(const Json* keyids, rf.required("keyids", "array"));
        PYLON_TRY_ASSIGN(role.keyids, read_strings(*keyids, "delegated role keyids"));
        PYLON_TRY_ASSIGN(role.threshold, read_threshold(rf));
        PYLON_TRY_ASSIGN(const Json* terminating, rf.required("terminating", "boolean"));
        role.terminating = terminating->get<bool>();
        PYLON_TRY_ASSIGN(const Json* paths, rf.optional("paths", "array"));
        PYLON_TRY_ASSIGN(const Json* prefixes, rf.optional("path_hash_prefixes", "array"));
        if (paths && prefixes) {
            return malformed("delegated role \"" + role.name +
                             "\" has both paths and path_hash_prefixes");
        }
        if (paths) {
            PYLON_TRY_ASSIGN(role.paths, read_strings(*paths, "paths"));
        }
        if (prefixes) {
            PYLON_TRY_ASSIGN(role.path_hash_prefixes,
                             read_strings(*prefixes, "path_hash_prefixes"));
        }
        role.unrecognized = rf.rest();
        d.roles.push_back(std::move(role));
    }
    d.unrecognized = f.rest();
    return d;
}

Json delegations_json(const Delegations& d) {
    Json roles = Json::array();
    for (const auto& r : d.roles) {
        Json role = {{"name", r.name},
                     {"keyids", r.keyids},
                     {"threshold", r.threshold},
                     {"terminating", r.terminating}};
        if (r.paths) role["paths"] = *r.paths;
        if (r.path_hash_prefixes) role["path_hash_prefixes"] = *r.path_hash_prefixes;
        merge_unrecognized(role, r.unrecognized);
        roles.push_back(std::move(role));
    }
    Json out = {{"keys", keys_to_json(d.keys)}, {"roles", roles}};
    merge_unrecognized(out, d.unrecognized);
    return out;
}

}  // namespace

// --- Roles -------------------------------------------------------------------------------------

Result<Root> Root::from_json(const Json& j) {
    PYLON_TRY_ASSIGN(Fields f, Fields::of(j, "root"));
    Root r;
    PYLON_TRY(read_common(f, kType, r));
    PYLON_TRY_ASSIGN(const Json* cs, f.optional("consistent_snapshot", "boolean"));
    r.consistent_snapshot = cs ? cs->get<bool>() : false;
    PYLON_TRY_ASSIGN(const Json* keys, f.required("keys", "object"));
    PYLON_TRY_ASSIGN(r.keys, read_keys(*keys, "root.keys"));
    PYLON_TRY_ASSIGN(const Json* roles, f.required("roles", "object"));
    for (const char* name : {"root", "timestamp", "snapshot", "targets"}) {
        if (!roles->contains(name))
            return malformed(std::string("root.roles lacks \"") + name + "\"");
    }
    for (const auto& [name, role] : roles->items()) {
        PYLON_TRY_ASSIGN(Fields rf, Fields::of(role, "root.roles." + name));
        RoleKeys rk;
        PYLON_TRY_ASSIGN(const Json* keyids, rf.required("keyids", "array"));
        PYLON_TRY_ASSIGN(rk.keyids, read_strings(*keyids, "root.roles." + name + ".keyids"));
        PYLON_TRY_ASSIGN(rk.threshold, read_threshold(rf));
        rk.unrecognized = rf.rest();
        r.roles.emplace(name, std::move(rk));
    }
    r.unrecognized = f.rest();
    return r;
}

Json Root::to_json() const {
    Json out = common_json(kType, *this);
    out["consistent_snapshot"] = consistent_snapshot;
    out["keys"] = keys_to_json(keys);
    Json roles_json = Json::object();
    for (const auto& [name, rk] : roles) {
        Json role = {{"keyids", rk.keyids}, {"threshold", rk.threshold}};
        merge_unrecognized(role, rk.unrecognized);
        roles_json[name] = std::move(role);
    }
    out["roles"] = std::move(roles_json);
    merge_unrecognized(out, unrecognized);
    return out;
}

void Root::add_key(const std::string& role, const Key& key) {
    const std::string id = key.key_id();
    keys[id] = key;
    auto& ids = roles[role].keyids;
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

void Root::remove_key(const std::string& role, const std::string& keyid) {
    auto& ids = roles[role].keyids;
    ids.erase(std::remove(ids.begin(), ids.end(), keyid), ids.end());
    for (const auto& [name, rk] : roles) {
        if (std::find(rk.keyids.begin(), rk.keyids.end(), keyid) != rk.keyids.end()) return;
    }
    keys.erase(keyid);  // no role uses it any more
}

Result<Timestamp> Timestamp::from_json(const Json& j) {
    PYLON_TRY_ASSIGN(Fields f, Fields::of(j, "timestamp"));
    Timestamp t;
    PYLON_TRY(read_common(f, kType, t));
    PYLON_TRY_ASSIGN(const Json* meta, f.required("meta", "object"));
    if (meta->size() != 1 || !meta->contains("snapshot.json")) {
        return malformed("timestamp.meta must name exactly snapshot.json");
    }
    PYLON_TRY_ASSIGN(t.snapshot_meta, MetaFile::from_json((*meta)["snapshot.json"]));
    t.unrecognized = f.rest();
    return t;
}

Json Timestamp::to_json() const {
    Json out = common_json(kType, *this);
    out["meta"] = {{"snapshot.json", snapshot_meta.to_json()}};
    merge_unrecognized(out, unrecognized);
    return out;
}

Result<Snapshot> Snapshot::from_json(const Json& j) {
    PYLON_TRY_ASSIGN(Fields f, Fields::of(j, "snapshot"));
    Snapshot s;
    PYLON_TRY(read_common(f, kType, s));
    PYLON_TRY_ASSIGN(const Json* meta, f.required("meta", "object"));
    for (const auto& [name, m] : meta->items()) {
        auto entry = MetaFile::from_json(m);
        if (!entry) return std::move(entry).error().with_context("snapshot.meta." + name);
        s.meta.emplace(name, std::move(*entry));
    }
    if (!s.meta.count("targets.json")) return malformed("snapshot.meta lacks targets.json");
    s.unrecognized = f.rest();
    return s;
}

Json Snapshot::to_json() const {
    Json out = common_json(kType, *this);
    Json meta_json = Json::object();
    for (const auto& [name, m] : meta) meta_json[name] = m.to_json();
    out["meta"] = std::move(meta_json);
    merge_unrecognized(out, unrecognized);
    return out;
}

Result<Targets> Targets::from_json(const Json& j) {
    PYLON_TRY_ASSIGN(Fields f, Fields::of(j, "targets"));
    Targets t;
    PYLON_TRY(read_common(f, kType, t));
    PYLON_TRY_ASSIGN(const Json* targets, f.required("targets", "object"));
    for (const auto& [path, tf] : targets->items()) {
        auto file = TargetFile::from_json(tf);
        if (!file) return std::move(file).error().with_context("targets." + path);
        t.targets.emplace(path, std::move(*file));
    }
    PYLON_TRY_ASSIGN(const Json* delegations, f.optional("delegations", "object"));
    if (delegations) {
        PYLON_TRY_ASSIGN(t.delegations, read_delegations(*delegations));
    }
    t.unrecognized = f.rest();
    return t;
}

Json Targets::to_json() const {
    Json out = common_json(kType, *this);
    Json targets_json = Json::object();
    for (const auto& [path, tf] : targets) targets_json[path] = tf.to_json();
    out["targets"] = std::move(targets_json);
    if (delegations) out["delegations"] = delegations_json(*delegations);
    merge_unrecognized(out, unrecognized);
    return out;
}

// --- Metadata<T> -------------------------------------------------------------------------------

template <typename T>
Result<Metadata<T>> Metadata<T>::parse(std::string_view bytes) {
    auto doc = parse_json(bytes, JsonLimits{bytes.size(), static_cast<int>(kMaxMetadataDepth)});
    if (!doc) return malformed(std::string(T::kType) + " metadata: " + doc.error().message());
    PYLON_TRY_ASSIGN(Fields f, Fields::of(*doc, std::string(T::kType) + " metadata"));
    PYLON_TRY_ASSIGN(const Json* signed_json, f.required("signed", "object"));
    PYLON_TRY_ASSIGN(const Json* sigs, f.required("signatures", "array"));
    Metadata<T> md;
    PYLON_TRY_ASSIGN(md.signed_, T::from_json(*signed_json));
    for (const auto& s : *sigs) {
        PYLON_TRY_ASSIGN(Fields sf, Fields::of(s, "signature"));
        Signature sig;
        PYLON_TRY_ASSIGN(sig.keyid, sf.string("keyid"));
        PYLON_TRY_ASSIGN(sig.sig, sf.string("sig"));
        sig.unrecognized = sf.rest();
        md.signatures.push_back(std::move(sig));
    }
    md.unrecognized = f.rest();
    auto canonical = canonical_json(*signed_json);
    if (!canonical)
        return malformed(std::string(T::kType) + " metadata: " + canonical.error().message());
    md.received_signed_bytes = std::move(*canonical);
    return md;
}

template <typename T>
std::string Metadata<T>::to_bytes() const {
    Json sigs = Json::array();
    for (const auto& s : signatures) {
        Json j = {{"keyid", s.keyid}, {"sig", s.sig}};
        merge_unrecognized(j, s.unrecognized);
        sigs.push_back(std::move(j));
    }
    Json out = {{"signed", signed_.to_json()}, {"signatures", sigs}};
    merge_unrecognized(out, unrecognized);
    return out.dump(1, ' ', false) + "\n";
}

template <typename T>
Result<std::string> Metadata<T>::signed_bytes() const {
    if (received_signed_bytes) return *received_signed_bytes;
    auto c = canonical_json(signed_.to_json());
    if (!c) return malformed(c.error().message());
    return std::move(*c);
}

template <typename T>
Result<void> Metadata<T>::sign(const PrivateKey& key) {
    received_signed_bytes.reset();
    PYLON_TRY_ASSIGN(std::string bytes, signed_bytes());
    PYLON_TRY_ASSIGN(Bytes sig, key.sign(bytes));
    const std::string& keyid = key.key_id();  // the TUF key ID (keys.h)
    signatures.erase(std::remove_if(signatures.begin(), signatures.end(),
                                    [&](const Signature& s) { return s.keyid == keyid; }),
                     signatures.end());
    signatures.push_back({keyid, hex_encode(sig), Json::object()});
    return {};
}

template struct Metadata<Root>;
template struct Metadata<Timestamp>;
template struct Metadata<Snapshot>;
template struct Metadata<Targets>;

Result<void> verify_threshold(std::string_view role_name, const std::map<std::string, Key>& keys,
                              const RoleKeys& role, std::string_view signed_bytes,
                              const std::vector<Signature>& signatures) {
    std::set<std::string> counted_ids;
    std::set<Bytes> counted_keys;  // the same key material under two IDs counts once
    for (const auto& keyid : role.keyids) {
        if (counted_ids.count(keyid)) continue;
        auto key_it = keys.find(keyid);
        if (key_it == keys.end()) continue;
        const auto pub = key_it->second.public_key();
        if (!pub || counted_keys.count(pub->raw())) continue;  // unsupported: ignored
        for (const auto& sig : signatures) {
            if (sig.keyid != keyid) continue;
            auto raw = hex_decode(sig.sig);
            if (raw && pub->verify(signed_bytes, *raw)) {
                counted_ids.insert(keyid);
                counted_keys.insert(pub->raw());
                break;
            }
        }
    }
    if (counted_ids.size() >= role.threshold) return {};
    return Error(Errc::threshold_not_met,
                 std::string(role_name) + ": " + std::to_string(counted_ids.size()) + " of " +
                     std::to_string(role.threshold) + " required signatures are valid");
}

}  // namespace pylon::signing::tuf
