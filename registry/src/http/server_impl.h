// Server::Impl: the state shared by the listener and every connection (private; includes Asio).
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "pylon/registry/http/server.h"

namespace pylon::registry::http {

namespace detail {

// What the server needs from a connection, whatever its stream type.
class SessionBase {
public:
    virtual ~SessionBase() = default;
    // The server is stopping: close at once if waiting for a request, else after the response.
    // Callable from any thread.
    virtual void on_stopping() = 0;
    // The grace period is over: close now. Callable from any thread.
    virtual void force_close() = 0;
};

}  // namespace detail

struct Server::Impl {
    Impl(ServerConfig c, std::shared_ptr<const Router> r, Hooks h)
        : config(std::move(c)), router(std::move(r)), hooks(std::move(h)) {}
    ~Impl();

    void accept();
    void on_accept(boost::asio::ip::tcp::socket socket);
    void reject_overloaded(boost::asio::ip::tcp::socket socket);
    void do_stop();

    // Connections register themselves while they live; stop() waits for the set to empty.
    void add_session(detail::SessionBase* s, std::weak_ptr<detail::SessionBase> w);
    void remove_session(detail::SessionBase* s);

    Response map_error(const Error& error) const;
    void record(const AccessLogEntry& entry, std::string_view method) const;

    const ServerConfig config;
    const std::shared_ptr<const Router> router;
    const Hooks hooks;
    std::optional<boost::asio::ssl::context> tls;
    std::atomic<bool> stopping{false};

    std::mutex mutex;
    std::condition_variable changed;
    std::unordered_map<detail::SessionBase*, std::weak_ptr<detail::SessionBase>> sessions;
    bool started = false;
    bool stop_begun = false;
    bool stopped = false;
    std::uint16_t port = 0;
    std::thread signal_stopper;

    // Declared after what sessions use, so that connections still queued in the io_context are
    // destroyed (and unregister) while the registry above still exists.
    boost::asio::io_context ioc;
    boost::asio::strand<boost::asio::io_context::executor_type> accept_strand{
        boost::asio::make_strand(ioc)};
    boost::asio::ip::tcp::acceptor acceptor{accept_strand};
    boost::asio::steady_timer accept_retry{accept_strand};
    std::optional<boost::asio::signal_set> signals;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    std::optional<boost::asio::thread_pool> workers;
    std::vector<std::thread> io_threads;
};

}  // namespace pylon::registry::http
