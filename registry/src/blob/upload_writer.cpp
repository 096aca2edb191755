// The filesystem store's UploadWriter. Bytes are copied into one of two blocks; a full block is
// queued for hashing and written to the data file with one pwrite while the other block fills,
// so writing and hashing run in parallel and memory stays at two blocks whatever the size.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "filesystem_store.h"
#include "fs_util.h"
#include "hash_pipeline.h"
#include "pylon/common/log.h"

namespace pylon::registry::blob::detail {
namespace {

class FsUploadWriter final : public UploadWriter {
public:
    FsUploadWriter(Layout layout, std::string id, LockedSession session, SessionMeta meta,
                   std::optional<HashState> state, std::shared_ptr<HashStates> states,
                   const BlobStoreConfig& config)
        : layout_(std::move(layout)),
          id_(std::move(id)),
          fd_(std::move(session.fd)),
          meta_(std::move(meta)),
          states_(std::move(states)),
          max_size_(config.max_blob_size),
          clock_(config.clock),
          written_(static_cast<std::uint64_t>(session.st.st_size)),
          hashing_(std::move(state), fd_.get(), written_, config.background_hashing) {
        for (auto& block : blocks_) block.resize(config.write_buffer_size);
    }

    ~FsUploadWriter() override {
        if (closed_) return;
        auto closed = close();
        if (!closed) {
            log::warn("blob store: closing upload session {}: {}", id_, closed.error().what());
        }
    }

    Result<void> write(ByteView data) override {
        if (closed_ || failed_) {
            return Error(
                pylon::Errc::invalid_argument,
                fmt::format("upload session {}: writer is {}", id_, closed_ ? "closed" : "failed"));
        }
        if (data.size() > max_size_ - std::min(max_size_, offset())) {
            return Error(Errc::too_large,
                         fmt::format("upload session {} would grow to {} bytes; the limit is {}",
                                     id_, offset() + data.size(), max_size_));
        }
        while (!data.empty()) {
            auto& block = blocks_[current_];
            const std::size_t n = std::min(data.size(), block.size() - fill_);
            std::memcpy(block.data() + fill_, data.data(), n);
            fill_ += n;
            data = data.subspan(n);
            if (fill_ == block.size()) {
                PYLON_TRY(flush_block());
            }
        }
        return {};
    }

    Result<SessionInfo> close() override {
        if (closed_) {
            return Error(pylon::Errc::invalid_argument,
                         fmt::format("upload session {}: writer already closed", id_));
        }
        closed_ = true;
        Result<void> flushed = failed_ ? Result<void>() : flush_block();
        std::optional<HashState> state = hashing_.finish();
        // The state is worth keeping only if it covers exactly the bytes in the file.
        if (!failed_ && state && state->offset == written_) states_->put(id_, std::move(*state));
        meta_.updated = clock_ ? clock_() : Clock::now();
        auto meta_written = write_meta(layout_.info_path(id_), meta_);
        fd_.reset();  // releases the session's lock
        if (!flushed) return std::move(flushed).error();
        if (failed_) {
            return Error(Errc::io, fmt::format("upload session {}: an earlier write failed", id_));
        }
        PYLON_TRY(meta_written);
        return SessionInfo{id_, meta_.ns, written_, meta_.created, meta_.updated};
    }

    std::uint64_t offset() const noexcept override { return written_ + fill_; }

private:
    // Queues the filled part of the current block for hashing, writes it, and switches to the
    // other block once its earlier hashing is done.
    Result<void> flush_block() {
        if (fill_ == 0) return {};
        const ByteView bytes(blocks_[current_].data(), fill_);
        hashing_.submit(bytes);
        auto written = pwrite_all(fd_.get(), bytes, written_, layout_.data_path(id_).string());
        if (!written) {
            // Some bytes may have reached the file: the hash state no longer matches it, so the
            // session is re-hashed from disk at complete().
            failed_ = true;
            return std::move(written).error();
        }
        // Start writeback now (advisory, errors ignored: complete()'s fsync is the guarantee),
        // so that fsync has only the tail left to wait for and dirty pages do not pile up.
        (void)::sync_file_range(fd_.get(), static_cast<off_t>(written_), static_cast<off_t>(fill_),
                                SYNC_FILE_RANGE_WRITE);
        written_ += fill_;
        fill_ = 0;
        current_ ^= 1;
        // The block now filling was submitted two submissions ago; wait until it is hashed.
        const std::uint64_t n = hashing_.submitted();
        if (n >= 2) hashing_.wait_completed(n - 1);
        return {};
    }

    Layout layout_;
    std::string id_;
    UniqueFd fd_;  // the session's data file, flock()ed while the writer lives
    SessionMeta meta_;
    std::shared_ptr<HashStates> states_;
    std::uint64_t max_size_;
    std::function<Clock::time_point()> clock_;

    std::uint64_t written_;  // bytes in the data file
    std::array<std::vector<std::uint8_t>, 2> blocks_;
    std::size_t current_ = 0;
    std::size_t fill_ = 0;  // bytes waiting in blocks_[current_]
    bool failed_ = false;
    bool closed_ = false;
    HashPipeline hashing_;  // last: stops (joins) before the blocks it reads are freed
};

}  // namespace

std::unique_ptr<UploadWriter> make_upload_writer(Layout layout, std::string id,
                                                 LockedSession session, SessionMeta meta,
                                                 std::optional<HashState> state,
                                                 std::shared_ptr<HashStates> states,
                                                 const BlobStoreConfig& config) {
    return std::make_unique<FsUploadWriter>(std::move(layout), std::move(id), std::move(session),
                                            std::move(meta), std::move(state), std::move(states),
                                            config);
}

}  // namespace pylon::registry::blob::detail
