// Blob uploads (the OCI distribution push flow) and downloads.
//
//   POST   /v1/namespaces/{ns}/uploads[?digest=D]   open a session (202), or upload a whole blob
//                                                    in the body and complete it at once (201)
//   PATCH  /v1/namespaces/{ns}/uploads/{id}          append; Content-Range: <start>-<end>
//   GET    /v1/namespaces/{ns}/uploads/{id}          status (204, Range: 0-<last>)
//   PUT    /v1/namespaces/{ns}/uploads/{id}?digest=D optional last chunk, then complete (201)
//   DELETE /v1/namespaces/{ns}/uploads/{id}          cancel (204)
//   GET    /v1/blobs/{digest}                        download (ETag, If-None-Match, Range)
//
// Bodies stream through a BodySink into the blob store's UploadWriter: memory stays constant
// whatever the size, and a blob becomes visible only when complete() verified its digest.
#include <charconv>
#include <optional>

#include "api/context.h"
#include "pylon/common/log.h"

namespace pylon::registry::api {

namespace {

using blob::Digest;

std::string upload_location(std::string_view ns, std::string_view id) {
    return "/v1/namespaces/" + std::string(ns) + "/uploads/" + std::string(id);
}

void set_session_headers(http::Response& r, const blob::SessionInfo& s) {
    r.headers.set("Location", upload_location(s.ns, s.id));
    r.headers.set("Docker-Upload-UUID", s.id);
    r.headers.set("Range", "0-" + std::to_string(s.offset == 0 ? 0 : s.offset - 1));
}

Result<std::uint64_t> parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
        return Error(Errc::range_invalid, "\"" + std::string(s.substr(0, 40)) + "\" is not a number");
    }
    return v;
}

// "Content-Range: <start>-<end>" (inclusive), as in the OCI distribution API; a "bytes "
// prefix (RFC 9110 form, with an optional "/<total>") is accepted too.
struct ChunkRange {
    std::uint64_t start;
    std::uint64_t length;
};
Result<std::optional<ChunkRange>> content_range(const http::Request& req) {
    auto header = req.headers.get("Content-Range");
    if (!header) return std::optional<ChunkRange>();
    std::string_view v = *header;
    if (v.rfind("bytes ", 0) == 0) v.remove_prefix(6);
    if (const auto slash = v.find('/'); slash != std::string_view::npos) v = v.substr(0, slash);
    const auto dash = v.find('-');
    if (dash == std::string_view::npos) {
        return Error(Errc::range_invalid, "Content-Range must be <start>-<end>");
    }
    PYLON_TRY_ASSIGN(std::uint64_t start, parse_u64(v.substr(0, dash)));
    PYLON_TRY_ASSIGN(std::uint64_t end, parse_u64(v.substr(dash + 1)));
    if (end < start) return Error(Errc::range_invalid, "Content-Range ends before it starts");
    const ChunkRange range{start, end - start + 1};
    if (req.content_length && *req.content_length != range.length) {
        return Error(Errc::range_invalid, "Content-Range covers " + std::to_string(range.length) +
                                              " bytes but Content-Length is " +
                                              std::to_string(*req.content_length));
    }
    return std::optional<ChunkRange>(range);
}

bool has_body(const http::Request& req) {
    return req.content_length ? *req.content_length > 0
                              : req.headers.get("Transfer-Encoding").has_value();
}

// Streams a request body into an upload session; checks it against the announced length.
class UploadSink final : public http::BodySink {
public:
    UploadSink(std::unique_ptr<blob::UploadWriter> writer, std::optional<std::uint64_t> expected)
        : writer_(std::move(writer)), expected_(expected) {}

    Result<void> write(ByteView chunk) override {
        if (expected_ && received_ + chunk.size() > *expected_) {
            return Error(Errc::range_invalid, "the body is longer than its Content-Range");
        }
        PYLON_TRY(writer_->write(chunk));
        received_ += chunk.size();
        return {};
    }

    Result<blob::SessionInfo> close() {
        PYLON_TRY_ASSIGN(auto info, writer_->close());
        if (expected_ && received_ != *expected_) {
            return Error(Errc::range_invalid, "the body has " + std::to_string(received_) +
                                                  " bytes but its Content-Range announced " +
                                                  std::to_string(*expected_));
        }
        return info;
    }

private:
    std::unique_ptr<blob::UploadWriter> writer_;
    std::optional<std::uint64_t> expected_;
    std::uint64_t received_ = 0;
};

// The session named in the path, checked to belong to the path's namespace.
Result<blob::SessionInfo> path_session(ApiContext& ctx, const http::Request& req) {
    const std::string& ns = req.param("ns");
    auto session = ctx.blobs.session(req.param("id"));
    if (!session || session->ns != ns) {
        return Error(Errc::not_found, "upload session not found in namespace " + ns);
    }
    return session;
}

Result<Principal> authorize_upload(ApiContext& ctx, const http::Request& req) {
    PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
    PYLON_TRY(require_publish(who, req.param("ns")));
    PYLON_TRY(ctx.catalog.get_namespace(req.param("ns")));
    return who;
}

Result<std::optional<Digest>> digest_param(const http::Request& req) {
    auto text = req.query_param("digest");
    if (!text) return std::optional<Digest>();
    auto d = Digest::parse(*text);
    if (!d) return Error(Errc::bad_request, "digest: " + d.error().message());
    return std::optional<Digest>(*d);
}

// Completes a session: verifies the digest, publishes the blob, records it in the catalog.
Result<http::Response> complete(ApiContext& ctx, const http::Request& req, const Principal& who,
                                const std::string& id, const Digest& digest) {
    PYLON_TRY_ASSIGN(blob::BlobInfo info, ctx.blobs.complete(id, digest));
    PYLON_TRY(ctx.catalog.record_blob(info.digest.str(), info.size));
    audit(ctx, req, who, "blob.upload", info.digest.str(),
          {{"size", info.size}, {"namespace", req.param("ns")}});
    http::Response r = http::Response::empty(201);
    r.headers.set("Location", "/v1/blobs/" + info.digest.str());
    r.headers.set("Docker-Content-Digest", info.digest.str());
    return r;
}

// begin()/finish() pair state: the principal and the sink, carried through the request.
struct UploadState final : http::BodySink {
    Principal who;
    std::string session_id;
    std::unique_ptr<UploadSink> sink;
    Result<void> write(ByteView chunk) override { return sink->write(chunk); }
};

using BeginResult = std::variant<std::unique_ptr<http::BodySink>, http::Response>;

BeginResult begin_or_error(const std::function<Result<std::unique_ptr<UploadState>>()>& f) {
    try {
        auto r = f();
        if (!r) return error_response(r.error());
        return std::unique_ptr<http::BodySink>(std::move(r).value());
    } catch (const std::exception& e) {
        log::error("upload: {}", e.what());
        return error_response(Error(Errc::internal, "internal error"));
    }
}

// Opens a writer for the request's body at the session's offset (Content-Range checked).
Result<std::unique_ptr<UploadState>> open_for_body(ApiContext& ctx, http::Request& req,
                                                   Principal who, const blob::SessionInfo& s) {
    PYLON_TRY_ASSIGN(auto range, content_range(req));
    const std::uint64_t start = range ? range->start : s.offset;
    if (range && range->start != s.offset) {
        return Error(Errc::range_invalid,
                     "Content-Range starts at " + std::to_string(range->start) +
                         " but the session has " + std::to_string(s.offset) + " bytes (" +
                         (range->start > s.offset ? "a gap" : "an overlap") + ")");
    }
    PYLON_TRY_ASSIGN(auto writer, ctx.blobs.open_writer(s.id, start));
    auto state = std::make_unique<UploadState>();
    state->who = std::move(who);
    state->session_id = s.id;
    std::optional<std::uint64_t> expected = range ? std::optional(range->length) : req.content_length;
    state->sink = std::make_unique<UploadSink>(std::move(writer), expected);
    return state;
}

Result<blob::SessionInfo> close_sink(http::BodySink* sink) {
    auto* state = static_cast<UploadState*>(sink);
    return state->sink->close();
}

}  // namespace

void add_blob_routes(http::Router& router, ApiContext& ctx) {
    const std::string uploads = "/v1/namespaces/{ns}/uploads";
    const std::string upload = uploads + "/{id}";

    // POST: a new session, or a monolithic upload when ?digest= is given.
    router.add_streamed(
        "POST", uploads,
        [&ctx](http::Request& req) -> BeginResult {
            return begin_or_error([&]() -> Result<std::unique_ptr<UploadState>> {
                PYLON_TRY_ASSIGN(Principal who, authorize_upload(ctx, req));
                PYLON_TRY_ASSIGN(auto digest, digest_param(req));
                if (!digest && has_body(req)) {
                    return Error(Errc::bad_request,
                                 "a body in POST needs ?digest= (monolithic upload)");
                }
                PYLON_TRY_ASSIGN(auto session, ctx.blobs.create_session(req.param("ns")));
                auto opened = open_for_body(ctx, req, who, session);
                if (!opened) (void)ctx.blobs.cancel(session.id);
                return opened;
            });
        },
        wrap_finish(ctx, [&ctx](http::Request& req, http::BodySink* sink) -> Result<http::Response> {
            auto* state = static_cast<UploadState*>(sink);
            PYLON_TRY_ASSIGN(auto digest, digest_param(req));
            PYLON_TRY_ASSIGN(auto session, close_sink(sink));
            if (!digest) {
                audit(ctx, req, state->who, "upload.open", session.id);
                http::Response r = http::Response::empty(202);
                set_session_headers(r, session);
                return r;
            }
            auto done = complete(ctx, req, state->who, session.id, *digest);
            if (!done) (void)ctx.blobs.cancel(session.id);  // monolithic: nothing is kept
            return done;
        }));

    router.add_streamed(
        "PATCH", upload,
        [&ctx](http::Request& req) -> BeginResult {
            return begin_or_error([&]() -> Result<std::unique_ptr<UploadState>> {
                PYLON_TRY_ASSIGN(Principal who, authorize_upload(ctx, req));
                PYLON_TRY_ASSIGN(auto session, path_session(ctx, req));
                return open_for_body(ctx, req, std::move(who), session);
            });
        },
        wrap_finish(ctx, [&ctx](http::Request& req, http::BodySink* sink) -> Result<http::Response> {
            auto* state = static_cast<UploadState*>(sink);
            PYLON_TRY_ASSIGN(auto session, close_sink(sink));
            audit(ctx, req, state->who, "upload.append", session.id, {{"offset", session.offset}});
            http::Response r = http::Response::empty(202);
            set_session_headers(r, session);
            return r;
        }));

    router.add_streamed(
        "PUT", upload,
        [&ctx](http::Request& req) -> BeginResult {
            return begin_or_error([&]() -> Result<std::unique_ptr<UploadState>> {
                PYLON_TRY_ASSIGN(Principal who, authorize_upload(ctx, req));
                PYLON_TRY_ASSIGN(auto digest, digest_param(req));
                if (!digest) return Error(Errc::bad_request, "PUT needs ?digest=sha256:<hex>");
                PYLON_TRY_ASSIGN(auto session, path_session(ctx, req));
                return open_for_body(ctx, req, std::move(who), session);
            });
        },
        wrap_finish(ctx, [&ctx](http::Request& req, http::BodySink* sink) -> Result<http::Response> {
            auto* state = static_cast<UploadState*>(sink);
            PYLON_TRY_ASSIGN(auto digest, digest_param(req));
            PYLON_TRY_ASSIGN(auto session, close_sink(sink));
            return complete(ctx, req, state->who, session.id, *digest);
        }));

    router.add("GET", upload, wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY(authorize_upload(ctx, req));
                   PYLON_TRY_ASSIGN(auto session, path_session(ctx, req));
                   http::Response r = http::Response::empty(204);
                   set_session_headers(r, session);
                   if (session.offset == 0) r.headers.erase("Range");
                   return r;
               }));

    router.add("DELETE", upload, wrap([&ctx](http::Request& req) -> Result<http::Response> {
                   PYLON_TRY_ASSIGN(Principal who, authorize_upload(ctx, req));
                   PYLON_TRY_ASSIGN(auto session, path_session(ctx, req));
                   PYLON_TRY(ctx.blobs.cancel(session.id));
                   audit(ctx, req, who, "upload.cancel", session.id);
                   return http::Response::empty(204);
               }));

    // With a recently verified token the answer needs only the blob store (stat, open): it is
    // given on the I/O thread; otherwise the token is checked against the database on a worker.
    auto download = [&ctx](http::Request& req, const Principal& who) -> Result<http::Response> {
        PYLON_TRY(require_read(who));
        auto digest = Digest::parse(req.param("digest"));
        if (!digest) return Error(Errc::bad_request, digest.error().message());
        return serve_blob(ctx, req, *digest);
    };
    router.add_fast(
        "GET", "/v1/blobs/{digest}",
        wrap_fast([&ctx, download](http::Request& req) -> std::optional<Result<http::Response>> {
            auto who = cached_principal(ctx, req);
            if (!who) return std::nullopt;
            return download(req, *who);
        }),
        wrap([&ctx, download](http::Request& req) -> Result<http::Response> {
            PYLON_TRY_ASSIGN(Principal who, authenticate(ctx, req));
            return download(req, who);
        }));
}

}  // namespace pylon::registry::api
