// Parsers for what the PSI controller reads from outside: trigger texts (ours or systemd's
// $MEMORY_PRESSURE_WRITE, base64), PSI files, /proc/self/cgroup. All bounded; errors name the
// problem.
//
// PSI file format (Documentation/accounting/psi.rst):
//   some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//   full avg10=0.00 avg60=0.00 avg300=0.00 total=0
#include <sys/vfs.h>

#include <linux/magic.h>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "pylon/common/error.h"
#include "pylon/runtime/psi.h"

namespace pylon::runtime::psi {
namespace {

constexpr std::size_t kMaxTriggerText = 128;
constexpr std::size_t kMaxPressureFile = 4096;
constexpr std::size_t kMaxBase64 = 4096;
constexpr std::size_t kMaxCgroupFile = 64 * 1024;
constexpr std::size_t kMaxCgroupPath = 4096;

Error parse_error(std::string what) {
    return Error(Errc::parse_error, std::move(what));
}

// Splits on single spaces, refusing empty fields.
bool split_fields(std::string_view s, std::string_view* out, std::size_t n) {
    std::size_t i = 0;
    while (!s.empty()) {
        if (i == n) return false;
        const std::size_t sp = s.find(' ');
        out[i++] = s.substr(0, sp);
        if (out[i - 1].empty()) return false;
        if (sp == std::string_view::npos) break;
        s.remove_prefix(sp + 1);
        if (s.empty()) return false;
    }
    return i == n;
}

bool parse_u64(std::string_view s, std::uint64_t& v) {
    if (s.empty() || s.size() > 20) return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size();
}

// "12.34": the kernel prints avgs as %lu.%02lu.
bool parse_avg(std::string_view s, double& v) {
    const std::size_t dot = s.find('.');
    std::uint64_t whole = 0, frac = 0;
    if (dot == std::string_view::npos) {
        if (!parse_u64(s, whole) || whole > 100) return false;
        v = static_cast<double>(whole);
        return true;
    }
    const std::string_view f = s.substr(dot + 1);
    if (f.empty() || f.size() > 6 || !parse_u64(s.substr(0, dot), whole) || whole > 100 ||
        !parse_u64(f, frac)) {
        return false;
    }
    double scale = 1;
    for (std::size_t i = 0; i < f.size(); ++i) scale *= 10;
    v = static_cast<double>(whole) + static_cast<double>(frac) / scale;
    return v <= 100.0;
}

Result<PressureLine> parse_line(std::string_view line, std::string_view name) {
    std::string_view f[5];
    if (!split_fields(line, f, 5) || f[0] != name) {
        return parse_error("PSI line is not \"" + std::string(name) +
                           " avg10=.. avg60=.. avg300=.. total=..\"");
    }
    PressureLine out;
    const std::pair<std::string_view, double*> avgs[] = {
        {"avg10=", &out.avg10}, {"avg60=", &out.avg60}, {"avg300=", &out.avg300}};
    for (std::size_t i = 0; i < 3; ++i) {
        if (!f[i + 1].starts_with(avgs[i].first) ||
            !parse_avg(f[i + 1].substr(avgs[i].first.size()), *avgs[i].second)) {
            return parse_error("PSI " + std::string(name) + " line: bad field \"" +
                               std::string(f[i + 1].substr(0, 32)) + "\"");
        }
    }
    if (!f[4].starts_with("total=") || !parse_u64(f[4].substr(6), out.total_us)) {
        return parse_error("PSI " + std::string(name) + " line: bad total");
    }
    return out;
}

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

}  // namespace

std::string_view level_name(Level level) noexcept {
    return level == Level::full ? "full" : "some";
}

std::string Trigger::text() const {
    return std::string(level_name(level)) + " " + std::to_string(stall_us) + " " +
           std::to_string(window_us);
}

Result<Trigger> parse_trigger(std::string_view text) {
    if (text.size() > kMaxTriggerText) return parse_error("trigger text longer than 128 bytes");
    while (!text.empty() && (text.back() == '\0' || text.back() == '\n')) text.remove_suffix(1);
    std::string_view f[3];
    if (!split_fields(text, f, 3)) {
        return parse_error("trigger is not \"some|full <stall_us> <window_us>\"");
    }
    Trigger t;
    if (f[0] == "some") {
        t.level = Level::some;
    } else if (f[0] == "full") {
        t.level = Level::full;
    } else {
        return parse_error("trigger level must be some or full");
    }
    if (!parse_u64(f[1], t.stall_us) || !parse_u64(f[2], t.window_us)) {
        return parse_error("trigger stall and window must be decimal microseconds");
    }
    // The kernel's limits (kernel/sched/psi.c): window 500 ms .. 10 s, stall within it.
    if (t.window_us < 500000 || t.window_us > 10000000) {
        return parse_error("trigger window must be 500000..10000000 us");
    }
    if (t.stall_us == 0 || t.stall_us > t.window_us) {
        return parse_error("trigger stall must be > 0 and at most the window");
    }
    return t;
}

Result<PressureFile> parse_pressure_file(std::string_view text) {
    if (text.size() > kMaxPressureFile) return parse_error("PSI file larger than 4 KiB");
    PressureFile out;
    bool have_some = false;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.empty()) continue;
        if (line.starts_with("some ")) {
            if (have_some) return parse_error("PSI file has two some lines");
            PYLON_TRY_ASSIGN(out.some, parse_line(line, "some"));
            have_some = true;
        } else if (line.starts_with("full ")) {
            if (out.full) return parse_error("PSI file has two full lines");
            PYLON_TRY_ASSIGN(out.full, parse_line(line, "full"));
        } else {
            return parse_error("PSI file has an unknown line");
        }
    }
    if (!have_some) return parse_error("PSI file has no some line");
    return out;
}

Result<std::string> base64_decode(std::string_view text) {
    if (text.size() > kMaxBase64) return parse_error("base64 text longer than 4096 bytes");
    if (text.size() % 4 != 0) return parse_error("base64 length is not a multiple of 4");
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; ++j) {
            const char c = text[i + static_cast<std::size_t>(j)];
            if (c == '=' && i + 4 == text.size() && j >= 2) {
                v[j] = 0;
                ++pad;
                continue;
            }
            if (pad > 0) return parse_error("base64 padding in the middle");
            v[j] = b64_value(c);
            if (v[j] < 0) return parse_error("base64 text has a character outside the alphabet");
        }
        const std::uint32_t n =
            static_cast<std::uint32_t>(v[0]) << 18 | static_cast<std::uint32_t>(v[1]) << 12 |
            static_cast<std::uint32_t>(v[2]) << 6 | static_cast<std::uint32_t>(v[3]);
        out.push_back(static_cast<char>(n >> 16 & 0xff));
        if (pad < 2) out.push_back(static_cast<char>(n >> 8 & 0xff));
        if (pad < 1) out.push_back(static_cast<char>(n & 0xff));
    }
    return out;
}

Result<std::string> own_cgroup_pressure_path(std::string_view proc_self_cgroup,
                                             const std::string& cgroup2_root) {
    if (proc_self_cgroup.size() > kMaxCgroupFile) {
        return parse_error("/proc/self/cgroup larger than 64 KiB");
    }
    while (!proc_self_cgroup.empty()) {
        const std::size_t nl = proc_self_cgroup.find('\n');
        const std::string_view line = proc_self_cgroup.substr(0, nl);
        proc_self_cgroup.remove_prefix(nl == std::string_view::npos ? proc_self_cgroup.size()
                                                                    : nl + 1);
        if (!line.starts_with("0::")) continue;
        const std::string_view path = line.substr(3);
        if (path.empty() || path.front() != '/' || path.size() > kMaxCgroupPath) {
            return parse_error("cgroup v2 path is not absolute");
        }
        // "(deleted)" suffixes, "..", NUL: refuse rather than walk elsewhere.
        if (path.find("/..") != std::string_view::npos ||
            path.find('\0') != std::string_view::npos || path.find(' ') != std::string_view::npos) {
            return parse_error("cgroup v2 path has a disallowed component");
        }
        std::string file = cgroup2_root;
        if (path != "/") file += std::string(path);
        file += "/memory.pressure";
        std::error_code ec;
        if (!std::filesystem::is_regular_file(file, ec)) {
            return Error(Errc::not_found, file + " does not exist");
        }
        return file;
    }
    return Error(Errc::not_found, "no cgroup v2 entry in /proc/self/cgroup");
}

Result<std::string> cgroup2_root() {
    for (const char* p : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
        struct statfs st {};
        if (::statfs(p, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) return std::string(p);
    }
    return Error(Errc::not_found, "no cgroup2 file system mounted");
}

}  // namespace pylon::runtime::psi
