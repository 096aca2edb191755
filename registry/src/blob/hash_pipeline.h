// HashPipeline: SHA-256 of an upload computed beside the writes, on a thread of its own, so that
// hashing (about 1.2 GB/s per core) overlaps copying and writing instead of adding to them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "filesystem_store.h"
#include "pylon/common/bytes.h"

namespace pylon::registry::blob::detail {

class HashPipeline {
public:
    // Continues `state`; without one, first hashes bytes [0, start) of `fd` (a session resumed
    // after a restart) on the hashing thread. `background` false: hash on the caller instead.
    HashPipeline(std::optional<HashState> state, int fd, std::uint64_t start, bool background);
    ~HashPipeline();
    HashPipeline(const HashPipeline&) = delete;
    HashPipeline& operator=(const HashPipeline&) = delete;

    // Queues `bytes` (submission number submitted() before the call). The bytes must stay
    // valid and unchanged until completed() exceeds that number.
    void submit(ByteView bytes);
    std::uint64_t submitted() const noexcept { return submitted_; }
    // Blocks until at least `count` submissions are hashed.
    void wait_completed(std::uint64_t count);
    // Waits for everything queued and stops the thread. The state covers all submitted bytes,
    // or is empty when the catch-up read failed.
    std::optional<HashState> finish();

private:
    void run();

    std::optional<HashState> state_;
    int fd_;
    std::uint64_t start_;
    std::uint64_t submitted_ = 0;

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<ByteView> queue_;
    std::uint64_t completed_ = 0;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace pylon::registry::blob::detail
