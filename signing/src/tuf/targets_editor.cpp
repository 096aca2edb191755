// TargetsEditor: edits a targets role's metadata and signs its next version on the client side.
#include "pylon/signing/tuf/targets_editor.h"

#include <algorithm>
#include <set>

#include "pylon/signing/json.h"
#include "repository_internal.h"

namespace pylon::signing::tuf {

using detail::check_delegation_spec;
using detail::check_target_path;
using detail::invalid;

Result<TargetsEditor> TargetsEditor::from_bytes(std::string_view current_signed_json) {
    TargetsEditor editor;
    PYLON_TRY_ASSIGN(editor.md_, Metadata<Targets>::parse(current_signed_json));
    editor.md_.clear_signatures();
    editor.md_.received_signed_bytes.reset();  // signed_ is what gets signed from now on
    editor.has_expiry_ = true;
    return editor;
}

TargetsEditor TargetsEditor::new_role() {
    TargetsEditor editor;
    editor.md_.signed_.version = 0;
    return editor;
}

Result<void> TargetsEditor::add_target(std::string_view path, TargetFile file) {
    PYLON_TRY(check_target_path(path));
    md_.signed_.targets[std::string(path)] = std::move(file);
    return {};
}

Result<void> TargetsEditor::remove_target(std::string_view path) {
    if (md_.signed_.targets.erase(std::string(path)) == 0) {
        return Error(Errc::target_not_found, "no target \"" + std::string(path) + "\"");
    }
    return {};
}

Result<void> TargetsEditor::set_delegation(const DelegationSpec& spec) {
    PYLON_TRY(check_delegation_spec(spec));
    auto& delegations = md_.signed_.delegations;
    if (!delegations) delegations.emplace();
    DelegatedRole role;
    role.name = spec.name;
    role.threshold = spec.threshold;
    role.terminating = spec.terminating;
    role.paths = spec.paths;
    role.path_hash_prefixes = spec.path_hash_prefixes;
    for (const auto& k : spec.keys) {
        Key key = Key::from_public_key(k);
        role.keyids.push_back(key.key_id());
        delegations->keys[key.key_id()] = std::move(key);
    }
    auto& roles = delegations->roles;
    auto it = std::find_if(roles.begin(), roles.end(),
                           [&](const DelegatedRole& d) { return d.name == spec.name; });
    if (it == roles.end()) {
        roles.push_back(std::move(role));
    } else {
        role.unrecognized = std::move(it->unrecognized);
        *it = std::move(role);
    }
    drop_unused_keys();
    return {};
}

Result<void> TargetsEditor::remove_delegation(std::string_view name) {
    auto& delegations = md_.signed_.delegations;
    if (delegations) {
        auto& roles = delegations->roles;
        auto it = std::find_if(roles.begin(), roles.end(),
                               [&](const DelegatedRole& d) { return d.name == name; });
        if (it != roles.end()) {
            roles.erase(it);
            drop_unused_keys();
            return {};
        }
    }
    return invalid("no delegated role \"" + std::string(name) + "\"");
}

void TargetsEditor::set_expires(Time expires) {
    md_.signed_.expires = expires;
    has_expiry_ = true;
}

void TargetsEditor::drop_unused_keys() {
    auto& delegations = *md_.signed_.delegations;
    std::set<std::string> used;
    for (const auto& d : delegations.roles) used.insert(d.keyids.begin(), d.keyids.end());
    std::erase_if(delegations.keys, [&](const auto& entry) { return !used.count(entry.first); });
}

Result<std::string> TargetsEditor::sign(const std::vector<const PrivateKey*>& keys) const {
    if (keys.empty()) return invalid("no signing keys given");
    if (!has_expiry_) return invalid("the new role has no expiry: call set_expires first");
    Metadata<Targets> next = md_;
    next.signed_.version += 1;
    for (const PrivateKey* key : keys) {
        PYLON_TRY(next.sign(*key));
    }
    // The whole file in canonical form; "signed" inside it is exactly the bytes signed.
    return canonical_json(Json::parse(next.to_bytes()));
}

}  // namespace pylon::signing::tuf
