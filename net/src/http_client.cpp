// HttpClient over Boost.Beast: one kept-alive connection to the origin, every operation
// asynchronous on a private io_context so that Beast's tcp_stream timeouts apply, run to
// completion before the next step. Bodies go through buffer_body in fixed-size pieces, so neither
// an uploaded file nor a downloaded response is ever held whole in memory (unless the caller asks
// for the response in a string).
#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "http_body_io.h"
#include "pylon/net/http_client.h"
#include "pylon/net/url.h"
#include "sync_io.h"

namespace pylon::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;
using detail::BodySink;
using detail::BodySource;

namespace {

constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::size_t kBufferLimit = 256 * 1024;
constexpr std::size_t kPieceSize = 256 * 1024;

bool is_ip_literal(const std::string& host) {
    ErrorCode ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

bool valid_header_text(std::string_view s) {
    return std::none_of(s.begin(), s.end(),
                        [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

http::verb to_verb(Method m) {
    switch (m) {
        case Method::get:
            return http::verb::get;
        case Method::head:
            return http::verb::head;
        case Method::post:
            return http::verb::post;
        case Method::put:
            return http::verb::put;
        case Method::patch:
            return http::verb::patch;
        case Method::delete_:
            return http::verb::delete_;
    }
    return http::verb::get;
}

bool is_stale_connection(const ErrorCode& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

struct HttpClient::Impl {
    HttpClientConfig config;
    Url origin;
    std::string origin_text;
    // Only for https origins (or a ca_file to check): OpenSSL's TLS set-up costs ~2 MiB.
    std::optional<ssl::context> tls;
    asio::io_context ioc;
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer{kBufferLimit};
    std::uint64_t connections = 0;
    Clock::time_point deadline;
    std::string what;  // "METHOD URL", the prefix of every error message
    std::atomic<bool> cancelled{false};

    // Runs the io_context until the operation `start` begins has completed; returns its error.
    template <typename Start>
    ErrorCode wait(Start&& start) {
        return detail::run_until_done(ioc, std::forward<Start>(start));
    }

    // The smaller of `timeout` and what is left of the request's time.
    Clock::duration limit(std::chrono::milliseconds timeout) const {
        return detail::time_left(deadline, timeout);
    }

    Error fail(Errc code, const std::string& why) const { return Error(code, what + ": " + why); }
    Error fail_io(const ErrorCode& ec, const std::string& doing) const {
        if (ec == beast::error::timeout) return fail(Errc::timeout, doing + ": timed out");
        return fail(Errc::protocol_error, doing + ": " + ec.message());
    }

    bool connected() const { return plain || secure; }

    void drop() {
        ErrorCode ignored;
        if (plain) plain->socket().shutdown(tcp::socket::shutdown_both, ignored);
        if (secure) secure->next_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
        plain.reset();
        secure.reset();
        buffer.clear();
    }

    Result<void> connect_tcp(beast::tcp_stream& stream) {
        tcp::resolver resolver(ioc);
        ErrorCode ec;
        // getaddrinfo is bounded by the system resolver's own timeouts.
        const auto endpoints = resolver.resolve(origin.host, std::to_string(origin.port), ec);
        if (ec) {
            return fail(Errc::connection_failed,
                        "cannot resolve " + origin.host + ": " + ec.message());
        }
        stream.expires_after(limit(config.connect_timeout));
        ec = wait([&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
        if (ec == beast::error::timeout) {
            return fail(Errc::timeout, "connecting to " + origin.authority() + ": timed out");
        }
        if (ec) {
            return fail(Errc::connection_failed,
                        "cannot connect to " + origin.authority() + ": " + ec.message());
        }
        return ok();
    }

    Result<void> connect() {
        ++connections;
        if (origin.scheme != "https") {
            plain = std::make_unique<beast::tcp_stream>(ioc);
            return connect_tcp(*plain);
        }
        secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *tls);
        if (!is_ip_literal(origin.host) &&
            SSL_set_tlsext_host_name(secure->native_handle(), origin.host.c_str()) != 1) {
            return fail(Errc::tls_failed, "cannot set the TLS server name");
        }
        secure->set_verify_callback(ssl::host_name_verification(origin.host));
        PYLON_TRY(connect_tcp(secure->next_layer()));
        secure->next_layer().expires_after(limit(config.connect_timeout));
        const ErrorCode ec = wait([&](auto handler) {
            secure->async_handshake(ssl::stream_base::client, std::move(handler));
        });
        if (ec == beast::error::timeout) return fail(Errc::timeout, "TLS handshake: timed out");
        if (ec) {
            return fail(Errc::tls_failed,
                        "TLS handshake with " + origin.authority() + ": " + ec.message());
        }
        return ok();
    }

    // One request/response on `stream`. `stale` is set when the failure looks like a connection
    // the server had closed while idle, before any of the answer arrived; `keep` says whether the
    // connection may serve the next request.
    template <typename Stream>
    Result<HttpResponse> exchange(Stream& stream, const HttpRequest& rq, const std::string& target,
                                  const BodySource& body, const BodySink& sink, bool& stale,
                                  bool& keep) {
        auto& lowest = beast::get_lowest_layer(stream);
        http::request<http::buffer_body> req{to_verb(rq.method), target, 11};
        req.set(http::field::host, origin.authority());
        req.set(http::field::user_agent, config.user_agent);
        for (const auto& [name, value] : rq.headers.all()) req.insert(name, value);
        const bool has_body = body.length > 0 || rq.method == Method::post ||
                              rq.method == Method::put || rq.method == Method::patch;
        if (has_body) req.content_length(body.length);
        req.body().data = nullptr;
        req.body().more = body.length > 0;

        http::request_serializer<http::buffer_body> serializer{req};
        lowest.expires_after(limit(config.read_timeout));
        ErrorCode ec = wait([&](auto handler) {
            http::async_write_header(stream, serializer, std::move(handler));
        });
        if (ec) {
            stale = is_stale_connection(ec);
            return fail_io(ec, "sending the request");
        }
        std::vector<char> piece(static_cast<std::size_t>(
            std::min<std::uint64_t>(kPieceSize, std::max<std::uint64_t>(body.length, 1))));
        for (std::uint64_t sent = 0; sent < body.length;) {
            const auto n =
                static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), body.length - sent));
            PYLON_TRY(body.read(piece.data(), sent, n));
            req.body().data = piece.data();
            req.body().size = n;
            req.body().more = sent + n < body.length;
            if (Clock::now() >= deadline) return fail(Errc::timeout, "timed out (whole request)");
            lowest.expires_after(limit(config.read_timeout));
            ec = wait(
                [&](auto handler) { http::async_write(stream, serializer, std::move(handler)); });
            if (ec == http::error::need_buffer) ec = {};
            if (ec) return fail_io(ec, "sending the body");
            sent += n;
            if (rq.upload_progress) rq.upload_progress(sent, body.length);
        }

        http::response_parser<http::buffer_body> parser;
        parser.header_limit(kHeaderLimit);
        parser.body_limit(boost::none);  // enforced below, counting what arrives
        if (rq.method == Method::head) parser.skip(true);
        // A long poll: the server may hold the answer back this much longer.
        lowest.expires_after(limit(config.read_timeout + rq.server_wait));
        ec = wait([&](auto handler) {
            http::async_read_header(stream, buffer, parser, std::move(handler));
        });
        if (ec) {
            stale = is_stale_connection(ec) && !parser.got_some();
            return fail_io(ec, "reading the response header");
        }
        HttpResponse response;
        response.status = parser.get().result_int();
        for (const auto& field : parser.get()) {
            response.headers.add(std::string(field.name_string()), std::string(field.value()));
        }
        const auto declared = parser.content_length();
        if (declared && *declared > rq.max_response_size) {
            return fail(Errc::too_large, "Content-Length " + std::to_string(*declared) +
                                             " exceeds the limit of " +
                                             std::to_string(rq.max_response_size) + " bytes");
        }
        const std::uint64_t total = declared.value_or(0);
        std::vector<char> in(64 * 1024);
        while (!parser.is_done()) {
            if (Clock::now() >= deadline) return fail(Errc::timeout, "timed out (whole request)");
            parser.get().body().data = in.data();
            parser.get().body().size = in.size();
            lowest.expires_after(limit(config.read_timeout));
            ec = wait([&](auto handler) {
                http::async_read(stream, buffer, parser, std::move(handler));
            });
            if (ec == http::error::need_buffer) ec = {};
            if (ec) return fail_io(ec, "reading the body");
            const std::size_t n = in.size() - parser.get().body().size;
            response.body_size += n;
            if (response.body_size > rq.max_response_size) {
                return fail(Errc::too_large, "body exceeds the limit of " +
                                                 std::to_string(rq.max_response_size) + " bytes");
            }
            PYLON_TRY(sink.write(in.data(), n));
            if (n > 0 && rq.download_progress) rq.download_progress(response.body_size, total);
        }
        keep = parser.keep_alive();
        return response;
    }
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::create(std::string_view origin,
                                                       HttpClientConfig config) {
    auto parsed = parse_url(origin);
    if (!parsed) return Error(Errc::invalid_request, parsed.error().message());
    auto impl = std::make_unique<Impl>();
    impl->config = std::move(config);
    impl->origin = std::move(parsed).value();
    impl->origin.target = "/";
    impl->origin_text = impl->origin.scheme + "://" + impl->origin.authority();
    if (impl->origin.scheme == "https" || !impl->config.ca_file.empty()) {
        impl->tls.emplace(ssl::context::tls_client);
        ErrorCode ec;
        impl->tls->set_verify_mode(ssl::verify_peer, ec);
        if (!ec && impl->config.ca_file.empty()) {
            impl->tls->set_default_verify_paths(ec);
        } else if (!ec) {
            impl->tls->load_verify_file(impl->config.ca_file.string(), ec);
        }
        if (ec) {
            return Error(Errc::tls_failed, "cannot set up TLS certificate verification" +
                                               (impl->config.ca_file.empty()
                                                    ? std::string()
                                                    : " with " + impl->config.ca_file.string()) +
                                               ": " + ec.message());
        }
        if (SSL_CTX_set_min_proto_version(impl->tls->native_handle(), TLS1_2_VERSION) != 1) {
            return Error(Errc::tls_failed, "cannot require TLS 1.2");
        }
    }
    return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

Result<HttpResponse> HttpClient::send(const HttpRequest& rq) {
    Impl& s = *impl_;
    std::string target = rq.target;
    if (target.empty() || target.front() != '/') {
        auto url = parse_url(target);
        if (!url) return Error(Errc::invalid_request, url.error().message());
        if (url->scheme != s.origin.scheme || url->host != s.origin.host ||
            url->port != s.origin.port) {
            return Error(Errc::invalid_request,
                         url->to_string() + " is not on this client's origin " + s.origin_text);
        }
        target = url->target;
    }
    s.what = std::string(to_string(rq.method)) + " " + s.origin_text + target;
    if (!valid_header_text(target) || target.find(' ') != std::string::npos) {
        return s.fail(Errc::invalid_request, "the target has characters a request line forbids");
    }
    for (const auto& [name, value] : rq.headers.all()) {
        if (name.empty() || !valid_header_text(name) || !valid_header_text(value) ||
            name.find(':') != std::string::npos) {
            return s.fail(Errc::invalid_request, "malformed header field '" + name + "'");
        }
    }

    BodySource body;
    UniqueFd in;
    if (rq.body_file) {
        body.path = rq.body_file->path.string();
        in = UniqueFd(::open(body.path.c_str(), O_RDONLY | O_CLOEXEC));
        struct stat st {};
        if (in.get() < 0 || ::fstat(in.get(), &st) != 0) {
            return s.fail(Errc::file_error, "cannot open " + body.path + ": " + strerror(errno));
        }
        const auto size = static_cast<std::uint64_t>(st.st_size);
        if (!S_ISREG(st.st_mode) || rq.body_file->offset > size ||
            rq.body_file->length.value_or(0) > size - rq.body_file->offset) {
            return s.fail(Errc::file_error,
                          "the range to send is not inside the regular file " + body.path);
        }
        body.fd = in.get();
        body.offset = rq.body_file->offset;
        body.length = rq.body_file->length.value_or(size - rq.body_file->offset);
    } else {
        body.text = &rq.body;
        body.length = rq.body.size();
    }

    s.deadline = Clock::now() + s.config.total_timeout + rq.server_wait;
    for (int attempt = 0;; ++attempt) {
        if (s.cancelled) return s.fail(Errc::cancelled, "cancelled");
        BodySink sink;
        UniqueFd out;
        if (rq.response_file) {
            sink.path = rq.response_file->string();
            out =
                UniqueFd(::open(sink.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
            if (out.get() < 0) {
                return s.fail(Errc::file_error,
                              "cannot create " + sink.path + ": " + strerror(errno));
            }
            sink.fd = out.get();
        }
        std::string text;
        if (!rq.response_file) sink.text = &text;

        const bool reused = s.connected();
        Result<HttpResponse> result = Error(Errc::protocol_error, "");
        bool stale = false;
        bool keep = false;
        if (auto connected = reused ? Result<void>() : s.connect(); !connected) {
            result = std::move(connected).error();
        } else if (s.secure) {
            result = s.exchange(*s.secure, rq, target, body, sink, stale, keep);
        } else {
            result = s.exchange(*s.plain, rq, target, body, sink, stale, keep);
        }
        if (result) {
            if (!keep) s.drop();
            result->body = std::move(text);
            return result;
        }
        s.drop();
        if (rq.response_file) ::unlink(sink.path.c_str());
        if (s.cancelled) return s.fail(Errc::cancelled, "cancelled");
        if (!(stale && reused && attempt == 0)) return std::move(result).error();
    }
}

void HttpClient::cancel() {
    Impl& s = *impl_;
    s.cancelled = true;
    // Runs on the thread inside send() (or at the start of the next one): closing the socket
    // ends the pending operation at once.
    asio::post(s.ioc, [&s] {
        ErrorCode ignored;
        if (s.plain) s.plain->socket().close(ignored);
        if (s.secure) s.secure->next_layer().socket().close(ignored);
    });
}

Result<HttpResponse> HttpClient::get(std::string target, HttpHeaders headers) {
    return request(Method::get, std::move(target), {}, std::move(headers));
}

Result<HttpResponse> HttpClient::request(Method method, std::string target, std::string body,
                                         HttpHeaders headers) {
    HttpRequest rq;
    rq.method = method;
    rq.target = std::move(target);
    rq.body = std::move(body);
    rq.headers = std::move(headers);
    return send(rq);
}

const std::string& HttpClient::origin() const {
    return impl_->origin_text;
}

std::uint64_t HttpClient::connections_opened() const {
    return impl_->connections;
}

}  // namespace pylon::net
