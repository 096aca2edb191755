// PostgresCatalog: blobs, API tokens and the audit log.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "pg_catalog.h"
#include "pylon/catalog/errors.h"

namespace pylon::catalog {
namespace {

bool is_digest(std::string_view s) {
    constexpr std::string_view kPrefix = "sha256:";
    return s.substr(0, kPrefix.size()) == kPrefix && is_lower_hex(s.substr(kPrefix.size()), 64);
}

Blob read_blob(const pqxx::row& row) {
    return Blob{row[0].as<std::string>(), row[1].as<std::int64_t>(), to_timestamp(row[2])};
}

constexpr const char* kTokenColumns =
    "id, name, array_to_json(scopes)::text, created_at, expires_at, revoked_at IS NOT NULL,"
    " last_used_at, created_by";

ApiToken read_token(const pqxx::row& row) {
    ApiToken t;
    t.id = row[0].as<std::int64_t>();
    t.name = row[1].as<std::string>();
    t.scopes = to_string_vector(row[2]);
    t.created_at = to_timestamp(row[3]);
    t.expires_at = to_optional_timestamp(row[4]);
    t.revoked = row[5].as<bool>();
    t.last_used_at = to_optional_timestamp(row[6]);
    t.created_by = row[7].as<std::string>();
    return t;
}

constexpr const char* kAuditColumns = "id, at, actor, action, target, remote_addr, details::text";

AuditEntry read_audit(const pqxx::row& row) {
    return AuditEntry{row[0].as<std::int64_t>(), to_timestamp(row[1]),     row[2].as<std::string>(),
                      row[3].as<std::string>(),  row[4].as<std::string>(), row[5].as<std::string>(),
                      row[6].as<std::string>()};
}

}  // namespace

// --- blobs --------------------------------------------------------------------------------

Result<Blob> PostgresCatalog::record_blob(const std::string& digest, std::int64_t size) {
    if (!is_digest(digest)) {
        return Error(Errc::invalid_argument, "blob digest must be sha256: and 64 lower-case hex");
    }
    if (size < 0) return Error(Errc::invalid_argument, "blob size is negative");
    return transact(fmt::format("recording blob {}", digest), [&](pqxx::work& tx) -> Result<Blob> {
        tx.exec_params(
            "INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
            digest, size);
        const auto r =
            tx.exec_params("SELECT digest, size, created_at FROM blobs WHERE digest = $1", digest);
        Blob blob = read_blob(r[0]);
        if (blob.size != size) {
            return Error(Errc::conflict, fmt::format("blob {} is recorded with size {}, not {}",
                                                     digest, blob.size, size));
        }
        return blob;
    });
}

Result<Blob> PostgresCatalog::get_blob(const std::string& digest) {
    return transact("reading blob", [&](pqxx::work& tx) -> Result<Blob> {
        const auto r =
            tx.exec_params("SELECT digest, size, created_at FROM blobs WHERE digest = $1", digest);
        if (r.empty()) return Error(Errc::not_found, fmt::format("blob {} not found", digest));
        return read_blob(r[0]);
    });
}

// --- API tokens ---------------------------------------------------------------------------
// Token hashes are not secrets in the way tokens are, but they are still kept out of messages.

Result<ApiToken> PostgresCatalog::create_token(const std::string& name,
                                               const std::string& token_hash,
                                               const std::vector<std::string>& scopes,
                                               const std::optional<Timestamp>& expires_at,
                                               const std::string& created_by) {
    if (!is_lower_hex(token_hash, 64)) {
        return Error(Errc::invalid_argument, "token hash must be 64 lower-case hex digits");
    }
    return transact(
        fmt::format("creating token {}", name), [&](pqxx::work& tx) -> Result<ApiToken> {
            const auto r = tx.exec_params(
                fmt::format(
                    "INSERT INTO api_tokens (name, token_hash, scopes, expires_at, created_by)"
                    " VALUES ($1, $2, $3::text[], $4::timestamptz, $5)"
                    " ON CONFLICT (token_hash) DO NOTHING RETURNING {}",
                    kTokenColumns),
                name, token_hash, text_array_literal(scopes), timestamp_param(expires_at),
                created_by);
            if (r.empty()) {
                return Error(Errc::conflict,
                             fmt::format("creating token {}: a token with this hash exists", name));
            }
            return read_token(r[0]);
        });
}

Result<ApiToken> PostgresCatalog::find_token_by_hash(const std::string& token_hash) {
    return transact("looking up a token", [&](pqxx::work& tx) -> Result<ApiToken> {
        const auto r = tx.exec_params(
            fmt::format("SELECT {} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
                        " AND (expires_at IS NULL OR expires_at > now())",
                        kTokenColumns),
            token_hash);
        if (r.empty()) return Error(Errc::not_found, "no such token, or revoked, or expired");
        ApiToken token = read_token(r[0]);
        // Called on every request: write at most once a minute per token. The WHERE clause
        // re-checks under the row lock, so concurrent requests do not all write.
        const auto u = tx.exec_params(
            "UPDATE api_tokens SET last_used_at = now() WHERE id = $1"
            " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
            " RETURNING last_used_at",
            token.id);
        if (!u.empty()) token.last_used_at = to_timestamp(u[0][0]);
        return token;
    });
}

Result<Page<ApiToken>> PostgresCatalog::list_tokens(const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing tokens", [&](pqxx::work& tx) -> Result<Page<ApiToken>> {
        const auto r = tx.exec_params(
            fmt::format("SELECT {} FROM api_tokens WHERE ($1::bigint IS NULL OR id > $1)"
                        " ORDER BY id LIMIT $2",
                        kTokenColumns),
            bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<ApiToken> items;
        for (const auto& row : r) items.push_back(read_token(row));
        return make_page(std::move(items), bounds.limit, [](const ApiToken& t) { return t.id; });
    });
}

Result<void> PostgresCatalog::revoke_token(std::int64_t id) {
    return transact(fmt::format("revoking token {}", id), [&](pqxx::work& tx) -> Result<void> {
        const auto r = tx.exec_params(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"
            " RETURNING id",
            id);
        if (r.empty()) return Error(Errc::not_found, fmt::format("token {} not found", id));
        return ok();
    });
}

Result<std::int64_t> PostgresCatalog::count_tokens() {
    return transact("counting tokens", [&](pqxx::work& tx) -> Result<std::int64_t> {
        return tx.exec("SELECT count(*) FROM api_tokens")[0][0].as<std::int64_t>();
    });
}

// --- audit log ----------------------------------------------------------------------------

Result<AuditEntry> PostgresCatalog::append_audit(const AuditEntry& entry) {
    if (entry.actor.empty() || entry.action.empty()) {
        return Error(Errc::invalid_argument, "audit entry needs an actor and an action");
    }
    const std::string details = entry.details.empty() ? "{}" : entry.details;
    if (!nlohmann::json::parse(details, nullptr, false).is_object()) {
        return Error(Errc::invalid_argument, "audit details must be a JSON object");
    }
    return transact("appending to the audit log", [&](pqxx::work& tx) -> Result<AuditEntry> {
        const auto r = tx.exec_params(
            fmt::format("INSERT INTO audit_log (actor, action, target, remote_addr, details)"
                        " VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING {}",
                        kAuditColumns),
            entry.actor, entry.action, entry.target, entry.remote_addr, details);
        return read_audit(r[0]);
    });
}

Result<Page<AuditEntry>> PostgresCatalog::list_audit(const PageRequest& page,
                                                     const AuditFilter& filter) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing the audit log", [&](pqxx::work& tx) -> Result<Page<AuditEntry>> {
        const auto r = tx.exec_params(
            fmt::format("SELECT {} FROM audit_log WHERE ($1::text IS NULL OR actor = $1)"
                        " AND ($2::text IS NULL OR action = $2)"
                        " AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
                        kAuditColumns),
            filter.actor, filter.action, bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<AuditEntry> items;
        for (const auto& row : r) items.push_back(read_audit(row));
        return make_page(std::move(items), bounds.limit, [](const AuditEntry& e) { return e.id; });
    });
}

}  // namespace pylon::catalog
