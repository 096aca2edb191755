// Serving a stored blob: conditional requests and byte ranges (RFC 9110 §13, §14).
#include <charconv>

#include "api/context.h"
#include "api/validation.h"

namespace pylon::registry::api {

namespace {

std::optional<std::uint64_t> number(std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

struct ByteRange {
    std::uint64_t first;
    std::uint64_t length;
};
enum class RangeKind { none, ok, unsatisfiable };

// One "bytes=" range against a blob of `size` bytes. Several ranges, other units or a
// malformed header are ignored (the whole blob is sent), as RFC 9110 allows.
RangeKind parse_range(std::string_view header, std::uint64_t size, ByteRange& out) {
    if (header.rfind("bytes=", 0) != 0) return RangeKind::none;
    std::string_view spec = trim(header.substr(6));
    if (spec.find(',') != std::string_view::npos) return RangeKind::none;
    const auto dash = spec.find('-');
    if (dash == std::string_view::npos) return RangeKind::none;
    const auto a = spec.substr(0, dash);
    const auto b = spec.substr(dash + 1);
    if (a.empty()) {  // suffix: the last n bytes
        auto n = number(b);
        if (!n) return RangeKind::none;
        if (*n == 0 || size == 0) return RangeKind::unsatisfiable;
        const std::uint64_t len = std::min(*n, size);
        out = {size - len, len};
        return RangeKind::ok;
    }
    auto first = number(a);
    if (!first) return RangeKind::none;
    std::uint64_t last = size == 0 ? 0 : size - 1;
    if (!b.empty()) {
        auto l = number(b);
        if (!l || *l < *first) return RangeKind::none;
        last = std::min(*l, last);
    }
    if (*first >= size) return RangeKind::unsatisfiable;
    out = {*first, last - *first + 1};
    return RangeKind::ok;
}

}  // namespace

Result<http::Response> serve_blob(ApiContext& ctx, const http::Request& request,
                                  const blob::Digest& digest, std::string_view content_type) {
    const std::string etag = "\"" + digest.str() + "\"";
    auto stat = ctx.blobs.stat(digest);
    if (!stat) {
        if (stat.error().code() == blob::Errc::not_found) {
            return Error(Errc::not_found, "blob " + digest.str() + " not found");
        }
        return std::move(stat).error();
    }
    if (auto inm = request.headers.get("If-None-Match"); inm && none_match(*inm, etag)) {
        http::Response r = http::Response::empty(304);
        r.headers.set("ETag", etag);
        r.headers.set("Cache-Control", "public, max-age=31536000, immutable");
        return r;
    }
    auto local = ctx.blobs.open_local(digest);
    if (!local && local.error().code() == pylon::Errc::unsupported) {
        PYLON_TRY_ASSIGN(std::string url, ctx.blobs.redirect_url(digest));
        http::Response r = http::Response::empty(307);
        r.headers.set("Location", url);
        return r;
    }
    if (!local) return std::move(local).error();

    http::Response r;
    r.status = 200;
    r.headers.set("Content-Type", std::string(content_type));
    r.headers.set("ETag", etag);
    r.headers.set("Docker-Content-Digest", digest.str());
    r.headers.set("Accept-Ranges", "bytes");
    r.headers.set("Cache-Control", "public, max-age=31536000, immutable");
    const std::uint64_t size = local->size;
    ByteRange range{0, size};
    auto range_header = request.headers.get("Range");
    auto if_range = request.headers.get("If-Range");
    if (range_header && (!if_range || trim(*if_range) == etag)) {
        switch (parse_range(*range_header, size, range)) {
            case RangeKind::unsatisfiable: {
                http::Response bad = http::Response::error(
                    416, "range_not_satisfiable",
                    "the range is outside the blob's " + std::to_string(size) + " bytes");
                bad.headers.set("Content-Range", "bytes */" + std::to_string(size));
                return bad;
            }
            case RangeKind::ok:
                r.status = 206;
                r.headers.set("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                   std::to_string(range.first + range.length - 1) +
                                                   "/" + std::to_string(size));
                break;
            case RangeKind::none:
                range = {0, size};
                break;
        }
    }
    r.file = http::FileBody{http::UniqueFd(local->fd.release()), range.first, range.length};
    return r;
}

}  // namespace pylon::registry::api
