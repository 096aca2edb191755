// Helpers shared by the repository's implementation files (repository.cpp: staging;
// repository_publish.cpp: signing and writing; repository_import.cpp: roles signed elsewhere)
// and by the targets editor.
#pragma once

#include <algorithm>
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
#include "pylon/signing/tuf/repository.h"

namespace pylon::signing::tuf::detail {

inline Error invalid(std::string what) {
    return Error(Errc::invalid_argument, std::move(what));
}

inline constexpr std::string_view kTopLevel[] = {"root", "targets", "snapshot", "timestamp"};

inline bool is_top_level(std::string_view role) {
    return std::find(std::begin(kTopLevel), std::end(kTopLevel), role) != std::end(kTopLevel);
}

// Role names become file names: keep them to a safe alphabet.
inline bool is_valid_role_name(std::string_view name) {
    if (name.empty() || name.size() > 128 || name.front() == '.') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

// A target path is relative and '/'-separated, with no empty, "." or ".." segment.
inline Result<void> check_target_path(std::string_view path) {
    if (path.empty() || path.size() > 4096) return invalid("target path is empty or too long");
    std::size_t start = 0;
    while (true) {
        const auto slash = path.find('/', start);
        const auto seg = path.substr(start, slash == path.npos ? path.npos : slash - start);
        if (seg.empty() || seg == "." || seg == "..") {
            return invalid("target path \"" + std::string(path) +
                           "\" must be relative, with no empty, \".\" or \"..\" segment");
        }
        if (seg.find('\0') != seg.npos || seg.find('\\') != seg.npos) {
            return invalid("target path \"" + std::string(path) + "\" holds a NUL or backslash");
        }
        if (slash == path.npos) break;
        start = slash + 1;
    }
    return {};
}

inline Result<void> check_threshold(std::string_view role, std::uint32_t threshold,
                                    std::size_t keys) {
    if (threshold < 1 || threshold > keys) {
        return invalid(std::string(role) + ": threshold " + std::to_string(threshold) +
                       " must be between 1 and its number of keys (" + std::to_string(keys) + ")");
    }
    return {};
}

inline Result<void> check_distinct(std::string_view role, const std::vector<PublicKey>& keys) {
    std::set<std::string> ids;
    for (const auto& k : keys) {
        if (!ids.insert(k.key_id()).second) {
            return invalid(std::string(role) + " lists key " + k.key_id() + " twice");
        }
    }
    return {};
}

// A delegation's name, keys, threshold and paths (exactly one of the two kinds).
inline Result<void> check_delegation_spec(const DelegationSpec& spec) {
    if (!is_valid_role_name(spec.name) || is_top_level(spec.name)) {
        return invalid("role name \"" + spec.name +
                       "\" must be [A-Za-z0-9._-]+, not start with '.', and not be a top-level "
                       "role");
    }
    if (spec.keys.empty()) return invalid("role \"" + spec.name + "\" needs at least one key");
    PYLON_TRY(check_distinct(spec.name, spec.keys));
    PYLON_TRY(check_threshold(spec.name, spec.threshold, spec.keys.size()));
    const bool has_paths = spec.paths && !spec.paths->empty();
    const bool has_prefixes = spec.path_hash_prefixes && !spec.path_hash_prefixes->empty();
    if (has_paths == has_prefixes) {
        return invalid("role \"" + spec.name +
                       "\" needs either paths or path hash prefixes (exactly one of them)");
    }
    return {};
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
