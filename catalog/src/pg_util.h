// Helpers shared by the PostgreSQL code: one transaction per call with libpqxx exceptions
// mapped to catalog errors at the border, row-value conversions, and keyset pagination.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <pqxx/except>
#include <pqxx/field>
#include <pqxx/result>
#include <pqxx/transaction>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool_impl.h"
#include "pylon/catalog/types.h"
#include "pylon/common/result.h"

namespace pylon::catalog {

// The Error for the exception being handled (call inside a catch block). `what` names the
// operation and its entity ("creating model acme/tiny"); SQL text and bound values never
// appear in the message.
Error error_from_current_exception(std::string_view what);

std::string format_duration(std::chrono::milliseconds d);

// Runs f(pqxx::work&) -> Result<R> in a transaction on a pooled connection and commits when it
// succeeds; an error result or an exception rolls back. When the connection turns out to be
// broken (a server restart closed it while idle) the pool drops it and, if `retry` is set, the
// whole call runs once more on a fresh connection: nothing was committed, so that is safe for
// everything except calls with side effects outside the database.
template <typename F>
auto with_transaction(ConnectionPool::Impl& pool, std::string_view what, F&& f, bool retry = true)
    -> std::invoke_result_t<F&, pqxx::work&> {
    using R = std::invoke_result_t<F&, pqxx::work&>;
    for (int attempt = 0;; ++attempt) {
        PYLON_TRY_ASSIGN(auto lease, pool.acquire());
        try {
            pqxx::work tx(lease.conn());
            R result = f(tx);
            if (result) tx.commit();
            return result;
        } catch (const pqxx::broken_connection&) {
            lease.mark_broken();
            if (retry && attempt == 0) continue;
            return error_from_current_exception(what);
        } catch (...) {
            return error_from_current_exception(what);
        }
    }
}

// --- reading rows -------------------------------------------------------------------------
// These throw std::runtime_error on values the schema cannot produce; with_transaction turns
// that into Errc::database.
Timestamp to_timestamp(const pqxx::field& f);
std::optional<Timestamp> to_optional_timestamp(const pqxx::field& f);
std::optional<std::string> to_optional_string(const pqxx::field& f);
// A column selected as array_to_json(text[])::text.
std::vector<std::string> to_string_vector(const pqxx::field& f);
License to_license(const pqxx::field& f);  // a jsonb column

// --- checking values ----------------------------------------------------------------------
// Exactly `n` lower-case hex digits (token and credential hashes, digests).
bool is_lower_hex(std::string_view s, std::size_t n);

// --- writing values -----------------------------------------------------------------------
// A PostgreSQL array literal for a text[] parameter (every element quoted and escaped).
std::string text_array_literal(const std::vector<std::string>& values);
std::string license_json(const License& license);
std::optional<std::string> timestamp_param(const std::optional<Timestamp>& t);

// --- pagination ---------------------------------------------------------------------------
// Cursors are the decimal id of the last item returned.
struct PageBounds {
    std::optional<std::int64_t> after;  // unset: first page
    std::uint32_t limit = kDefaultPageLimit;
};
[[nodiscard]] Result<PageBounds> page_bounds(const PageRequest& page);

// Trims a result of limit + 1 items to `limit` and sets `next` when there was one more.
template <typename T, typename IdOf>
Page<T> make_page(std::vector<T> items, std::uint32_t limit, IdOf id_of) {
    Page<T> page;
    if (items.size() > limit) {
        items.resize(limit);
        page.next = std::to_string(id_of(items.back()));
    }
    page.items = std::move(items);
    return page;
}

}  // namespace pylon::catalog
