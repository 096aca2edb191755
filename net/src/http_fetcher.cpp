// HttpFetcher over Boost.Beast: one connection per fetch ("Connection: close"), every operation
// asynchronous on a private io_context so that Beast's tcp_stream timeouts apply, run to
// completion before the next step. The only translation unit of pylon::net that includes Beast.
#include "pylon/net/http_fetcher.h"

#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/vector_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "pylon/net/url.h"
#include "sync_io.h"

namespace pylon::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using signing::tuf::Errc;
using ErrorCode = boost::system::error_code;

namespace {

constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::size_t kBufferLimit = 256 * 1024;

// What one request/response exchange ended with: a body, or a redirect to follow.
struct Answer {
    Bytes body;
    std::optional<std::string> location;
};

bool is_redirect(unsigned status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool is_ip_literal(const std::string& host) {
    ErrorCode ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

// One connection to one URL's host.
class Exchange {
public:
    // `tls` is needed (non-null) for https URLs only.
    Exchange(const HttpFetcherConfig& config, ssl::context* tls, const Url& url,
             Clock::time_point deadline)
        : config_(config), tls_(tls), url_(url), deadline_(deadline) {}

    Result<Answer> run(std::uint64_t max_length) {
        tcp::resolver resolver(ioc_);
        ErrorCode ec;
        // getaddrinfo is bounded by the system resolver's own timeouts.
        const auto endpoints = resolver.resolve(url_.host, std::to_string(url_.port), ec);
        if (ec) return fail("cannot resolve " + url_.host + ": " + ec.message());
        if (url_.scheme == "https") {
            beast::ssl_stream<beast::tcp_stream> stream(ioc_, *tls_);
            if (!is_ip_literal(url_.host) &&
                SSL_set_tlsext_host_name(stream.native_handle(), url_.host.c_str()) != 1) {
                return fail("cannot set TLS server name");
            }
            stream.set_verify_callback(ssl::host_name_verification(url_.host));
            PYLON_TRY(connect(stream.next_layer(), endpoints));
            stream.next_layer().expires_after(limit(config_.connect_timeout));
            ec = wait([&](auto handler) {
                stream.async_handshake(ssl::stream_base::client, std::move(handler));
            });
            if (ec) return fail("TLS handshake with " + url_.authority() + ": " + describe(ec));
            return exchange(stream, max_length);
        }
        beast::tcp_stream stream(ioc_);
        PYLON_TRY(connect(stream, endpoints));
        return exchange(stream, max_length);
    }

private:
    // Runs the io_context until the operation `start` begins has completed; returns its error.
    template <typename Start>
    ErrorCode wait(Start&& start) {
        return detail::run_until_done(ioc_, std::forward<Start>(start));
    }

    // The smaller of `timeout` and what is left of the whole fetch's time.
    Clock::duration limit(std::chrono::milliseconds timeout) const {
        return detail::time_left(deadline_, timeout);
    }

    static std::string describe(const ErrorCode& ec) {
        if (ec == beast::error::timeout) return "timed out";
        return ec.message();
    }

    Error fail(const std::string& why, Errc code = Errc::fetch_failed) const {
        return Error(code, "GET " + url_.to_string() + ": " + why);
    }

    Result<void> connect(beast::tcp_stream& stream, const tcp::resolver::results_type& endpoints) {
        stream.expires_after(limit(config_.connect_timeout));
        const ErrorCode ec =
            wait([&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
        if (ec) return fail("cannot connect to " + url_.authority() + ": " + describe(ec));
        return ok();
    }

    template <typename Stream>
    Result<Answer> exchange(Stream& stream, std::uint64_t max_length) {
        auto& lowest = beast::get_lowest_layer(stream);
        http::request<http::empty_body> request{http::verb::get, url_.target, 11};
        request.set(http::field::host, url_.authority());
        request.set(http::field::user_agent, config_.user_agent);
        request.set(http::field::accept_encoding, "identity");
        request.set(http::field::connection, "close");
        lowest.expires_after(limit(config_.read_timeout));
        ErrorCode ec =
            wait([&](auto handler) { http::async_write(stream, request, std::move(handler)); });
        if (ec) return fail("sending the request: " + describe(ec));

        beast::flat_buffer buffer(kBufferLimit);
        http::response_parser<http::vector_body<std::uint8_t>> parser;
        parser.header_limit(kHeaderLimit);
        parser.body_limit(boost::none);  // set below, once the status says a body is wanted
        lowest.expires_after(limit(config_.read_timeout));
        ec = wait([&](auto handler) {
            http::async_read_header(stream, buffer, parser, std::move(handler));
        });
        if (ec) return fail("reading the response header: " + describe(ec));

        const auto& header = parser.get();
        const unsigned status = header.result_int();
        if (is_redirect(status)) {
            const auto location = header[http::field::location];
            if (location.empty()) return fail("redirect without a Location");
            return Answer{{}, std::string(location)};
        }
        if (status != 200) {
            return fail("HTTP " + std::to_string(status) + " " + std::string(header.reason()));
        }
        if (const auto length = parser.content_length(); length && *length > max_length) {
            return fail("Content-Length " + std::to_string(*length) + " exceeds the limit of " +
                            std::to_string(max_length) + " bytes",
                        Errc::too_large);
        }
        parser.body_limit(max_length);
        while (!parser.is_done()) {
            if (Clock::now() >= deadline_) return fail("timed out (whole fetch)");
            lowest.expires_after(limit(config_.read_timeout));
            ec = wait([&](auto handler) {
                http::async_read_some(stream, buffer, parser, std::move(handler));
            });
            if (ec == http::error::body_limit) {
                return fail("body exceeds the limit of " + std::to_string(max_length) + " bytes",
                            Errc::too_large);
            }
            if (ec) return fail("reading the body: " + describe(ec));
        }
        ErrorCode ignored;
        lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
        return Answer{parser.release().body(), std::nullopt};
    }

    const HttpFetcherConfig& config_;
    ssl::context* tls_;
    const Url& url_;
    Clock::time_point deadline_;
    asio::io_context ioc_;
};

}  // namespace

struct HttpFetcher::Impl {
    HttpFetcherConfig config;
    // Made at the first https request: a client of a plain-HTTP repository never initialises
    // OpenSSL's TLS machinery (several MiB of a small daemon's resident memory).
    std::optional<ssl::context> tls;

    Result<ssl::context*> tls_context() {
        if (tls) return &*tls;
        ssl::context ctx(ssl::context::tls_client);
        ErrorCode ec;
        ctx.set_verify_mode(ssl::verify_peer, ec);
        if (!ec && config.ca_file.empty()) {
            ctx.set_default_verify_paths(ec);
        } else if (!ec) {
            ctx.load_verify_file(config.ca_file.string(), ec);
        }
        if (ec) {
            return Error(
                pylon::Errc::invalid_argument,
                "cannot set up TLS certificate verification" +
                    (config.ca_file.empty() ? std::string() : " with " + config.ca_file.string()) +
                    ": " + ec.message());
        }
        if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
            return Error(pylon::Errc::internal, "cannot require TLS 1.2");
        }
        tls.emplace(std::move(ctx));
        return &*tls;
    }
};

HttpFetcher::HttpFetcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpFetcher::~HttpFetcher() = default;

Result<std::unique_ptr<HttpFetcher>> HttpFetcher::create(HttpFetcherConfig config) {
    auto impl = std::make_unique<Impl>();
    impl->config = std::move(config);
    if (impl->config.max_redirects < 0) {
        return Error(pylon::Errc::invalid_argument, "max_redirects must not be negative");
    }
    // A CA file that cannot be read is refused now, not at the first https request.
    if (!impl->config.ca_file.empty() && ::access(impl->config.ca_file.c_str(), R_OK) != 0) {
        return Error(pylon::Errc::invalid_argument,
                     "cannot set up TLS certificate verification with " +
                         impl->config.ca_file.string() + ": " + std::strerror(errno));
    }
    return std::unique_ptr<HttpFetcher>(new HttpFetcher(std::move(impl)));
}

Result<Bytes> HttpFetcher::fetch(const std::string& url_text, std::uint64_t max_length) {
    auto parsed = parse_url(url_text);
    if (!parsed)
        return Error(Errc::fetch_failed, "GET " + url_text + ": " + parsed.error().message());
    Url url = std::move(parsed).value();
    const auto deadline = Clock::now() + impl_->config.total_timeout;
    for (int redirects = 0;; ++redirects) {
        ssl::context* tls = nullptr;
        if (url.scheme == "https") {
            PYLON_TRY_ASSIGN(tls, impl_->tls_context());
        }
        Exchange exchange(impl_->config, tls, url, deadline);
        PYLON_TRY_ASSIGN(Answer answer, exchange.run(max_length));
        if (!answer.location) return std::move(answer.body);
        if (redirects >= impl_->config.max_redirects) {
            return Error(Errc::fetch_failed, "GET " + url_text + ": more than " +
                                                 std::to_string(impl_->config.max_redirects) +
                                                 " redirects");
        }
        auto next = resolve_url(url, *answer.location);
        if (!next) {
            return Error(Errc::fetch_failed,
                         "GET " + url.to_string() + ": bad redirect: " + next.error().message());
        }
        if (url.scheme == "https" && next->scheme != "https") {
            return Error(Errc::fetch_failed, "GET " + url.to_string() +
                                                 ": refusing a redirect from https to " +
                                                 next->to_string());
        }
        url = std::move(next).value();
    }
}

}  // namespace pylon::net
