// Server: configuration, the listener, the thread pools, graceful stop and signals.
#include "pylon/registry/http/server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <csignal>

#include "pylon/common/log.h"
#include "pylon/registry/http/errors.h"
#include "pylon/registry/metrics.h"
#include "session.h"

namespace pylon::registry::http {

using detail::ErrorCode;
using detail::PlainStream;
using detail::Session;
using detail::tcp;
using detail::TlsStream;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;

namespace {

constexpr std::string_view kOverloaded =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 70\r\nConnection: close\r\n\r\n"
    R"({"error":{"code":"overloaded","message":"too many open connections"}})";

std::string endpoint_string(const tcp::endpoint& ep) {
    const auto address = ep.address();
    const auto host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    return host + ":" + std::to_string(ep.port());
}

}  // namespace

Response default_error_response(const Error& error) {
    const auto& code = error.code();
    if (code == pylon::Errc::limit_exceeded) {
        return Response::error(413, "payload_too_large", error.what());
    }
    if (code == pylon::Errc::invalid_argument || code == pylon::Errc::parse_error) {
        return Response::error(400, "bad_request", error.what());
    }
    if (code == pylon::Errc::not_found) return Response::error(404, "not_found", error.what());
    if (code == pylon::Errc::permission_denied) {
        return Response::error(403, "forbidden", error.what());
    }
    log::error("http: internal error: {}", error.to_string());
    return Response::error(500, "internal", "internal server error");
}

Server::Impl::~Impl() = default;

void Server::Impl::add_session(detail::SessionBase* s, std::weak_ptr<detail::SessionBase> w) {
    std::size_t n;
    {
        std::lock_guard lock(mutex);
        sessions.emplace(s, std::move(w));
        n = sessions.size();
    }
    if (hooks.metrics) hooks.metrics->set("pylon_http_connections_active", {}, double(n));
}

void Server::Impl::remove_session(detail::SessionBase* s) {
    std::size_t n;
    {
        std::lock_guard lock(mutex);
        sessions.erase(s);
        n = sessions.size();
    }
    changed.notify_all();
    if (hooks.metrics) hooks.metrics->set("pylon_http_connections_active", {}, double(n));
}

Response Server::Impl::map_error(const Error& error) const {
    return hooks.error_response ? hooks.error_response(error) : default_error_response(error);
}

void Server::Impl::record(const AccessLogEntry& e, std::string_view method) const {
    if (hooks.metrics) {
        auto& m = *hooks.metrics;
        const std::string route = e.route.empty() ? "none" : e.route;
        m.increment("pylon_http_requests_total", {{"method", std::string(method)},
                                                  {"route", route},
                                                  {"status", std::to_string(e.status)}});
        m.observe("pylon_http_request_duration_seconds", {{"route", route}},
                  std::chrono::duration<double>(e.duration).count());
        m.increment("pylon_http_received_bytes_total", {}, double(e.bytes_received));
        m.increment("pylon_http_sent_bytes_total", {}, double(e.bytes_sent));
    }
    if (hooks.access_log) {
        hooks.access_log(e);
        return;
    }
    spdlog::info(
        "http method={} path={} route={} status={} bytes_in={} bytes_out={} duration_ms={:.3f} "
        "remote={}",
        e.method.empty() ? "-" : e.method, e.path, e.route.empty() ? "-" : e.route, e.status,
        e.bytes_received, e.bytes_sent, double(e.duration.count()) / 1000.0, e.remote_address);
}

void Server::Impl::accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](ErrorCode ec, tcp::socket socket) {
        if (!acceptor.is_open() || stopping) return;
        if (ec) {
            // Typically EMFILE: back off instead of spinning on the error.
            log::warn("http: accept: {}", ec.message());
            accept_retry.expires_after(std::chrono::milliseconds(100));
            accept_retry.async_wait([this](ErrorCode tec) {
                if (!tec) accept();
            });
            return;
        }
        on_accept(std::move(socket));
        accept();
    });
}

void Server::Impl::on_accept(tcp::socket socket) {
    ErrorCode ec;
    socket.set_option(tcp::no_delay(true), ec);
    const auto remote_ep = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    std::size_t open;
    {
        std::lock_guard lock(mutex);
        open = sessions.size();
    }
    if (open >= config.max_connections) {
        reject_overloaded(std::move(socket));
        return;
    }
    auto remote = endpoint_string(remote_ep);
    std::shared_ptr<detail::SessionBase> session;
    if (tls) {
        auto s = std::make_shared<Session<TlsStream>>(
            *this, TlsStream(beast::tcp_stream(std::move(socket)), *tls), std::move(remote));
        add_session(s.get(), s);
        s->run();
    } else {
        auto s = std::make_shared<Session<PlainStream>>(*this, PlainStream(std::move(socket)),
                                                        std::move(remote));
        add_session(s.get(), s);
        s->run();
    }
}

void Server::Impl::reject_overloaded(tcp::socket socket) {
    log::warn("http: {} connections open, refusing one", config.max_connections);
    if (tls) return;  // no handshake for a connection we refuse: just close it
    auto s = std::make_shared<tcp::socket>(std::move(socket));
    // The canned answer fits in the socket buffer: the write completes at once or fails.
    s->non_blocking(true);
    ErrorCode ec;
    asio::write(*s, asio::buffer(kOverloaded.data(), kOverloaded.size()), ec);
    s->shutdown(tcp::socket::shutdown_both, ec);
}

Result<std::unique_ptr<Server>> Server::create(ServerConfig config,
                                               std::shared_ptr<const Router> router, Hooks hooks) {
    if (!router) return Error(Errc::bad_config, "no router");
    if (config.io_threads == 0)
        config.io_threads = std::max(1u, std::thread::hardware_concurrency());
    if (config.worker_threads == 0) config.worker_threads = 2 * config.io_threads;
    if (config.max_header_bytes < 256) {
        return Error(Errc::bad_config, "max_header_bytes below 256");
    }
    if (config.max_connections == 0) return Error(Errc::bad_config, "max_connections is 0");
    auto impl = std::make_unique<Impl>(config, std::move(router), std::move(hooks));
    if (config.tls) {
        try {
            impl->tls.emplace(ssl::context::tls_server);
            impl->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                   ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
            impl->tls->use_certificate_chain_file(config.tls->cert_file.string());
            impl->tls->use_private_key_file(config.tls->key_file.string(), ssl::context::pem);
        } catch (const boost::system::system_error& e) {
            return Error(Errc::tls_config, "loading " + config.tls->cert_file.string() + " / " +
                                               config.tls->key_file.string() + ": " + e.what());
        }
    }
    if (auto* m = impl->hooks.metrics) {
        m->declare_counter("pylon_http_requests_total", "HTTP requests answered.");
        m->declare_histogram("pylon_http_request_duration_seconds",
                             "Time from the request head to the end of the response.");
        m->declare_gauge("pylon_http_connections_active", "Open HTTP connections.");
        m->declare_counter("pylon_http_received_bytes_total", "Request body bytes received.");
        m->declare_counter("pylon_http_sent_bytes_total", "Response body bytes sent.");
    }
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
    stop();
    if (impl_->signal_stopper.joinable()) impl_->signal_stopper.join();
}

Result<void> Server::start() {
    auto& s = *impl_;
    {
        std::lock_guard lock(s.mutex);
        if (s.started || s.stop_begun) return Error(Errc::bad_state, "server already started");
    }
    const auto where = s.config.host + ":" + std::to_string(s.config.port);
    ErrorCode ec;
    tcp::resolver resolver(s.ioc);
    const auto endpoints =
        resolver.resolve(s.config.host, std::to_string(s.config.port),
                         tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || endpoints.empty()) {
        return Error(Errc::listen_failed, "cannot resolve " + where + ": " + ec.message());
    }
    const tcp::endpoint endpoint = *endpoints.begin();
    s.acceptor.open(endpoint.protocol(), ec);
    if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) s.acceptor.bind(endpoint, ec);
    if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        ErrorCode ignored;
        s.acceptor.close(ignored);
        return Error(Errc::listen_failed, "cannot listen on " + where + ": " + ec.message());
    }
    s.port = s.acceptor.local_endpoint().port();
    {
        std::lock_guard lock(s.mutex);
        s.started = true;
    }
    s.workers.emplace(s.config.worker_threads);
    s.work.emplace(s.ioc.get_executor());
    asio::dispatch(s.accept_strand, [&s] { s.accept(); });
    for (unsigned i = 0; i < s.config.io_threads; ++i) {
        s.io_threads.emplace_back([&s] { s.ioc.run(); });
    }
    log::info("http: listening on {}{}", endpoint_string(s.acceptor.local_endpoint()),
              s.tls ? " (TLS)" : "");
    return {};
}

std::uint16_t Server::port() const {
    return impl_->port;
}

void Server::stop() {
    impl_->do_stop();
}

void Server::Impl::do_stop() {
    {
        std::unique_lock lock(mutex);
        if (stop_begun) {
            changed.wait(lock, [this] { return stopped; });
            return;
        }
        stop_begun = true;
        if (!started) {
            stopped = true;
            changed.notify_all();
            return;
        }
    }
    log::info("http: stopping (grace {} ms)", config.shutdown_grace.count());
    stopping = true;
    if (hooks.on_stop) hooks.on_stop();
    asio::post(accept_strand, [this] {
        ErrorCode ec;
        acceptor.close(ec);
        accept_retry.cancel();
        if (signals) signals->cancel(ec);
    });
    auto snapshot = [this] {
        std::vector<std::shared_ptr<detail::SessionBase>> out;
        std::lock_guard lock(mutex);
        for (auto& [ptr, weak] : sessions) {
            if (auto s = weak.lock()) out.push_back(std::move(s));
        }
        return out;
    };
    for (auto& session : snapshot()) session->on_stopping();
    {
        std::unique_lock lock(mutex);
        const bool drained =
            changed.wait_for(lock, config.shutdown_grace, [this] { return sessions.empty(); });
        if (!drained)
            log::warn("http: {} connections still open after the grace period", sessions.size());
    }
    for (auto& session : snapshot()) session->force_close();
    {
        // Closed sockets finish their pending operations quickly; handlers still running on
        // workers keep their connection until they return (joined below).
        std::unique_lock lock(mutex);
        changed.wait_for(lock, std::chrono::seconds(1), [this] { return sessions.empty(); });
    }
    work.reset();
    ioc.stop();
    for (auto& t : io_threads) t.join();
    workers->join();
    {
        std::lock_guard lock(mutex);
        stopped = true;
    }
    changed.notify_all();
    log::info("http: stopped");
}

void Server::wait() {
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait(lock, [this] { return impl_->stopped; });
}

void Server::install_signal_handlers() {
    auto& s = *impl_;
    s.signals.emplace(s.accept_strand, SIGINT, SIGTERM);
    s.signals->async_wait([&s](ErrorCode ec, int signo) {
        if (ec) return;
        log::info("http: signal {}: stopping", signo);
        std::lock_guard lock(s.mutex);
        if (!s.signal_stopper.joinable()) s.signal_stopper = std::thread([&s] { s.do_stop(); });
    });
}

}  // namespace pylon::registry::http
