#include "pg_util.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "pylon/catalog/errors.h"
#include "pylon/common/log.h"

namespace pylon::catalog {

Error error_from_current_exception(std::string_view what) {
    try {
        throw;
    } catch (const pqxx::unique_violation&) {
        return Error(Errc::conflict, fmt::format("{}: already exists", what));
    } catch (const pqxx::foreign_key_violation&) {
        return Error(Errc::not_found,
                     fmt::format("{}: refers to an entry that does not exist", what));
    } catch (const pqxx::restrict_violation&) {
        return Error(Errc::invalid_state,
                     fmt::format("{}: not allowed, published data depends on it", what));
    } catch (const pqxx::integrity_constraint_violation&) {
        // check_violation, not_null_violation: a value the schema does not accept.
        return Error(Errc::invalid_argument, fmt::format("{}: a value is out of range", what));
    } catch (const pqxx::data_exception& e) {
        return Error(Errc::invalid_argument,
                     fmt::format("{}: malformed value (SQLSTATE {})", what, e.sqlstate()));
    } catch (const pqxx::broken_connection&) {
        return Error(Errc::database, fmt::format("{}: the database connection was lost", what));
    } catch (const pqxx::in_doubt_error&) {
        return Error(Errc::database,
                     fmt::format("{}: the connection was lost during commit; the outcome is "
                                 "unknown",
                                 what));
    } catch (const pqxx::sql_error& e) {
        // The server's message may quote bound values; log only the SQLSTATE.
        log::warn("catalog: {}: SQL error, SQLSTATE {}", what, e.sqlstate());
        return Error(Errc::database,
                     fmt::format("{}: database error (SQLSTATE {})", what, e.sqlstate()));
    } catch (const std::exception& e) {
        log::warn("catalog: {}: {}", what, e.what());
        return Error(Errc::database, fmt::format("{}: unexpected database failure", what));
    } catch (...) {
        return Error(Errc::database, fmt::format("{}: unexpected failure", what));
    }
}

std::string format_duration(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
    return fmt::format("{}ms", d.count());
}

namespace {

int digits(std::string_view s, std::size_t pos, std::size_t n) {
    if (pos + n > s.size()) throw std::runtime_error("truncated timestamp from the database");
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') throw std::runtime_error("malformed timestamp");
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

}  // namespace

// The connection runs with TimeZone=UTC and DateStyle=ISO, so timestamptz reads as
// "YYYY-MM-DD HH:MM:SS[.ffffff]+00".
Timestamp to_timestamp(const pqxx::field& f) {
    if (f.is_null()) throw std::runtime_error("unexpected NULL timestamp");
    const std::string_view s(f.c_str(), f.size());
    using namespace std::chrono;
    const year_month_day ymd{year{digits(s, 0, 4)}, month{static_cast<unsigned>(digits(s, 5, 2))},
                             day{static_cast<unsigned>(digits(s, 8, 2))}};
    if (!ymd.ok() || s.size() < 19 || s[4] != '-' || s[10] != ' ') {
        throw std::runtime_error("malformed timestamp");
    }
    auto t = sys_days(ymd) + hours(digits(s, 11, 2)) + minutes(digits(s, 14, 2)) +
             seconds(digits(s, 17, 2));
    std::size_t pos = 19;
    microseconds frac{0};
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        int n = 0;
        std::int64_t v = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (n < 6) v = v * 10 + (s[pos] - '0'), ++n;
            ++pos;
        }
        for (; n < 6; ++n) v *= 10;
        frac = microseconds(v);
    }
    if (s.substr(pos) != "+00") throw std::runtime_error("timestamp not in UTC");
    return Timestamp(duration_cast<Timestamp::duration>(t.time_since_epoch() + frac));
}

std::optional<Timestamp> to_optional_timestamp(const pqxx::field& f) {
    if (f.is_null()) return std::nullopt;
    return to_timestamp(f);
}

std::optional<std::string> to_optional_string(const pqxx::field& f) {
    if (f.is_null()) return std::nullopt;
    return std::string(f.c_str(), f.size());
}

std::vector<std::string> to_string_vector(const pqxx::field& f) {
    if (f.is_null()) return {};
    return nlohmann::json::parse(f.c_str()).get<std::vector<std::string>>();
}

License to_license(const pqxx::field& f) {
    auto license = license_from_json(nlohmann::json::parse(f.c_str()));
    if (!license) throw std::runtime_error("stored licence: " + license.error().message());
    return std::move(license).value();
}

std::string text_array_literal(const std::vector<std::string>& values) {
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i != 0) out += ',';
        out += '"';
        for (char c : values[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

std::string license_json(const License& license) {
    return to_json(license).dump();
}

std::optional<std::string> timestamp_param(const std::optional<Timestamp>& t) {
    if (!t) return std::nullopt;
    return format_rfc3339(*t);
}

Result<PageBounds> page_bounds(const PageRequest& page) {
    PageBounds bounds;
    bounds.limit = page.limit == 0 ? kDefaultPageLimit : std::min(page.limit, kMaxPageLimit);
    if (!page.after.empty()) {
        std::int64_t id = 0;
        const char* end = page.after.data() + page.after.size();
        auto [ptr, ec] = std::from_chars(page.after.data(), end, id);
        if (ec != std::errc() || ptr != end || id < 0) {
            return Error(Errc::invalid_argument, "invalid page cursor");
        }
        bounds.after = id;
    }
    return bounds;
}

bool is_lower_hex(std::string_view s, std::size_t n) {
    if (s.size() != n) return false;
    for (const char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

}  // namespace pylon::catalog
