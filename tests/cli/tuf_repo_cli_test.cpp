// End-to-end tests of `pylon tuf-repo`: the files it writes are checked with the metadata API.
#include <catch2/catch.hpp>

#include <filesystem>

#include "process.h"
#include "pylon/signing/tuf/metadata.h"
#include "temp_dir.h"

using pylon::test::ProcessResult;
using pylon::test::read_all;
using pylon::test::run_process;
using pylon::test::TempDir;
using namespace pylon::signing::tuf;
namespace fs = std::filesystem;

namespace {

ProcessResult tuf_repo(std::vector<std::string> args) {
    args.insert(args.begin(), {pylon::test::pylon_binary(), "tuf-repo"});
    return run_process(args);
}

void check_one_line_failure(const ProcessResult& r, const std::string& needle) {
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.rfind("pylon: error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find(needle) != std::string::npos);
}

template <typename T>
Metadata<T> load(const fs::path& p) {
    INFO(p.string());
    auto md = Metadata<T>::parse(read_all(p));
    REQUIRE(md);
    return std::move(*md);
}

}  // namespace

TEST_CASE("pylon tuf-repo: every subcommand has --help") {
    for (std::string cmd : {"init", "add-target", "remove-target", "delegate", "rotate", "snapshot",
                            "timestamp", "refresh-expiry"}) {
        INFO(cmd);
        auto r = tuf_repo({cmd, "--help"});
        CHECK(r.exit_code == 0);
        CHECK(r.out.find("Usage") != std::string::npos);
    }
}

TEST_CASE("pylon tuf-repo end to end") {
    TempDir tmp;
    for (std::string k : {"root1", "root2", "targets", "snapshot", "timestamp", "acme"}) {
        auto gen = run_process(
            {pylon::test::pylon_binary(), "key", "generate", "--out", (tmp / k).string()});
        REQUIRE(gen.exit_code == 0);
    }
    auto key = [&](const std::string& k) { return (tmp / (k + ".key")).string(); };
    auto pub = [&](const std::string& k) { return (tmp / (k + ".pub")).string(); };
    const fs::path dir = tmp / "repo";
    const fs::path md = dir / "metadata";
    const std::vector<std::string> online = {"--snapshot-key", key("snapshot"), "--timestamp-key",
                                             key("timestamp")};
    auto with_online = [&](std::vector<std::string> args) {
        args.insert(args.end(), online.begin(), online.end());
        return args;
    };

    auto init =
        tuf_repo(with_online({"init", dir.string(), "--root-key", key("root1"), "--targets-key",
                              key("targets"), "--expires-days", "timestamp=2"}));
    INFO(init.err);
    REQUIRE(init.exit_code == 0);
    CHECK(fs::exists(md / "1.root.json"));
    CHECK(fs::exists(md / "timestamp.json"));
    const auto ts1 = load<Timestamp>(md / "timestamp.json").signed_;
    const auto snap1 = load<Snapshot>(md / "1.snapshot.json").signed_;
    CHECK(ts1.expires - snap1.expires == std::chrono::days{2} - std::chrono::days{7});

    // A second init refuses.
    check_one_line_failure(tuf_repo(with_online({"init", dir.string(), "--root-key", key("root1"),
                                                 "--targets-key", key("targets")})),
                           "already exists");

    const auto file = tmp.write("model.gguf", "model bytes");
    auto add = tuf_repo(
        with_online({"add-target", dir.string(), file.string(), "--path", "models/model.gguf",
                     "--custom", R"({"quant":"q8_0"})", "--targets-key", key("targets")}));
    INFO(add.err);
    REQUIRE(add.exit_code == 0);
    const auto targets = load<Targets>(md / "2.targets.json").signed_;
    const auto& tf = targets.targets.at("models/model.gguf");
    CHECK(tf.custom->at("quant") == "q8_0");
    CHECK(read_all(dir / "targets" / "models" / (tf.hashes.at("sha256") + ".model.gguf")) ==
          "model bytes");

    auto del =
        tuf_repo(with_online({"delegate", dir.string(), "--name", "acme", "--key", pub("acme"),
                              "--paths", "acme/*", "--targets-key", key("targets")}));
    INFO(del.err);
    REQUIRE(del.exit_code == 0);
    CHECK(del.out.find("not yet signed") != std::string::npos);

    // The publisher signs its role alone; the snapshot follows.
    auto pub_add = tuf_repo({"add-target", dir.string(), file.string(), "--path", "acme/m.gguf",
                             "--role", "acme", "--key", key("acme")});
    INFO(pub_add.err);
    REQUIRE(pub_add.exit_code == 0);
    CHECK(fs::exists(md / "1.acme.json"));
    auto snap = tuf_repo(with_online({"snapshot", dir.string()}));
    REQUIRE(snap.exit_code == 0);
    const auto snapshot = load<Snapshot>(md / "snapshot.json").signed_;
    CHECK(snapshot.meta.at("acme.json").version == 1);
    CHECK(snapshot.meta.at("targets.json").version == 3);

    // Outside its namespace: refused, one line.
    check_one_line_failure(tuf_repo({"add-target", dir.string(), file.string(), "--path",
                                     "other/m.gguf", "--role", "acme", "--key", key("acme")}),
                           "not delegated");
    // Wrong key for the role: refused, one line.
    check_one_line_failure(tuf_repo(with_online({"remove-target", dir.string(), "models/model.gguf",
                                                 "--targets-key", key("acme")})),
                           "is not a key of role");

    // Root rotation: add root2 with threshold 2, signed by both.
    auto rot = tuf_repo(with_online({"rotate", dir.string(), "--role", "root", "--add-key",
                                     pub("root2"), "--threshold", "2", "--signing-key",
                                     key("root1"), "--signing-key", key("root2")}));
    INFO(rot.err);
    REQUIRE(rot.exit_code == 0);
    const auto r1 = load<Root>(md / "1.root.json").signed_;
    const auto r2 = load<Root>(md / "2.root.json");
    CHECK(verify_with(r2, "root", r1.keys, r1.roles.at("root")));
    CHECK(verify_with(r2, "root", r2.signed_.keys, r2.signed_.roles.at("root")));

    // A new root with too few keys fails with one line naming the role.
    check_one_line_failure(tuf_repo(with_online({"refresh-expiry", dir.string(), "--role", "root",
                                                 "--root-key", key("root1")})),
                           "root");
    auto refresh = tuf_repo(with_online({"refresh-expiry", dir.string(), "--role", "root",
                                         "--root-key", key("root1"), "--root-key", key("root2")}));
    REQUIRE(refresh.exit_code == 0);
    CHECK(load<Root>(md / "3.root.json").signed_.version == 3);

    auto ts = tuf_repo({"timestamp", dir.string(), "--timestamp-key", key("timestamp")});
    REQUIRE(ts.exit_code == 0);
    const auto ts_now = load<Timestamp>(md / "timestamp.json").signed_;
    CHECK(ts_now.snapshot_meta.version == load<Snapshot>(md / "snapshot.json").signed_.version);

    check_one_line_failure(tuf_repo({"snapshot", (tmp / "nowhere").string(), "--snapshot-key",
                                     key("snapshot"), "--timestamp-key", key("timestamp")}),
                           "no TUF repository");
    check_one_line_failure(tuf_repo({"add-target", dir.string(), file.string(), "--custom", "[1]",
                                     "--targets-key", key("targets")}),
                           "--custom");
}
