// PSI acceptance against a real memory-limited cgroup: psi_probe runs in a child cgroup with a
// memory limit (the v1 memory controller, or v2's memory.max on a pure v2 system; plus a v2
// child for its own memory.pressure where a cgroup2 hierarchy is mounted), fills a KV cache and
// reads a sparse file larger than the limit over and over, so page-cache reclaim stalls it. The
// test asserts that the trigger fired, the KV budget shrank, positions were evicted, RSS fell,
// decoding went on, and the child was not OOM-killed. The suite exits 77 (skipped) with the
// reason where cgroups cannot be created (not root, read-only cgroupfs, no PSI).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pylon/runtime/psi.h"
#include "pylon/runtime/synth.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using namespace pylon::runtime;

namespace {

constexpr std::size_t kLimit = std::size_t{128} << 20;      // the cgroup's memory limit
constexpr std::size_t kFileBytes = std::size_t{384} << 20;  // sparse: page cache, no disk I/O

[[noreturn]] void skip(const std::string& why) {
    std::fprintf(stderr, "skipped: %s\n", why.c_str());
    std::exit(77);
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool write_text(const fs::path& p, const std::string& text) {
    std::ofstream f(p);
    f << text;
    f.flush();
    return static_cast<bool>(f);
}

// The path of this process's cgroup in the hierarchy whose /proc/self/cgroup line starts with
// `prefix` ("0::" for v2, or the v1 line naming "memory").
std::optional<std::string> own_path(const std::string& prefix_or_controller) {
    std::istringstream in(slurp("/proc/self/cgroup"));
    for (std::string line; std::getline(in, line);) {
        if (prefix_or_controller == "0::") {
            if (line.rfind("0::", 0) == 0) return line.substr(3);
            continue;
        }
        const auto a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        std::istringstream ctrls(line.substr(a + 1, b - a - 1));
        for (std::string c; std::getline(ctrls, c, ',');) {
            if (c == prefix_or_controller) return line.substr(b + 1);
        }
    }
    return std::nullopt;
}

struct Cgroups {
    fs::path v1;              // v1 memory cgroup (empty: none)
    fs::path v2;              // v2 cgroup (empty: none)
    bool v2_limited = false;  // the limit is v2's memory.max
    ~Cgroups() {
        for (const fs::path& p : {v1, v2}) {
            if (p.empty()) continue;
            for (int i = 0; i < 50 && ::rmdir(p.c_str()) != 0; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
    }
};

void make_cgroups(Cgroups& cg) {
    if (::geteuid() != 0) skip("creating cgroups needs root");
    if (::access("/proc/pressure/memory", R_OK) != 0) skip("no /proc/pressure/memory (no PSI)");
    const std::string name = "pylon-psi-" + std::to_string(::getpid());
    if (auto p = own_path("memory");
        p && fs::exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")) {
        const fs::path dir =
            fs::path("/sys/fs/cgroup/memory") / fs::path(*p).relative_path() / name;
        if (::mkdir(dir.c_str(), 0755) == 0) {
            cg.v1 = dir;
            if (!write_text(dir / "memory.limit_in_bytes", std::to_string(kLimit))) {
                skip("cannot set memory.limit_in_bytes in " + dir.string());
            }
        }
    }
    auto root = psi::cgroup2_root();
    auto p2 = own_path("0::");
    if (root && p2) {
        const fs::path dir = fs::path(*root) / fs::path(*p2).relative_path() / name;
        if (::mkdir(dir.c_str(), 0755) == 0) {
            cg.v2 = dir;
            if (cg.v1.empty()) {
                if (!write_text(dir / "memory.max", std::to_string(kLimit))) {
                    skip("no v1 memory controller and no v2 memory.max in " + dir.string());
                }
                cg.v2_limited = true;
            }
        }
    }
    if (cg.v1.empty() && !cg.v2_limited) skip("cannot create a memory-limited cgroup");
}

struct Child {
    int status = -1;
    std::vector<nlohmann::json> lines;
    std::string raw;
};

Child run_probe(const Cgroups& cg, const std::vector<std::string>& args, int timeout_s) {
    int out[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const std::string me = std::to_string(::getpid());
        for (const fs::path& p : {cg.v1, cg.v2}) {
            if (p.empty()) continue;
            std::ofstream f(p / "cgroup.procs");
            f << me;
            f.flush();
            if (!f) ::_exit(120);
        }
        ::dup2(out[1], 1);
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(121);
    }
    ::close(out[1]);
    Child c;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) {
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd pfd{out[0], POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
        const ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;
        c.raw.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    REQUIRE(::waitpid(pid, &c.status, 0) == pid);
    std::istringstream in(c.raw);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line[0] == '{') c.lines.push_back(nlohmann::json::parse(line));
    }
    return c;
}

std::uint64_t oom_kills(const Cgroups& cg) {
    // v1: memory.oom_control "oom_kill N"; v2: memory.events "oom_kill N".
    const fs::path f = cg.v2_limited ? cg.v2 / "memory.events" : cg.v1 / "memory.oom_control";
    std::istringstream in(slurp(f));
    for (std::string k; in >> k;) {
        std::uint64_t v = 0;
        if (k == "oom_kill" && (in >> v)) return v;
    }
    FAIL("no oom_kill counter in " << f);
    return 0;
}

}  // namespace

TEST_CASE("psi acceptance: page-cache pressure in a memory-limited cgroup shrinks the KV cache",
          "[psi][cgroup]") {
    Cgroups cg;
    make_cgroups(cg);
    pylon::test::TempDir dir;
    // 32 layers x kv_dim 256: 32 KiB of K+V per position; 512 positions fill 40 MiB of KV pages
    // (V rows of a 2048-position context are one page each), ~18 MB of F16 weights.
    SynthOptions o;
    o.shape =
        parse_synth_shape("dim=256,ffn=32,layers=32,heads=2,kv_heads=2,vocab=260,ctx=2048").value();
    o.type = GgmlType::F16;
    o.seed = 5;
    const std::string model = (dir / "wide.gguf").string();
    REQUIRE(write_synth_model(o, model));
    const std::string big = (dir / "big.bin").string();
    {
        std::ofstream f(big);
        f.close();
        REQUIRE(::truncate(big.c_str(), static_cast<off_t>(kFileBytes)) == 0);
    }
    const std::string pressure =
        cg.v2.empty() ? "/proc/pressure/memory" : (cg.v2 / "memory.pressure").string();
    INFO("v1 " << cg.v1 << ", v2 " << cg.v2 << ", pressure " << pressure);
    const Child c = run_probe(
        cg,
        {std::string(PYLON_BIN_DIR) + "/psi_probe", "--model", model, "--file", big, "--pressure",
         pressure, "--fill", "512", "--ctx", "2048", "--seconds", "120", "--threads", "2"},
        140);
    // (The probe stops as soon as it has seen enough; the long limit is for a loaded machine,
    // where the first trigger has come after 37 s of thrashing.)
    INFO("probe output:\n" << c.raw);
    REQUIRE(WIFEXITED(c.status));  // not killed (an OOM kill is SIGKILL)
    REQUIRE(WEXITSTATUS(c.status) == 0);
    CHECK(oom_kills(cg) == 0);
    if (!cg.v1.empty()) {
        // The limit was reached: the page cache was reclaimed within it.
        CHECK(std::stoull(slurp(cg.v1 / "memory.max_usage_in_bytes")) >= kLimit - (8u << 20));
    }

    REQUIRE(c.lines.size() >= 2);
    const nlohmann::json& filled = c.lines.front();
    const nlohmann::json& done = c.lines.back();
    REQUIRE(filled["event"] == "filled");
    REQUIRE(done["event"] == "done");
    CHECK(done["source"] == "trigger");  // a real PSI trigger, not the polling fallback
    // The trigger fired and the budget shrank, more than once, with positions evicted.
    CHECK(done["events_some"].get<std::uint64_t>() + done["events_full"].get<std::uint64_t>() >= 2);
    CHECK(done["shrinks"].get<int>() >= 2);
    CHECK(done["evicted"].get<std::uint32_t>() > 0);
    long long first_drop = -1;
    for (const auto& l : c.lines) {
        if (l["event"] != "shrink") continue;
        CHECK(l["budget"].get<std::size_t>() < std::size_t{2048} * 32 * 1024);
        CHECK(l["kv_after"].get<std::size_t>() < l["kv_before"].get<std::size_t>());
        if (first_drop < 0) {
            first_drop = l["rss_before"].get<long long>() - l["rss_after"].get<long long>();
        }
    }
    // RSS fell: the first shrink alone returned megabytes; at the end far less KV is resident.
    CHECK(first_drop >= 4ll << 20);
    CHECK(filled["kv_resident"].get<std::size_t>() >= std::size_t{36} << 20);
    CHECK(done["kv_end"].get<std::size_t>() <= filled["kv_resident"].get<std::size_t>() / 2);
    CHECK(done["rss_end"].get<std::size_t>() + (std::size_t{16} << 20) <=
          filled["rss"].get<std::size_t>());
}
