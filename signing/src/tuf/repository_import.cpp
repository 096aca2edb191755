// TUF repository: importing targets roles signed elsewhere (import_role), and keeping the staged
// delegation tree in step with the delegations such a role declares.
#include <deque>
#include <set>

#include "pylon/signing/tuf/repository.h"
#include "repository_internal.h"

namespace pylon::signing::tuf {

using detail::check_target_path;
using detail::invalid;
using detail::is_top_level;
using detail::is_valid_role_name;

namespace {

// The delegations `md` declares must name roles usable as file names, each once, and none that
// another role of the repository (`others`) already delegates.
Result<void> check_declared_roles(const Targets& md, const std::set<std::string>& others) {
    if (!md.delegations) return {};
    std::set<std::string> seen;
    for (const auto& d : md.delegations->roles) {
        if (!is_valid_role_name(d.name) || is_top_level(d.name)) {
            return invalid("delegated role name \"" + d.name.substr(0, 64) +
                           "\" must be [A-Za-z0-9._-]+, not start with '.', and not be a "
                           "top-level role");
        }
        if (!seen.insert(d.name).second) return invalid("role \"" + d.name + "\" delegated twice");
        if (others.count(d.name)) {
            return invalid("role \"" + d.name + "\" is already delegated by another role");
        }
    }
    return {};
}

}  // namespace

Result<void> Repository::import_role(std::string_view role, std::string_view bytes, Time now) {
    const std::string name(role);
    if (name != "targets" && (is_top_level(name) || !targets_.count(name))) {
        return invalid("no targets role \"" + name + "\" to import");
    }
    auto parsed = Metadata<Targets>::parse(bytes);
    if (!parsed) return std::move(parsed).error().with_context("importing role " + name);
    Metadata<Targets>& md = *parsed;

    Repository next = *this;  // all changes on a copy: on error, *this is untouched
    TargetsRole& current = next.targets_.at(name);
    const DelegatedRole* entry = nullptr;
    if (name == "targets") {
        const Root& root = next.root_.signed_;
        PYLON_TRY(verify_with(md, name, root.keys, root.roles.at("targets")));
    } else {
        PYLON_TRY_ASSIGN(auto found, next.find_delegation(name));
        entry = found.second;
        PYLON_TRY(
            verify_with(md, name, found.first->md.signed_.delegations->keys, entry->role_keys()));
    }

    const std::int64_t expected = current.md.signed_.version + 1;
    const std::int64_t got = md.signed_.version;
    if (got < expected) {
        return Error(Errc::rollback, "role \"" + name + "\" version " + std::to_string(got) +
                                         " is not newer than the current version " +
                                         std::to_string(expected - 1));
    }
    if (got > expected) {
        return Error(Errc::version_mismatch,
                     "role \"" + name + "\" version " + std::to_string(got) +
                         " skips versions: expected " + std::to_string(expected));
    }
    if (md.signed_.is_expired(now)) {
        return Error(Errc::expired, "role \"" + name + "\" version " + std::to_string(got) +
                                        " expired at " + format_time(md.signed_.expires));
    }
    for (const auto& [path, file] : md.signed_.targets) {
        PYLON_TRY(check_target_path(path));
        if (entry && !entry->is_delegated_path(path)) {
            return invalid("role \"" + name + "\" is not delegated target path \"" + path + "\"");
        }
    }
    std::set<std::string> others;  // roles delegated by some role other than this one
    for (const auto& [n, tr] : next.targets_) {
        if (n == name || !tr.md.signed_.delegations) continue;
        for (const auto& d : tr.md.signed_.delegations->roles) others.insert(d.name);
    }
    PYLON_TRY(check_declared_roles(md.signed_, others));

    current.md = std::move(md);
    current.bytes = std::string(bytes);
    current.imported = true;
    next.changed_.insert(name);
    next.expiry_override_.erase(name);
    next.reconcile_delegations();
    *this = std::move(next);
    return {};
}

void Repository::reconcile_delegations() {
    std::set<std::string> reached;
    std::deque<std::string> queue{"targets"};
    while (!queue.empty()) {
        const std::string name = queue.front();
        queue.pop_front();
        if (!reached.insert(name).second) continue;
        auto it = targets_.find(name);
        if (it == targets_.end()) {
            // Newly delegated: staged empty, pending until its first import. A role delegated
            // before keeps counting from the version the snapshot last listed.
            TargetsRole fresh;
            auto listed = snapshot_.signed_.meta.find(name + ".json");
            fresh.md.signed_.version =
                listed == snapshot_.signed_.meta.end() ? 0 : listed->second.version;
            it = targets_.emplace(name, std::move(fresh)).first;
            changed_.insert(name);
        }
        if (it->second.md.signed_.delegations) {
            for (const auto& d : it->second.md.signed_.delegations->roles) queue.push_back(d.name);
        }
    }
    for (auto it = targets_.begin(); it != targets_.end();) {
        if (reached.count(it->first)) {
            ++it;
            continue;
        }
        changed_.erase(it->first);
        expiry_override_.erase(it->first);
        it = targets_.erase(it);
    }
}

}  // namespace pylon::signing::tuf
