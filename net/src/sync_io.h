// Synchronous use of Asio with deadlines, shared by HttpFetcher and HttpClient: start an async
// operation, run the io_context until it completes, and bound each step by what is left of the
// whole request's time.
#pragma once

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>

namespace pylon::net::detail {

// Runs `ioc` until the operation `start` begins (given a completion handler) has completed;
// returns its error code.
template <typename Start>
boost::system::error_code run_until_done(boost::asio::io_context& ioc, Start&& start) {
    boost::system::error_code result = boost::asio::error::would_block;
    start([&result](boost::system::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
}

// The smaller of `timeout` and what is left until `deadline` (never negative).
inline std::chrono::steady_clock::duration time_left(std::chrono::steady_clock::time_point deadline,
                                                     std::chrono::milliseconds timeout) {
    const auto left = deadline - std::chrono::steady_clock::now();
    return std::max(std::chrono::steady_clock::duration::zero(),
                    std::min<std::chrono::steady_clock::duration>(timeout, left));
}

}  // namespace pylon::net::detail
