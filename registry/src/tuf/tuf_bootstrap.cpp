// TufHost's first start: a new repository, either from generated keys (the offline ones written
// to dir/offline-keys/ for the admin to move away) or from a root and top-level targets made
// offline. The repository is built in dir/repo.bootstrap and renamed to dir/repo once complete,
// so that a crash half-way leaves no repository that looks valid but is not.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "pylon/common/file_io.h"
#include "pylon/common/log.h"
#include "pylon/signing/sha256.h"
#include "tuf_host_impl.h"

namespace pylon::registry::tuf::detail {

namespace fs = std::filesystem;
using signing::KeyType;
using signing::PrivateKey;
using signing::tuf::Metadata;
using signing::tuf::MetaFile;
using signing::tuf::Repository;
using signing::tuf::Root;
using signing::tuf::Snapshot;
using signing::tuf::Targets;
using signing::tuf::Timestamp;

namespace {

constexpr std::size_t kMaxMetadataFile = 8 * 1024 * 1024;

Error invalid(std::string what) {
    return Error(pylon::Errc::invalid_argument, std::move(what));
}

Result<void> make_private_dir(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Error(pylon::Errc::io_error, "create " + dir.string() + ": " + ec.message());
    if (::chmod(dir.c_str(), 0700) != 0) return Error::from_errno(errno, "chmod " + dir.string());
    return {};
}

std::chrono::seconds lifetime(std::chrono::days d) {
    return std::chrono::duration_cast<std::chrono::seconds>(d);
}

MetaFile meta_of(std::int64_t version, std::string_view bytes) {
    MetaFile m;
    m.version = version;
    m.length = static_cast<std::int64_t>(bytes.size());
    m.hashes["sha256"] = signing::to_hex(signing::sha256(bytes));
    return m;
}

// Puts the finished repository in place (dir/repo may exist only as an empty directory).
Result<void> move_into_place(const fs::path& staging, const fs::path& repo) {
    if (::rename(staging.c_str(), repo.c_str()) != 0) {
        const int err = errno;
        if (err == ENOTEMPTY || err == EEXIST) {
            return invalid(repo.string() + " exists without metadata/root.json; move it away");
        }
        return Error::from_errno(err, "rename " + staging.string() + " to " + repo.string());
    }
    return fsync_directory(repo.parent_path());
}

Result<void> generate(const fs::path& dir, const TufHostOptions& options, Time now,
                      const fs::path& staging) {
    PYLON_TRY_ASSIGN(PrivateKey root, PrivateKey::generate(KeyType::ed25519));
    PYLON_TRY_ASSIGN(PrivateKey targets, PrivateKey::generate(KeyType::ed25519));
    PYLON_TRY_ASSIGN(PrivateKey snapshot, PrivateKey::generate(KeyType::ed25519));
    PYLON_TRY_ASSIGN(PrivateKey timestamp, PrivateKey::generate(KeyType::ed25519));
    PYLON_TRY(make_private_dir(dir / "offline-keys"));
    PYLON_TRY(root.save(dir / "offline-keys" / "root.key", nullptr));
    PYLON_TRY(targets.save(dir / "offline-keys" / "targets.key", nullptr));
    PYLON_TRY(snapshot.save(dir / "keys" / "snapshot.key", nullptr));
    PYLON_TRY(timestamp.save(dir / "keys" / "timestamp.key", nullptr));

    signing::tuf::CreateOptions create;
    create.root.keys = {root.public_key()};
    create.targets.keys = {targets.public_key()};
    create.snapshot.keys = {snapshot.public_key()};
    create.timestamp.keys = {timestamp.public_key()};
    create.consistent_snapshot = true;
    PYLON_TRY_ASSIGN(Repository repo, Repository::create(staging, create, options.expiry));
    signing::tuf::Signers signers;
    signers.add("root", root).add("targets", targets);
    signers.add("snapshot", snapshot).add("timestamp", timestamp);
    PYLON_TRY(repo.publish(signers, now));
    log::warn(
        "TUF repository created in {}: its root and targets keys are in {}; move them "
        "offline (the registry needs only the snapshot and timestamp keys)",
        (dir / "repo").string(), (dir / "offline-keys").string());
    return {};
}

// Root and targets signed offline; snapshot and timestamp version 1 signed here.
Result<void> from_files(const fs::path& dir, const TufHostOptions& options, Time now,
                        const fs::path& staging) {
    PYLON_TRY_ASSIGN(const std::string root_bytes, read_file(*options.root_file, kMaxMetadataFile));
    PYLON_TRY_ASSIGN(const Metadata<Root> root_md, Metadata<Root>::parse(root_bytes));
    const Root& root = root_md.signed_;
    PYLON_TRY(verify_with(root_md, "root", root.keys, root.roles.at("root")));
    if (!root.consistent_snapshot) return invalid("the registry needs consistent_snapshot: true");
    if (root.is_expired(now)) return Error(signing::tuf::Errc::expired, "root.json has expired");
    PYLON_TRY_ASSIGN(const std::string targets_bytes,
                     read_file(*options.targets_file, kMaxMetadataFile));
    PYLON_TRY_ASSIGN(const Metadata<Targets> targets_md, Metadata<Targets>::parse(targets_bytes));
    PYLON_TRY(verify_with(targets_md, "targets", root.keys, root.roles.at("targets")));
    if (targets_md.signed_.version != 1) return invalid("targets.json must be version 1");
    if (targets_md.signed_.is_expired(now)) {
        return Error(signing::tuf::Errc::expired, "targets.json has expired");
    }
    PYLON_TRY_ASSIGN(PrivateKey snapshot_key, load_owner_only_key(*options.snapshot_key_file));
    PYLON_TRY_ASSIGN(PrivateKey timestamp_key, load_owner_only_key(*options.timestamp_key_file));
    PYLON_TRY(check_online_key(root, "snapshot", snapshot_key));
    PYLON_TRY(check_online_key(root, "timestamp", timestamp_key));

    Metadata<Snapshot> snapshot;
    snapshot.signed_.version = 1;
    snapshot.signed_.expires = now + lifetime(options.expiry.snapshot);
    snapshot.signed_.meta["targets.json"] = meta_of(1, targets_bytes);
    PYLON_TRY(snapshot.sign(snapshot_key));
    const std::string snapshot_bytes = snapshot.to_bytes();
    Metadata<Timestamp> timestamp;
    timestamp.signed_.version = 1;
    timestamp.signed_.expires = now + lifetime(options.expiry.timestamp);
    timestamp.signed_.snapshot_meta = meta_of(1, snapshot_bytes);
    PYLON_TRY(timestamp.sign(timestamp_key));
    const std::string timestamp_bytes = timestamp.to_bytes();

    const fs::path md = staging / "metadata";
    std::error_code ec;
    fs::create_directories(md, ec);
    if (ec) return Error(pylon::Errc::io_error, "create " + md.string() + ": " + ec.message());
    const std::pair<std::string, std::string_view> files[] = {
        {std::to_string(root.version) + ".root.json", root_bytes},
        {"root.json", root_bytes},
        {"1.targets.json", targets_bytes},
        {"targets.json", targets_bytes},
        {"1.snapshot.json", snapshot_bytes},
        {"snapshot.json", snapshot_bytes},
        {"timestamp.json", timestamp_bytes}};
    for (const auto& [name, bytes] : files) {
        PYLON_TRY(write_file_atomic(md / name, bytes));
    }
    PYLON_TRY(snapshot_key.save(dir / "keys" / "snapshot.key", nullptr));
    PYLON_TRY(timestamp_key.save(dir / "keys" / "timestamp.key", nullptr));
    log::info("TUF repository created in {} from {}", (dir / "repo").string(),
              options.root_file->string());
    return {};
}

}  // namespace

Result<void> bootstrap_if_needed(const fs::path& dir, const TufHostOptions& options, Time now) {
    if (fs::exists(dir / "repo" / "metadata" / "root.json")) return {};
    const int given = int(options.root_file.has_value()) + int(options.targets_file.has_value()) +
                      int(options.snapshot_key_file.has_value()) +
                      int(options.timestamp_key_file.has_value());
    if (given != 0 && given != 4) {
        return invalid(
            "bootstrapping from files needs root_file, targets_file, "
            "snapshot_key_file and timestamp_key_file together");
    }
    PYLON_TRY(make_private_dir(dir / "keys"));
    const fs::path staging = dir / "repo.bootstrap";
    std::error_code ec;
    fs::remove_all(staging, ec);  // a bootstrap that crashed before it completed
    if (ec) return Error(pylon::Errc::io_error, "remove " + staging.string() + ": " + ec.message());
    if (given == 4) {
        PYLON_TRY(from_files(dir, options, now, staging));
    } else {
        PYLON_TRY(generate(dir, options, now, staging));
    }
    return move_into_place(staging, dir / "repo");
}

Result<PrivateKey> load_owner_only_key(const fs::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return Error::from_errno(errno, "stat " + file.string());
    if ((st.st_mode & 077) != 0) {
        return Error(pylon::Errc::permission_denied,
                     file.string() + " is accessible to group or others; chmod 600 it");
    }
    auto key = PrivateKey::load(file);
    if (!key) return std::move(key).error().with_context("loading " + file.string());
    return std::move(*key);
}

Result<void> check_online_key(const Root& root, const std::string& role, const PrivateKey& key) {
    auto it = root.roles.find(role);
    if (it == root.roles.end() || std::find(it->second.keyids.begin(), it->second.keyids.end(),
                                            key.key_id()) == it->second.keyids.end()) {
        return invalid("the " + role + " key " + key.key_id() + " is not a " + role +
                       " key of the repository's root");
    }
    return {};
}

}  // namespace pylon::registry::tuf::detail
