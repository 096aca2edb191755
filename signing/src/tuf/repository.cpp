// TUF repository: staging, signing and writing of a repository directory (layout in
// repository.h).
#include "pylon/signing/tuf/repository.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <deque>

#include "pylon/common/file_io.h"
#include "pylon/signing/sha256.h"
#include "repository_internal.h"

namespace pylon::signing::tuf {

namespace fs = std::filesystem;

using detail::check_delegation_spec;
using detail::check_distinct;
using detail::check_target_path;
using detail::check_threshold;
using detail::invalid;
using detail::is_top_level;
using detail::is_valid_role_name;
using detail::make_dirs;

namespace {

constexpr std::size_t kMaxMetadataFile = 64 * 1024 * 1024;

// Where a target's bytes live under DIR/targets/ (spec §5.7.2: consistent snapshots prefix the
// base name with the hash).
fs::path storage_path(const fs::path& targets_dir, std::string_view target_path,
                      const std::string& sha256_hex, bool consistent) {
    if (!consistent) return targets_dir / std::string(target_path);
    const auto slash = target_path.rfind('/');
    const std::string base(slash == target_path.npos ? target_path : target_path.substr(slash + 1));
    const fs::path dir = slash == target_path.npos
                             ? targets_dir
                             : targets_dir / std::string(target_path.substr(0, slash));
    return dir / (sha256_hex + "." + base);
}

struct Copied {
    std::uint64_t length = 0;
    Digest sha256{};
    fs::path temp;  // fsynced; the caller renames it into place
};

// Copies `from` into a new temporary file in `dir`, hashing as it goes.
Result<Copied> copy_hashed(const fs::path& from, const fs::path& dir) {
    const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return Error::from_errno(errno, "open " + from.string());
    std::string tmpl = (dir / ".incoming.tmp-XXXXXX").string();
    const int out = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (out < 0) {
        const int err = errno;
        ::close(in);
        return Error::from_errno(err, "create temporary file in " + dir.string());
    }
    auto fail = [&](Error e) -> Error {
        ::close(in);
        ::close(out);
        ::unlink(tmpl.c_str());
        return e;
    };
    Sha256 hasher;
    std::uint64_t length = 0;
    std::vector<std::uint8_t> buf(1 << 20);
    while (true) {
        const ssize_t n = ::read(in, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(Error::from_errno(errno, "read " + from.string()));
        if (n == 0) break;
        hasher.update(ByteView(buf.data(), static_cast<std::size_t>(n)));
        length += static_cast<std::uint64_t>(n);
        for (ssize_t done = 0; done < n;) {
            const ssize_t w = ::write(out, buf.data() + done, static_cast<std::size_t>(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return fail(Error::from_errno(errno, "write " + tmpl));
            done += w;
        }
    }
    if (::fchmod(out, 0644) != 0 || ::fsync(out) != 0) {
        return fail(Error::from_errno(errno, "fsync " + tmpl));
    }
    ::close(in);
    if (::close(out) != 0) {
        const int err = errno;
        ::unlink(tmpl.c_str());
        return Error::from_errno(err, "close " + tmpl);
    }
    return Copied{length, hasher.finish(), fs::path(tmpl)};
}

template <typename T>
Result<Metadata<T>> load_metadata(const fs::path& path, std::string* bytes_out = nullptr) {
    auto bytes = read_file(path, kMaxMetadataFile);
    if (!bytes) return std::move(bytes).error().with_context("loading " + path.string());
    auto md = Metadata<T>::parse(*bytes);
    if (!md) return std::move(md).error().with_context("loading " + path.string());
    if (bytes_out) *bytes_out = std::move(*bytes);
    return std::move(*md);
}

}  // namespace

// --- ExpiryPolicy, Signers ---------------------------------------------------------------------

std::chrono::days ExpiryPolicy::for_role(std::string_view role) const {
    if (role == "root") return root;
    if (role == "snapshot") return snapshot;
    if (role == "timestamp") return timestamp;
    return targets;
}

Signers& Signers::add(std::string role, const PrivateKey& key) {
    keys_[std::move(role)].push_back(&key);
    return *this;
}

std::vector<const PrivateKey*> Signers::for_role(std::string_view role) const {
    auto it = keys_.find(role);
    return it == keys_.end() ? std::vector<const PrivateKey*>{} : it->second;
}

// --- Create / open -----------------------------------------------------------------------------

Result<Repository> Repository::create(const fs::path& dir, const CreateOptions& options,
                                      ExpiryPolicy policy) {
    if (fs::exists(dir / "metadata" / "root.json")) {
        return invalid("a TUF repository already exists in " + dir.string());
    }
    Repository repo;
    repo.dir_ = dir;
    repo.policy_ = policy;
    Root& root = repo.root_.signed_;
    root.version = 0;  // every staged role gets version + 1 at publish
    root.consistent_snapshot = options.consistent_snapshot;
    const std::pair<std::string, const RoleKeySpec*> specs[] = {{"root", &options.root},
                                                                {"targets", &options.targets},
                                                                {"snapshot", &options.snapshot},
                                                                {"timestamp", &options.timestamp}};
    for (const auto& [name, spec] : specs) {
        if (spec->keys.empty()) return invalid("role \"" + name + "\" needs at least one key");
        PYLON_TRY(check_distinct(name, spec->keys));
        PYLON_TRY(check_threshold(name, spec->threshold, spec->keys.size()));
        root.roles[name].threshold = spec->threshold;
        for (const auto& k : spec->keys) root.add_key(name, Key::from_public_key(k));
    }
    repo.timestamp_.signed_.version = 0;
    repo.snapshot_.signed_.version = 0;
    TargetsRole top;
    top.md.signed_.version = 0;
    repo.targets_.emplace("targets", std::move(top));
    repo.changed_ = {"root", "targets", "snapshot", "timestamp"};
    return repo;
}

Result<Repository> Repository::open(const fs::path& dir, ExpiryPolicy policy) {
    const fs::path md_dir = dir / "metadata";
    if (!fs::exists(md_dir / "root.json")) {
        return Error(Errc::not_initialized, "no TUF repository in " + dir.string() +
                                                " (metadata/root.json does not exist)");
    }
    Repository repo;
    repo.dir_ = dir;
    repo.policy_ = policy;
    PYLON_TRY_ASSIGN(repo.root_, load_metadata<Root>(md_dir / "root.json"));
    repo.published_root_ = repo.root_;
    PYLON_TRY_ASSIGN(repo.timestamp_, load_metadata<Timestamp>(md_dir / "timestamp.json"));
    PYLON_TRY_ASSIGN(repo.snapshot_,
                     load_metadata<Snapshot>(md_dir / "snapshot.json", &repo.snapshot_bytes_));

    // Breadth of the delegation tree, from targets down; each role loaded once.
    std::deque<std::string> queue{"targets"};
    while (!queue.empty()) {
        const std::string name = queue.front();
        queue.pop_front();
        if (repo.targets_.count(name)) continue;
        if (!is_valid_role_name(name) || (name != "targets" && is_top_level(name))) {
            return Error(Errc::malformed_metadata,
                         "delegated role name \"" + name.substr(0, 64) + "\" is not usable");
        }
        TargetsRole role;
        const fs::path path = md_dir / (name + ".json");
        if (fs::exists(path)) {
            PYLON_TRY_ASSIGN(role.md, load_metadata<Targets>(path, &role.bytes));
            role.published = true;
        } else if (name == "targets") {
            return Error(Errc::not_initialized, "missing " + path.string());
        } else {
            role.md.signed_.version = 0;  // delegated but never signed: staged empty
            repo.changed_.insert(name);
        }
        if (role.md.signed_.delegations) {
            for (const auto& d : role.md.signed_.delegations->roles) queue.push_back(d.name);
        }
        repo.targets_.emplace(name, std::move(role));
    }
    return repo;
}

// --- Queries -----------------------------------------------------------------------------------

Result<const Metadata<Targets>*> Repository::targets(std::string_view role) const {
    auto it = targets_.find(role);
    if (it == targets_.end()) return invalid("no targets role \"" + std::string(role) + "\"");
    return &it->second.md;
}

std::vector<std::string> Repository::targets_roles() const {
    std::vector<std::string> out;
    std::set<std::string> seen;
    auto visit = [&](auto& self, const std::string& name) -> void {
        auto it = targets_.find(name);
        if (it == targets_.end() || !seen.insert(name).second) return;
        out.push_back(name);
        if (!it->second.md.signed_.delegations) return;
        for (const auto& d : it->second.md.signed_.delegations->roles) self(self, d.name);
    };
    visit(visit, "targets");
    return out;
}

Result<Repository::TargetsRole*> Repository::find_targets(std::string_view role) {
    auto it = targets_.find(role);
    if (it == targets_.end()) return invalid("no targets role \"" + std::string(role) + "\"");
    return &it->second;
}

Result<std::pair<Repository::TargetsRole*, DelegatedRole*>> Repository::find_delegation(
    std::string_view role) {
    for (auto& [name, tr] : targets_) {
        if (!tr.md.signed_.delegations) continue;
        for (auto& d : tr.md.signed_.delegations->roles) {
            if (d.name == role) return std::pair{&tr, &d};
        }
    }
    return invalid("no delegated role \"" + std::string(role) + "\"");
}

Result<void> Repository::check_role(std::string_view role) const {
    if (is_top_level(role) || targets_.count(role)) return {};
    return invalid("no role \"" + std::string(role) + "\"");
}

// --- Targets -----------------------------------------------------------------------------------

Result<TargetFile> Repository::stage_target(std::string_view target_path, TargetFile file,
                                            std::string_view role) {
    PYLON_TRY_ASSIGN(TargetsRole * tr, find_targets(role));
    tr->md.signed_.targets[std::string(target_path)] = file;
    changed_.insert(std::string(role));
    return file;
}

Result<void> Repository::check_target_role(std::string_view target_path, std::string_view role) {
    PYLON_TRY(check_target_path(target_path));
    PYLON_TRY(find_targets(role));
    if (role != "targets") {
        PYLON_TRY_ASSIGN(auto found, find_delegation(role));
        if (!found.second->is_delegated_path(target_path)) {
            return invalid("role \"" + std::string(role) + "\" is not delegated target path \"" +
                           std::string(target_path) + "\"");
        }
    }
    return {};
}

Result<TargetFile> Repository::add_target(std::string_view target_path, ByteView data,
                                          std::optional<Json> custom, std::string_view role) {
    PYLON_TRY(check_target_role(target_path, role));
    TargetFile file = TargetFile::from_data(data, std::move(custom));
    const fs::path dest = storage_path(targets_dir(), target_path, file.hashes.at("sha256"),
                                       root_.signed_.consistent_snapshot);
    PYLON_TRY(make_dirs(dest.parent_path()));
    PYLON_TRY(write_file_atomic(dest, data));
    return stage_target(target_path, std::move(file), role);
}

Result<TargetFile> Repository::add_target_file(std::string_view target_path, const fs::path& file,
                                               std::optional<Json> custom, std::string_view role) {
    PYLON_TRY(check_target_role(target_path, role));
    // Copy to a temporary name first: the final name depends on the hash.
    PYLON_TRY(make_dirs(targets_dir()));
    PYLON_TRY_ASSIGN(Copied copied, copy_hashed(file, targets_dir()));
    TargetFile tf;
    tf.length = copied.length;
    tf.hashes["sha256"] = to_hex(copied.sha256);
    tf.custom = std::move(custom);
    const fs::path dest = storage_path(targets_dir(), target_path, tf.hashes["sha256"],
                                       root_.signed_.consistent_snapshot);
    auto dirs = make_dirs(dest.parent_path());
    if (!dirs) {
        ::unlink(copied.temp.c_str());
        return std::move(dirs).error();
    }
    if (::rename(copied.temp.c_str(), dest.c_str()) != 0) {
        const int err = errno;
        ::unlink(copied.temp.c_str());
        return Error::from_errno(err, "rename to " + dest.string());
    }
    PYLON_TRY(fsync_directory(dest.parent_path()));
    PYLON_TRY(fsync_directory(targets_dir()));
    return stage_target(target_path, std::move(tf), role);
}

Result<void> Repository::remove_target(std::string_view target_path, std::string_view role) {
    PYLON_TRY_ASSIGN(TargetsRole * tr, find_targets(role));
    auto& targets = tr->md.signed_.targets;
    auto it = targets.find(std::string(target_path));
    if (it == targets.end()) {
        return Error(Errc::target_not_found, "role \"" + std::string(role) + "\" has no target \"" +
                                                 std::string(target_path) + "\"");
    }
    targets.erase(it);
    changed_.insert(std::string(role));
    return {};
}

// --- Delegations and keys ----------------------------------------------------------------------

Result<void> Repository::delegate(const DelegationSpec& spec, std::string_view delegator) {
    PYLON_TRY(check_delegation_spec(spec));
    if (targets_.count(spec.name)) return invalid("role \"" + spec.name + "\" already exists");
    PYLON_TRY_ASSIGN(TargetsRole * from, find_targets(delegator));
    DelegatedRole role;
    role.name = spec.name;
    role.threshold = spec.threshold;
    role.terminating = spec.terminating;
    role.paths = spec.paths;
    role.path_hash_prefixes = spec.path_hash_prefixes;
    auto& delegations = from->md.signed_.delegations;
    if (!delegations) delegations.emplace();
    for (const auto& k : spec.keys) {
        Key key = Key::from_public_key(k);
        role.keyids.push_back(key.key_id());
        delegations->keys[key.key_id()] = std::move(key);
    }
    delegations->roles.push_back(std::move(role));
    TargetsRole fresh;
    fresh.md.signed_.version = 0;
    targets_.emplace(spec.name, std::move(fresh));
    changed_.insert(std::string(delegator));
    changed_.insert(spec.name);
    return {};
}

Result<void> Repository::change_keys(std::string_view role, const KeyChange& change) {
    PYLON_TRY(check_role(role));
    PYLON_TRY(check_distinct(role, change.add));
    const std::string name(role);
    // Apply to copies, validate, then commit.
    std::map<std::string, Key> keys;
    RoleKeys role_keys;
    TargetsRole* delegator = nullptr;
    DelegatedRole* entry = nullptr;
    if (is_top_level(role)) {
        keys = root_.signed_.keys;
        role_keys = root_.signed_.roles[name];
    } else {
        PYLON_TRY_ASSIGN(auto found, find_delegation(role));
        delegator = found.first;
        entry = found.second;
        keys = delegator->md.signed_.delegations->keys;
        role_keys = entry->role_keys();
    }
    auto& ids = role_keys.keyids;
    for (const auto& id : change.remove_keyids) {
        auto it = std::find(ids.begin(), ids.end(), id);
        if (it == ids.end()) return invalid("role \"" + name + "\" has no key " + id);
        ids.erase(it);
    }
    for (const auto& k : change.add) {
        Key key = Key::from_public_key(k);
        const std::string id = key.key_id();
        if (std::find(ids.begin(), ids.end(), id) != ids.end()) {
            return invalid("role \"" + name + "\" already has key " + id);
        }
        ids.push_back(id);
        keys[id] = std::move(key);
    }
    if (change.threshold) role_keys.threshold = *change.threshold;
    PYLON_TRY(check_threshold(role, role_keys.threshold, ids.size()));

    if (is_top_level(role)) {
        Root& root = root_.signed_;
        const std::vector<std::string> old_ids = root.roles[name].keyids;
        for (const auto& id : old_ids) {
            if (std::find(ids.begin(), ids.end(), id) == ids.end()) root.remove_key(name, id);
        }
        for (const auto& id : ids) root.add_key(name, keys.at(id));
        root.roles[name].threshold = role_keys.threshold;
        changed_.insert("root");
    } else {
        auto& delegations = *delegator->md.signed_.delegations;
        for (const auto& id : ids) delegations.keys[id] = keys.at(id);
        entry->keyids = ids;
        entry->threshold = role_keys.threshold;
        for (const auto& id : change.remove_keyids) {
            const bool used = std::any_of(
                delegations.roles.begin(), delegations.roles.end(), [&](const DelegatedRole& d) {
                    return std::find(d.keyids.begin(), d.keyids.end(), id) != d.keyids.end();
                });
            if (!used) delegations.keys.erase(id);
        }
        for (const auto& [n, tr] : targets_) {
            if (&tr == delegator) changed_.insert(n);
        }
    }
    changed_.insert(name);  // re-signed with the new keys
    return {};
}

Result<void> Repository::bump(std::string_view role) {
    PYLON_TRY(check_role(role));
    changed_.insert(std::string(role));
    return {};
}

Result<void> Repository::set_expiry(std::string_view role, Time expires) {
    PYLON_TRY(check_role(role));
    expiry_override_[std::string(role)] = expires;
    changed_.insert(std::string(role));
    return {};
}

}  // namespace pylon::signing::tuf
