// Blob store benchmark: throughput of the whole upload path of the filesystem BlobStore — one
// session, one writer fed `--chunk-kib` chunks from memory (write + SHA-256), then complete()
// (hash finalisation, fsync of the data, rename into blobs/, fsync of the directory).
//
// Per round and per hashing mode (`background`: the writer's hashing thread, the default;
// `inline`: hashing on the calling thread) it reports
//   upload    MB/s of open_writer + write... + close (the bytes reach the page cache, hashed)
//   complete  seconds of complete(), dominated by the fsync of the data
//   total     MB/s of the two together: what a client pushing one blob sees
//   cpu       CPU seconds (user + system, all threads) the round used per GB: the cost, which
//             unlike the wall-clock figures does not depend on what else the machine runs
// and, once per run, SHA-256 alone over the same stream (the reference the upload path is
// compared with). 1 MB = 1e6 bytes; medians over `--rounds`. The blob is removed after each
// round so each round writes a new file. Exit status: 0 on success, 1 when the store fails.
#include <CLI/CLI.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "pylon/common/bytes.h"
#include "pylon/common/log.h"
#include "pylon/registry/blob/blob_store.h"
#include "pylon/signing/sha256.h"

namespace {

namespace blob = pylon::registry::blob;
using Seconds = std::chrono::duration<double>;

struct Options {
    std::uint64_t size_mib = 2048;
    std::size_t chunk_kib = 1024;
    std::size_t buffer_mib = 4;
    int rounds = 3;
    std::string dir = "/var/tmp";
    std::string mode = "both";
};

double mb_per_s(std::uint64_t bytes, double seconds) {
    return static_cast<double>(bytes) / 1e6 / seconds;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// A source of chunks: a 64 MiB random pool walked cyclically, so the data is not trivially
// compressible and the benchmark's own memory stays small whatever --size-mib is.
class Source {
public:
    explicit Source(std::size_t chunk) : chunk_(chunk), pool_(std::size_t{64} << 20) {
        std::mt19937_64 rng(42);
        for (auto& b : pool_) b = static_cast<std::uint8_t>(rng());
    }
    pylon::ByteView chunk(std::uint64_t offset, std::uint64_t total) const {
        const std::size_t start = static_cast<std::size_t>(offset % (pool_.size() - chunk_));
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_, total - offset));
        return {pool_.data() + start, n};
    }

private:
    std::size_t chunk_;
    pylon::Bytes pool_;
};

struct Round {
    double upload_s = 0;
    double complete_s = 0;
    double cpu_s = 0;
};

double process_cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    const auto secs = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
    return secs(ru.ru_utime) + secs(ru.ru_stime);
}

pylon::Result<Round> run_round(blob::BlobStore& store, const Source& source, std::uint64_t total,
                               const blob::Digest& digest) {
    Round r;
    const double cpu0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    PYLON_TRY_ASSIGN(const blob::SessionInfo session, store.create_session("bench"));
    PYLON_TRY_ASSIGN(auto writer, store.open_writer(session.id, 0));
    for (std::uint64_t pos = 0; pos < total;) {
        const pylon::ByteView chunk = source.chunk(pos, total);
        PYLON_TRY(writer->write(chunk));
        pos += chunk.size();
    }
    PYLON_TRY(writer->close());
    const auto t1 = std::chrono::steady_clock::now();
    PYLON_TRY(store.complete(session.id, digest));
    const auto t2 = std::chrono::steady_clock::now();
    r.upload_s = Seconds(t1 - t0).count();
    r.complete_s = Seconds(t2 - t1).count();
    r.cpu_s = process_cpu_seconds() - cpu0;
    PYLON_TRY(store.remove(digest));
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{"Pylon blob store upload benchmark"};
    app.add_option("--size-mib", opt.size_mib, "bytes per upload, MiB")->check(CLI::PositiveNumber);
    app.add_option("--chunk-kib", opt.chunk_kib, "bytes per write() call, KiB")
        ->check(CLI::Range(1, 65536));
    app.add_option("--buffer-mib", opt.buffer_mib, "BlobStoreConfig::write_buffer_size, MiB")
        ->check(CLI::Range(1, 256));
    app.add_option("--rounds", opt.rounds, "rounds per mode")->check(CLI::Range(1, 100));
    app.add_option("--dir", opt.dir, "parent directory of the store (a disk, not tmpfs)");
    app.add_option("--mode", opt.mode, "hashing mode")
        ->check(CLI::IsMember({"both", "background", "inline"}));
    CLI11_PARSE(app, argc, argv);

    spdlog::set_level(spdlog::level::warn);  // the store logs every blob it stores
    const std::uint64_t total = opt.size_mib << 20;
    const Source source(opt.chunk_kib << 10);

    // Reference: SHA-256 alone over the same stream, and the digest the uploads must match.
    const double sha_cpu0 = process_cpu_seconds();
    const auto h0 = std::chrono::steady_clock::now();
    pylon::signing::Sha256 hasher;
    for (std::uint64_t pos = 0; pos < total;) {
        const pylon::ByteView chunk = source.chunk(pos, total);
        hasher.update(chunk);
        pos += chunk.size();
    }
    const blob::Digest digest = blob::Digest::from_bytes(hasher.finish());
    const double sha_s = Seconds(std::chrono::steady_clock::now() - h0).count();
    const double sha_cpu_per_gb =
        (process_cpu_seconds() - sha_cpu0) / (static_cast<double>(total) / 1e9);
    std::printf("stream     %llu MiB in %zu KiB writes, %zu MiB writer blocks\n",
                static_cast<unsigned long long>(opt.size_mib), opt.chunk_kib, opt.buffer_mib);
    std::printf(
        "sha256     %6.0f MB/s (hashing alone, one thread)                          "
        "cpu %5.2f s/GB\n",
        mb_per_s(total, sha_s), sha_cpu_per_gb);

    const std::filesystem::path root =
        std::filesystem::path(opt.dir) / ("pylon-blob-bench-" + std::to_string(::getpid()));
    int status = 0;
    for (const bool background : {true, false}) {
        const char* name = background ? "background" : "inline";
        if (opt.mode != "both" && opt.mode != name) continue;
        blob::BlobStoreConfig config;
        config.max_blob_size = total;
        config.write_buffer_size = opt.buffer_mib << 20;
        config.background_hashing = background;
        auto store = blob::BlobStore::open_filesystem(root, config);
        if (!store) {
            std::fprintf(stderr, "open: %s\n", store.error().what().c_str());
            return 1;
        }
        std::vector<double> upload, complete, overall, cpu_per_gb;
        for (int i = 0; i < opt.rounds; ++i) {
            auto r = run_round(**store, source, total, digest);
            if (!r) {
                std::fprintf(stderr, "%s round %d: %s\n", name, i, r.error().what().c_str());
                status = 1;
                break;
            }
            upload.push_back(mb_per_s(total, r->upload_s));
            complete.push_back(r->complete_s);
            overall.push_back(mb_per_s(total, r->upload_s + r->complete_s));
            cpu_per_gb.push_back(r->cpu_s / (static_cast<double>(total) / 1e9));
        }
        if (!upload.empty()) {
            std::printf(
                "%-10s upload %6.0f MB/s   complete %6.3f s   total %6.0f MB/s   "
                "cpu %5.2f s/GB  (median of %zu)\n",
                name, median(upload), median(complete), median(overall), median(cpu_per_gb),
                upload.size());
        }
    }
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
    return status;
}
