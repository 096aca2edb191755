// TufRepositorySimulator: see the header.
#include "tuf_repository_simulator.h"

#include <catch2/catch.hpp>

#include "pylon/signing/encoding.h"
#include "pylon/signing/sha256.h"
#include "pylon/signing/tuf/updater.h"

namespace pylon::test {

using namespace signing;
using namespace signing::tuf;
using signing::tuf::Errc;

namespace {

template <typename T>
void init_common(T& role, Time now) {
    role.version = 1;
    role.expires = now + std::chrono::days{30};
}

template <typename T>
std::string sign_all(Metadata<T>& md, const std::vector<TufRepositorySimulator::KeyPtr>& keys) {
    md.clear_signatures();
    for (const auto& k : keys) REQUIRE(md.sign(*k).ok());
    return md.to_bytes();
}

MetaFile meta_for(std::int64_t version, const std::string& bytes, bool with_hashes) {
    MetaFile m;
    m.version = version;
    if (with_hashes) {
        m.length = static_cast<std::int64_t>(bytes.size());
        m.hashes["sha256"] = hex_encode(sha256(bytes));
    }
    return m;
}

}  // namespace

TufRepositorySimulator::TufRepositorySimulator()
    : now(std::chrono::sys_days{std::chrono::year{2030} / 1 / 1}) {
    init_common(root.signed_, now);
    root.signed_.expires = now + std::chrono::days{365};
    root.signed_.consistent_snapshot = true;
    init_common(timestamp.signed_, now);
    init_common(snapshot.signed_, now);
    init_common(targets.signed_, now);
    for (const char* role : {"root", "timestamp", "snapshot", "targets"}) add_key(role, new_key());
    publish_root();
    publish();
}

TufRepositorySimulator::KeyPtr TufRepositorySimulator::new_key() {
    auto key = PrivateKey::generate(KeyType::ed25519);
    REQUIRE(key.ok());
    return std::make_shared<const PrivateKey>(std::move(*key));
}

void TufRepositorySimulator::add_key(const std::string& role, const KeyPtr& key) {
    root.signed_.add_key(role, Key::from_public_key(key->public_key()));
    signers[role].push_back(key);
}

void TufRepositorySimulator::rotate_keys(const std::string& role) {
    const auto ids = root.signed_.roles[role].keyids;
    for (const auto& id : ids) root.signed_.remove_key(role, id);
    signers[role].clear();
    add_key(role, new_key());
}

void TufRepositorySimulator::publish_root(const std::vector<KeyPtr>& extra_signers) {
    std::vector<KeyPtr> keys = signers["root"];
    keys.insert(keys.end(), extra_signers.begin(), extra_signers.end());
    const std::string bytes = sign_all(root, keys);
    files[std::string(kMetadataUrl) + std::to_string(root.signed_.version) + ".root.json"] =
        to_bytes(bytes);
}

Metadata<Targets>& TufRepositorySimulator::targets_of(const std::string& role) {
    if (role == "targets") return targets;
    auto it = delegated.find(role);
    REQUIRE(it != delegated.end());
    return it->second;
}

void TufRepositorySimulator::publish() {
    auto serve = [&](const std::string& name, std::int64_t version, const std::string& bytes) {
        files[std::string(kMetadataUrl) + name] = to_bytes(bytes);
        files[std::string(kMetadataUrl) + std::to_string(version) + "." + name] = to_bytes(bytes);
    };
    snapshot.signed_.meta.clear();
    std::vector<std::pair<std::string, Metadata<Targets>*>> all{{"targets", &targets}};
    for (auto& [name, d] : delegated) all.emplace_back(name, &d);
    for (auto& [name, md] : all) {
        const std::string bytes = sign_all(*md, signers[name]);
        serve(Updater::role_file_name(name), md->signed_.version, bytes);  // URL-encoded
        snapshot.signed_.meta[name + ".json"] = meta_for(md->signed_.version, bytes, meta_hashes);
    }
    const std::string snap = sign_all(snapshot, signers["snapshot"]);
    serve("snapshot.json", snapshot.signed_.version, snap);
    timestamp.signed_.snapshot_meta = meta_for(snapshot.signed_.version, snap, meta_hashes);
    files[std::string(kMetadataUrl) + "timestamp.json"] =
        to_bytes(sign_all(timestamp, signers["timestamp"]));
}

void TufRepositorySimulator::bump(const std::string& role) {
    if (role != "snapshot" && role != "timestamp") ++targets_of(role).signed_.version;
    if (role != "timestamp") ++snapshot.signed_.version;
    ++timestamp.signed_.version;
    publish();
}

DelegatedRole& TufRepositorySimulator::add_delegation(const std::string& parent,
                                                      const std::string& role,
                                                      std::vector<std::string> paths,
                                                      bool terminating) {
    auto& p = targets_of(parent).signed_;
    if (!p.delegations) p.delegations = Delegations{};
    const KeyPtr key = new_key();
    const Key k = Key::from_public_key(key->public_key());
    p.delegations->keys[k.key_id()] = k;
    DelegatedRole d;
    d.name = role;
    d.keyids = {k.key_id()};
    d.threshold = 1;
    d.terminating = terminating;
    d.paths = std::move(paths);
    p.delegations->roles.push_back(d);
    signers[role] = {key};
    Metadata<Targets> md;
    init_common(md.signed_, now);
    delegated[role] = std::move(md);
    return p.delegations->roles.back();
}

void TufRepositorySimulator::add_target(const std::string& path, const std::string& content,
                                        const std::string& role) {
    const TargetFile file = TargetFile::from_data(as_bytes(content));
    targets_of(role).signed_.targets[path] = file;
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    files[std::string(kTargetsUrl) + path] = to_bytes(content);
    files[std::string(kTargetsUrl) + dir + file.hashes.at("sha256") + "." + base] =
        to_bytes(content);
}

std::string TufRepositorySimulator::metadata_bytes(const std::string& name) const {
    auto it = files.find(std::string(kMetadataUrl) + name);
    REQUIRE(it != files.end());
    return to_string(it->second);
}

Result<Bytes> TufRepositorySimulator::fetch(const std::string& url, std::uint64_t max_length) {
    fetched.push_back(url);
    auto it = files.find(url);
    if (it == files.end()) return Error(Errc::fetch_failed, url + ": 404 Not Found");
    if (it->second.size() > max_length) {
        return Error(Errc::too_large, url + " is larger than " + std::to_string(max_length));
    }
    return it->second;
}

}  // namespace pylon::test
