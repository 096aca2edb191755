// The reading half of a connection: waiting for requests, the head, routing, request bodies.
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <cstring>

#include "pylon/common/log.h"
#include "session.h"
#include "target.h"

namespace pylon::registry::http::detail {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return beast::iequals(a, b);
}

// Buffered routes: the body goes into Request::body (max_body bounds it before it gets here).
class StringSink final : public BodySink {
public:
    explicit StringSink(std::string& out) : out_(out) {}
    Result<void> write(ByteView chunk) override {
        out_.append(as_string_view(chunk));
        return {};
    }

private:
    std::string& out_;
};

bool is_disconnect(const ErrorCode& ec) {
    return ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
           ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
           ec == beast::error::timeout || ec == asio::error::broken_pipe ||
           ec == asio::error::bad_descriptor || ec == asio::ssl::error::stream_truncated;
}

}  // namespace

template <class Stream>
Session<Stream>::Session(Server::Impl& server, Stream stream, std::string remote)
    : server_(server),
      stream_(std::move(stream)),
      remote_(std::move(remote)),
      timer_(stream_.get_executor()) {}

template <class Stream>
Session<Stream>::~Session() {
    server_.remove_session(this);
}

template <class Stream>
void Session<Stream>::run() {
    // Runs on the strand so that nothing touches the stream concurrently.
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
        if constexpr (std::is_same_v<Stream, TlsStream>) {
            self->lowest().expires_after(self->server_.config.header_timeout);
            self->stream_.async_handshake(asio::ssl::stream_base::server, [self](ErrorCode ec) {
                if (ec) {
                    log::debug("http: TLS handshake with {}: {}", self->remote_, ec.message());
                    self->close_now();
                    return;
                }
                self->wait_for_request();
            });
        } else {
            self->wait_for_request();
        }
    });
}

template <class Stream>
void Session<Stream>::on_stopping() {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
        if (self->state_ == State::idle || self->state_ == State::handshake ||
            self->state_ == State::closing) {
            self->close_now();
        }
    });
}

template <class Stream>
void Session<Stream>::force_close() {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->close_now(); });
}

template <class Stream>
void Session<Stream>::wait_for_request() {
    state_ = State::idle;
    parser_.reset();
    request_ = Request{};
    route_ = nullptr;
    head_request_ = false;
    request_keep_alive_ = false;
    sink_.reset();
    timed_out_ = false;
    close_after_ = false;
    body_received_ = 0;
    if (server_.stopping) {
        close_now();
        return;
    }
    if (buffer_.size() > 0) {  // a pipelined request is already here
        read_head();
        return;
    }
    // A fresh connection gets header_timeout for its first byte; keep-alive gets idle_timeout.
    lowest().expires_after(first_request_ ? server_.config.header_timeout
                                          : server_.config.idle_timeout);
    stream_.async_read_some(buffer_.prepare(16 * 1024),
                            [self = this->shared_from_this()](ErrorCode ec, std::size_t n) {
                                if (ec) {
                                    self->close_now();
                                    return;
                                }
                                self->buffer_.commit(n);
                                self->read_head();
                            });
}

template <class Stream>
void Session<Stream>::read_head() {
    state_ = State::head;
    first_request_ = false;
    started_ = Clock::now();
    parser_.emplace();
    parser_->header_limit(server_.config.max_header_bytes);
    parser_->body_limit(boost::none);  // checked against the route's max_body after routing
    lowest().expires_never();
    timer_.expires_after(server_.config.header_timeout);
    timer_.async_wait([self = this->shared_from_this()](ErrorCode ec) {
        if (ec || self->state_ != State::head) return;
        self->timed_out_ = true;
        self->lowest().socket().cancel();
    });
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](ErrorCode ec, std::size_t) {
                                 self->timer_.cancel();
                                 self->on_head(ec);
                             });
}

template <class Stream>
void Session<Stream>::on_head(ErrorCode ec) {
    close_after_ = true;  // until the request proves it can keep the connection
    if (timed_out_) {
        // A TLS stream interrupted mid-record cannot carry a response.
        if (is_tls()) {
            close_now();
        } else {
            respond_error(408, "timeout", "the request head did not arrive in time");
        }
        return;
    }
    if (ec == bhttp::error::header_limit) {
        respond_error(431, "headers_too_large", "the request head is too large");
        return;
    }
    if (ec) {
        if (is_disconnect(ec)) {
            close_now();
        } else {
            respond_error(400, "bad_request", "malformed request: " + ec.message());
        }
        return;
    }
    auto& msg = parser_->get();
    request_.method = std::string(msg.method_string());
    request_.target = std::string(msg.target());
    request_.remote_address = remote_;
    request_.tls = is_tls();
    request_.http_1_0 = msg.version() == 10;
    if (const auto cl = parser_->content_length(); cl && !parser_->chunked()) {
        request_.content_length = *cl;
    }
    for (const auto& field : msg) {
        request_.headers.add(std::string(field.name_string()), std::string(field.value()));
    }
    head_request_ = request_.method == "HEAD";
    request_keep_alive_ = parser_->keep_alive();
    const bool body_announced = parser_->chunked() || request_.content_length.value_or(0) > 0;
    // An unread body would be taken for the next request: close unless it gets read.
    close_after_ = !request_keep_alive_ || body_announced;

    auto target = parse_target(request_.target);
    if (!target) {
        respond_error(400, "bad_request", "malformed or unsafe request target");
        return;
    }
    request_.path = std::move(target->path);
    request_.query = std::move(target->query);
    if (server_.stopping) {
        close_after_ = true;
        respond_error(503, "shutting_down", "the server is shutting down");
        return;
    }
    route_request();
}

template <class Stream>
void Session<Stream>::route_request() {
    auto match = server_.router->match(request_.method, request_.path);
    if (match.status == RouteMatch::Status::not_found) {
        respond_error(404, "not_found", "no such resource");
        return;
    }
    if (match.status == RouteMatch::Status::method_not_allowed) {
        auto r = Response::error(405, "method_not_allowed",
                                 "method " + request_.method + " is not allowed here");
        r.headers.set("Allow", match.allow);
        respond(std::move(r));
        return;
    }
    route_ = match.route;
    request_.route = route_->pattern;
    request_.params = std::move(match.params);
    if (request_.content_length.value_or(0) > route_->options.max_body) {
        respond_error(413, "payload_too_large",
                      "the body exceeds " + std::to_string(route_->options.max_body) + " bytes");
        return;
    }
    if (!route_->streamed()) {
        sink_ = std::make_unique<StringSink>(request_.body);
        start_body();
        return;
    }
    state_ = State::begin;
    auto self = this->shared_from_this();
    asio::post(*server_.workers, [self] {
        std::variant<std::unique_ptr<BodySink>, Response> result;
        try {
            result = self->route_->begin(self->request_);
        } catch (const std::exception& e) {
            log::error("http: {} {}: begin() threw: {}", self->request_.method,
                       self->request_.route, e.what());
            result = Response::error(500, "internal", "internal server error");
        }
        asio::post(self->stream_.get_executor(), [self, result = std::move(result)]() mutable {
            if (auto* response = std::get_if<Response>(&result)) {
                self->respond(std::move(*response));
                return;
            }
            self->sink_ = std::move(std::get<std::unique_ptr<BodySink>>(result));
            if (!self->sink_) {
                self->respond_error(500, "internal", "internal server error");
                return;
            }
            self->start_body();
        });
    });
}

template <class Stream>
void Session<Stream>::start_body() {
    state_ = State::body;
    if (parser_->is_done()) {
        body_done();
        return;
    }
    const bool chunked = parser_->chunked();
    chunk_capacity_ = chunked ? kBodyChunk
                              : static_cast<std::size_t>(
                                    std::min<std::uint64_t>(kBodyChunk, *request_.content_length));
    chunk_ = std::make_unique<char[]>(chunk_capacity_);
    chunk_fill_ = 0;
    if (chunked) parser_->body_limit(route_->options.max_body);
    body_remaining_ = chunked ? 0 : *request_.content_length;
    const auto expect = request_.headers.get("Expect");
    if (expect && iequals(*expect, "100-continue") && !request_.http_1_0) {
        write_continue();
        return;
    }
    if (chunked) {
        read_chunked_body();
    } else {
        read_length_body();
    }
}

// Content-Length bodies bypass the parser: bytes already buffered first, then straight from
// the stream into the chunk, so that nothing is copied twice.
template <class Stream>
void Session<Stream>::read_length_body() {
    while (true) {
        if (buffer_.size() > 0 && body_remaining_ > 0) {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(
                {buffer_.size(), body_remaining_, chunk_capacity_ - chunk_fill_}));
            std::memcpy(chunk_.get() + chunk_fill_, buffer_.data().data(), n);
            buffer_.consume(n);
            chunk_fill_ += n;
            body_remaining_ -= n;
            body_received_ += n;
        }
        if (chunk_fill_ == chunk_capacity_ || body_remaining_ == 0) {
            if (!deliver_chunk()) return;
            if (body_remaining_ == 0) {
                body_done();
                return;
            }
        }
        if (buffer_.size() == 0) break;
    }
    lowest().expires_after(server_.config.body_read_timeout);
    const auto want = static_cast<std::size_t>(
        std::min<std::uint64_t>(chunk_capacity_ - chunk_fill_, body_remaining_));
    stream_.async_read_some(asio::buffer(chunk_.get() + chunk_fill_, want),
                            [self = this->shared_from_this()](ErrorCode ec, std::size_t n) {
                                if (ec) {
                                    self->on_body_error(ec);
                                    return;
                                }
                                self->chunk_fill_ += n;
                                self->body_remaining_ -= n;
                                self->body_received_ += n;
                                self->read_length_body();
                            });
}

template <class Stream>
void Session<Stream>::read_chunked_body() {
    auto& body = parser_->get().body();
    body.data = chunk_.get() + chunk_fill_;
    body.size = chunk_capacity_ - chunk_fill_;
    lowest().expires_after(server_.config.body_read_timeout);
    bhttp::async_read(
        stream_, buffer_, *parser_, [self = this->shared_from_this()](ErrorCode ec, std::size_t) {
            if (ec == bhttp::error::need_buffer) ec = {};
            const auto before = self->chunk_fill_;
            self->chunk_fill_ = self->chunk_capacity_ - self->parser_->get().body().size;
            self->body_received_ += self->chunk_fill_ - before;
            if (ec) {
                self->on_body_error(ec);
                return;
            }
            const bool done = self->parser_->is_done();
            if (self->chunk_fill_ == self->chunk_capacity_ || done) {
                if (!self->deliver_chunk()) return;
            }
            if (done) {
                self->body_done();
            } else {
                self->read_chunked_body();
            }
        });
}

template <class Stream>
bool Session<Stream>::deliver_chunk() {
    if (chunk_fill_ == 0) return true;
    auto written =
        sink_->write(ByteView(reinterpret_cast<const std::uint8_t*>(chunk_.get()), chunk_fill_));
    chunk_fill_ = 0;
    if (!written) {
        log::warn("http: {} {}: body sink failed: {}", request_.method, request_.route,
                  written.error().to_string());
        close_after_ = true;
        sink_.reset();
        respond(server_.map_error(written.error()));
        return false;
    }
    return true;
}

template <class Stream>
void Session<Stream>::on_body_error(ErrorCode ec) {
    close_after_ = true;
    sink_.reset();
    if (ec == bhttp::error::body_limit) {
        respond_error(413, "payload_too_large",
                      "the body exceeds " + std::to_string(route_->options.max_body) + " bytes");
    } else if (is_disconnect(ec)) {
        log::debug("http: {} {} from {}: body read ended: {}", request_.method, request_.path,
                   remote_, ec.message());
        close_now();
    } else {
        respond_error(400, "bad_request", "malformed request body: " + ec.message());
    }
}

template <class Stream>
void Session<Stream>::body_done() {
    chunk_.reset();
    // The whole request was read: the connection may carry the next one.
    close_after_ = !request_keep_alive_;
    state_ = State::handler;
    if (route_->streamed()) {
        run_on_worker([self = this->shared_from_this()] {
            return self->route_->finish(self->request_, std::move(self->sink_));
        });
    } else {
        sink_.reset();
        if (route_->fast) {
            std::optional<Response> answer;
            try {
                answer = route_->fast(request_);
            } catch (const std::exception& e) {
                log::error("http: {} {}: fast handler threw: {}", request_.method, request_.route,
                           e.what());
                answer = Response::error(500, "internal", "internal server error");
            }
            if (answer) {
                asio::post(stream_.get_executor(),
                           [self = this->shared_from_this(), r = std::move(*answer)]() mutable {
                               self->respond(std::move(r));
                           });
                return;
            }
        }
        if (route_->deferred) {
            run_deferred();
            return;
        }
        run_on_worker(
            [self = this->shared_from_this()] { return self->route_->handler(self->request_); });
    }
}

template class Session<PlainStream>;
template class Session<TlsStream>;

}  // namespace pylon::registry::http::detail
