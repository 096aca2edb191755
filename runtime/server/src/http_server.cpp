// The runtime API's HTTP/1.1 server over Boost.Asio/Beast (the only translation unit of
// pylon::runtime_server that includes them). Beast parses requests; responses are written by
// hand (a status line, a few fields, a body or chunks), which is all this server sends.
//
// A connection's phases:
//   reading   a request head, then its body (timer: idle_timeout for the first head on an empty
//             buffer, request_timeout otherwise)
//   handling  the handler has the Exchange; a background read watches for the client leaving
//             (bytes it gets are kept for the next request); response bytes are written as the
//             Exchange queues them (timer: write_timeout per write)
//   resuming  the response is out; the background read is being cancelled, then the next
//             request is read (from what the background read kept, and the socket)
//   lingering after a response with Connection: close: half-closed, draining for a second
//   closed
// The background read has a buffer of its own (watch_buf_) and appends what it gets to buf_,
// so that Beast's parser and it never share a buffer.
#include "http_server.h"

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "exchange_flow.h"
#include "http_wire.h"
#include "pylon/common/error.h"
#include "pylon/common/log.h"

namespace pylon::runtime_server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (k == name) return std::string_view(v);
    }
    return std::nullopt;
}

namespace {

class Session;

}  // namespace

struct HttpServer::Impl {
    Impl(HttpServerConfig c, Handler h, ErrorResponder e)
        : config(std::move(c)), handler(std::move(h)), errors(std::move(e)) {}

    void accept();
    void add(const std::shared_ptr<Session>& s);
    void remove(Session* s);

    const HttpServerConfig config;
    const Handler handler;
    const ErrorResponder errors;
    asio::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    std::uint16_t port = 0;
    std::thread thread;

    std::mutex mu;
    std::condition_variable changed;
    // Open connections. The map owns them until they close; an Exchange only holds a weak_ptr.
    std::unordered_map<Session*, std::shared_ptr<Session>> sessions;
    bool stopping = false;
    bool stopped = false;
};

namespace {

// An Exchange: the handler's calls posted to the session's strand; the thread-safe state (flow
// control, the client leaving) is an ExchangeFlow, which the session also updates.
class ExchangeImpl final : public Exchange {
public:
    ExchangeImpl(std::weak_ptr<Session> session, const HttpServerConfig& config)
        : session_(std::move(session)), flow_(config.max_pending_bytes, config.write_timeout) {}

    void respond(HttpResponse response) override;
    void begin_stream(int status, std::string content_type, HeaderList headers) override;
    bool write(std::string data) override;
    void end() override;
    void on_disconnect(std::function<void()> callback) override {
        flow_.on_disconnect(std::move(callback));
    }
    bool disconnected() const override { return flow_.gone(); }

    ExchangeFlow& flow() { return flow_; }

private:
    template <class F>
    void post(F&& f);

    std::weak_ptr<Session> session_;
    ExchangeFlow flow_;
};

class Session final : public std::enable_shared_from_this<Session> {
public:
    Session(HttpServer::Impl& server, tcp::socket socket, std::string remote)
        : srv_(server),
          sock_(std::move(socket)),
          timer_(sock_.get_executor()),
          remote_(std::move(remote)) {}

    auto executor() { return sock_.get_executor(); }

    void start(bool reject) {
        if (reject) {
            respond_error(503, "too many connections");
        } else {
            read_request();
        }
    }

    // The server is stopping: close now if no request is in progress, else after its response.
    void on_stop() {
        stopping_ = true;
        close_after_ = true;
        if (phase_ == Phase::reading) close_now();
    }

    void close_now() {
        if (phase_ == Phase::closed) return;
        phase_ = Phase::closed;
        cancel_timer();
        ErrorCode ec;
        sock_.close(ec);
        out_.clear();
        if (exchange_) exchange_->flow().mark_gone();
        exchange_.reset();
        srv_.remove(this);
    }

    // Called (posted) by the Exchange.
    void send_response(HttpResponse r) {
        if (phase_ != Phase::handling) return;
        std::string head = wire::response_head(r.status, r.content_type, r.body.size(), false,
                                               r.headers, close_after_);
        head += r.body;
        enqueue(std::move(head), 0, true);
    }
    void send_stream_head(int status, const std::string& content_type, const HeaderList& fields) {
        if (phase_ != Phase::handling) return;
        // HTTP/1.0 has no chunked encoding: the body then ends when the connection does.
        if (http10_) close_after_ = true;
        enqueue(
            wire::response_head(status, content_type, std::nullopt, !http10_, fields, close_after_),
            0, false);
    }
    // A piece of a streamed body (empty and `last`: the end of it).
    void send_chunk(std::string data, bool last) {
        if (phase_ != Phase::handling) return;
        const std::size_t counted = data.size();
        if (http10_) return enqueue(std::move(data), counted, last);
        std::string framed = data.empty() ? std::string() : wire::chunk_frame(data);
        if (last) framed += wire::kLastChunk;
        enqueue(std::move(framed), counted, last);
    }

private:
    enum class Phase { reading, handling, resuming, lingering, closed };

    void arm_timer(std::chrono::milliseconds d) {
        const std::uint64_t gen = ++timer_gen_;
        timer_.expires_after(d);
        timer_.async_wait([self = shared_from_this(), gen](ErrorCode ec) {
            if (ec || gen != self->timer_gen_) return;
            log::debug("runtime server: connection {} timed out", self->remote_);
            self->close_now();
        });
    }
    void cancel_timer() {
        ++timer_gen_;
        timer_.cancel();
    }

    void read_request() {
        phase_ = Phase::reading;
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(srv_.config.max_header_bytes));
        parser_->body_limit(srv_.config.max_body_bytes);
        arm_timer(buf_.size() == 0 ? srv_.config.idle_timeout : srv_.config.request_timeout);
        bhttp::async_read_header(
            sock_, buf_, *parser_,
            [self = shared_from_this()](ErrorCode ec, std::size_t) { self->on_header(ec); });
    }

    // True when the error was answered (or the connection is gone).
    bool read_failed(ErrorCode ec) {
        if (!ec) return false;
        cancel_timer();
        if (phase_ == Phase::closed) return true;
        if (ec == bhttp::error::header_limit) {
            respond_error(431, "the request head is larger than " +
                                   std::to_string(srv_.config.max_header_bytes) + " bytes");
        } else if (ec == bhttp::error::body_limit) {
            respond_error(413, "the request body is larger than " +
                                   std::to_string(srv_.config.max_body_bytes) + " bytes");
        } else if (ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
                   ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
                   ec == bhttp::error::partial_message) {
            close_now();
        } else {
            respond_error(400, "malformed HTTP request (" + ec.message() + ")");
        }
        return true;
    }

    void on_header(ErrorCode ec) {
        if (read_failed(ec)) return;
        const auto& head = parser_->get();
        auto expect = head.find(bhttp::field::expect);
        if (expect != head.end() && wire::lower(expect->value()) == "100-continue" &&
            !parser_->is_done()) {
            continue_ = "HTTP/1.1 100 Continue\r\n\r\n";
            asio::async_write(sock_, asio::buffer(continue_),
                              [self = shared_from_this()](ErrorCode wec, std::size_t) {
                                  if (wec) return self->close_now();
                                  self->read_body();
                              });
            return;
        }
        read_body();
    }

    void read_body() {
        arm_timer(srv_.config.request_timeout);
        bhttp::async_read(
            sock_, buf_, *parser_,
            [self = shared_from_this()](ErrorCode ec, std::size_t) { self->on_request(ec); });
    }

    void on_request(ErrorCode ec) {
        if (read_failed(ec)) return;
        cancel_timer();
        auto msg = parser_->release();
        parser_.reset();
        HttpRequest req;
        req.method = std::string(msg.method_string());
        const std::string_view target = msg.target();
        const auto q = target.find('?');
        req.path = std::string(target.substr(0, q));
        if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
        for (const auto& f : msg) {
            req.headers.emplace_back(wire::lower(f.name_string()), std::string(f.value()));
        }
        req.body = std::move(msg.body());
        req.remote = remote_;
        if (!msg.keep_alive() || stopping_) close_after_ = true;
        http10_ = msg.version() < 11;

        phase_ = Phase::handling;
        exchange_ = std::make_shared<ExchangeImpl>(weak_from_this(), srv_.config);
        watch();
        try {
            srv_.handler(std::move(req), exchange_);
        } catch (const std::exception& e) {
            log::error("runtime server: handler failed: {}", e.what());
            if (phase_ == Phase::handling && !writing_ && out_.empty()) {
                exchange_->respond(srv_.errors(500, "internal error"));
            }
        }
    }

    // The background read while a request is handled (see the file comment).
    void watch() {
        if (watching_ || phase_ == Phase::closed) return;
        if (buf_.size() >= srv_.config.max_header_bytes) return;  // enough pipelined already
        watching_ = true;
        sock_.async_read_some(
            asio::buffer(watch_buf_),
            [self = shared_from_this()](ErrorCode ec, std::size_t n) { self->on_watch(ec, n); });
    }

    void on_watch(ErrorCode ec, std::size_t n) {
        watching_ = false;
        if (phase_ == Phase::closed) return;
        if (phase_ == Phase::lingering) return drain();
        if (n > 0) {
            auto dst = buf_.prepare(n);
            asio::buffer_copy(dst, asio::buffer(watch_buf_.data(), n));
            buf_.commit(n);
        }
        if (ec && !(ec == asio::error::operation_aborted && phase_ == Phase::resuming)) {
            if (phase_ == Phase::handling) {
                log::debug("runtime server: client {} left during a request", remote_);
            }
            close_now();
            return;
        }
        if (phase_ == Phase::handling) {
            watch();
        } else if (phase_ == Phase::resuming) {
            read_request();
        }
    }

    void respond_error(int status, const std::string& message) {
        close_after_ = true;
        phase_ = Phase::handling;
        send_response(srv_.errors(status, message));
    }

    void enqueue(std::string bytes, std::size_t counted, bool last) {
        out_.push_back({std::move(bytes), counted});
        if (last) final_queued_ = true;
        if (!writing_) write_next();
    }

    void write_next() {
        if (phase_ == Phase::closed) return;
        if (out_.empty()) {
            writing_ = false;
            if (final_queued_) finish_response();
            return;
        }
        writing_ = true;
        wbuf_.clear();
        std::size_t counted = 0;
        while (!out_.empty() && wbuf_.size() < (256u << 10)) {
            wbuf_ += out_.front().bytes;
            counted += out_.front().counted;
            out_.pop_front();
        }
        arm_timer(srv_.config.write_timeout);
        asio::async_write(sock_, asio::buffer(wbuf_),
                          [self = shared_from_this(), counted](ErrorCode ec, std::size_t) {
                              self->cancel_timer();
                              if (ec) {
                                  log::debug("runtime server: writing to {}: {}", self->remote_,
                                             ec.message());
                                  self->close_now();
                                  return;
                              }
                              if (self->exchange_) self->exchange_->flow().written(counted);
                              self->write_next();
                          });
    }

    void finish_response() {
        final_queued_ = false;
        if (exchange_) exchange_->flow().mark_complete();
        exchange_.reset();
        if (close_after_) {
            linger();
            return;
        }
        if (watching_) {
            // No write is pending now, so this cancels only the background read; its handler
            // goes on with read_request().
            phase_ = Phase::resuming;
            ErrorCode ec;
            sock_.cancel(ec);
        } else {
            read_request();
        }
    }

    // Half-close, then read what the client still sends (so that closing does not reset the
    // connection before it has read our answer), for at most a second.
    void linger() {
        phase_ = Phase::lingering;
        ErrorCode ec;
        sock_.shutdown(tcp::socket::shutdown_send, ec);
        arm_timer(std::chrono::milliseconds(1000));
        drain();
    }
    void drain() {
        if (watching_) return;  // the background read's completion comes back here
        watching_ = true;
        sock_.async_read_some(asio::buffer(watch_buf_),
                              [self = shared_from_this()](ErrorCode ec, std::size_t) {
                                  self->watching_ = false;
                                  if (ec || self->phase_ != Phase::lingering) {
                                      self->close_now();
                                  } else {
                                      self->drain();
                                  }
                              });
    }

    struct Out {
        std::string bytes;
        std::size_t counted;  // bytes the Exchange counted against max_pending_bytes
    };

    HttpServer::Impl& srv_;
    tcp::socket sock_;
    asio::steady_timer timer_;
    std::uint64_t timer_gen_ = 0;
    std::string remote_;
    beast::flat_buffer buf_;
    std::array<char, 4096> watch_buf_{};
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    std::string continue_;
    Phase phase_ = Phase::reading;
    bool watching_ = false;
    bool writing_ = false;
    bool final_queued_ = false;
    bool close_after_ = false;
    bool stopping_ = false;
    bool http10_ = false;  // the request was HTTP/1.0
    std::deque<Out> out_;
    std::string wbuf_;
    std::shared_ptr<ExchangeImpl> exchange_;

    friend class ExchangeImpl;
};

template <class F>
void ExchangeImpl::post(F&& f) {
    if (auto s = session_.lock()) {
        asio::post(s->executor(), [s, f = std::forward<F>(f)]() mutable { f(*s); });
    }
}

void ExchangeImpl::respond(HttpResponse response) {
    post([r = std::move(response)](Session& s) mutable { s.send_response(std::move(r)); });
}

void ExchangeImpl::begin_stream(int status, std::string content_type, HeaderList headers) {
    post([status, ct = std::move(content_type), h = std::move(headers)](Session& s) {
        s.send_stream_head(status, ct, h);
    });
}

bool ExchangeImpl::write(std::string data) {
    if (data.empty()) return !disconnected();
    switch (flow_.reserve(data.size())) {
        case ExchangeFlow::Reserve::gone:
            return false;
        case ExchangeFlow::Reserve::timed_out:
            log::warn("runtime server: a streaming client did not read its response in time");
            post([](Session& s) { s.close_now(); });
            flow_.mark_gone();
            return false;
        case ExchangeFlow::Reserve::ok:
            break;
    }
    post([d = std::move(data)](Session& s) mutable { s.send_chunk(std::move(d), false); });
    return true;
}

void ExchangeImpl::end() {
    post([](Session& s) { s.send_chunk({}, true); });
}

}  // namespace

void HttpServer::Impl::add(const std::shared_ptr<Session>& s) {
    std::lock_guard lock(mu);
    sessions.emplace(s.get(), s);
}

void HttpServer::Impl::remove(Session* s) {
    std::shared_ptr<Session> keep;  // released after the lock
    {
        std::lock_guard lock(mu);
        auto it = sessions.find(s);
        if (it == sessions.end()) return;
        keep = std::move(it->second);
        sessions.erase(it);
    }
    changed.notify_all();
}

void HttpServer::Impl::accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](ErrorCode ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
        if (ec) {
            log::warn("runtime server: accept: {}", ec.message());
        } else {
            ErrorCode rec;
            const auto ep = socket.remote_endpoint(rec);
            std::string remote =
                rec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
            auto s = std::make_shared<Session>(*this, std::move(socket), std::move(remote));
            bool reject;
            {
                std::lock_guard lock(mu);
                reject = sessions.size() >= config.max_connections;
            }
            add(s);
            asio::post(s->executor(), [s, reject] { s->start(reject); });
        }
        accept();
    });
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerConfig config, Handler handler,
                                                      ErrorResponder errors) {
    auto impl = std::make_unique<Impl>(std::move(config), std::move(handler), std::move(errors));
    const auto& c = impl->config;
    const std::string where = c.host + ":" + std::to_string(c.port);
    ErrorCode ec;
    const auto address = asio::ip::make_address(c.host, ec);
    if (ec) {
        return Error(Errc::invalid_argument,
                     "'" + c.host + "' is not an IP address (give e.g. 127.0.0.1 or ::1)");
    }
    const tcp::endpoint ep(address, c.port);
    impl->acceptor.open(ep.protocol(), ec);
    if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) impl->acceptor.bind(ep, ec);
    if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Error(Errc::io_error, "cannot listen on " + where + ": " + ec.message());
    impl->port = impl->acceptor.local_endpoint().port();
    impl->accept();
    Impl* p = impl.get();
    impl->thread = std::thread([p] {
        for (;;) {
            try {
                p->ioc.run();
                return;
            } catch (const std::exception& e) {
                log::error("runtime server: I/O thread: {}", e.what());
            }
        }
    });
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
    stop(std::chrono::milliseconds(0));
}

std::uint16_t HttpServer::port() const noexcept {
    return impl_->port;
}

void HttpServer::stop(std::chrono::milliseconds grace) {
    Impl& s = *impl_;
    {
        std::lock_guard lock(s.mu);
        if (s.stopping) return;
        s.stopping = true;
    }
    auto for_each_session = [&](auto fn) {
        std::vector<std::shared_ptr<Session>> all;
        {
            std::lock_guard lock(s.mu);
            for (auto& [k, v] : s.sessions) all.push_back(v);
        }
        for (auto& session : all) asio::post(session->executor(), [session, fn] { fn(*session); });
    };
    asio::post(s.ioc, [&s] {
        ErrorCode ec;
        s.acceptor.close(ec);
    });
    for_each_session([](Session& session) { session.on_stop(); });
    {
        std::unique_lock lock(s.mu);
        s.changed.wait_for(lock, grace, [&] { return s.sessions.empty(); });
    }
    for_each_session([](Session& session) { session.close_now(); });
    {
        std::unique_lock lock(s.mu);
        s.changed.wait_for(lock, std::chrono::seconds(5), [&] { return s.sessions.empty(); });
    }
    s.ioc.stop();
    if (s.thread.joinable()) s.thread.join();
    std::lock_guard lock(s.mu);
    s.sessions.clear();
    s.stopped = true;
}

}  // namespace pylon::runtime_server
