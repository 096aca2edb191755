// Router: maps (method, decoded path) to a route, pure logic without I/O.
//
// Patterns are '/'-separated segments: literals, `{name}` (exactly one non-empty segment) and,
// last only, `{name...}` (the rest of the path: one or more segments, '/' kept). When several
// patterns match a path, the most specific wins: segment by segment, a literal beats `{name}`,
// which beats `{name...}`. HEAD is served by GET routes unless a HEAD route exists.
//
// Buffered routes get the whole body in Request::body (at most max_body bytes). Streamed routes
// run `begin` on a worker thread once the headers are in: it either answers at once (auth
// failure, conflict: the body is then not read) or returns the sink the body is written to, and
// `finish` runs on a worker thread once the whole body went into the sink.
//
// Deferred routes (long polls) get the buffered request on a worker thread together with a
// Responder, and may answer later from any thread: the worker is free again while the request
// waits, so thousands of waiting requests cost no threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "pylon/registry/http/message.h"

namespace pylon::registry::http {

using Handler = std::function<Response(Request&)>;
using StreamBegin = std::function<std::variant<std::unique_ptr<BodySink>, Response>(Request&)>;
using StreamFinish = std::function<Response(Request&, std::unique_ptr<BodySink>)>;
// A buffered route's fast path: runs on the I/O thread and must never block (no database, no
// waiting; a stat or open of a local file is fine). It answers, or returns nullopt to hand the
// request to the route's Handler on a worker thread. It saves the two thread hops per request
// for what can be answered from memory (health, metrics, TUF metadata, a 304 for a cached token).
using FastHandler = std::function<std::optional<Response>(Request&)>;

// The way a deferred handler answers, once. Copyable; every copy answers the same request. The
// first send wins and later ones are ignored; when the last copy goes away without a send, the
// request is answered 500 (a handler that forgot to answer never leaves a client hanging).
class Responder {
public:
    // What the server provides behind a Responder (one per request).
    class Target {
    public:
        virtual ~Target() = default;
        virtual void deliver(Response response) = 0;
        virtual void run_on_worker(std::function<Response()> work) = 0;
    };
    explicit Responder(std::shared_ptr<Target> target);

    // Answers now (callable from any thread, also from within the handler).
    void send(Response response) const;
    // Runs `work` on a worker thread (it may block on the database) and answers with its result;
    // an exception answers 500.
    void send_from_worker(std::function<Response()> work) const;
    // Whether an answer was sent already.
    bool sent() const;

private:
    struct State;
    std::shared_ptr<State> state_;
};

using DeferredHandler = std::function<void(Request&, Responder)>;

inline constexpr std::uint64_t kDefaultMaxBody = 1ull << 20;           // 1 MiB
inline constexpr std::uint64_t kDefaultStreamedMaxBody = 64ull << 30;  // 64 GiB

struct RouteOptions {
    // A larger announced Content-Length is refused with 413 before any byte is read; a chunked
    // body is cut off (413, connection closed) when it passes this.
    std::uint64_t max_body = kDefaultMaxBody;
};

struct Route {
    std::string method;
    std::string pattern;
    RouteOptions options;
    Handler handler;           // buffered routes
    FastHandler fast;          // buffered routes, optional
    StreamBegin begin;         // streamed routes
    StreamFinish finish;       // streamed routes
    DeferredHandler deferred;  // deferred routes (buffered body)
    bool streamed() const noexcept { return static_cast<bool>(begin); }
};

struct RouteMatch {
    enum class Status { found, not_found, method_not_allowed };
    Status status = Status::not_found;
    const Route* route = nullptr;  // when found
    Params params;                 // when found
    std::string allow;             // when method_not_allowed: "GET, HEAD, PUT"
};

class Router {
public:
    Router();
    ~Router();
    Router(const Router&) = delete;
    Router& operator=(const Router&) = delete;

    // Register routes before the server starts; the router is read-only afterwards.
    // Throws std::invalid_argument for a malformed pattern, an empty method or a duplicate
    // (method, pattern) — programming errors found at start-up.
    Router& add(std::string method, std::string_view pattern, Handler handler,
                RouteOptions options = {});
    // A buffered route whose requests are first offered to `fast` on the I/O thread.
    Router& add_fast(std::string method, std::string_view pattern, FastHandler fast,
                     Handler handler, RouteOptions options = {});
    // A buffered route answered through a Responder, possibly long after the handler returned.
    Router& add_deferred(std::string method, std::string_view pattern, DeferredHandler handler,
                         RouteOptions options = {});
    Router& add_streamed(std::string method, std::string_view pattern, StreamBegin begin,
                         StreamFinish finish,
                         RouteOptions options = RouteOptions{kDefaultStreamedMaxBody});

    // `path` is decoded (as in Request::path).
    RouteMatch match(std::string_view method, std::string_view path) const;
    // Every route as (method, pattern), in the order added (for docs checks and listings).
    std::vector<std::pair<std::string, std::string>> routes() const;

private:
    struct Entry;
    Router& insert(Route route);
    std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace pylon::registry::http
