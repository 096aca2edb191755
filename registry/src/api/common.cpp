#include <charconv>

#include "api/context.h"
#include "pylon/common/log.h"

namespace pylon::registry::api {

http::Response error_response(const Error& error) {
    const HttpError e = classify(error);
    if (e.status >= 500) {
        log::error("request failed: {}", error.to_string());
        const std::string message = e.status == 503
                                        ? "a service the registry needs is unavailable; retry later"
                                        : "internal error; the registry's log has the details";
        return http::Response::error(e.status, e.code, message);
    }
    return http::Response::error(e.status, e.code, error.what());
}

std::optional<Principal> TokenCache::get(const std::string& hash) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(hash);
    if (it == entries_.end()) return std::nullopt;
    if (std::chrono::steady_clock::now() >= it->second.deadline) {
        entries_.erase(it);
        return std::nullopt;
    }
    return it->second.principal;
}

void TokenCache::put(const std::string& hash, const Principal& principal,
                     std::optional<std::chrono::system_clock::time_point> expires_at) {
    auto ttl = std::chrono::steady_clock::duration(kTtl);
    if (expires_at) {
        const auto left = *expires_at - std::chrono::system_clock::now();
        if (left <= left.zero()) return;
        ttl = std::min(ttl, std::chrono::duration_cast<std::chrono::steady_clock::duration>(left));
    }
    std::lock_guard lock(mutex_);
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_[hash] = Entry{principal, std::chrono::steady_clock::now() + ttl};
}

void TokenCache::erase_token(const std::string& token_id) {
    std::lock_guard lock(mutex_);
    std::erase_if(entries_, [&](const auto& e) { return e.second.principal.token_id == token_id; });
}

Result<Principal> authenticate(ApiContext& ctx, const http::Request& request) {
    PYLON_TRY_ASSIGN(std::string token, bearer_token(request.headers.get("Authorization")));
    const std::string hash = hash_token(token);
    if (auto cached = ctx.tokens.get(hash)) return std::move(*cached);
    auto found = ctx.catalog.find_token_by_hash(hash);
    if (!found) {
        if (found.error().code() == catalog::Errc::not_found) {
            return Error(Errc::unauthorized, "the API token is unknown, revoked or expired");
        }
        return std::move(found).error();
    }
    Principal who{std::to_string(found->id), found->name, found->scopes};
    ctx.tokens.put(hash, who, found->expires_at);
    return who;
}

std::optional<Principal> cached_principal(ApiContext& ctx, const http::Request& request) {
    auto token = bearer_token(request.headers.get("Authorization"));
    if (!token) return std::nullopt;
    return ctx.tokens.get(hash_token(*token));
}

Result<void> require_read(const Principal& p) {
    if (p.can_read()) return {};
    return Error(Errc::forbidden, "this token has no read scope");
}

Result<void> require_publish(const Principal& p, std::string_view ns) {
    if (p.can_publish(ns)) return {};
    return Error(Errc::forbidden,
                 "this token may not publish to namespace " + std::string(ns) +
                     " (it needs the scope publish:" + std::string(ns) + " or admin)");
}

Result<void> require_admin(const Principal& p) {
    if (p.is_admin()) return {};
    return Error(Errc::forbidden, "this call needs a token with the admin scope");
}

void audit(ApiContext& ctx, const http::Request& request, const Principal& who,
           std::string_view action, std::string_view target, Json details) {
    catalog::AuditEntry entry;
    entry.actor = who.actor();
    entry.action = std::string(action);
    entry.target = std::string(target);
    entry.remote_addr = request.remote_address;
    entry.details = details.dump();
    auto r = ctx.catalog.append_audit(entry);
    if (!r) {
        log::error("audit entry {} on {} by {} not recorded: {}", action, target, entry.actor,
                        r.error().to_string());
    }
}

Result<catalog::PageRequest> page_request(const http::Request& request) {
    catalog::PageRequest page;
    if (auto limit = request.query_param("limit")) {
        std::uint32_t n = 0;
        const auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
        if (ec != std::errc() || end != limit->data() + limit->size() || n < 1 ||
            n > catalog::kMaxPageLimit) {
            return Error(Errc::bad_request, "limit must be a number from 1 to 500");
        }
        page.limit = n;
    }
    if (auto token = request.query_param("page_token")) {
        if (token->size() > 256) return Error(Errc::bad_request, "page_token is too long");
        page.after = *token;
    }
    return page;
}

http::Handler wrap(ApiHandler handler) {
    return [handler = std::move(handler)](http::Request& request) -> http::Response {
        try {
            auto r = handler(request);
            if (!r) return error_response(r.error());
            return std::move(r).value();
        } catch (const std::exception& e) {
            log::error("{} {}: unexpected exception: {}", request.method, request.route,
                            e.what());
            return error_response(Error(Errc::internal, "unexpected exception"));
        }
    };
}

http::FastHandler wrap_fast(ApiFast fast) {
    return [fast = std::move(fast)](http::Request& request) -> std::optional<http::Response> {
        auto r = fast(request);
        if (!r) return std::nullopt;
        if (!*r) return error_response(r->error());
        return std::move(*r).value();
    };
}

http::StreamFinish wrap_finish(ApiContext&, ApiFinish finish) {
    return [finish = std::move(finish)](http::Request& request,
                                        std::unique_ptr<http::BodySink> sink) -> http::Response {
        try {
            auto r = finish(request, sink.get());
            if (!r) return error_response(r.error());
            return std::move(r).value();
        } catch (const std::exception& e) {
            log::error("{} {}: unexpected exception: {}", request.method, request.route,
                            e.what());
            return error_response(Error(Errc::internal, "unexpected exception"));
        }
    };
}

}  // namespace pylon::registry::api
