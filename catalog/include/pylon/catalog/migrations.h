// Schema migrations: the numbered SQL files of migrations/, compiled into this library.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/result.h"

namespace pylon::catalog {

class ConnectionPool;

struct Migration {
    int version = 0;            // 1, 2, 3, ... without gaps
    std::string_view name;      // file name, e.g. "0001_initial.sql"
    std::string_view checksum;  // SHA-256 of the file, lower-case hex
    std::string_view sql;       // the file's text
};

// The migrations this build knows, by ascending version.
const std::vector<Migration>& embedded_migrations();

// Fixed key of the transaction-level advisory lock that serialises apply_migrations calls.
inline constexpr long long kMigrationLockKey = 0x70796c6f6e6d6967;  // "pylonmig"

// Applies every pending migration, in order, in one transaction holding
// pg_advisory_xact_lock(kMigrationLockKey), and records each in schema_migrations
// (version, name, checksum, applied_at). Safe to call from several processes at once: the
// first applies, the others wait and then find nothing to do.
//
// Returns the versions it applied (empty when the schema was up to date).
// Errc::conflict, and nothing is changed, when an applied migration's checksum differs from the
// embedded file or the database has a version this build does not know (a newer binary ran).
// Errc::database when a migration fails (its name is in the message) or the server is gone.
[[nodiscard]] Result<std::vector<int>> apply_migrations(ConnectionPool& pool);
// The same over a connection of its own (empty conninfo: libpq defaults / PG* variables).
[[nodiscard]] Result<std::vector<int>> apply_migrations(const std::string& conninfo);

}  // namespace pylon::catalog
