// TargetsEditor: the client side of a targets role hosted by a registry that cannot sign it.
//
// The holder of a targets role's keys (a publisher for its namespace's delegated role, the
// registry admin for the top-level "targets") fetches the role's current metadata, edits it here,
// signs the next version locally, and submits the bytes; the registry verifies them
// (Repository::import_role) and re-signs only snapshot and timestamp.
//
//     PYLON_TRY_ASSIGN(auto editor, TargetsEditor::from_bytes(current_acme_json));
//     editor.add_target("acme/llama/1.0.0/x86_64-avx2/model.gguf", TargetFile::from_data(bytes));
//     editor.set_expires(now + days(90));
//     PYLON_TRY_ASSIGN(std::string next_json, editor.sign({&acme_key}));
//
// Fields of the loaded metadata this code does not know are kept and signed again.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/metadata.h"
#include "pylon/signing/tuf/repository.h"

namespace pylon::signing::tuf {

class TargetsEditor {
public:
    // Starts from the role's current metadata file (as published; its signatures are not
    // checked here: the repository checks the result). Errors: malformed_metadata,
    // wrong_role_type.
    [[nodiscard]] static Result<TargetsEditor> from_bytes(std::string_view current_signed_json);
    // A role never published: sign() makes version 1, with no targets or delegations; set_expires
    // must be called before sign().
    static TargetsEditor new_role();

    // The content sign() signs (with the version of the loaded file, not yet incremented).
    const Targets& content() const { return md_.signed_; }
    // The version sign() writes: the loaded version + 1.
    std::int64_t next_version() const { return md_.signed_.version + 1; }

    // Adds `path`, replacing an entry of the same path. Errors: invalid_argument for a path
    // that is not relative and '/'-separated without empty, "." or ".." segments.
    [[nodiscard]] Result<void> add_target(std::string_view path, TargetFile file);
    // Errors: target_not_found.
    [[nodiscard]] Result<void> remove_target(std::string_view path);
    // Adds the delegated role, or replaces the role of the same name in place (its position in
    // the search order stays); other delegations are kept. Keys no role uses any more are
    // dropped. Errors: invalid_argument as for Repository::delegate.
    [[nodiscard]] Result<void> set_delegation(const DelegationSpec& spec);
    // Errors: invalid_argument when no such role is delegated.
    [[nodiscard]] Result<void> remove_delegation(std::string_view name);
    void set_expires(Time expires);

    // The next version's metadata file, canonical JSON, signed by every key in `keys` (the
    // signatures of the loaded file are dropped). The editor is not changed: signing again
    // gives the same version. Errors: invalid_argument for no keys or (new_role) no expiry.
    [[nodiscard]] Result<std::string> sign(const std::vector<const PrivateKey*>& keys) const;

private:
    TargetsEditor() = default;
    void drop_unused_keys();

    Metadata<Targets> md_;
    bool has_expiry_ = false;
};

}  // namespace pylon::signing::tuf
