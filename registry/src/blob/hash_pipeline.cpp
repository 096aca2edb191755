#include "hash_pipeline.h"

#include "fs_util.h"
#include "pylon/common/log.h"

namespace pylon::registry::blob::detail {
namespace {

// Hashes the bytes a previous process (or a failed writer) left, so the state matches the file.
std::optional<HashState> catch_up(int fd, std::uint64_t length) {
    HashState state;
    auto hashed = hash_prefix(fd, length, state.hasher, "upload data");
    if (!hashed) {
        log::warn("blob store: cannot re-hash upload data: {}", hashed.error().what());
        return std::nullopt;
    }
    state.offset = length;
    return state;
}

}  // namespace

HashPipeline::HashPipeline(std::optional<HashState> state, int fd, std::uint64_t start,
                           bool background)
    : state_(std::move(state)), fd_(fd), start_(start) {
    if (background) {
        thread_ = std::thread([this] { run(); });
    } else if (!state_) {
        state_ = catch_up(fd_, start_);
    }
}

HashPipeline::~HashPipeline() {
    (void)finish();
}

void HashPipeline::submit(ByteView bytes) {
    ++submitted_;
    if (!thread_.joinable()) {
        if (state_) {
            state_->hasher.update(bytes);
            state_->offset += bytes.size();
        }
        completed_ = submitted_;
        return;
    }
    {
        std::lock_guard lock(mu_);
        queue_.push_back(bytes);
    }
    cv_.notify_all();
}

void HashPipeline::wait_completed(std::uint64_t count) {
    if (!thread_.joinable()) return;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return completed_ >= count; });
}

std::optional<HashState> HashPipeline::finish() {
    if (thread_.joinable()) {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    std::optional<HashState> state = std::move(state_);
    state_.reset();
    return state;
}

void HashPipeline::run() {
    if (!state_) state_ = catch_up(fd_, start_);
    std::unique_lock lock(mu_);
    for (;;) {
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything is hashed
        const ByteView bytes = queue_.front();
        lock.unlock();
        if (state_) {
            state_->hasher.update(bytes);
            state_->offset += bytes.size();
        }
        lock.lock();
        queue_.pop_front();
        ++completed_;
        cv_.notify_all();
    }
}

}  // namespace pylon::registry::blob::detail
