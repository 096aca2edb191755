// The real pressure sources (PSI triggers, systemd's memory pressure protocol, avg10/total
// polling) and open_pressure_source(), which picks one and logs why.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <vector>

#include "pylon/common/error.h"
#include "pylon/common/log.h"
#include "pylon/common/unique_fd.h"
#include "pylon/runtime/psi.h"

namespace pylon::runtime::psi {
namespace {

using std::chrono::milliseconds;

Error errno_error(int err, const std::string& what) {
    return Error(std::error_code(err, std::generic_category()), what + ": " + std::strerror(err));
}

// Reads a small file (procfs/cgroupfs report size 0) with a limit.
Result<std::string> read_small(int fd, const std::string& path, std::size_t limit) {
    std::string out;
    char buf[1024];
    for (off_t off = 0;;) {
        const ssize_t n = ::pread(fd, buf, sizeof buf, off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error(errno, "reading " + path);
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        off += n;
        if (out.size() > limit) return Error(Errc::limit_exceeded, path + " is too large");
    }
    return out;
}

Result<std::string> read_small(const std::string& path, std::size_t limit) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno_error(errno, "opening " + path);
    return read_small(fd.get(), path, limit);
}

// poll() on `fds` plus the cancel fd (revents land in `fds`); false on timeout or EINTR.
Result<bool> poll_with_cancel(std::vector<pollfd>& fds, milliseconds timeout, int cancel_fd) {
    if (cancel_fd >= 0) fds.push_back({cancel_fd, POLLIN, 0});
    const int ms = static_cast<int>(std::min<milliseconds::rep>(timeout.count(), 1 << 30));
    const int r = ::poll(fds.data(), fds.size(), std::max(ms, 0));
    if (cancel_fd >= 0) fds.pop_back();
    if (r < 0) {
        if (errno == EINTR) return false;
        return errno_error(errno, "poll");
    }
    return r > 0;
}

// Writes a trigger; 0 or the errno of the refusal.
int install_trigger(int fd, const std::string& text) {
    // The kernel takes the text with its NUL (as in Documentation/accounting/psi.rst).
    if (::write(fd, text.c_str(), text.size() + 1) < 0) return errno;
    return 0;
}

class TriggerSource final : public PressureSource {
public:
    TriggerSource(std::string path, UniqueFd some, UniqueFd full, std::string what)
        : path_(std::move(path)),
          some_(std::move(some)),
          full_(std::move(full)),
          what_(std::move(what)) {}

    Result<std::optional<Level>> wait(milliseconds timeout, int cancel_fd) override {
        std::vector<pollfd> fds{{some_.get(), POLLPRI, 0}};
        if (full_) fds.push_back({full_.get(), POLLPRI, 0});
        PYLON_TRY_ASSIGN(const bool any, poll_with_cancel(fds, timeout, cancel_fd));
        if (!any) return std::optional<Level>();
        for (const pollfd& p : fds) {
            if (p.revents & (POLLERR | POLLNVAL)) {
                return Error(Errc::io_error,
                             "PSI trigger on " + path_ + " failed (was its cgroup removed?)");
            }
        }
        if (full_ && (fds[1].revents & POLLPRI)) return std::optional<Level>(Level::full);
        if (fds[0].revents & POLLPRI) return std::optional<Level>(Level::some);
        return std::optional<Level>();
    }
    std::string_view kind() const noexcept override { return "trigger"; }
    std::string describe() const override { return what_; }

private:
    std::string path_;
    UniqueFd some_, full_;
    std::string what_;
};

class PollSource final : public PressureSource {
public:
    PollSource(std::string path, UniqueFd fd, const Trigger& some,
               const std::optional<Trigger>& full, milliseconds interval, const PressureFile& first)
        : path_(std::move(path)),
          fd_(std::move(fd)),
          some_(some),
          full_(full),
          interval_(interval),
          last_(first),
          last_at_(std::chrono::steady_clock::now()),
          next_(last_at_ + interval) {}

    // Fires when the stall time accumulated since the previous sample, as a share of the time
    // passed, reaches the trigger's stall/window share (what a trigger measures, over one poll
    // interval); avg10 alone would lag by ~10 s and keep firing long after the pressure ended.
    Result<std::optional<Level>> wait(milliseconds timeout, int cancel_fd) override {
        const auto now = std::chrono::steady_clock::now();
        if (now < next_) {
            const auto left =
                std::chrono::duration_cast<milliseconds>(next_ - now) + milliseconds(1);
            std::vector<pollfd> fds;
            PYLON_TRY(poll_with_cancel(fds, std::min(left, timeout), cancel_fd));
            if (std::chrono::steady_clock::now() < next_) return std::optional<Level>();
        }
        PYLON_TRY_ASSIGN(const std::string text, read_small(fd_.get(), path_, 4096));
        PYLON_TRY_ASSIGN(const PressureFile cur, parse_pressure_file(text));
        const auto at = std::chrono::steady_clock::now();
        const double elapsed_us = std::max(
            1.0, static_cast<double>(
                     std::chrono::duration_cast<std::chrono::microseconds>(at - last_at_).count()));
        auto share = [&](const PressureLine& a, const PressureLine& b) {
            return b.total_us >= a.total_us
                       ? static_cast<double>(b.total_us - a.total_us) / elapsed_us
                       : 0.0;
        };
        auto threshold = [](const Trigger& t) {
            return static_cast<double>(t.stall_us) / static_cast<double>(t.window_us);
        };
        std::optional<Level> out;
        if (full_ && cur.full && last_.full && share(*last_.full, *cur.full) >= threshold(*full_)) {
            out = Level::full;
        } else if (share(last_.some, cur.some) >= threshold(some_)) {
            out = Level::some;
        }
        if (out) {
            log::debug("psi poll: {} pressure on {} (some avg10={:.2f})", level_name(*out), path_,
                       cur.some.avg10);
        }
        last_ = cur;
        last_at_ = at;
        next_ = at + interval_;
        return out;
    }
    std::string_view kind() const noexcept override { return "poll"; }
    std::string describe() const override {
        return "polling " + path_ + " every " + std::to_string(interval_.count()) +
               " ms (thresholds " + some_.text() + (full_ ? ", " + full_->text() : "") + ")";
    }

private:
    std::string path_;
    UniqueFd fd_;
    Trigger some_;
    std::optional<Trigger> full_;
    milliseconds interval_;
    PressureFile last_;
    std::chrono::steady_clock::time_point last_at_, next_;
};

// systemd's protocol on a FIFO or an AF_UNIX socket: each readable event is pressure.
class StreamSource final : public PressureSource {
public:
    StreamSource(std::string path, UniqueFd fd, bool socket)
        : path_(std::move(path)), fd_(std::move(fd)), socket_(socket) {}

    Result<std::optional<Level>> wait(milliseconds timeout, int cancel_fd) override {
        std::vector<pollfd> fds{{fd_.get(), POLLIN, 0}};
        PYLON_TRY_ASSIGN(const bool any, poll_with_cancel(fds, timeout, cancel_fd));
        if (!any || !(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            return std::optional<Level>();
        }
        char buf[256];
        const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n == 0 || (fds[0].revents & POLLERR)) {
            return Error(Errc::io_error, "memory pressure " +
                                             std::string(socket_ ? "socket" : "FIFO") + " " +
                                             path_ + " closed");
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return errno_error(errno, "reading " + path_);
        return std::optional<Level>(Level::some);
    }
    std::string_view kind() const noexcept override { return "systemd"; }
    std::string describe() const override {
        return "systemd MEMORY_PRESSURE_WATCH " + std::string(socket_ ? "socket " : "FIFO ") +
               path_;
    }

private:
    std::string path_;
    UniqueFd fd_;
    bool socket_;
};

std::optional<std::string> default_getenv(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
}

bool fallback_errno(const Error& e) {
    const std::error_code& c = e.code();
    return c == std::errc::permission_denied || c == std::errc::operation_not_permitted ||
           c == std::errc::invalid_argument || c == std::errc::no_such_file_or_directory ||
           c == std::errc::operation_not_supported || c == std::errc::device_or_resource_busy ||
           c == std::errc::read_only_file_system;
}

// A trigger on `path` or, where refused, polling it.
Result<std::unique_ptr<PressureSource>> trigger_or_poll(const std::string& path,
                                                        const Trigger& some,
                                                        const std::optional<Trigger>& full,
                                                        const SourceOptions& o) {
    auto trig = open_trigger_source(path, some, full);
    if (trig) {
        log::info("psi: watching with {}", (*trig)->describe());
        return trig;
    }
    if (!o.allow_poll_fallback || !fallback_errno(trig.error())) return std::move(trig).error();
    log::warn("psi: trigger refused ({}); falling back to polling", trig.error().what());
    auto poll = open_poll_source(path, some, full, o.poll_interval);
    if (poll) log::info("psi: watching by {}", (*poll)->describe());
    return poll;
}

Result<std::unique_ptr<PressureSource>> systemd_source(const std::string& watch,
                                                       const std::optional<std::string>& write_b64,
                                                       const SourceOptions& o) {
    if (watch.size() > 4096 || watch.empty() || watch.front() != '/') {
        return Error(Errc::invalid_argument,
                     "MEMORY_PRESSURE_WATCH must be an absolute path of at most 4096 bytes");
    }
    if (watch == "/dev/null") {
        return Error(Errc::unsupported,
                     "memory pressure handling is off (MEMORY_PRESSURE_WATCH=/dev/null)");
    }
    std::string payload;
    if (write_b64) {
        auto decoded = base64_decode(*write_b64);
        if (!decoded) return std::move(decoded).error().with_context("MEMORY_PRESSURE_WRITE");
        payload = std::move(*decoded);
    }
    struct stat st {};
    if (::stat(watch.c_str(), &st) != 0) {
        return errno_error(errno, "MEMORY_PRESSURE_WATCH " + watch);
    }
    if (S_ISREG(st.st_mode)) {
        // A PSI file: the payload is the trigger (ours when systemd gave none).
        Trigger some = o.some;
        if (!payload.empty()) {
            auto t = parse_trigger(payload);
            if (!t) return std::move(t).error().with_context("MEMORY_PRESSURE_WRITE");
            some = *t;
        }
        log::info("psi: systemd's MEMORY_PRESSURE_WATCH={} with trigger \"{}\"", watch,
                  some.text());
        // systemd configures one trigger; its level is what we get.
        return trigger_or_poll(watch, some, std::nullopt, o);
    }
    if (S_ISFIFO(st.st_mode)) {
        // Read-write so that the FIFO never reports POLLHUP for want of a writer.
        UniqueFd fd(::open(watch.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
        if (!fd) return errno_error(errno, "opening FIFO " + watch);
        log::info("psi: systemd's MEMORY_PRESSURE_WATCH FIFO {}", watch);
        return std::unique_ptr<PressureSource>(new StreamSource(watch, std::move(fd), false));
    }
    if (S_ISSOCK(st.st_mode)) {
        sockaddr_un addr{};
        if (watch.size() >= sizeof addr.sun_path) {
            return Error(Errc::invalid_argument, "socket path too long: " + watch);
        }
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, watch.c_str(), watch.size() + 1);
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) return errno_error(errno, "socket");
        if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            return errno_error(errno, "connecting to " + watch);
        }
        if (!payload.empty() && ::write(fd.get(), payload.data(), payload.size()) < 0) {
            return errno_error(errno, "writing to " + watch);
        }
        const int flags = ::fcntl(fd.get(), F_GETFL);
        ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
        log::info("psi: systemd's MEMORY_PRESSURE_WATCH socket {}", watch);
        return std::unique_ptr<PressureSource>(new StreamSource(watch, std::move(fd), true));
    }
    return Error(Errc::invalid_argument,
                 "MEMORY_PRESSURE_WATCH " + watch + " is not a file, FIFO or socket");
}

}  // namespace

Result<std::unique_ptr<PressureSource>> open_trigger_source(const std::string& path,
                                                            const Trigger& some,
                                                            const std::optional<Trigger>& full) {
    auto open_one = [&](const Trigger& t) -> Result<UniqueFd> {
        UniqueFd fd(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
        if (!fd) return errno_error(errno, "opening " + path);
        if (const int err = install_trigger(fd.get(), t.text()); err != 0) {
            return errno_error(err, "writing trigger \"" + t.text() + "\" to " + path);
        }
        return fd;
    };
    PYLON_TRY_ASSIGN(UniqueFd s, open_one(some));
    UniqueFd f;
    std::string what = "PSI trigger \"" + some.text() + "\"";
    if (full) {
        PYLON_TRY_ASSIGN(f, open_one(*full));
        what += " and \"" + full->text() + "\"";
    }
    what += " on " + path;
    return std::unique_ptr<PressureSource>(
        new TriggerSource(path, std::move(s), std::move(f), std::move(what)));
}

Result<std::unique_ptr<PressureSource>> open_poll_source(const std::string& path,
                                                         const Trigger& some,
                                                         const std::optional<Trigger>& full,
                                                         milliseconds interval) {
    if (interval < milliseconds(100) || interval > milliseconds(60000)) {
        return Error(Errc::invalid_argument, "poll interval must be 100 ms .. 60 s");
    }
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno_error(errno, "opening " + path);
    PYLON_TRY_ASSIGN(const std::string text, read_small(fd.get(), path, 4096));
    auto first = parse_pressure_file(text);
    if (!first) return std::move(first).error().with_context(path);
    return std::unique_ptr<PressureSource>(
        new PollSource(path, std::move(fd), some, full, interval, *first));
}

Result<std::unique_ptr<PressureSource>> open_pressure_source(const SourceOptions& o) {
    const auto getenv = o.getenv ? o.getenv : default_getenv;
    if (o.path.empty() && o.use_systemd_env) {
        if (auto watch = getenv("MEMORY_PRESSURE_WATCH")) {
            return systemd_source(*watch, getenv("MEMORY_PRESSURE_WRITE"), o);
        }
    }
    std::string path = o.path;
    if (path.empty()) {
        auto root = cgroup2_root();
        auto self = read_small("/proc/self/cgroup", 64 * 1024);
        if (root && self) {
            auto own = own_cgroup_pressure_path(*self, *root);
            if (own) {
                path = *own;
            } else {
                log::info("psi: no cgroup memory.pressure ({}); using the system's",
                          own.error().what());
            }
        }
        if (path.empty()) path = "/proc/pressure/memory";
    }
    if (::access(path.c_str(), F_OK) != 0) {
        return Error(Errc::not_found, path + " does not exist (kernel without PSI, or psi=0)");
    }
    return trigger_or_poll(path, o.some, o.full, o);
}

}  // namespace pylon::runtime::psi
