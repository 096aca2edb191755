// pylon-registry: parses flags and the config file, then runs a Registry until SIGTERM/SIGINT.
//
//   pylon-registry --listen 127.0.0.1:8080 --data-dir /var/lib/pylon-registry
//                  [--database-url postgresql://…] [--config registry.toml]
//
// Precedence: flags, then PYLON_REGISTRY_* environment variables, then the config file's
// [registry] table, then defaults. Without --database-url the PG* variables apply (so it runs
// under pg_virtualenv); with none of them either, the registry starts its own PostgreSQL cluster
// in DATA/postgresql and stops it when it stops (embedded_postgres.h).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "pylon/common/config.h"
#include "pylon/common/log.h"
#include "pylon/common/sd_notify.h"
#include "pylon/registry/embedded_postgres.h"
#include "pylon/registry/registry.h"

namespace {

// --run-with-database: the command as a child with the embedded cluster in its environment.
int run_command(pylon::registry::EmbeddedPostgres& pg, const std::vector<std::string>& command) {
    std::vector<char*> args;
    for (const auto& a : command) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const std::string port = std::to_string(pylon::registry::EmbeddedPostgres::kPort);
    const pid_t pid = ::fork();
    if (pid < 0) {
        pylon::log::error("fork: {}", std::strerror(errno));
        return 1;
    }
    if (pid == 0) {
        ::setenv("PGHOST", pg.socket_dir().c_str(), 1);
        ::setenv("PGPORT", port.c_str(), 1);
        ::setenv("PGUSER", pylon::registry::EmbeddedPostgres::kUser, 1);
        ::setenv("PGDATABASE", pylon::registry::EmbeddedPostgres::kDatabase, 1);
        ::execvp(args[0], args.data());
        std::fprintf(stderr, "pylon-registry: cannot run %s: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (auto stopped = pg.stop(); !stopped) {
        pylon::log::error("{}", stopped.error().what());
        return rc != 0 ? rc : 1;
    }
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Pylon registry: signed model registry with a TUF repository"};
    app.set_version_flag("--version", "pylon-registry " PYLON_VERSION);
    std::string config_file, listen, data_dir, database_url, log_level = "info",
                                                             log_format = "text";
    app.add_option("--config", config_file, "TOML config file ([registry] table)");
    app.add_option("--listen", listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
    app.add_option("--data-dir", data_dir, "directory for blobs, TUF metadata and admin.token");
    app.add_option("--database-url", database_url,
                   "PostgreSQL conninfo or URI (default: the PG* environment variables, else "
                   "\"embedded\": a private cluster in DATA/postgresql)");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
    app.add_option("--log-format", log_format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));
    bool check_config = false;
    app.add_flag("--check-config", check_config,
                 "Check the configuration (file, environment, flags), say which keys are at "
                 "their defaults, and exit");
    bool run_with_database = false;
    std::vector<std::string> command;
    app.add_flag("--run-with-database", run_with_database,
                 "Maintenance: start only the embedded PostgreSQL, run the command given after "
                 "-- with PGHOST, PGPORT, PGUSER and PGDATABASE set to it (e.g. pg_restore, "
                 "psql), stop it, and exit with the command's status");
    app.add_option("command", command, "With --run-with-database: the command (after --)");
    CLI11_PARSE(app, argc, argv);
    if (run_with_database == command.empty()) {
        std::fprintf(stderr,
                     "pylon-registry: --run-with-database and a command after -- go "
                     "together\n");
        return 2;
    }

    pylon::LogOptions log_options;
    log_options.level = log_level;
    log_options.format = log_format == "json" ? pylon::LogFormat::json : pylon::LogFormat::text;
    log_options.name = "pylon-registry";
    if (auto r = pylon::init_logging(log_options); !r) {
        std::fprintf(stderr, "pylon-registry: %s\n", r.error().what().c_str());
        return 2;
    }

    auto config = config_file.empty() ? pylon::Result<pylon::Config>(pylon::Config::empty())
                                      : pylon::Config::load_file(config_file);
    if (!config) {
        pylon::log::error("{}", config.error().what());
        return 2;
    }
    auto settings = pylon::registry::RegistryConfig::from_config(*config);
    if (!settings) {
        pylon::log::error("configuration: {}", settings.error().what());
        return 2;
    }
    if (!listen.empty()) {
        auto hp = pylon::registry::parse_listen(listen);
        if (!hp) {
            pylon::log::error("--listen: {}", hp.error().what());
            return 2;
        }
        settings->server.host = hp->first;
        settings->server.port = hp->second;
    }
    if (!data_dir.empty()) settings->data_dir = data_dir;
    if (!database_url.empty()) settings->database_url = database_url;
    if (settings->data_dir.empty()) {
        pylon::log::error("a data directory is needed (--data-dir or registry.data_dir)");
        return 2;
    }

    if (check_config) {
        std::string defaults;
        for (auto key : pylon::registry::registry_config_keys()) {
            if (!config->has(key))
                defaults += std::string(defaults.empty() ? "" : ", ") + std::string(key);
        }
        std::printf("pylon-registry: configuration OK\nat their defaults: %s\n",
                    defaults.empty() ? "(none)" : defaults.c_str());
        return 0;
    }

    // Every device may hold a connection (a long poll): raise the open-file limit as far as
    // allowed, and say when it is below max_connections.
    if (rlimit nofile{}; ::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
        if (nofile.rlim_cur < nofile.rlim_max) {
            nofile.rlim_cur = nofile.rlim_max;
            (void)::setrlimit(RLIMIT_NOFILE, &nofile);
            (void)::getrlimit(RLIMIT_NOFILE, &nofile);
        }
        if (nofile.rlim_cur != RLIM_INFINITY &&
            nofile.rlim_cur < settings->server.max_connections + 256) {
            pylon::log::warn(
                "the open-file limit ({}) is below max_connections ({}) + 256: connections "
                "beyond it are refused by the kernel",
                static_cast<unsigned long long>(nofile.rlim_cur), settings->server.max_connections);
        }
    }

    // Declared before the registry: stopped after it.
    std::unique_ptr<pylon::registry::EmbeddedPostgres> embedded;
    if (pylon::registry::wants_embedded_postgres(settings->database_url)) {
        auto pg = pylon::registry::EmbeddedPostgres::start({settings->data_dir / "postgresql",
                                                            settings->embedded_postgres_bin_dir,
                                                            settings->embedded_postgres_user});
        if (!pg) {
            pylon::log::error("start-up failed: {}", pg.error().what());
            return 1;
        }
        embedded = std::move(*pg);
        settings->database_url = embedded->conninfo();
    }
    if (run_with_database) {
        if (!embedded) {
            pylon::log::error(
                "--run-with-database needs the embedded PostgreSQL (no "
                "database_url, no PG* variables)");
            return 2;
        }
        return run_command(*embedded, command);
    }

    auto registry = pylon::registry::Registry::create(std::move(*settings));
    if (!registry) {
        pylon::log::error("{}", registry.error().what());
        return 1;
    }
    (*registry)->install_signal_handlers();
    if (auto started = (*registry)->start(); !started) {
        pylon::log::error("start-up failed: {}", started.error().what());
        return 1;
    }
    // systemd (Type=notify): ready once listening; stopping once a signal ended wait().
    pylon::sd_notify("READY=1\nSTATUS=listening on port " + std::to_string((*registry)->port()));
    (*registry)->wait();
    pylon::sd_notify("STOPPING=1");
    (*registry)->stop();
    pylon::log::info("registry stopped");
    return 0;
}
