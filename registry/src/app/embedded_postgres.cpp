// The embedded PostgreSQL cluster (embedded_postgres.h): initdb, pg_ctl and single-user
// postgres run as child processes, as an unprivileged user when we are root.
#include "pylon/registry/embedded_postgres.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "pylon/common/file_io.h"
#include "pylon/common/log.h"
#include "pylon/common/unique_fd.h"

namespace pylon::registry {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxSocket = 100;  // sockaddr_un holds 108 bytes
constexpr int kPort = EmbeddedPostgres::kPort;
constexpr const char* kUser = EmbeddedPostgres::kUser;
constexpr const char* kDatabase = EmbeddedPostgres::kDatabase;

struct Identity {
    uid_t uid;
    gid_t gid;
};

Error failed(std::string what) {
    return Error(pylon::Errc::io_error, "embedded PostgreSQL: " + std::move(what));
}

// The last lines of setup.log, for an error message.
std::string log_tail(const fs::path& log) {
    auto text = read_file(log, std::size_t{64} << 20);
    if (!text) return {};
    std::string s = std::move(*text);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    std::size_t pos = s.size();
    for (int lines = 0; lines < 6 && pos != std::string::npos && pos > 0; ++lines) {
        pos = s.rfind('\n', pos - 1);
    }
    return pos == std::string::npos ? s : s.substr(pos + 1);
}

// Runs argv[0] (an absolute path) with stdin from `input` (or /dev/null), stdout and stderr
// appended to `log`, in `cwd`, as `as` when given. Returns the exit status (128 + signal).
Result<int> run(const std::vector<std::string>& argv, const std::optional<Identity>& as,
                const fs::path& log, const fs::path& cwd, const fs::path& input = "/dev/null") {
    UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!out) return Error::from_errno(errno, "open " + log.string());
    UniqueFd in(::open(input.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return Error::from_errno(errno, "open " + input.string());
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) return Error::from_errno(errno, "fork");
    if (pid == 0) {
        // Only async-signal-safe calls from here to exec.
        if (::dup2(in.get(), 0) < 0 || ::dup2(out.get(), 1) < 0 || ::dup2(out.get(), 2) < 0) {
            ::_exit(126);
        }
        if (as &&
            (::setgroups(1, &as->gid) != 0 || ::setgid(as->gid) != 0 || ::setuid(as->uid) != 0)) {
            ::_exit(126);
        }
        if (::chdir(cwd.c_str()) != 0) ::_exit(126);
        ::setsid();  // a terminal's Ctrl-C reaches the registry, which stops the server itself
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return Error::from_errno(errno, "waitpid");
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

// Whether `as` may read, write and search `dir` (checked by that user, so every parent counts).
bool reachable_by(const fs::path& dir, const Identity& as) {
    const pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
        if (::setgroups(1, &as.gid) != 0 || ::setgid(as.gid) != 0 || ::setuid(as.uid) != 0) {
            ::_exit(2);
        }
        ::_exit(::access(dir.c_str(), R_OK | W_OK | X_OK) == 0 ? 0 : 1);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return false;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool executable(const fs::path& p) {
    return ::access(p.c_str(), X_OK) == 0;
}

Result<fs::path> find_bin_dir(const fs::path& configured) {
    if (!configured.empty()) {
        if (!executable(configured / "initdb") || !executable(configured / "pg_ctl")) {
            return Error(pylon::Errc::not_found,
                         "embedded PostgreSQL: no initdb and pg_ctl in " + configured.string());
        }
        return configured;
    }
    // The newest Debian server package first.
    std::vector<std::pair<int, fs::path>> found;
    std::error_code ec;
    for (fs::directory_iterator it("/usr/lib/postgresql", ec), end; !ec && it != end;
         it.increment(ec)) {
        const auto bin = it->path() / "bin";
        const std::string name = it->path().filename().string();
        const bool digits =
            std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (name.empty() || !digits || name.size() > 4) {
            continue;
        }
        if (executable(bin / "initdb") && executable(bin / "pg_ctl")) {
            found.emplace_back(std::stoi(name), bin);
        }
    }
    if (!found.empty()) return std::max_element(found.begin(), found.end())->second;
    if (FILE* p = ::popen("pg_config --bindir 2>/dev/null", "r")) {
        char buf[4096];
        std::string out;
        while (std::fgets(buf, sizeof buf, p)) out += buf;
        ::pclose(p);
        while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
        if (!out.empty() && executable(fs::path(out) / "initdb")) return fs::path(out);
    }
    return Error(pylon::Errc::not_found,
                 "embedded PostgreSQL: initdb not found (install postgresql-15, or set "
                 "registry.embedded_postgres_bin_dir, or configure registry.database_url)");
}

// FNV-1a, for a short stable socket directory name.
std::string short_hash(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return fmt::format("{:016x}", h);
}

// Makes `dir` (mode 0700, owned by `owner` when given) or checks an existing one is exactly
// that: a directory under /tmp must not be someone else's.
Result<void> private_dir(const fs::path& dir, const std::optional<Identity>& owner) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return Error::from_errno(errno, "mkdir " + dir.string());
    }
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0) return Error::from_errno(errno, "stat " + dir.string());
    if (!S_ISDIR(st.st_mode)) return failed(dir.string() + " is not a directory");
    const uid_t want = owner ? owner->uid : ::geteuid();
    if (st.st_uid != want) {
        if (st.st_uid != ::geteuid() || !owner) {
            return Error(pylon::Errc::permission_denied,
                         "embedded PostgreSQL: " + dir.string() + " belongs to another user");
        }
        if (::chown(dir.c_str(), owner->uid, owner->gid) != 0) {
            return Error::from_errno(errno, "chown " + dir.string());
        }
    }
    if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0) {
        return Error::from_errno(errno, "chmod " + dir.string());
    }
    return {};
}

std::string conninfo_quote(const std::string& v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

}  // namespace

struct EmbeddedPostgres::Impl {
    fs::path dir, data, socket_dir, log, server_log;
    fs::path pg_ctl;
    std::optional<Identity> as;
    UniqueFd lock;
    std::string conninfo;
    bool running = false;

    Result<int> ctl(std::vector<std::string> args) {
        args.insert(args.begin(), pg_ctl.string());
        return run(args, as, log, dir);
    }
};

EmbeddedPostgres::EmbeddedPostgres(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EmbeddedPostgres::~EmbeddedPostgres() {
    if (auto r = stop(); !r) log::error("{}", r.error().what());
}

const std::string& EmbeddedPostgres::conninfo() const noexcept {
    return impl_->conninfo;
}

const fs::path& EmbeddedPostgres::socket_dir() const noexcept {
    return impl_->socket_dir;
}

Result<std::unique_ptr<EmbeddedPostgres>> EmbeddedPostgres::start(EmbeddedPostgresOptions o) {
    auto d = std::make_unique<Impl>();
    std::error_code ec;
    d->dir = fs::absolute(o.dir, ec);
    if (ec) return failed("resolving " + o.dir.string() + ": " + ec.message());
    d->data = d->dir / "data";
    d->log = d->dir / "setup.log";
    d->server_log = d->dir / "postgresql.log";
    PYLON_TRY_ASSIGN(const fs::path bin, find_bin_dir(o.bin_dir));
    d->pg_ctl = bin / "pg_ctl";

    if (::geteuid() == 0) {
        const passwd* pw = ::getpwnam(o.run_as.c_str());
        if (pw == nullptr || pw->pw_uid == 0) {
            return Error(pylon::Errc::invalid_argument,
                         "embedded PostgreSQL: running as root, the server needs an unprivileged "
                         "system user; \"" +
                             o.run_as + "\" " + (pw ? "is root" : "does not exist") +
                             " (set registry.embedded_postgres_user)");
        }
        d->as = Identity{pw->pw_uid, pw->pw_gid};
    }

    fs::create_directories(d->dir.parent_path(), ec);
    if (ec) return failed("creating " + d->dir.parent_path().string() + ": " + ec.message());
    PYLON_TRY(private_dir(d->dir, d->as));
    if (d->as) {
        // The data directory's owner must be able to search it: others get search (not read).
        struct stat st {};
        const auto parent = d->dir.parent_path();
        if (::stat(parent.c_str(), &st) == 0 && st.st_uid == 0 && (st.st_mode & 0001) == 0) {
            if (::chmod(parent.c_str(), (st.st_mode & 07777) | 0011) != 0) {
                return Error::from_errno(errno, "chmod " + parent.string());
            }
        }
        if (!reachable_by(d->dir, *d->as)) {
            return Error(pylon::Errc::permission_denied,
                         "embedded PostgreSQL: the user \"" + o.run_as + "\" cannot reach " +
                             d->dir.string() +
                             ": make every parent directory searchable by it (chmod o+x), or "
                             "choose a data directory elsewhere (e.g. under /var/lib)");
        }
    }

    // One registry per cluster: the lock is held for the registry's life (O_CLOEXEC: the
    // server, started from here, must not inherit it).
    const auto lock_path = d->dir / "registry.lock";
    d->lock.reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!d->lock) return Error::from_errno(errno, "open " + lock_path.string());
    if (::flock(d->lock.get(), LOCK_EX | LOCK_NB) != 0) {
        return Error(pylon::Errc::permission_denied,
                     "embedded PostgreSQL: another pylon-registry uses " + d->dir.string());
    }

    // The socket directory: inside DATA when the socket path fits, else a private /tmp one.
    d->socket_dir = d->dir / "run";
    if ((d->socket_dir / (".s.PGSQL." + std::to_string(kPort))).string().size() >= kMaxSocket ||
        d->socket_dir.string().find('\'') != std::string::npos) {
        d->socket_dir = fs::path("/tmp") / ("pylon-pg-" + short_hash(d->dir.string()));
    }
    PYLON_TRY(private_dir(d->socket_dir, d->as));

    // First use: initdb into data.init with the database created, then one rename.
    if (!fs::exists(d->data / "PG_VERSION", ec)) {
        const auto init = d->dir / "data.init";
        fs::remove_all(init, ec);
        if (fs::exists(d->data, ec)) {
            return failed(d->data.string() +
                          " exists but holds no cluster (no PG_VERSION): move it away");
        }
        log::info("embedded PostgreSQL: creating a cluster in {}", d->data.string());
        PYLON_TRY_ASSIGN(
            int rc, run({(bin / "initdb").string(), "-D", init.string(), "-U", kUser, "-A", "trust",
                         "--auth-host=reject", "-E", "UTF8", "--locale=C", "--no-instructions"},
                        d->as, d->log, d->dir));
        if (rc != 0) {
            return failed(fmt::format("initdb exited with {}: {}", rc, log_tail(d->log)));
        }
        const auto sql = d->dir / "create-database.sql";
        PYLON_TRY(write_file_atomic(sql, fmt::format("CREATE DATABASE {};\n", kDatabase), 0644));
        PYLON_TRY_ASSIGN(rc, run({(bin / "postgres").string(), "--single", "-D", init.string(),
                                  "-F", "-c", "exit_on_error=true", "postgres"},
                                 d->as, d->log, d->dir, sql));
        fs::remove(sql, ec);
        if (rc != 0) {
            return failed(
                fmt::format("creating the database exited with {}: {}", rc, log_tail(d->log)));
        }
        if (::rename(init.c_str(), d->data.c_str()) != 0) {
            return Error::from_errno(errno, "rename " + init.string());
        }
        PYLON_TRY(fsync_directory(d->dir));
    }

    PYLON_TRY_ASSIGN(int status, d->ctl({"status", "-D", d->data.string()}));
    if (status == 0) {
        log::info("embedded PostgreSQL: adopting the server already running on {}",
                  d->data.string());
    } else {
        const std::string options =
            fmt::format("-c listen_addresses='' -k '{}' -p {} -c unix_socket_permissions=0700",
                        d->socket_dir.string(), kPort);
        PYLON_TRY_ASSIGN(
            int rc, d->ctl({"start", "-D", d->data.string(), "-l", d->server_log.string(), "-w",
                            "-t", "120", "-s", "-o", options}));
        if (rc != 0) {
            return failed(fmt::format("pg_ctl start exited with {}: {} (server log: {})", rc,
                                      log_tail(d->log), d->server_log.string()));
        }
        log::info("embedded PostgreSQL: started on {} (socket in {})", d->data.string(),
                  d->socket_dir.string());
    }
    d->running = true;
    d->conninfo = fmt::format("host={} port={} user={} dbname={}",
                              conninfo_quote(d->socket_dir.string()), kPort, kUser, kDatabase);
    return std::unique_ptr<EmbeddedPostgres>(new EmbeddedPostgres(std::move(d)));
}

Result<void> EmbeddedPostgres::stop() {
    Impl& d = *impl_;
    if (!d.running) return {};
    d.running = false;
    PYLON_TRY_ASSIGN(int status, d.ctl({"status", "-D", d.data.string()}));
    if (status != 0) {
        log::warn("embedded PostgreSQL: the server had already stopped");
        return {};
    }
    PYLON_TRY_ASSIGN(int rc,
                     d.ctl({"stop", "-D", d.data.string(), "-m", "fast", "-w", "-t", "120", "-s"}));
    if (rc != 0) {
        return failed(fmt::format("pg_ctl stop exited with {}: {}", rc, log_tail(d.log)));
    }
    log::info("embedded PostgreSQL: stopped");
    return {};
}

bool wants_embedded_postgres(const std::string& database_url) {
    if (database_url == "embedded") return true;
    if (!database_url.empty()) return false;
    for (const char* var : {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE"}) {
        const char* v = std::getenv(var);
        if (v != nullptr && *v != '\0') return false;
    }
    return true;
}

}  // namespace pylon::registry
