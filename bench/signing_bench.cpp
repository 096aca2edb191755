// Signing benchmark (issue 2): SHA-256 throughput over a 1 GiB stream, and signatures and
// verifications per second for Ed25519 and ECDSA P-256, through the public pylon::signing API.
//
// What one run measures, `--rounds` times each:
//   sha256  A buffer of random bytes (`--buffer-bytes`, default 1 MiB, fixed seed) is fed
//           through one Sha256::update call per `--chunk` bytes until `--stream-bytes` (default
//           1 GiB) have been hashed, then finish(). Once per chunk size (default 16384, which is
//           what `openssl speed -bytes 16384` hashes per call, and 1 MiB).
//   sign    PrivateKey::sign over a `--message-bytes` message for about `--seconds` seconds.
//   verify  PublicKey::verify of one valid signature of that message for about `--seconds`.
//
// Units: 1 GB = 1e9 bytes. Each figure is given against this thread's CPU time and against
// wall-clock time. `openssl speed` divides by user CPU time, so the CPU-time figure is the one to
// compare with it; on a shared machine the wall-clock figure also counts time the thread spent
// waiting for a core. The summary of each figure is the median over rounds.
//
// Exit status: 0 when every measurement ran, 1 when a signature failed to sign or verify or the
// digests at different chunk sizes disagree (a broken build, not a slow one), 2 on a bad option.
// The benchmark passes no judgement on speed: bench/run_signing_bench.sh compares with OpenSSL.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "pylon/common/bytes.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/sha256.h"

namespace {

using pylon::Bytes;
using pylon::ByteView;
namespace signing = pylon::signing;
using Json = nlohmann::ordered_json;  // keeps keys in the order written

struct Options {
    int rounds = 5;
    std::uint64_t stream_bytes = std::uint64_t{1} << 30;
    std::size_t buffer_bytes = std::size_t{1} << 20;
    std::vector<std::size_t> chunks = {16384, std::size_t{1} << 20};
    double seconds = 1.5;
    std::size_t message_bytes = 32;
    std::string what = "all";
    bool json = false;
};

// Wall-clock and thread-CPU seconds elapsed since construction.
class Stopwatch {
public:
    Stopwatch() : wall_start_(std::chrono::steady_clock::now()), cpu_start_(thread_cpu_now()) {}
    double wall() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_)
            .count();
    }
    double cpu() const { return thread_cpu_now() - cpu_start_; }

private:
    static double thread_cpu_now() {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    }
    std::chrono::steady_clock::time_point wall_start_;
    double cpu_start_;
};

// One round's rate (units per second) by each clock.
struct Rate {
    double cpu = 0;
    double wall = 0;
};

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The per-round rates of one measurement plus their medians, for printing.
struct Series {
    std::vector<Rate> rounds;
    Rate median_rate() const {
        std::vector<double> cpu, wall;
        for (const Rate& r : rounds) {
            cpu.push_back(r.cpu);
            wall.push_back(r.wall);
        }
        return {median(cpu), median(wall)};
    }
    Json to_json() const {
        Json cpu = Json::array(), wall = Json::array();
        for (const Rate& r : rounds) {
            cpu.push_back(r.cpu);
            wall.push_back(r.wall);
        }
        const Rate m = median_rate();
        return {{"cpu", {{"rounds", cpu}, {"median", m.cpu}}},
                {"wall", {{"rounds", wall}, {"median", m.wall}}}};
    }
};

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "pylon-bench-signing: %s\n", what.c_str());
    std::exit(1);
}

Bytes random_bytes(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    Bytes out(n);
    for (std::size_t i = 0; i < n; i += 8) {
        const std::uint64_t word = rng();
        for (std::size_t j = 0; j < 8 && i + j < n; ++j) {
            out[i + j] = static_cast<std::uint8_t>(word >> (8 * j));
        }
    }
    return out;
}

// Hashes `opt.stream_bytes` bytes (the buffer, repeated) in `chunk`-byte update calls; a chunk
// larger than the buffer is one call per pass over the buffer.
// Returns the rate in GB/s and stores the digest, which depends only on the stream.
Rate hash_stream(const Options& opt, const Bytes& buffer, std::size_t chunk,
                 signing::Digest& digest) {
    signing::Sha256 hasher;
    std::uint64_t left = opt.stream_bytes;
    const Stopwatch sw;
    while (left > 0) {
        const auto pass = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
        for (std::size_t off = 0; off < pass; off += chunk) {
            hasher.update(ByteView(buffer.data() + off, std::min(chunk, pass - off)));
        }
        left -= pass;
    }
    digest = hasher.finish();
    const double cpu = sw.cpu(), wall = sw.wall();
    const double gb = static_cast<double>(opt.stream_bytes) / 1e9;
    return {gb / cpu, gb / wall};
}

// Runs `op` in batches until `seconds` of wall-clock time have passed; returns operations/s.
template <typename Op>
Rate ops_per_second(double seconds, Op&& op) {
    constexpr int kBatch = 16;  // reads the clocks once per batch, not once per operation
    std::uint64_t done = 0;
    const Stopwatch sw;
    do {
        for (int i = 0; i < kBatch; ++i) op();
        done += kBatch;
    } while (sw.wall() < seconds);
    const double cpu = sw.cpu(), wall = sw.wall();
    return {static_cast<double>(done) / cpu, static_cast<double>(done) / wall};
}

struct KeyResult {
    signing::KeyType type;
    Series sign;
    Series verify;
};

KeyResult bench_key(const Options& opt, signing::KeyType type, const Bytes& message) {
    auto key = signing::PrivateKey::generate(type);
    if (!key.ok()) fail("generate " + std::string(signing::to_string(type)) + " key failed");
    const signing::PublicKey& pub = key->public_key();
    auto first = key->sign(message);
    if (!first.ok() || !pub.verify(message, *first).ok()) {
        fail(std::string(signing::to_string(type)) + ": a fresh signature does not verify");
    }
    const Bytes signature = *first;

    KeyResult out{type, {}, {}};
    for (int r = 0; r < opt.rounds; ++r) {
        out.sign.rounds.push_back(ops_per_second(opt.seconds, [&] {
            if (!key->sign(message).ok()) fail("sign failed");
        }));
        out.verify.rounds.push_back(ops_per_second(opt.seconds, [&] {
            if (!pub.verify(message, signature).ok()) fail("verify failed");
        }));
    }
    return out;
}

void print_series(const char* label, const char* unit, const Series& s) {
    std::printf("%-28s", label);
    for (const Rate& r : s.rounds) std::printf(" %10.3f", r.cpu);
    const Rate m = s.median_rate();
    std::printf("  | median %10.3f %s (cpu), %10.3f %s (wall)\n", m.cpu, unit, m.wall, unit);
}

int run(const Options& opt) {
    Json report = {
        {"units", {{"sha256", "GB/s, 1 GB = 1e9 bytes"}, {"sign_verify", "operations/s"}}},
        {"clocks", "cpu: this thread's CPU time (compare with openssl speed); wall: steady clock"},
        {"rounds", opt.rounds}};
    const bool do_sha = opt.what == "all" || opt.what == "sha256";
    const bool do_sign = opt.what == "all" || opt.what == "sign";

    if (!opt.json) {
        std::printf("pylon-bench-signing: %d round(s); per-round figures by thread CPU time\n",
                    opt.rounds);
    }
    if (do_sha) {
        const Bytes buffer = random_bytes(opt.buffer_bytes, 0x70796c6f6eULL);
        Json sha = {{"stream_bytes", opt.stream_bytes},
                    {"buffer_bytes", opt.buffer_bytes},
                    {"chunks", Json::array()}};
        std::string first_digest;
        if (!opt.json) {
            std::printf(
                "SHA-256 over %llu bytes (%.3f GB) from a %zu-byte random buffer, "
                "GB/s (1 GB = 1e9 bytes)\n",
                static_cast<unsigned long long>(opt.stream_bytes),
                static_cast<double>(opt.stream_bytes) / 1e9, opt.buffer_bytes);
        }
        for (const std::size_t chunk : opt.chunks) {
            Series s;
            signing::Digest digest{};
            for (int r = 0; r < opt.rounds; ++r) {
                s.rounds.push_back(hash_stream(opt, buffer, chunk, digest));
            }
            const std::string hex = signing::to_hex(digest);
            if (first_digest.empty()) first_digest = hex;
            if (hex != first_digest) fail("SHA-256 digest differs between chunk sizes");
            if (!opt.json) {
                const std::string label = "  chunk " + std::to_string(chunk) + " B";
                print_series(label.c_str(), "GB/s", s);
            }
            Json c = s.to_json();
            c["chunk_bytes"] = chunk;
            sha["chunks"].push_back(std::move(c));
        }
        sha["digest"] = first_digest;
        report["sha256"] = std::move(sha);
    }
    if (do_sign) {
        const Bytes message = random_bytes(opt.message_bytes, 0x6d7367ULL);
        Json keys = Json::object();
        if (!opt.json) {
            std::printf("Signatures over a %zu-byte message, ~%.2f s per round, operations/s\n",
                        opt.message_bytes, opt.seconds);
        }
        for (const auto type : {signing::KeyType::ed25519, signing::KeyType::ecdsa_p256}) {
            const KeyResult k = bench_key(opt, type, message);
            const std::string name(signing::to_string(type));
            if (!opt.json) {
                print_series(("  " + name + " sign/s").c_str(), "/s", k.sign);
                print_series(("  " + name + " verify/s").c_str(), "/s", k.verify);
            }
            keys[name] = {{"sign_per_s", k.sign.to_json()}, {"verify_per_s", k.verify.to_json()}};
        }
        report["signatures"] = {{"message_bytes", opt.message_bytes},
                                {"seconds_per_round", opt.seconds},
                                {"keys", std::move(keys)}};
    }
    if (opt.json) std::printf("%s\n", report.dump(2).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{"Pylon signing benchmark: SHA-256 GB/s (1 GB = 1e9 bytes), sign/s and verify/s"};
    app.add_option("-r,--rounds", opt.rounds, "Rounds of every measurement")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_option("--stream-bytes", opt.stream_bytes, "Bytes hashed per SHA-256 round")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40))
        ->capture_default_str();
    app.add_option("--buffer-bytes", opt.buffer_bytes, "Size of the random buffer fed repeatedly")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
        ->capture_default_str();
    app.add_option("--chunk", opt.chunks, "Bytes per Sha256::update call (repeatable)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
        ->capture_default_str();
    app.add_option("--seconds", opt.seconds, "Seconds per sign or verify round")
        ->check(CLI::Range(0.01, 600.0))
        ->capture_default_str();
    app.add_option("--message-bytes", opt.message_bytes, "Size of the signed message")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 20))
        ->capture_default_str();
    app.add_option("--only", opt.what, "What to measure")
        ->check(CLI::IsMember({"all", "sha256", "sign"}))
        ->capture_default_str();
    app.add_flag("--json", opt.json, "Print one JSON object instead of text");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;  // --help is a ParseError that exits 0
    }
    return run(opt);
}
