// The TUF client over real HTTP: a repository written by tuf::Repository, served from its
// directory by LocalHttpServer on 127.0.0.1, read by tuf::Updater with HttpFetcher, and by the
// pylon-tuf-client binary (the tuf-conformance CLI protocol).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "local_http_server.h"
#include "process.h"
#include "pylon/net/http_fetcher.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/repository.h"
#include "pylon/signing/tuf/updater.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
namespace tuf = pylon::signing::tuf;
using pylon::signing::KeyType;
using pylon::signing::PrivateKey;
using pylon::test::LocalHttpServer;
using pylon::test::read_all;
using pylon::test::run_process;
using pylon::test::TempDir;

namespace {

PrivateKey new_key() {
    auto key = PrivateKey::generate(KeyType::ed25519);
    REQUIRE(key.ok());
    return std::move(key).value();
}

tuf::Time now() {
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

// A published repository with one target, served over HTTP.
struct ServedRepository {
    TempDir dir;
    PrivateKey root = new_key();
    PrivateKey targets = new_key();
    PrivateKey snapshot = new_key();
    PrivateKey timestamp = new_key();
    tuf::Signers signers;
    LocalHttpServer server;
    const std::string target_path = "models/tiny.gguf";
    const std::string target_bytes = "GGUF tiny model weights";

    ServedRepository() {
        tuf::CreateOptions options;
        options.root.keys = {root.public_key()};
        options.targets.keys = {targets.public_key()};
        options.snapshot.keys = {snapshot.public_key()};
        options.timestamp.keys = {timestamp.public_key()};
        auto repo = tuf::Repository::create(dir / "repo", options);
        REQUIRE(repo.ok());
        REQUIRE(repo->add_target(target_path, pylon::as_bytes(target_bytes)).ok());
        signers.add("root", root).add("targets", targets).add("snapshot", snapshot);
        signers.add("timestamp", timestamp);
        REQUIRE(repo->publish(signers, now()).ok());
        server.serve_directory(dir / "repo");
        fs::create_directories(dir / "client");
        fs::copy_file(dir / "repo/metadata/1.root.json", dir / "client/root.json");
    }

    std::size_t target_requests() const {
        const auto r = server.requests();
        return static_cast<std::size_t>(std::count_if(
            r.begin(), r.end(), [](const std::string& p) { return p.starts_with("/targets/"); }));
    }
};

std::unique_ptr<pylon::net::HttpFetcher> make_fetcher() {
    auto fetcher = pylon::net::HttpFetcher::create();
    REQUIRE(fetcher.ok());
    return std::move(fetcher).value();
}

}  // namespace

TEST_CASE("Updater with HttpFetcher refreshes and downloads over HTTP") {
    ServedRepository repo;
    auto fetcher = make_fetcher();
    tuf::Updater updater(repo.dir / "client", repo.server.url("/metadata"),
                         repo.server.url("/targets"), *fetcher);
    REQUIRE(updater.refresh().ok());
    auto info = updater.get_targetinfo(repo.target_path);
    REQUIRE(info.ok());
    const fs::path dest = repo.dir / "tiny.gguf";
    REQUIRE(updater.download_target(*info, dest).ok());
    CHECK(read_all(dest) == repo.target_bytes);

    SECTION("a served target longer than signed is refused as too_large (endless data)") {
        for (const auto& entry : fs::recursive_directory_iterator(repo.dir / "repo/targets")) {
            if (entry.is_regular_file()) {
                fs::permissions(entry.path(), fs::perms::owner_write, fs::perm_options::add);
                std::ofstream(entry.path(), std::ios::binary | std::ios::app) << "extra bytes";
            }
        }
        auto r = updater.download_target(*info, repo.dir / "again.gguf");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == tuf::Errc::too_large);
        CHECK_FALSE(fs::exists(repo.dir / "again.gguf"));
    }
}

namespace {

pylon::test::ProcessResult tuf_client(const ServedRepository& repo, std::vector<std::string> args) {
    std::vector<std::string> argv = {pylon::test::pylon_binary("pylon-tuf-client"),
                                     "--metadata-dir", (repo.dir / "cli-metadata").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
}

void check_one_line_failure(const pylon::test::ProcessResult& r) {
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.starts_with("pylon-tuf-client: error: "));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

}  // namespace

TEST_CASE("pylon-tuf-client init, refresh and download (tuf-conformance CLI)") {
    ServedRepository repo;
    const std::string metadata_url = repo.server.url("/metadata");
    const std::string targets_url = repo.server.url("/targets");
    const fs::path target_dir = repo.dir / "cli-targets";
    auto download = [&](const std::string& name) {
        return tuf_client(
            repo, {"--metadata-url", metadata_url, "--target-name", name, "--target-base-url",
                   targets_url, "--target-dir", target_dir.string(), "download"});
    };

    auto init = tuf_client(repo, {"init", (repo.dir / "client/root.json").string()});
    INFO("init stderr: " << init.err);
    REQUIRE(init.exit_code == 0);
    CHECK(read_all(repo.dir / "cli-metadata/root.json") ==
          read_all(repo.dir / "repo/metadata/1.root.json"));
    CHECK(repo.server.requests().empty());

    auto refresh = tuf_client(repo, {"--metadata-url", metadata_url, "refresh"});
    INFO("refresh stderr: " << refresh.err);
    REQUIRE(refresh.exit_code == 0);
    for (const char* role : {"root.json", "timestamp.json", "snapshot.json", "targets.json"}) {
        CHECK(fs::exists(repo.dir / "cli-metadata" / role));
    }

    auto first = download(repo.target_path);
    INFO("download stderr: " << first.err);
    REQUIRE(first.exit_code == 0);
    CHECK(read_all(target_dir / "models%2Ftiny.gguf") == repo.target_bytes);
    const std::size_t fetched = repo.target_requests();
    CHECK(fetched == 1);

    SECTION("a target already downloaded is not fetched again") {
        auto again = download(repo.target_path);
        REQUIRE(again.exit_code == 0);
        CHECK(repo.target_requests() == fetched);
    }
    SECTION("an unknown target fails with one line") {
        check_one_line_failure(download("models/absent.gguf"));
    }
    SECTION("a missing option or an unknown command fails with one line") {
        check_one_line_failure(tuf_client(repo, {"refresh"}));
        check_one_line_failure(tuf_client(repo, {"--metadata-url", metadata_url, "frobnicate"}));
    }
    SECTION("an unreachable repository fails with one line") {
        check_one_line_failure(
            tuf_client(repo, {"--metadata-url", "http://127.0.0.1:1/metadata", "refresh"}));
    }
}
