// TufHost: serving the repository's metadata, accepting client-signed targets roles, resolving
// consistent target names, and keeping snapshot and timestamp fresh (see tuf_host.h).
#include "pylon/registry/tuf/tuf_host.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "pylon/common/file_io.h"
#include "pylon/common/log.h"
#include "tuf_host_impl.h"

namespace pylon::registry::tuf {

namespace fs = std::filesystem;
using signing::tuf::DelegatedRole;
using signing::tuf::Metadata;
using signing::tuf::Repository;
using signing::tuf::TargetFile;
using signing::tuf::Targets;

namespace {

constexpr std::size_t kMaxMetadataFile = 64 * 1024 * 1024;
constexpr int kMaxRolesSearched = 32;  // as the client (UpdaterConfig::max_delegations)

Error not_found(std::string what) {
    return Error(pylon::Errc::not_found, std::move(what));
}

bool is_role_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

// "<role>.json" or "<digits>.<role>.json", role in the alphabet Repository allows.
bool is_metadata_file_name(std::string_view name) {
    constexpr std::string_view kSuffix = ".json";
    if (name.size() <= kSuffix.size() || name.size() > 200 || !name.ends_with(kSuffix)) {
        return false;
    }
    std::string_view role = name.substr(0, name.size() - kSuffix.size());
    const auto digits = role.find_first_not_of("0123456789");
    if (digits != 0 && digits != role.npos && role[digits] == '.') role.remove_prefix(digits + 1);
    return !role.empty() && role.front() != '.' &&
           std::all_of(role.begin(), role.end(), is_role_char);
}

bool is_lower_hex64(std::string_view s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

Result<FileStamp> stamp_of(const fs::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return Error::from_errno(errno, "stat " + file.string());
    return FileStamp{st.st_ino, st.st_size,
                     std::int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

// The client's search (spec §5.6.7): preorder depth first, in delegation order, entering a role
// only for paths delegated to it; a terminating delegation ends the search.
struct TargetSearch {
    const Repository& repo;
    const std::string& path;
    int visited = 0;
    bool stop = false;

    const TargetFile* visit(const std::string& role) {
        if (++visited > kMaxRolesSearched) {
            stop = true;
            return nullptr;
        }
        auto md = repo.targets(role);
        if (!md) return nullptr;
        const Targets& t = (*md)->signed_;
        if (auto it = t.targets.find(path); it != t.targets.end()) return &it->second;
        if (!t.delegations) return nullptr;
        for (const DelegatedRole& d : t.delegations->roles) {
            if (!d.is_delegated_path(path)) continue;
            if (const TargetFile* found = visit(d.name)) return found;
            if (stop) return nullptr;
            if (d.terminating) {
                stop = true;
                return nullptr;
            }
        }
        return nullptr;
    }
};

}  // namespace

// --- Impl ----------------------------------------------------------------------------------------

Time TufHost::Impl::now() const {
    if (options.clock) return options.clock();
    return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

signing::tuf::Signers TufHost::Impl::signers() const {
    signing::tuf::Signers s;
    s.add("snapshot", snapshot_key).add("timestamp", timestamp_key);
    return s;
}

Result<void> TufHost::Impl::reload() const {
    const fs::path ts = repo_dir() / "metadata" / "timestamp.json";
    PYLON_TRY_ASSIGN(FileStamp stamp, stamp_of(ts));
    PYLON_TRY_ASSIGN(Repository fresh, Repository::open(repo_dir(), options.expiry));
    repo = std::move(fresh);
    loaded = stamp;
    return {};
}

Result<void> TufHost::Impl::reload_if_stale() const {
    auto stamp = stamp_of(repo_dir() / "metadata" / "timestamp.json");
    if (repo && stamp && *stamp == loaded) return {};
    return reload();
}

// --- TufHost -------------------------------------------------------------------------------------

TufHost::TufHost(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TufHost::~TufHost() = default;

Result<std::unique_ptr<TufHost>> TufHost::open(fs::path dir, TufHostOptions options) {
    const Time now =
        options.clock ? options.clock()
                      : std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    PYLON_TRY(detail::bootstrap_if_needed(dir, options, now));
    PYLON_TRY_ASSIGN(auto snapshot_key, detail::load_owner_only_key(dir / "keys" / "snapshot.key"));
    PYLON_TRY_ASSIGN(auto timestamp_key,
                     detail::load_owner_only_key(dir / "keys" / "timestamp.key"));
    auto impl = std::make_unique<Impl>(std::move(dir), std::move(options), std::move(snapshot_key),
                                       std::move(timestamp_key));
    PYLON_TRY(impl->reload());
    const auto& root = impl->repo->root().signed_;
    PYLON_TRY(detail::check_online_key(root, "snapshot", impl->snapshot_key));
    PYLON_TRY(detail::check_online_key(root, "timestamp", impl->timestamp_key));
    return std::unique_ptr<TufHost>(new TufHost(std::move(impl)));
}

fs::path TufHost::metadata_dir() const {
    return impl_->repo_dir() / "metadata";
}

Result<std::string> TufHost::metadata_bytes(std::string_view file_name) const {
    if (!is_metadata_file_name(file_name)) {
        return not_found("no metadata file \"" + std::string(file_name.substr(0, 64)) + "\"");
    }
    // Files are only ever replaced by rename, so a read sees one whole version.
    return read_file(metadata_dir() / std::string(file_name), kMaxMetadataFile);
}

Result<std::string> TufHost::current_role(std::string_view role) const {
    {
        std::lock_guard lock(impl_->mutex);
        PYLON_TRY(impl_->reload_if_stale());
        auto md = impl_->repo->targets(role);
        if (!md || (*md)->signed_.version == 0) {
            return not_found("no published targets role \"" + std::string(role) + "\"");
        }
    }
    return read_file(metadata_dir() / (std::string(role) + ".json"), kMaxMetadataFile);
}

Result<RoleDelegation> TufHost::delegation(std::string_view role) const {
    std::lock_guard lock(impl_->mutex);
    PYLON_TRY(impl_->reload_if_stale());
    const Repository& repo = *impl_->repo;
    for (const std::string& name : repo.targets_roles()) {
        const auto& delegations = (*repo.targets(name))->signed_.delegations;
        if (!delegations) continue;
        for (const DelegatedRole& d : delegations->roles) {
            if (d.name != role) continue;
            RoleDelegation out{d, {}, name};
            for (const auto& id : d.keyids) {
                if (auto it = delegations->keys.find(id); it != delegations->keys.end()) {
                    out.keys.emplace(id, it->second);
                }
            }
            return out;
        }
    }
    return not_found("no role delegates \"" + std::string(role) + "\"");
}

Result<SubmitReport> TufHost::submit_role(std::string_view role, std::string_view bytes,
                                          const SubmitCheck& check) {
    std::lock_guard lock(impl_->mutex);
    const Time now = impl_->now();
    auto attempt = [&]() -> Result<SubmitReport> {
        // Start from disk: another replica may have published since this one last looked.
        PYLON_TRY_ASSIGN(Repository work,
                         Repository::open(impl_->repo_dir(), impl_->options.expiry));
        std::optional<Metadata<Targets>> previous;
        if (auto md = work.targets(role); md && (*md)->signed_.version > 0) previous = **md;
        PYLON_TRY(work.import_role(role, bytes, now));
        if (check) {
            PYLON_TRY(check(**work.targets(role), previous ? &*previous : nullptr));
        }
        PYLON_TRY_ASSIGN(auto published, work.publish(impl_->signers(), now));
        SubmitReport report;
        report.version = (*work.targets(role))->signed_.version;
        report.snapshot_version = work.snapshot().signed_.version;
        report.timestamp_version = work.timestamp().signed_.version;
        report.written = std::move(published.written);
        report.pending = std::move(published.pending);
        return report;
    };
    auto result = attempt();
    // Memory follows disk, whatever happened (a failed write may have left new files).
    auto reloaded = impl_->reload();
    if (!result) return result;
    if (!reloaded) return std::move(reloaded).error().with_context("reloading after a submission");
    log::info("TUF: accepted {} version {} (snapshot {}, timestamp {})", role, result->version,
              result->snapshot_version, result->timestamp_version);
    return result;
}

Result<TargetRef> TufHost::resolve_target(std::string_view consistent_path) const {
    const auto slash = consistent_path.rfind('/');
    const std::string_view dir =
        slash == consistent_path.npos ? std::string_view{} : consistent_path.substr(0, slash + 1);
    const std::string_view name =
        slash == consistent_path.npos ? consistent_path : consistent_path.substr(slash + 1);
    const auto dot = name.find('.');
    if (dot == name.npos || dot + 1 == name.size() || !is_lower_hex64(name.substr(0, dot))) {
        return not_found("\"" + std::string(consistent_path.substr(0, 200)) +
                         "\" is not <dir>/<sha256hex>.<name>");
    }
    const std::string hex(name.substr(0, dot));
    const std::string path = std::string(dir) + std::string(name.substr(dot + 1));

    std::lock_guard lock(impl_->mutex);
    PYLON_TRY(impl_->reload_if_stale());
    TargetSearch search{*impl_->repo, path};
    const TargetFile* file = search.visit("targets");
    if (!file) return not_found("no target \"" + path + "\"");
    auto sha = file->hashes.find("sha256");
    if (sha == file->hashes.end() || sha->second != hex) {
        return not_found("target \"" + path + "\" has no sha256 " + hex);
    }
    return TargetRef{path, hex, file->length};
}

Result<bool> TufHost::refresh_if_expiring(Time now) {
    std::lock_guard lock(impl_->mutex);
    PYLON_TRY_ASSIGN(Repository work, Repository::open(impl_->repo_dir(), impl_->options.expiry));
    const auto& policy = impl_->options.expiry;
    auto expiring = [&](Time expires, std::chrono::days life) {
        return expires - now <= std::chrono::duration_cast<std::chrono::seconds>(life) / 2;
    };
    const bool snapshot = expiring(work.snapshot().signed_.expires, policy.snapshot);
    const bool timestamp = expiring(work.timestamp().signed_.expires, policy.timestamp);
    if (!snapshot && !timestamp) return false;
    if (snapshot) {
        PYLON_TRY(work.bump("snapshot"));
    }
    auto published = work.publish(impl_->signers(), now);
    auto reloaded = impl_->reload();
    if (!published) return std::move(published).error().with_context("refreshing TUF metadata");
    if (!reloaded) return std::move(reloaded).error();
    log::info("TUF: re-signed {}timestamp (timestamp version {})", snapshot ? "snapshot and " : "",
              impl_->repo->timestamp().signed_.version);
    return true;
}

}  // namespace pylon::registry::tuf
