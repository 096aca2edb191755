// The thread-safe half of an HTTP exchange (http_server.cpp): flow control for a streamed
// response (how many bytes the handler has queued that the socket has not written yet) and
// the client-gone state with its callbacks. The handler's thread calls reserve() and
// on_disconnect(); the connection's strand calls written(), mark_gone() and mark_complete().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

namespace pylon::runtime_server {

class ExchangeFlow {
public:
    ExchangeFlow(std::size_t max_pending, std::chrono::milliseconds write_timeout)
        : max_pending_(max_pending), write_timeout_(write_timeout) {}

    // Before queueing n more bytes: waits (up to the write timeout) until what is pending is
    // at most max_pending, then counts them.
    enum class Reserve { ok, gone, timed_out };
    Reserve reserve(std::size_t n);
    // Runs `callback` when the client goes before the response is complete (not once it is),
    // or at once if the client has already gone.
    void on_disconnect(std::function<void()> callback);
    bool gone() const;

    void written(std::size_t bytes);
    // The client is gone (or will not be served): runs the callbacks once, wakes reserve().
    void mark_gone();
    // The response is out: callbacks are dropped.
    void mark_complete();

private:
    const std::size_t max_pending_;
    const std::chrono::milliseconds write_timeout_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::size_t pending_ = 0;
    bool gone_ = false;
    bool complete_ = false;
    std::vector<std::function<void()>> callbacks_;
};

}  // namespace pylon::runtime_server
