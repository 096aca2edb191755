// Helpers shared by the repository's implementation files (repository.cpp: staging;
// repository_publish.cpp: signing and writing).
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/signing/sha256.h"
#include "pylon/signing/tuf/metadata.h"

namespace pylon::signing::tuf::detail {

inline Error invalid(std::string what) {
    return Error(Errc::invalid_argument, std::move(what));
}

inline Result<void> make_dirs(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Error(pylon::Errc::io_error, "create " + dir.string() + ": " + ec.message());
    return {};
}

// Clears `md`'s signatures, signs it with `keys` (each of which must be in `allowed`) and checks
// every (keys, role) pair in `checks`.
template <typename T>
Result<void> sign_role(
    Metadata<T>& md, std::string_view role, const std::vector<const PrivateKey*>& keys,
    const std::set<std::string>& allowed,
    const std::vector<std::pair<const std::map<std::string, Key>*, const RoleKeys*>>& checks) {
    if (keys.empty()) {
        return Error(Errc::threshold_not_met,
                     "no signing keys given for role \"" + std::string(role) + "\"");
    }
    md.clear_signatures();
    for (const PrivateKey* k : keys) {
        const std::string& id = k->key_id();
        if (!allowed.count(id)) {
            return invalid("key " + id + " is not a key of role \"" + std::string(role) + "\"");
        }
        PYLON_TRY(md.sign(*k));
    }
    for (const auto& [key_map, role_keys] : checks) {
        PYLON_TRY(verify_with(md, role, *key_map, *role_keys));
    }
    return {};
}

inline MetaFile meta_of(std::int64_t version, std::string_view bytes) {
    MetaFile m;
    m.version = version;
    m.length = static_cast<std::int64_t>(bytes.size());
    m.hashes["sha256"] = to_hex(sha256(bytes));
    return m;
}

}  // namespace pylon::signing::tuf::detail
