// pylon-tuf-client — a TUF client driven the way the tuf-conformance suite drives a client under
// test (theupdateframework/tuf-conformance, CLIENT-CLI.md). Options come before the command:
//
//   pylon-tuf-client --metadata-dir DIR init TRUSTED_ROOT
//   pylon-tuf-client --metadata-dir DIR --metadata-url URL refresh
//   pylon-tuf-client --metadata-dir DIR --metadata-url URL --target-name PATH
//                    --target-base-url URL --target-dir DIR download
//
// Exit status 0 on success; 1 on any failure, with one line "pylon-tuf-client: error: ..." on
// stderr. DIR holds only the trusted metadata under non-versioned names (see tuf/updater.h).
// A downloaded target is stored in the target directory under its target path percent-encoded
// (every byte outside [A-Za-z0-9._~-]), so "a/b.txt" is "a%2Fb.txt": one flat file per target,
// the same name each time. A file already there whose length and hashes match is not fetched.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "pylon/common/file_io.h"
#include "pylon/common/result.h"
#include "pylon/net/http_fetcher.h"
#include "pylon/signing/tuf/updater.h"

namespace {

namespace fs = std::filesystem;
namespace tuf = pylon::signing::tuf;

constexpr std::size_t kMaxRootSize = 512 * 1024;

struct Options {
    fs::path metadata_dir;
    std::string metadata_url;
    std::string target_name;
    std::string target_base_url;
    fs::path target_dir;
    fs::path ca_file;
    fs::path trusted_root;
};

std::string percent_encode(std::string_view s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
            u == '-' || u == '.' || u == '_' || u == '~') {
            out += c;
        } else {
            out += '%';
            out += kHex[u >> 4];
            out += kHex[u & 0xf];
        }
    }
    return out;
}

pylon::Result<void> require(bool present, const std::string& option, const std::string& command) {
    if (present) return pylon::ok();
    return pylon::Error(pylon::Errc::invalid_argument, command + " needs " + option);
}

// Copies the trusted root into place; no network, no checks (the first refresh verifies it).
pylon::Result<void> init(const Options& opt) {
    PYLON_TRY_ASSIGN(const std::string root, pylon::read_file(opt.trusted_root, kMaxRootSize));
    std::error_code ec;
    fs::create_directories(opt.metadata_dir, ec);
    if (ec) {
        return pylon::Error(
            pylon::Errc::io_error,
            "cannot create metadata directory " + opt.metadata_dir.string() + ": " + ec.message());
    }
    return pylon::write_file_atomic(opt.metadata_dir / "root.json", root);
}

pylon::Result<std::unique_ptr<pylon::net::HttpFetcher>> make_fetcher(const Options& opt) {
    pylon::net::HttpFetcherConfig config;
    config.ca_file = opt.ca_file;
    return pylon::net::HttpFetcher::create(config);
}

pylon::Result<void> refresh(const Options& opt) {
    PYLON_TRY(require(!opt.metadata_url.empty(), "--metadata-url", "refresh"));
    PYLON_TRY_ASSIGN(auto fetcher, make_fetcher(opt));
    tuf::Updater updater(opt.metadata_dir, opt.metadata_url, opt.target_base_url, *fetcher);
    return updater.refresh();
}

pylon::Result<void> download(const Options& opt) {
    PYLON_TRY(require(!opt.metadata_url.empty(), "--metadata-url", "download"));
    PYLON_TRY(require(!opt.target_name.empty(), "--target-name", "download"));
    PYLON_TRY(require(!opt.target_base_url.empty(), "--target-base-url", "download"));
    PYLON_TRY(require(!opt.target_dir.empty(), "--target-dir", "download"));
    PYLON_TRY_ASSIGN(auto fetcher, make_fetcher(opt));
    tuf::Updater updater(opt.metadata_dir, opt.metadata_url, opt.target_base_url, *fetcher);
    PYLON_TRY(updater.refresh());
    PYLON_TRY_ASSIGN(const tuf::TargetInfo info, updater.get_targetinfo(opt.target_name));
    std::error_code ec;
    fs::create_directories(opt.target_dir, ec);
    if (ec) {
        return pylon::Error(
            pylon::Errc::io_error,
            "cannot create target directory " + opt.target_dir.string() + ": " + ec.message());
    }
    const fs::path dest = opt.target_dir / percent_encode(opt.target_name);
    if (updater.find_cached_target(info, dest)) return pylon::ok();
    return updater.download_target(info, dest);
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{"TUF client (tuf-conformance client CLI protocol)"};
    app.name("pylon-tuf-client");
    app.require_subcommand(1);
    app.fallthrough();
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
        return "pylon-tuf-client: error: " + std::string(e.what()) + " (see --help)\n";
    });
    app.add_option("--metadata-dir", opt.metadata_dir, "trusted metadata directory")->required();
    app.add_option("--metadata-url", opt.metadata_url, "base URL of the repository's metadata");
    app.add_option("--target-name", opt.target_name, "TUF target path to download");
    app.add_option("--target-base-url", opt.target_base_url,
                   "base URL of the repository's targets");
    app.add_option("--target-dir", opt.target_dir, "directory that receives downloaded targets");
    app.add_option("--ca-file", opt.ca_file,
                   "PEM CA certificates trusted for HTTPS instead of the "
                   "system store");
    auto* init_cmd = app.add_subcommand("init", "trust TRUSTED_ROOT (copied to METADATA_DIR)");
    init_cmd->add_option("trusted_root", opt.trusted_root, "initial root.json")->required();
    auto* refresh_cmd = app.add_subcommand("refresh", "update the top-level metadata");
    auto* download_cmd = app.add_subcommand("download", "refresh, then download one target");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 1;
    }

    pylon::Result<void> result = pylon::ok();
    try {
        if (init_cmd->parsed()) {
            result = init(opt);
        } else if (refresh_cmd->parsed()) {
            result = refresh(opt);
        } else if (download_cmd->parsed()) {
            result = download(opt);
        }
    } catch (const std::exception& e) {
        std::cerr << "pylon-tuf-client: error: " << e.what() << "\n";
        return 1;
    }
    if (!result) {
        std::cerr << "pylon-tuf-client: error: " << result.error().what() << "\n";
        return 1;
    }
    return 0;
}
