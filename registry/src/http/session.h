// Session: one accepted connection, plain TCP or TLS, serving requests one after another
// (keep-alive, pipelining) on its own strand.
//
// Life of a request:
//   wait for its first byte (idle_timeout; header_timeout on a fresh connection)
//   → read the head (header_timeout, own timer so that 408 can still be sent on plain TCP)
//   → decode the target, route, check Content-Length against max_body
//   → streamed route: begin() on a worker; buffered route: a sink that appends to Request::body
//   → 100 Continue if asked → body into the sink (1 MiB chunks, body_read_timeout per read)
//   → handler / finish() on a worker → response (write_timeout; files by sendfile on plain TCP)
// The reading half lives in session_read.cpp, the writing half in session_write.cpp; both are
// instantiated for the two stream types only.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "server_impl.h"

namespace pylon::registry::http::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Request bodies are read and handed to sinks in chunks of this size: large enough that a
// multi-GiB upload costs few sink calls, small enough to keep per-upload memory modest.
inline constexpr std::size_t kBodyChunk = 1u << 20;

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
public:
    Session(Server::Impl& server, Stream stream, std::string remote);
    ~Session() override;

    void run();
    void on_stopping() override;
    void force_close() override;

private:
    using Clock = std::chrono::steady_clock;
    enum class State { handshake, idle, head, begin, body, handler, writing, closing };

    // session_read.cpp
    void wait_for_request();
    void read_head();
    void on_head(ErrorCode ec);
    void route_request();
    void start_body();
    void read_length_body();
    void read_chunked_body();
    bool deliver_chunk();
    void on_body_error(ErrorCode ec);
    void body_done();

    // session_write.cpp
    void respond(Response response);
    void respond_error(int status, std::string_view code, std::string_view message);
    void write_continue();
    void after_header(ErrorCode ec);
    void send_file_plain();
    void send_file_tls();
    void finish_response(bool ok);
    void graceful_close();
    void linger(std::size_t drained);
    void close_now();
    void run_on_worker(std::function<Response()> work);
    void run_deferred();

    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
    bool is_tls() const { return std::is_same_v<Stream, TlsStream>; }

    Server::Impl& server_;
    Stream stream_;
    std::string remote_;
    asio::steady_timer timer_;
    beast::flat_buffer buffer_;
    State state_ = State::handshake;
    bool first_request_ = true;
    bool timed_out_ = false;
    bool close_after_ = false;  // answer with Connection: close, then close

    // The request in progress.
    std::optional<bhttp::request_parser<bhttp::buffer_body>> parser_;
    Request request_;
    const Route* route_ = nullptr;
    bool head_request_ = false;
    bool request_keep_alive_ = false;
    Clock::time_point started_;
    std::unique_ptr<BodySink> sink_;
    std::unique_ptr<char[]> chunk_;
    std::size_t chunk_capacity_ = 0;
    std::size_t chunk_fill_ = 0;
    std::uint64_t body_remaining_ = 0;  // Content-Length bodies
    std::uint64_t body_received_ = 0;

    // The response in progress.
    int status_ = 0;
    std::optional<bhttp::response<bhttp::string_body>> full_;
    std::optional<bhttp::response<bhttp::empty_body>> head_;
    std::optional<bhttp::response_serializer<bhttp::empty_body>> head_sr_;
    std::optional<FileBody> file_;
    std::uint64_t file_remaining_ = 0;
    std::uint64_t body_sent_ = 0;
    bool keep_alive_ = false;
};

}  // namespace pylon::registry::http::detail
