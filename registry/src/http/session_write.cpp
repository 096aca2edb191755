// The writing half of a connection: responses, 100 Continue, file bodies (sendfile(2) on plain
// TCP, pread + write through TLS), closing.
#include <sys/sendfile.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <cstring>

#include "pylon/common/log.h"
#include "session.h"

namespace pylon::registry::http::detail {

namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// How much one sendfile turn may send before yielding the I/O thread to other connections.
constexpr std::uint64_t kSendfileTurn = 16u << 20;
constexpr std::size_t kTlsFileChunk = 256u << 10;
// Lingering close: how long and how much we read (and discard) after the response, so that
// unread request bytes do not turn our close into a reset that destroys the response.
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 1u << 20;

bool has_crlf(std::string_view s) {
    return s.find_first_of("\r\n") != std::string_view::npos;
}

// Copies the handler's fields; the server owns the framing ones.
template <class Body>
void fill_header(bhttp::response<Body>& m, Response& r, unsigned version, bool keep_alive,
                 bool with_length, std::uint64_t length) {
    m.version(version);
    m.result(static_cast<unsigned>(r.status));
    for (auto& [name, value] : r.headers.fields()) {
        if (beast::iequals(name, "Content-Length") || beast::iequals(name, "Transfer-Encoding") ||
            beast::iequals(name, "Connection")) {
            continue;
        }
        if (name.empty() || has_crlf(name) || has_crlf(value)) {
            log::warn("http: dropped a response header with CR/LF");
            continue;
        }
        m.insert(name, value);
    }
    if (with_length) m.content_length(length);
    m.keep_alive(keep_alive);
}

}  // namespace

template <class Stream>
void Session<Stream>::run_on_worker(std::function<Response()> work) {
    auto self = this->shared_from_this();
    asio::post(*server_.workers, [self, work = std::move(work)] {
        Response response;
        try {
            response = work();
        } catch (const std::exception& e) {
            log::error("http: {} {}: handler threw: {}", self->request_.method,
                       self->request_.route, e.what());
            response = Response::error(500, "internal", "internal server error");
        } catch (...) {
            log::error("http: {} {}: handler threw", self->request_.method, self->request_.route);
            response = Response::error(500, "internal", "internal server error");
        }
        asio::post(self->stream_.get_executor(),
                   [self, r = std::move(response)]() mutable { self->respond(std::move(r)); });
    });
}

namespace {

// The server's side of a Responder: answers on the session's strand, works on a worker.
template <class Stream>
class DeferredTarget final : public Responder::Target {
public:
    DeferredTarget(
        std::shared_ptr<Session<Stream>> session,
        std::function<void(std::shared_ptr<Session<Stream>>, Response)> deliver,
        std::function<void(std::shared_ptr<Session<Stream>>, std::function<Response()>)> on_worker)
        : session_(std::move(session)),
          deliver_(std::move(deliver)),
          on_worker_(std::move(on_worker)) {}
    void deliver(Response response) override { deliver_(session_, std::move(response)); }
    void run_on_worker(std::function<Response()> work) override {
        on_worker_(session_, std::move(work));
    }

private:
    std::shared_ptr<Session<Stream>> session_;
    std::function<void(std::shared_ptr<Session<Stream>>, Response)> deliver_;
    std::function<void(std::shared_ptr<Session<Stream>>, std::function<Response()>)> on_worker_;
};

}  // namespace

template <class Stream>
void Session<Stream>::run_deferred() {
    auto target = std::make_shared<DeferredTarget<Stream>>(
        this->shared_from_this(),
        [](std::shared_ptr<Session> self, Response r) {
            auto executor = self->stream_.get_executor();
            asio::post(executor, [self = std::move(self), r = std::move(r)]() mutable {
                self->respond(std::move(r));
            });
        },
        [](std::shared_ptr<Session> self, std::function<Response()> work) {
            self->run_on_worker(std::move(work));
        });
    asio::post(*server_.workers, [self = this->shared_from_this(), target = std::move(target)] {
        Responder responder(target);
        try {
            self->route_->deferred(self->request_, responder);
        } catch (const std::exception& e) {
            log::error("http: {} {}: handler threw: {}", self->request_.method,
                       self->request_.route, e.what());
            responder.send(Response::error(500, "internal", "internal server error"));
        } catch (...) {
            log::error("http: {} {}: handler threw", self->request_.method, self->request_.route);
            responder.send(Response::error(500, "internal", "internal server error"));
        }
    });
}

template <class Stream>
void Session<Stream>::respond_error(int status, std::string_view code, std::string_view message) {
    respond(Response::error(status, code, message));
}

template <class Stream>
void Session<Stream>::write_continue() {
    lowest().expires_after(server_.config.write_timeout);
    asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = this->shared_from_this()](ErrorCode ec, std::size_t) {
                          if (ec) {
                              self->close_now();
                          } else if (self->parser_->chunked()) {
                              self->read_chunked_body();
                          } else {
                              self->read_length_body();
                          }
                      });
}

template <class Stream>
void Session<Stream>::respond(Response response) {
    if (state_ == State::closing) return;
    state_ = State::writing;
    if (response.status < 100 || response.status > 999) {
        log::error("http: {} {}: handler returned status {}", request_.method, request_.route,
                   response.status);
        response = Response::error(500, "internal", "internal server error");
    }
    status_ = response.status;
    keep_alive_ = !close_after_ && !server_.stopping;
    const unsigned version = request_.http_1_0 ? 10 : 11;
    const bool no_body = status_ < 200 || status_ == 204 || status_ == 304;
    std::uint64_t length = response.file ? response.file->length : response.body.size();
    if (no_body) length = 0;
    // 1xx and 204 carry no Content-Length at all (RFC 9110 8.6).
    const bool with_length = status_ >= 200 && status_ != 204;
    body_sent_ = 0;
    lowest().expires_after(server_.config.write_timeout);

    if (!head_request_ && !no_body && !response.file) {
        full_.emplace();
        fill_header(*full_, response, version, keep_alive_, with_length, length);
        full_->body() = std::move(response.body);
        bhttp::async_write(stream_, *full_,
                           [self = this->shared_from_this()](ErrorCode ec, std::size_t) {
                               if (!ec) self->body_sent_ = self->full_->body().size();
                               self->full_.reset();
                               self->finish_response(!ec);
                           });
        return;
    }
    head_.emplace();
    fill_header(*head_, response, version, keep_alive_, with_length, length);
    if (response.file && !head_request_ && !no_body) {
        file_ = std::move(response.file);
        file_remaining_ = file_->length;
    }
    head_sr_.emplace(*head_);
    bhttp::async_write_header(
        stream_, *head_sr_,
        [self = this->shared_from_this()](ErrorCode ec, std::size_t) { self->after_header(ec); });
}

template <class Stream>
void Session<Stream>::after_header(ErrorCode ec) {
    head_sr_.reset();
    head_.reset();
    if (ec || !file_ || file_remaining_ == 0) {
        file_.reset();
        finish_response(!ec);
        return;
    }
    if constexpr (std::is_same_v<Stream, PlainStream>) {
        send_file_plain();
    } else {
        chunk_ = std::make_unique<char[]>(kTlsFileChunk);
        send_file_tls();
    }
}

template <class Stream>
void Session<Stream>::send_file_plain() {
    if constexpr (std::is_same_v<Stream, PlainStream>) {
        auto& socket = stream_.socket();
        ErrorCode ec;
        socket.native_non_blocking(true, ec);
        std::uint64_t turn = 0;
        while (file_remaining_ > 0) {
            if (turn >= kSendfileTurn) {
                asio::post(stream_.get_executor(),
                           [self = this->shared_from_this()] { self->send_file_plain(); });
                return;
            }
            auto offset = static_cast<off_t>(file_->offset);
            const auto want = static_cast<std::size_t>(
                std::min<std::uint64_t>({file_remaining_, kSendfileTurn, 1u << 30}));
            const ssize_t n = ::sendfile(socket.native_handle(), file_->fd.get(), &offset, want);
            if (n > 0) {
                const auto sent = static_cast<std::uint64_t>(n);
                file_->offset += sent;
                file_remaining_ -= sent;
                body_sent_ += sent;
                turn += sent;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                timer_.expires_after(server_.config.write_timeout);
                timer_.async_wait([self = this->shared_from_this()](ErrorCode tec) {
                    if (!tec) self->lowest().socket().cancel();
                });
                socket.async_wait(tcp::socket::wait_write,
                                  [self = this->shared_from_this()](ErrorCode wec) {
                                      self->timer_.cancel();
                                      if (wec) {
                                          self->file_.reset();
                                          self->finish_response(false);
                                      } else {
                                          self->send_file_plain();
                                      }
                                  });
                return;
            }
            // n == 0: the file is shorter than announced; the response cannot be completed.
            log::error("http: {} {}: sendfile: {}", request_.method, request_.path,
                       n == 0 ? std::string("file shorter than its announced length")
                              : std::string(std::strerror(errno)));
            file_.reset();
            finish_response(false);
            return;
        }
        file_.reset();
        finish_response(true);
    }
}

template <class Stream>
void Session<Stream>::send_file_tls() {
    if (file_remaining_ == 0) {
        file_.reset();
        chunk_.reset();
        finish_response(true);
        return;
    }
    const auto want =
        static_cast<std::size_t>(std::min<std::uint64_t>(file_remaining_, kTlsFileChunk));
    ssize_t n;
    do {
        n = ::pread(file_->fd.get(), chunk_.get(), want, static_cast<off_t>(file_->offset));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        log::error("http: {} {}: reading the file body: {}", request_.method, request_.path,
                   n == 0 ? std::string("file shorter than its announced length")
                          : std::string(std::strerror(errno)));
        file_.reset();
        chunk_.reset();
        finish_response(false);
        return;
    }
    lowest().expires_after(server_.config.write_timeout);
    asio::async_write(stream_, asio::buffer(chunk_.get(), static_cast<std::size_t>(n)),
                      [self = this->shared_from_this()](ErrorCode ec, std::size_t written) {
                          if (ec) {
                              self->file_.reset();
                              self->chunk_.reset();
                              self->finish_response(false);
                              return;
                          }
                          self->file_->offset += written;
                          self->file_remaining_ -= written;
                          self->body_sent_ += written;
                          self->send_file_tls();
                      });
}

template <class Stream>
void Session<Stream>::finish_response(bool ok) {
    AccessLogEntry entry;
    entry.method = request_.method;
    entry.path = request_.path.empty() ? "-" : request_.path;
    entry.route = request_.route;
    entry.status = status_;
    entry.bytes_received = body_received_;
    entry.bytes_sent = body_sent_;
    entry.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_);
    entry.remote_address = remote_;
    server_.record(entry, request_.method);
    if (!ok) {
        close_now();
    } else if (keep_alive_) {
        wait_for_request();
    } else {
        graceful_close();
    }
}

template <class Stream>
void Session<Stream>::graceful_close() {
    state_ = State::closing;
    timer_.cancel();
    lowest().expires_after(kLingerTime);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
        stream_.async_shutdown([self = this->shared_from_this()](ErrorCode) { self->close_now(); });
    } else {
        ErrorCode ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec) {
            close_now();
            return;
        }
        buffer_.clear();
        linger(0);
    }
}

// Reads and discards until the peer closes, kLingerBytes or kLingerTime.
template <class Stream>
void Session<Stream>::linger(std::size_t drained) {
    if (drained >= kLingerBytes) {
        close_now();
        return;
    }
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(64 * 1024), [self = this->shared_from_this(), drained](
                                                            ErrorCode ec, std::size_t n) {
        if (ec) {
            self->close_now();
        } else {
            self->linger(drained + n);
        }
    });
}

template <class Stream>
void Session<Stream>::close_now() {
    state_ = State::closing;
    timer_.cancel();
    ErrorCode ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
}

template class Session<PlainStream>;
template class Session<TlsStream>;

}  // namespace pylon::registry::http::detail
