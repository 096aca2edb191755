// The filesystem blob store: blobs, session bookkeeping and recovery at open.
//
// On-disk layout under the store's root (all directories mode 0700, files 0600):
//
//   blobs/sha256/<2 hex>/<64 hex>   a verified blob, named by its digest, sharded by the first
//                                   byte so that no directory grows past ~1/256 of the blobs.
//                                   A file appears here only by an atomic rename, after its
//                                   SHA-256 matched and its bytes were fsynced; it never changes.
//   uploads/<session id>/data       the bytes of an upload session received so far; its size is
//                                   the session's offset. Appended only while flock()ed.
//   uploads/<session id>/info.json  {"namespace": "...", "created_ms": N, "updated_ms": N}
//                                   (milliseconds since the epoch), replaced atomically.
//   tmp/                            sessions being created (tmp/<id>/, renamed into uploads/
//                                   when complete, so an uploads/ entry always has both files).
//                                   Everything here is a leftover once the store is reopened.
//
// Session ids are 32 lowercase hex characters (128 random bits): URL-safe, and checked exactly
// before any path is built from one.
//
// Crash safety: a SIGKILL or power cut at any instant leaves (a) no blob under blobs/ that was
// not verified and made durable first; (b) a session whose data file holds a prefix of what was
// sent, from which the client resumes (the in-memory hash state is gone, so complete() re-hashes
// the file); (c) at worst a session directory without its data file (a crash inside complete()
// after the rename), which open and expire() remove; (d) leftovers in tmp/, removed at open.
#include "filesystem_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fs_util.h"
#include "pylon/common/file_io.h"
#include "pylon/common/log.h"

namespace pylon::registry::blob {

bool is_valid_session_id(std::string_view id) noexcept {
    if (id.size() != 32) return false;
    for (const char c : id) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

Result<std::unique_ptr<BlobStore>> BlobStore::open_filesystem(std::filesystem::path root,
                                                              BlobStoreConfig config) {
    if (config.write_buffer_size == 0) {
        return Error(pylon::Errc::invalid_argument, "blob store: write_buffer_size is 0");
    }
    auto store = std::make_unique<detail::FilesystemBlobStore>(std::move(root), std::move(config));
    PYLON_TRY(store->recover());
    return std::unique_ptr<BlobStore>(std::move(store));
}

namespace detail {

constexpr std::size_t kMaxMetaSize = 64 * 1024;

std::optional<HashState> HashStates::take(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = states_.find(id);
    if (it == states_.end()) return std::nullopt;
    std::optional<HashState> state(std::move(it->second));
    states_.erase(it);
    return state;
}

void HashStates::put(const std::string& id, HashState state) {
    std::lock_guard lock(mu_);
    states_.insert_or_assign(id, std::move(state));
}

void HashStates::erase(const std::string& id) {
    std::lock_guard lock(mu_);
    states_.erase(id);
}

Result<SessionMeta> read_meta(const Layout& layout, std::string_view id) {
    const auto path = layout.info_path(id);
    auto text = read_file(path, kMaxMetaSize);
    if (!text) {
        if (text.error().code() == pylon::Errc::not_found) {
            return Error(Errc::not_found, fmt::format("upload session {} does not exist", id));
        }
        return Error(Errc::io, text.error().message());
    }
    try {
        const auto j = nlohmann::json::parse(*text);
        SessionMeta meta;
        meta.ns = j.at("namespace").get<std::string>();
        meta.created = from_millis(j.at("created_ms").get<std::int64_t>());
        meta.updated = from_millis(j.at("updated_ms").get<std::int64_t>());
        return meta;
    } catch (const nlohmann::json::exception& e) {
        return Error(Errc::io, fmt::format("{} is corrupt: {}", path.string(), e.what()));
    }
}

Result<void> write_meta(const std::filesystem::path& path, const SessionMeta& meta) {
    const nlohmann::json j = {{"namespace", meta.ns},
                              {"created_ms", to_millis(meta.created)},
                              {"updated_ms", to_millis(meta.updated)}};
    auto written = write_file_atomic(path, j.dump(), 0600);
    if (!written) return Error(Errc::io, written.error().message());
    return {};
}

Result<LockedSession> lock_session(const Layout& layout, std::string_view id) {
    if (!is_valid_session_id(id)) {
        return Error(Errc::not_found, "malformed upload session id");
    }
    const auto path = layout.data_path(id);
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return Error(Errc::not_found, fmt::format("upload session {} does not exist", id));
        }
        return io_error(errno, "open " + path.string());
    }
    while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK) {
            return Error(Errc::session_busy,
                         fmt::format("upload session {} is being written by another request", id));
        }
        return io_error(errno, "lock " + path.string());
    }
    PYLON_TRY_ASSIGN(const struct ::stat st, fstat_fd(fd.get(), path.string()));
    // complete() and cancel() unlink the file while they hold the lock: if that happened between
    // our open and our lock, this descriptor is no longer the session's.
    struct ::stat now {};
    if (::stat(path.c_str(), &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
        return Error(Errc::not_found, fmt::format("upload session {} does not exist", id));
    }
    if (!S_ISREG(st.st_mode)) return Error(Errc::io, path.string() + " is not a regular file");
    return LockedSession{std::move(fd), st};
}

FilesystemBlobStore::FilesystemBlobStore(std::filesystem::path root, BlobStoreConfig config)
    : layout_(std::move(root)), config_(std::move(config)) {}

Result<void> FilesystemBlobStore::recover() {
    {
        std::error_code ec;
        std::filesystem::create_directories(layout_.root(), ec);
        if (ec) {
            return Error(Errc::io,
                         fmt::format("create {}: {}", layout_.root().string(), ec.message()));
        }
    }
    for (const auto& dir : {layout_.root() / "blobs", layout_.blobs_dir(), layout_.uploads_dir(),
                            layout_.tmp_dir()}) {
        PYLON_TRY(make_dir_durable(dir));
    }
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(layout_.tmp_dir(), ec)) {
        log::info("blob store: removing leftover {}", entry.path().string());
        remove_quietly(entry.path());
    }
    if (ec) return Error(Errc::io, "list " + layout_.tmp_dir().string() + ": " + ec.message());
    // A session directory without its data file was published by a complete() that did not
    // finish removing it; one that is not a session at all does not belong here.
    for (const auto& entry : std::filesystem::directory_iterator(layout_.uploads_dir(), ec)) {
        const std::string name = entry.path().filename().string();
        std::error_code exists_ec;
        if (!is_valid_session_id(name) ||
            !std::filesystem::exists(layout_.data_path(name), exists_ec)) {
            log::info("blob store: removing leftover {}", entry.path().string());
            remove_quietly(entry.path());
        }
    }
    if (ec) return Error(Errc::io, "list " + layout_.uploads_dir().string() + ": " + ec.message());
    return {};
}

Result<BlobInfo> FilesystemBlobStore::stat(const Digest& digest) {
    const auto path = layout_.blob_path(digest);
    struct ::stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return Error(Errc::not_found, "blob " + digest.str() + " not found");
        return io_error(errno, "stat " + path.string());
    }
    return BlobInfo{digest, static_cast<std::uint64_t>(st.st_size)};
}

Result<LocalBlob> FilesystemBlobStore::open_local(const Digest& digest) {
    const auto path = layout_.blob_path(digest);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT) return Error(Errc::not_found, "blob " + digest.str() + " not found");
        return io_error(errno, "open " + path.string());
    }
    PYLON_TRY_ASSIGN(const struct ::stat st, fstat_fd(fd.get(), path.string()));
    if (!S_ISREG(st.st_mode)) return Error(Errc::io, path.string() + " is not a regular file");
    return LocalBlob{std::move(fd), static_cast<std::uint64_t>(st.st_size)};
}

Result<void> FilesystemBlobStore::remove(const Digest& digest) {
    const auto path = layout_.blob_path(digest);
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return Error(Errc::not_found, "blob " + digest.str() + " not found");
        return io_error(errno, "unlink " + path.string());
    }
    auto synced = fsync_directory(path.parent_path());
    if (!synced) return Error(Errc::io, synced.error().message());
    return {};
}

}  // namespace detail
}  // namespace pylon::registry::blob
