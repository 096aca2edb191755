// Upload sessions of the filesystem blob store: create, inspect, hand out writers, verify and
// publish (complete), cancel and expire. The layout is described in filesystem_store.cpp.
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "filesystem_store.h"
#include "fs_util.h"
#include "pylon/common/file_io.h"
#include "pylon/common/log.h"

namespace pylon::registry::blob::detail {
namespace {

constexpr std::size_t kMaxNamespaceLength = 255;

Result<void> sync_dir(const std::filesystem::path& dir) {
    auto synced = fsync_directory(dir);
    if (!synced) return Error(Errc::io, synced.error().message());
    return {};
}

// Builds a new session's directory at `dir` (under tmp/).
Result<void> build_session_dir(const std::filesystem::path& dir, const SessionMeta& meta) {
    if (::mkdir(dir.c_str(), 0700) != 0) return io_error(errno, "mkdir " + dir.string());
    const auto data = dir / "data";
    UniqueFd fd(::open(data.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return io_error(errno, "create " + data.string());
    PYLON_TRY(write_meta(dir / "info.json", meta));  // fsyncs the directory too
    return {};
}

}  // namespace

Clock::time_point FilesystemBlobStore::last_activity(const SessionMeta& meta,
                                                     const struct ::stat& data) {
    return std::max(meta.updated, mtime_of(data));
}

Result<void> FilesystemBlobStore::check_not_expired(std::string_view id, const SessionMeta& meta,
                                                    const struct ::stat& data) const {
    if (now() - last_activity(meta, data) > config_.session_max_idle) {
        return Error(Errc::session_expired,
                     fmt::format("upload session {} was idle longer than {} s", id,
                                 config_.session_max_idle.count()));
    }
    return {};
}

Result<SessionInfo> FilesystemBlobStore::create_session(std::string owner_namespace) {
    if (owner_namespace.empty() || owner_namespace.size() > kMaxNamespaceLength) {
        return Error(pylon::Errc::invalid_argument,
                     fmt::format("upload namespace must be 1 to {} bytes, got {}",
                                 kMaxNamespaceLength, owner_namespace.size()));
    }
    PYLON_TRY_ASSIGN(std::string id, random_session_id());
    const Clock::time_point created = now();
    const SessionMeta meta{std::move(owner_namespace), created, created};

    // Built under tmp/ and renamed into uploads/, so a session is never seen half-made.
    const auto staging = layout_.tmp_dir() / id;
    const auto target = layout_.session_dir(id);
    auto built = build_session_dir(staging, meta);
    if (built && ::rename(staging.c_str(), target.c_str()) != 0) {
        built = io_error(errno, "rename " + staging.string() + " to " + target.string());
    }
    if (!built) {
        remove_quietly(staging);
        return std::move(built).error();
    }
    PYLON_TRY(sync_dir(layout_.uploads_dir()));
    log::debug("blob store: upload session {} created for {}", id, meta.ns);
    return SessionInfo{std::move(id), meta.ns, 0, meta.created, meta.updated};
}

Result<SessionInfo> FilesystemBlobStore::session(std::string_view id) {
    if (!is_valid_session_id(id)) return Error(Errc::not_found, "malformed upload session id");
    PYLON_TRY_ASSIGN(const SessionMeta meta, read_meta(layout_, id));
    const auto data = layout_.data_path(id);
    struct ::stat st {};
    if (::stat(data.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            return Error(Errc::not_found, fmt::format("upload session {} does not exist", id));
        }
        return io_error(errno, "stat " + data.string());
    }
    PYLON_TRY(check_not_expired(id, meta, st));
    return SessionInfo{std::string(id), meta.ns, static_cast<std::uint64_t>(st.st_size),
                       meta.created, last_activity(meta, st)};
}

Result<std::unique_ptr<UploadWriter>> FilesystemBlobStore::open_writer(std::string_view id,
                                                                       std::uint64_t start) {
    PYLON_TRY_ASSIGN(LockedSession locked, lock_session(layout_, id));
    PYLON_TRY_ASSIGN(const SessionMeta meta, read_meta(layout_, id));
    PYLON_TRY(check_not_expired(id, meta, locked.st));
    const auto offset = static_cast<std::uint64_t>(locked.st.st_size);
    if (start != offset) {
        return Error(
            Errc::range_invalid,
            fmt::format("chunk starts at byte {} but upload session {} holds {} bytes "
                        "({}); resume at {}",
                        start, id, offset, start > offset ? "a gap" : "an overlap", offset));
    }
    const std::string key(id);
    std::optional<HashState> state = states_->take(key);
    if (state && state->offset != offset) state.reset();
    return make_upload_writer(layout_, key, std::move(locked), meta, std::move(state), states_,
                              config_);
}

Result<signing::Digest> FilesystemBlobStore::digest_of(const std::string& id, int fd,
                                                       std::uint64_t size) {
    std::optional<HashState> state = states_->take(id);
    if (state && state->offset == size) return state->hasher.finish();
    // No state (the process restarted, or a writer failed): hash what is on disk.
    log::info("blob store: re-hashing {} bytes of upload session {}", size, id);
    signing::Sha256 hasher;
    PYLON_TRY(hash_prefix(fd, size, hasher, layout_.data_path(id).string()));
    return hasher.finish();
}

Result<void> FilesystemBlobStore::publish(const std::string& id, int fd, const Digest& digest) {
    const auto data = layout_.data_path(id);
    if (::fsync(fd) != 0) return io_error(errno, "fsync " + data.string());
    const auto shard = layout_.shard_dir(digest);
    PYLON_TRY(make_dir_durable(shard));
    const auto target = layout_.blob_path(digest);
    // RENAME_NOREPLACE: an existing blob with this digest has these very bytes; keep it.
    if (::renameat2(AT_FDCWD, data.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
        if (errno == EEXIST) {
            log::debug("blob store: {} already stored; dropping upload {}", digest.str(), id);
            return {};
        }
        if (errno != EINVAL) {
            return io_error(errno, "rename " + data.string() + " to " + target.string());
        }
        // A filesystem without RENAME_NOREPLACE: replacing identical content is harmless.
        if (::rename(data.c_str(), target.c_str()) != 0) {
            return io_error(errno, "rename " + data.string() + " to " + target.string());
        }
    }
    return sync_dir(shard);
}

Result<BlobInfo> FilesystemBlobStore::complete(std::string_view id, const Digest& expected) {
    PYLON_TRY_ASSIGN(LockedSession locked, lock_session(layout_, id));
    PYLON_TRY_ASSIGN(const SessionMeta meta, read_meta(layout_, id));
    PYLON_TRY(check_not_expired(id, meta, locked.st));
    const std::string key(id);
    const auto size = static_cast<std::uint64_t>(locked.st.st_size);
    PYLON_TRY_ASSIGN(const signing::Digest actual, digest_of(key, locked.fd.get(), size));
    if (actual != expected.bytes()) {
        return Error(Errc::digest_mismatch,
                     fmt::format("upload session {} ({} bytes) has digest {}, not the expected {}",
                                 id, size, Digest::from_bytes(actual).str(), expected.str()));
    }
    PYLON_TRY(publish(key, locked.fd.get(), expected));
    // The blob is durable; what is left is bookkeeping (open/expire finish it after a crash).
    remove_quietly(layout_.session_dir(id));
    (void)sync_dir(layout_.uploads_dir());
    log::info("blob store: stored {} ({} bytes) from upload session {}", expected.str(), size, id);
    return BlobInfo{expected, size};
}

Result<void> FilesystemBlobStore::cancel(std::string_view id) {
    PYLON_TRY_ASSIGN(LockedSession locked, lock_session(layout_, id));
    const std::string key(id);
    states_->erase(key);
    // Unlink the data file first, under the lock: a writer that opened it meanwhile then finds
    // the session gone (lock_session compares inodes) instead of writing into a deleted file.
    const auto data = layout_.data_path(id);
    if (::unlink(data.c_str()) != 0) return io_error(errno, "unlink " + data.string());
    remove_quietly(layout_.session_dir(id));
    return sync_dir(layout_.uploads_dir());
}

Result<std::size_t> FilesystemBlobStore::expire(std::chrono::seconds max_idle) {
    const Clock::time_point cutoff = now() - max_idle;
    std::size_t removed = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(layout_.uploads_dir(), ec)) {
        const std::string id = entry.path().filename().string();
        auto locked = lock_session(layout_, id);
        if (!locked) {
            if (locked.error().code() == Errc::session_busy) continue;  // a writer is active
            if (locked.error().code() == Errc::not_found) {
                remove_quietly(entry.path());  // not a session, or one published meanwhile
                continue;
            }
            return std::move(locked).error();
        }
        auto meta = read_meta(layout_, id);
        if (meta && last_activity(*meta, locked->st) >= cutoff) continue;
        // Idle too long, or info.json unreadable (a session we cannot account for).
        states_->erase(id);
        const auto data = layout_.data_path(id);
        if (::unlink(data.c_str()) != 0) return io_error(errno, "unlink " + data.string());
        remove_quietly(entry.path());
        ++removed;
        log::info("blob store: expired upload session {}", id);
    }
    if (ec) return Error(Errc::io, "list " + layout_.uploads_dir().string() + ": " + ec.message());

    for (const auto& entry : std::filesystem::directory_iterator(layout_.tmp_dir(), ec)) {
        struct ::stat st {};
        if (::lstat(entry.path().c_str(), &st) == 0 && mtime_of(st) < cutoff) {
            remove_quietly(entry.path());
        }
    }
    if (ec) return Error(Errc::io, "list " + layout_.tmp_dir().string() + ": " + ec.message());
    if (removed > 0) {
        PYLON_TRY(sync_dir(layout_.uploads_dir()));
    }
    return removed;
}

}  // namespace pylon::registry::blob::detail
