// TUF repository: publishing — new versions of every changed role, signed, checked against
// their thresholds, then written in order (roots, targets roles, snapshot, timestamp).
#include <set>

#include "pylon/common/file_io.h"
#include "pylon/signing/tuf/repository.h"
#include "repository_internal.h"

namespace pylon::signing::tuf {

namespace fs = std::filesystem;
using detail::invalid;
using detail::make_dirs;
using detail::meta_of;
using detail::sign_role;

// --- Publish -----------------------------------------------------------------------------------

Result<PublishReport> Repository::publish(const Signers& signers, Time now, PublishScope scope) {
    Repository next = *this;  // all work on a copy: on error, *this is untouched
    PublishReport report;
    std::vector<std::pair<std::string, std::string>> files;  // name, bytes: in write order
    const bool consistent = next.root_.signed_.consistent_snapshot;
    auto expiry = [&](const std::string& role) {
        auto it = next.expiry_override_.find(role);
        if (it != next.expiry_override_.end()) return it->second;
        return now + std::chrono::duration_cast<std::chrono::seconds>(policy_.for_role(role));
    };
    auto role_ids = [](const RoleKeys& rk) {
        return std::set<std::string>(rk.keyids.begin(), rk.keyids.end());
    };
    std::set<std::string> done;

    if (changed_.count("root")) {
        Metadata<Root>& root = next.root_;
        root.signed_.version = published_root_ ? published_root_->signed_.version + 1 : 1;
        root.signed_.expires = expiry("root");
        const std::string where = "signing root version " + std::to_string(root.signed_.version);
        std::set<std::string> allowed = role_ids(root.signed_.roles["root"]);
        std::vector<std::pair<const std::map<std::string, Key>*, const RoleKeys*>> checks = {
            {&root.signed_.keys, &root.signed_.roles["root"]}};
        if (published_root_) {
            const Root& prev = published_root_->signed_;
            const auto prev_ids = role_ids(prev.roles.at("root"));
            allowed.insert(prev_ids.begin(), prev_ids.end());
            checks.push_back({&prev.keys, &prev.roles.at("root")});
        }
        auto signed_ok = sign_role(root, "root", signers.for_role("root"), allowed, checks);
        if (!signed_ok) return std::move(signed_ok).error().with_context(where);
        const std::string bytes = root.to_bytes();
        files.emplace_back(std::to_string(root.signed_.version) + ".root.json", bytes);
        files.emplace_back("root.json", bytes);
        next.published_root_ = root;
        done.insert("root");
    }

    const Root& root = next.root_.signed_;
    for (const std::string& name : next.targets_roles()) {
        if (!changed_.count(name)) continue;
        TargetsRole& tr = next.targets_.at(name);
        if (tr.imported) {  // signed elsewhere and verified by import_role: written as is
            tr.imported = false;
            tr.published = true;
            if (consistent) {
                files.emplace_back(std::to_string(tr.md.signed_.version) + "." + name + ".json",
                                   tr.bytes);
            }
            files.emplace_back(name + ".json", tr.bytes);
            done.insert(name);
            continue;
        }
        const std::map<std::string, Key>* keys = &root.keys;
        RoleKeys rk;
        if (name == "targets") {
            rk = root.roles.at("targets");
        } else {
            PYLON_TRY_ASSIGN(auto found, next.find_delegation(name));
            keys = &found.first->md.signed_.delegations->keys;
            rk = found.second->role_keys();
            if (!tr.published && signers.for_role(name).empty()) {
                report.pending.push_back(name);
                continue;
            }
        }
        tr.md.signed_.version += 1;
        tr.md.signed_.expires = expiry(name);
        const std::string where =
            "signing " + name + " version " + std::to_string(tr.md.signed_.version);
        auto signed_ok =
            sign_role(tr.md, name, signers.for_role(name), role_ids(rk), {{keys, &rk}});
        if (!signed_ok) return std::move(signed_ok).error().with_context(where);
        tr.bytes = tr.md.to_bytes();
        tr.published = true;
        if (consistent) {
            files.emplace_back(std::to_string(tr.md.signed_.version) + "." + name + ".json",
                               tr.bytes);
        }
        files.emplace_back(name + ".json", tr.bytes);
        done.insert(name);
    }

    if (scope == PublishScope::everything) {
        // Entries of roles no longer delegated stay (at their last version): clients refuse a
        // snapshot that drops a file the trusted one listed (§5.5.5).
        std::map<std::string, MetaFile> meta = snapshot_.signed_.meta;
        for (const auto& [name, tr] : next.targets_) {
            if (tr.published) meta[name + ".json"] = meta_of(tr.md.signed_.version, tr.bytes);
        }
        auto same = [](const std::map<std::string, MetaFile>& a,
                       const std::map<std::string, MetaFile>& b) {
            if (a.size() != b.size()) return false;
            for (const auto& [k, v] : a) {
                auto it = b.find(k);
                if (it == b.end() || it->second.to_json() != v.to_json()) return false;
            }
            return true;
        };
        if (changed_.count("snapshot") || !same(meta, snapshot_.signed_.meta)) {
            Metadata<Snapshot>& snap = next.snapshot_;
            snap.signed_.version += 1;
            snap.signed_.expires = expiry("snapshot");
            snap.signed_.meta = std::move(meta);
            const std::string where =
                "signing snapshot version " + std::to_string(snap.signed_.version);
            auto signed_ok = sign_role(snap, "snapshot", signers.for_role("snapshot"),
                                       role_ids(root.roles.at("snapshot")),
                                       {{&root.keys, &root.roles.at("snapshot")}});
            if (!signed_ok) return std::move(signed_ok).error().with_context(where);
            next.snapshot_bytes_ = snap.to_bytes();
            if (consistent) {
                files.emplace_back(std::to_string(snap.signed_.version) + ".snapshot.json",
                                   next.snapshot_bytes_);
            }
            files.emplace_back("snapshot.json", next.snapshot_bytes_);
            done.insert("snapshot");
        }

        Metadata<Timestamp>& ts = next.timestamp_;
        ts.signed_.version += 1;
        ts.signed_.expires = expiry("timestamp");
        ts.signed_.snapshot_meta = meta_of(next.snapshot_.signed_.version, next.snapshot_bytes_);
        const std::string where = "signing timestamp version " + std::to_string(ts.signed_.version);
        auto signed_ok = sign_role(ts, "timestamp", signers.for_role("timestamp"),
                                   role_ids(root.roles.at("timestamp")),
                                   {{&root.keys, &root.roles.at("timestamp")}});
        if (!signed_ok) return std::move(signed_ok).error().with_context(where);
        files.emplace_back("timestamp.json", ts.to_bytes());
        done.insert("timestamp");
    }

    // Everything is signed: write, metadata files in dependency order.
    PYLON_TRY(make_dirs(metadata_dir()));
    PYLON_TRY(make_dirs(targets_dir()));
    for (const auto& [name, bytes] : files) {
        PYLON_TRY(write_file_atomic(metadata_dir() / name, bytes));
        report.written.push_back(name);
    }
    for (const auto& role : done) {
        next.changed_.erase(role);
        next.expiry_override_.erase(role);
    }
    *this = std::move(next);
    return report;
}

}  // namespace pylon::signing::tuf
