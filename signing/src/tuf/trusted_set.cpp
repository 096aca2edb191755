// TrustedSet: the checks of tuf-spec.md §5.3–§5.6, in the order the specification lists them.
#include "trusted_set.h"

#include <string>

namespace pylon::signing::tuf::detail {

namespace {

std::string version_text(std::int64_t v) {
    return std::to_string(v);
}

Error expired_error(std::string_view role, const Common& c) {
    return Error(Errc::expired, std::string(role) + " metadata (version " +
                                    version_text(c.version) + ") expired at " +
                                    format_time(c.expires));
}

// The keys and role entry of `root` for a top-level role; a root without the role cannot verify
// anything (threshold_not_met).
Result<RoleKeys> top_level_role(const Root& root, std::string_view role) {
    auto it = root.roles.find(std::string(role));
    if (it == root.roles.end()) {
        return Error(Errc::threshold_not_met, "root defines no \"" + std::string(role) + "\" role");
    }
    return it->second;
}

template <typename T>
Result<Metadata<T>> parse_signed_by_root(std::string_view bytes, const Root& root) {
    PYLON_TRY_ASSIGN(Metadata<T> md, Metadata<T>::parse(bytes));
    PYLON_TRY_ASSIGN(RoleKeys role, top_level_role(root, T::kType));
    PYLON_TRY(verify_with(md, T::kType, root.keys, role));
    return md;
}

}  // namespace

Result<TrustedSet> TrustedSet::from_root(std::string_view root_bytes, Time reference) {
    PYLON_TRY_ASSIGN(Metadata<Root> root, Metadata<Root>::parse(root_bytes));
    PYLON_TRY_ASSIGN(RoleKeys role, top_level_role(root.signed_, Root::kType));
    PYLON_TRY(verify_with(root, "root", root.signed_.keys, role));
    return TrustedSet(std::move(root), reference);
}

Result<void> TrustedSet::update_root(std::string_view bytes) {
    if (timestamp_) return Error(Errc::invalid_argument, "root updated after timestamp");
    PYLON_TRY_ASSIGN(Metadata<Root> next, Metadata<Root>::parse(bytes));
    // §5.3.4: signed by the trusted root's root role and by the new root's own.
    PYLON_TRY_ASSIGN(RoleKeys old_role, top_level_role(root_.signed_, Root::kType));
    auto by_old =
        verify_with(next, "root (by the trusted root's keys)", root_.signed_.keys, old_role);
    if (!by_old) return std::move(by_old).error();
    PYLON_TRY_ASSIGN(RoleKeys new_role, top_level_role(next.signed_, Root::kType));
    auto by_new = verify_with(next, "root (by its own keys)", next.signed_.keys, new_role);
    if (!by_new) return std::move(by_new).error();
    // §5.3.5: exactly the next version.
    const std::int64_t expected = root_.signed_.version + 1;
    if (next.signed_.version <= root_.signed_.version) {
        return Error(Errc::rollback, "root version " + version_text(next.signed_.version) +
                                         " is not newer than trusted version " +
                                         version_text(root_.signed_.version));
    }
    if (next.signed_.version != expected) {
        return Error(Errc::version_mismatch, "root version " + version_text(next.signed_.version) +
                                                 ", expected " + version_text(expected));
    }
    root_ = std::move(next);
    return {};
}

Result<void> TrustedSet::check_root_expiry() const {
    if (root_.signed_.is_expired(reference_)) return expired_error("root", root_.signed_);
    return {};
}

Result<void> TrustedSet::load_local_timestamp(std::string_view bytes) {
    if (timestamp_) return Error(Errc::invalid_argument, "timestamp already loaded");
    PYLON_TRY_ASSIGN(auto ts, parse_signed_by_root<Timestamp>(bytes, root_.signed_));
    timestamp_ = std::move(ts);
    return {};
}

Result<bool> TrustedSet::update_timestamp(std::string_view bytes) {
    if (snapshot_) return Error(Errc::invalid_argument, "timestamp updated after snapshot");
    PYLON_TRY(check_root_expiry());
    PYLON_TRY_ASSIGN(auto next, parse_signed_by_root<Timestamp>(bytes, root_.signed_));
    if (timestamp_) {
        const auto& old = timestamp_->signed_;
        if (next.signed_.version < old.version) {
            return Error(Errc::rollback, "timestamp version " + version_text(next.signed_.version) +
                                             " is lower than trusted version " +
                                             version_text(old.version));
        }
        if (next.signed_.version == old.version) {
            PYLON_TRY(check_timestamp_final());
            return false;
        }
        if (next.signed_.snapshot_meta.version < old.snapshot_meta.version) {
            return Error(Errc::rollback, "timestamp names snapshot version " +
                                             version_text(next.signed_.snapshot_meta.version) +
                                             ", lower than trusted " +
                                             version_text(old.snapshot_meta.version));
        }
    }
    if (next.signed_.is_expired(reference_)) return expired_error("timestamp", next.signed_);
    timestamp_ = std::move(next);
    return true;
}

Result<void> TrustedSet::check_timestamp_final() const {
    if (!timestamp_) return Error(Errc::invalid_argument, "no trusted timestamp");
    if (timestamp_->signed_.is_expired(reference_)) {
        return expired_error("timestamp", timestamp_->signed_);
    }
    return {};
}

Result<bool> TrustedSet::load_local_snapshot(std::string_view bytes) {
    if (snapshot_) return Error(Errc::invalid_argument, "snapshot already loaded");
    PYLON_TRY(check_timestamp_final());
    PYLON_TRY_ASSIGN(auto snap, parse_signed_by_root<Snapshot>(bytes, root_.signed_));
    const MetaFile& meta = timestamp_->signed_.snapshot_meta;
    const bool current = snap.signed_.version == meta.version &&
                         !snap.signed_.is_expired(reference_) &&
                         meta.verify(as_bytes(bytes), "snapshot.json").ok();
    snapshot_ = std::move(snap);
    snapshot_final_ = current;
    return current;
}

Result<void> TrustedSet::update_snapshot(std::string_view bytes) {
    if (!targets_.empty()) return Error(Errc::invalid_argument, "snapshot updated after targets");
    PYLON_TRY(check_timestamp_final());
    // §5.5.2: the bytes the timestamp names (length, hashes), before parsing anything.
    const MetaFile& meta = timestamp_->signed_.snapshot_meta;
    PYLON_TRY(meta.verify(as_bytes(bytes), "snapshot.json"));
    // §5.5.3 signatures, §5.5.4 the version the timestamp names.
    PYLON_TRY_ASSIGN(auto next, parse_signed_by_root<Snapshot>(bytes, root_.signed_));
    if (next.signed_.version != meta.version) {
        return Error(Errc::version_mismatch, "snapshot version " +
                                                 version_text(next.signed_.version) +
                                                 ", timestamp names " + version_text(meta.version));
    }
    // §5.5.5: no rollback of the snapshot or of any targets file it listed.
    if (snapshot_) {
        const auto& old = snapshot_->signed_;
        if (next.signed_.version < old.version) {
            return Error(Errc::rollback, "snapshot version " + version_text(next.signed_.version) +
                                             " is lower than trusted version " +
                                             version_text(old.version));
        }
        for (const auto& [name, old_meta] : old.meta) {
            auto it = next.signed_.meta.find(name);
            if (it == next.signed_.meta.end()) {
                return Error(Errc::rollback, "new snapshot no longer lists " + name);
            }
            if (it->second.version < old_meta.version) {
                return Error(Errc::rollback, "snapshot names " + name + " version " +
                                                 version_text(it->second.version) +
                                                 ", lower than trusted " +
                                                 version_text(old_meta.version));
            }
        }
    }
    // §5.5.6
    if (next.signed_.is_expired(reference_)) return expired_error("snapshot", next.signed_);
    snapshot_ = std::move(next);
    snapshot_final_ = true;
    return {};
}

Result<void> TrustedSet::check_snapshot_final() const {
    if (!snapshot_ || !snapshot_final_) return Error(Errc::invalid_argument, "no current snapshot");
    return {};
}

const MetaFile* TrustedSet::snapshot_meta(const std::string& role) const {
    if (!snapshot_) return nullptr;
    auto it = snapshot_->signed_.meta.find(role + ".json");
    return it == snapshot_->signed_.meta.end() ? nullptr : &it->second;
}

const Metadata<Targets>* TrustedSet::targets(std::string_view role) const {
    auto it = targets_.find(role);
    return it == targets_.end() ? nullptr : &it->second;
}

Result<void> TrustedSet::update_targets(const std::string& role, const std::string& delegator,
                                        std::string_view bytes) {
    PYLON_TRY(check_snapshot_final());
    const MetaFile* meta = snapshot_meta(role);
    if (meta == nullptr) {
        return Error(Errc::malformed_metadata, "snapshot does not list " + role + ".json");
    }
    PYLON_TRY(meta->verify(as_bytes(bytes), role + ".json"));
    PYLON_TRY_ASSIGN(Metadata<Targets> next, Metadata<Targets>::parse(bytes));
    if (delegator == "root") {
        PYLON_TRY_ASSIGN(RoleKeys keys, top_level_role(root_.signed_, Targets::kType));
        PYLON_TRY(verify_with(next, role, root_.signed_.keys, keys));
    } else {
        const Metadata<Targets>* parent = targets(delegator);
        const DelegatedRole* entry = nullptr;
        if (parent != nullptr && parent->signed_.delegations) {
            for (const auto& r : parent->signed_.delegations->roles) {
                if (r.name == role) {
                    entry = &r;
                    break;
                }
            }
        }
        if (entry == nullptr) {
            return Error(Errc::invalid_argument, delegator + " does not delegate to " + role);
        }
        PYLON_TRY(verify_with(next, role, parent->signed_.delegations->keys, entry->role_keys()));
    }
    if (next.signed_.version != meta->version) {
        return Error(Errc::version_mismatch, role + " version " +
                                                 version_text(next.signed_.version) +
                                                 ", snapshot names " + version_text(meta->version));
    }
    if (next.signed_.is_expired(reference_)) return expired_error(role, next.signed_);
    targets_.insert_or_assign(role, std::move(next));
    return {};
}

}  // namespace pylon::signing::tuf::detail
