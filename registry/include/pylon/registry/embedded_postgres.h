// EmbeddedPostgres: a private PostgreSQL cluster inside the registry's data directory, which
// `pylon-registry --data-dir DATA` starts when no database is configured (no database_url and
// no PG* connection variables) and stops when it stops.
//
//   DATA/postgresql/data/            the cluster (initdb into data.init/, then renamed)
//   DATA/postgresql/postgresql.log   the server's log
//   DATA/postgresql/setup.log        output of initdb and pg_ctl (read back in errors)
//   DATA/postgresql/registry.lock    flock held while a registry uses the cluster
//   DATA/postgresql/run/             the Unix socket; /tmp/pylon-pg-<hash>/ when that path
//                                    would be too long for a socket address
//
// The server listens on its Unix socket only (no TCP), trusts connections on it (the socket
// directory is 0700, so only the cluster's owner and root reach it), and holds one database,
// `pylon`, owned by the superuser `pylon`. Run as root, initdb and the server run as an
// unprivileged system user (PostgreSQL refuses root), `postgres` by default, which must be able
// to reach DATA/postgresql (every parent directory searchable by it).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "pylon/common/result.h"

namespace pylon::registry {

struct EmbeddedPostgresOptions {
    std::filesystem::path dir;        // DATA/postgresql
    std::filesystem::path bin_dir;    // initdb and pg_ctl; empty: the newest of
                                      // /usr/lib/postgresql/*/bin, then `pg_config --bindir`
    std::string run_as = "postgres";  // the system user for the server when we are root
};

class EmbeddedPostgres {
public:
    // Creates the cluster on first use, starts it unless it is running (a registry killed
    // without stopping leaves it running: it is adopted), and creates the database. Refuses
    // (Errc::permission_denied) when another registry holds the cluster.
    [[nodiscard]] static Result<std::unique_ptr<EmbeddedPostgres>> start(
        EmbeddedPostgresOptions options);
    ~EmbeddedPostgres();  // stop(), errors logged
    EmbeddedPostgres(const EmbeddedPostgres&) = delete;
    EmbeddedPostgres& operator=(const EmbeddedPostgres&) = delete;

    static constexpr int kPort = 5432;  // names the socket file only: no TCP
    static constexpr const char* kUser = "pylon";
    static constexpr const char* kDatabase = "pylon";

    // libpq conninfo of the `pylon` database.
    const std::string& conninfo() const noexcept;
    // The directory of the server's Unix socket (libpq's host).
    const std::filesystem::path& socket_dir() const noexcept;
    // Fast shutdown (sessions ended, checkpoint written); idempotent.
    [[nodiscard]] Result<void> stop();

    struct Impl;

private:
    explicit EmbeddedPostgres(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// True when pylon-registry should start the embedded cluster: `database_url` is "embedded", or
// it is empty and none of PGHOST, PGHOSTADDR, PGPORT, PGDATABASE, PGSERVICE is set.
[[nodiscard]] bool wants_embedded_postgres(const std::string& database_url);

}  // namespace pylon::registry
