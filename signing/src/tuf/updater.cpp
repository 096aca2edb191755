// Updater: fetching, local loading and persisting around TrustedSet's checks (tuf-spec.md §5).
#include "pylon/signing/tuf/updater.h"

#include <ctime>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include "pylon/common/file_io.h"
#include "trusted_set.h"

namespace pylon::signing::tuf {

namespace {

std::string with_slash(std::string url) {
    if (url.empty() || url.back() != '/') url.push_back('/');
    return url;
}

bool is_top_level(std::string_view role) {
    return role == "root" || role == "timestamp" || role == "snapshot" || role == "targets";
}

// Reads a trusted metadata file; nullopt when it is absent or unreadable (a local file that
// cannot be read is treated as not being there: the repository copy replaces it).
std::optional<std::string> read_local(const std::filesystem::path& path, std::uint64_t max) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
    auto data = read_file(path, static_cast<std::size_t>(max));
    if (!data) return std::nullopt;
    return std::move(*data);
}

std::uint64_t fetch_limit(const std::optional<std::int64_t>& length, std::uint64_t max) {
    if (length && *length >= 0 && static_cast<std::uint64_t>(*length) < max) {
        return static_cast<std::uint64_t>(*length);
    }
    return max;
}

bool same_role_keys(const Root& a, const Root& b, const std::string& role) {
    auto ia = a.roles.find(role);
    auto ib = b.roles.find(role);
    if ((ia == a.roles.end()) != (ib == b.roles.end())) return false;
    if (ia == a.roles.end()) return true;
    const std::set<std::string> ka(ia->second.keyids.begin(), ia->second.keyids.end());
    const std::set<std::string> kb(ib->second.keyids.begin(), ib->second.keyids.end());
    return ka == kb && ia->second.threshold == ib->second.threshold;
}

Result<void> remove_if_present(const std::filesystem::path& path) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (ec) return Error(ec, "removing " + path.string());
    return {};
}

}  // namespace

Time libc_now() {
    return Time(std::chrono::seconds(static_cast<std::int64_t>(::time(nullptr))));
}

std::string Updater::role_file_name(std::string_view role) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : role) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 0xF]);
        }
    }
    return out + ".json";
}

Updater::Updater(std::filesystem::path metadata_dir, std::string metadata_base_url,
                 std::string target_base_url, Fetcher& fetcher, UpdaterConfig config)
    : metadata_dir_(std::move(metadata_dir)),
      metadata_base_url_(with_slash(std::move(metadata_base_url))),
      target_base_url_(with_slash(std::move(target_base_url))),
      fetcher_(fetcher),
      config_(std::move(config)) {}

Updater::~Updater() = default;

namespace {

// One refresh or target search: the set being built, and the files to write once it succeeds.
struct Session {
    std::filesystem::path dir;
    std::string base_url;
    Fetcher& fetcher;
    const UpdaterConfig& config;
    detail::TrustedSet& set;
    std::vector<std::pair<std::string, std::string>> pending;  // file name, bytes

    Result<std::string> fetch(const std::string& name, std::uint64_t max) {
        auto data = fetcher.fetch(base_url + name, max);
        if (!data) return std::move(data).error().with_context("fetching " + name);
        if (data->size() > max) {
            return Error(Errc::too_large,
                         name + " is larger than " + std::to_string(max) + " bytes");
        }
        return pylon::to_string(*data);
    }

    Result<void> commit() {
        for (const auto& [name, bytes] : pending) {
            auto written = write_file_atomic(dir / name, std::string_view(bytes));
            if (!written) return std::move(written).error().with_context("persisting " + name);
        }
        pending.clear();
        return {};
    }

    // §5.6 for one targets role (top-level or delegated): the local copy if it is current, else
    // the repository's. Already trusted roles are not reloaded.
    Result<void> load_targets(const std::string& role, const std::string& delegator) {
        if (set.targets(role) != nullptr) return {};
        const std::string file = Updater::role_file_name(role);
        if (auto local = read_local(dir / file, config.max_targets_length)) {
            if (set.update_targets(role, delegator, *local)) return {};
        }
        const MetaFile* meta = set.snapshot_meta(role);
        if (meta == nullptr) {
            return Error(Errc::malformed_metadata, "snapshot does not list " + role + ".json");
        }
        const std::string remote = set.root().signed_.consistent_snapshot
                                       ? std::to_string(meta->version) + "." + file
                                       : file;
        PYLON_TRY_ASSIGN(std::string data,
                         fetch(remote, fetch_limit(meta->length, config.max_targets_length)));
        auto accepted = set.update_targets(role, delegator, data);
        if (!accepted) return std::move(accepted).error().with_context("verifying " + remote);
        pending.emplace_back(file, std::move(data));
        return {};
    }
};

}  // namespace

Result<void> Updater::refresh() {
    trusted_.reset();
    const Time now = config_.clock ? config_.clock() : libc_now();
    const auto root_path = metadata_dir_ / "root.json";
    std::error_code ec;
    if (!std::filesystem::exists(root_path, ec)) {
        return Error(Errc::not_initialized, "no trusted root in " + metadata_dir_.string());
    }
    PYLON_TRY_ASSIGN(std::string root_bytes, read_file(root_path, config_.max_root_length));
    auto loaded = detail::TrustedSet::from_root(root_bytes, now);
    if (!loaded) return std::move(loaded).error().with_context("loading trusted root.json");
    auto set = std::make_unique<detail::TrustedSet>(std::move(*loaded));
    Session s{metadata_dir_, metadata_base_url_, fetcher_, config_, *set, {}};

    // §5.3: one root version at a time, each persisted as soon as it is trusted.
    const Root initial = set->root().signed_;
    for (std::uint32_t i = 0; i < config_.max_root_rotations; ++i) {
        const std::string name = std::to_string(set->root().signed_.version + 1) + ".root.json";
        auto data = s.fetch(name, config_.max_root_length);
        if (!data) {
            if (data.error().code() == make_error_code(Errc::fetch_failed)) break;
            return std::move(data).error();
        }
        auto accepted = set->update_root(*data);
        if (!accepted) return std::move(accepted).error().with_context("verifying " + name);
        PYLON_TRY(write_file_atomic(root_path, std::string_view(*data)));
    }
    PYLON_TRY(set->check_root_expiry());
    // §5.3.11: new timestamp or snapshot keys void the trusted timestamp and snapshot, so that
    // versions fast-forwarded with compromised keys cannot block the repository's real ones.
    const bool rotated = !same_role_keys(initial, set->root().signed_, "timestamp") ||
                         !same_role_keys(initial, set->root().signed_, "snapshot");
    if (rotated) {
        PYLON_TRY(remove_if_present(metadata_dir_ / "timestamp.json"));
        PYLON_TRY(remove_if_present(metadata_dir_ / "snapshot.json"));
    }

    // §5.4: the local timestamp (even expired) is only a floor for rollback checks.
    if (auto local = read_local(metadata_dir_ / "timestamp.json", config_.max_timestamp_length)) {
        (void)set->load_local_timestamp(*local);
    }
    PYLON_TRY_ASSIGN(std::string ts_bytes, s.fetch("timestamp.json", config_.max_timestamp_length));
    auto ts_updated = set->update_timestamp(ts_bytes);
    if (!ts_updated) return std::move(ts_updated).error().with_context("verifying timestamp.json");
    if (*ts_updated) s.pending.emplace_back("timestamp.json", std::move(ts_bytes));

    // §5.5: the local snapshot if it is the one the timestamp names, else the repository's; the
    // local one still serves for rollback checks.
    bool snapshot_current = false;
    if (auto local = read_local(metadata_dir_ / "snapshot.json", config_.max_snapshot_length)) {
        snapshot_current = set->load_local_snapshot(*local).value_or(false);
    }
    if (!snapshot_current) {
        const MetaFile& meta = set->timestamp()->signed_.snapshot_meta;
        const std::string name = set->root().signed_.consistent_snapshot
                                     ? std::to_string(meta.version) + ".snapshot.json"
                                     : std::string("snapshot.json");
        PYLON_TRY_ASSIGN(std::string data,
                         s.fetch(name, fetch_limit(meta.length, config_.max_snapshot_length)));
        auto accepted = set->update_snapshot(data);
        if (!accepted) return std::move(accepted).error().with_context("verifying " + name);
        s.pending.emplace_back("snapshot.json", std::move(data));
    }

    // §5.6: top-level targets.
    PYLON_TRY(s.load_targets("targets", "root"));
    PYLON_TRY(s.commit());
    trusted_ = std::move(set);
    return {};
}

Result<TargetInfo> Updater::get_targetinfo(std::string_view target_path) {
    if (!trusted_) {
        PYLON_TRY(refresh());
    }
    Session s{metadata_dir_, metadata_base_url_, fetcher_, config_, *trusted_, {}};
    std::vector<std::string> loaded;  // delegated roles first trusted by this search
    auto search = [&]() -> Result<TargetInfo> {
        // §5.6.7: preorder depth-first; the stack holds (role, delegator).
        std::vector<std::pair<std::string, std::string>> stack{{"targets", "root"}};
        std::set<std::pair<std::string, std::string>> visited;
        std::uint32_t budget = config_.max_delegations;
        while (!stack.empty() && budget > 0) {
            auto [role, delegator] = stack.back();
            stack.pop_back();
            if (!visited.insert({role, delegator}).second) continue;
            --budget;
            const bool was_trusted = trusted_->targets(role) != nullptr;
            PYLON_TRY(s.load_targets(role, delegator));
            if (!was_trusted) loaded.push_back(role);
            const Targets& targets = trusted_->targets(role)->signed_;
            if (auto it = targets.targets.find(std::string(target_path));
                it != targets.targets.end()) {
                return TargetInfo{it->first, it->second, role};
            }
            if (!targets.delegations) continue;
            std::vector<std::pair<std::string, std::string>> children;
            for (const auto& child : targets.delegations->roles) {
                if (!child.is_delegated_path(target_path)) continue;
                if (is_top_level(child.name)) {
                    return Error(Errc::malformed_metadata,
                                 role + " delegates to the top-level role name " + child.name);
                }
                children.emplace_back(child.name, role);
                if (child.terminating) {
                    stack.clear();  // a terminating delegation ends the search below it
                    break;
                }
            }
            stack.insert(stack.end(), children.rbegin(), children.rend());
        }
        return Error(Errc::target_not_found,
                     "no trusted targets metadata lists " + std::string(target_path));
    };
    auto result = search();
    if (!result && result.error().code() != make_error_code(Errc::target_not_found)) {
        for (const auto& role : loaded) trusted_->forget_targets(role);
        return result;
    }
    PYLON_TRY(s.commit());
    return result;
}

std::optional<std::filesystem::path> Updater::find_cached_target(
    const TargetInfo& info, const std::filesystem::path& file) const {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) return std::nullopt;
    auto data = read_file(file, static_cast<std::size_t>(info.file.length) + 1);
    if (!data || !info.file.verify(as_bytes(*data), info.path)) return std::nullopt;
    return file;
}

Result<void> Updater::download_target(const TargetInfo& info,
                                      const std::filesystem::path& dest_file) {
    if (!trusted_) return Error(Errc::not_initialized, "download_target before a refresh");
    std::string remote = info.path;
    if (trusted_->root().signed_.consistent_snapshot) {
        // §5.7.3: "<dir>/<hash>.<basename>", with the SHA-256 when listed.
        auto hash = info.file.hashes.find("sha256");
        if (hash == info.file.hashes.end()) hash = info.file.hashes.begin();
        if (hash == info.file.hashes.end()) {
            return Error(Errc::malformed_metadata, info.path + " has no hashes");
        }
        const auto slash = info.path.rfind('/');
        const std::string dir = slash == std::string::npos ? "" : info.path.substr(0, slash + 1);
        const std::string base =
            slash == std::string::npos ? info.path : info.path.substr(slash + 1);
        remote = dir + hash->second + "." + base;
    }
    auto data = fetcher_.fetch(target_base_url_ + remote, info.file.length);
    if (!data) return std::move(data).error().with_context("downloading " + info.path);
    if (data->size() > info.file.length) {
        return Error(Errc::too_large, info.path + " is longer than its signed length");
    }
    PYLON_TRY(info.file.verify(*data, info.path));
    return write_file_atomic(dest_file, ByteView(*data));
}

const Metadata<Root>* Updater::trusted_root() const {
    return trusted_ ? &trusted_->root() : nullptr;
}
const Metadata<Timestamp>* Updater::trusted_timestamp() const {
    return trusted_ ? trusted_->timestamp() : nullptr;
}
const Metadata<Snapshot>* Updater::trusted_snapshot() const {
    return trusted_ ? trusted_->snapshot() : nullptr;
}
const Metadata<Targets>* Updater::trusted_targets(std::string_view role) const {
    return trusted_ ? trusted_->targets(role) : nullptr;
}

}  // namespace pylon::signing::tuf
