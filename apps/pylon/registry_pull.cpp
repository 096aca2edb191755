// pylon pull NS/MODEL@VERSION --target BUILD --out DIR — download a build and verify it.
//
// The REST API only says which files the build has; the trusted TUF metadata is the authority for
// their lengths and hashes, and the trusted top-level targets delegation for the publisher keys
// the OMS model signature must verify with. Files land in DIR/.partial/ and are moved into DIR
// only after every check passed; on failure DIR/.partial is removed.
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "pylon/signing/model_signature.h"
#include "registry_client.h"
#include "registry_tuf.h"

namespace pylon::cli {
namespace {

namespace fs = std::filesystem;
namespace tuf = signing::tuf;

struct PullOptions {
    RegistryOptions reg;
    std::string ref;
    std::string build;
    std::string out;
};

// Removes the staging directory unless released.
class Staging {
public:
    explicit Staging(fs::path dir) : dir_(std::move(dir)) {}
    ~Staging() {
        std::error_code ec;
        if (!released_) fs::remove_all(dir_, ec);
    }
    Staging(const Staging&) = delete;
    Staging& operator=(const Staging&) = delete;
    const fs::path& dir() const { return dir_; }
    void release() { released_ = true; }

private:
    fs::path dir_;
    bool released_ = false;
};

void check_custom(const tuf::TargetInfo& info, const ModelRef& ref, const std::string& build) {
    const auto& c = info.file.custom;
    if (!c || !c->is_object() || !c->contains("pylon") || !(*c)["pylon"].is_object()) {
        throw CommandError(info.path + ": the trusted target has no pylon custom fields");
    }
    const auto& p = (*c)["pylon"];
    const std::pair<const char*, const std::string*> expected[] = {{"namespace", &ref.ns},
                                                                   {"model", &ref.model},
                                                                   {"version", &ref.version},
                                                                   {"build", &build}};
    for (const auto& [name, want] : expected) {
        if (!p.contains(name) || !p[name].is_string() || p[name].get<std::string>() != *want) {
            throw CommandError(info.path + ": the trusted target's " + std::string(name) +
                               " is not " + *want);
        }
    }
}

std::string bundle_text(const nlohmann::json& envelope) {
    return envelope.is_string() ? envelope.get<std::string>() : envelope.dump();
}

void run_pull(const PullOptions& o) {
    const auto ref = parse_model_ref(o.ref, true);
    RegistryClient client(o.reg.resolve());
    RegistryTuf tuf_client(client.credentials());
    const std::string release_path = "/v1/models/" + url_encode(ref.ns) + "/" +
                                     url_encode(ref.model) + "/releases/" + url_encode(ref.version);
    const auto release = client.call(net::Method::get, release_path);
    nlohmann::json build;
    for (const auto& b : release.value("builds", nlohmann::json::array())) {
        if (b.value("name", "") == o.build) build = b;
    }
    if (build.is_null()) {
        throw CommandError(ref.ns + "/" + ref.model + "@" + ref.version + " has no build " +
                           o.build);
    }
    const auto files = build.value("files", nlohmann::json::array());
    if (files.empty()) throw CommandError("build " + o.build + " has no files");

    tuf_client.refresh();
    std::vector<tuf::TargetInfo> infos;
    for (const auto& f : files) {
        const std::string name = f.value("name", "");
        if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
            throw CommandError("the registry names a file '" + name + "' that is not a plain name");
        }
        const auto path = target_path(ref.ns, ref.model, ref.version, o.build, name);
        auto info = unwrap(tuf_client.updater().get_targetinfo(path), "TUF target " + path);
        if (info.role != ref.ns) {
            throw CommandError(path + " is signed by role " + info.role + ", not " + ref.ns);
        }
        check_custom(info, ref, o.build);
        infos.push_back(std::move(info));
    }

    std::error_code ec;
    fs::create_directories(o.out, ec);
    if (ec) throw CommandError("creating " + o.out + ": " + ec.message());
    Staging staging(fs::path(o.out) / ".partial");
    fs::remove_all(staging.dir(), ec);
    fs::create_directories(staging.dir(), ec);
    if (ec) throw CommandError("creating " + staging.dir().string() + ": " + ec.message());
    for (const auto& info : infos) {
        const auto name = fs::path(info.path).filename();
        unwrap(tuf_client.updater().download_target(info, staging.dir() / name),
               "downloading " + info.path);
        std::cout << "downloaded " << info.path << " (" << info.file.length
                  << " bytes, sha256 verified against TUF role " << info.role << ")\n";
    }

    // The OMS model signature, with a publisher key from the trusted delegation.
    const auto keys = tuf_client.delegated_keys(ref.ns);
    const auto atts = client.call(net::Method::get, release_path + "/attestations");
    std::string verified_by;
    std::string last_error = "no model_signature attestation for build " + o.build;
    for (const auto& a : atts.value("items", nlohmann::json::array())) {
        if (a.value("kind", "") != "model_signature" || a.value("build", "") != o.build) continue;
        const auto bundle = bundle_text(a.value("envelope", nlohmann::json()));
        for (const auto& k : keys) {
            signing::ManifestOptions mo;
            mo.ignore_git_paths = false;
            auto m = signing::verify_model(staging.dir(), bundle, k, mo);
            if (m) {
                verified_by = k.key_id();
                break;
            }
            last_error = m.error().what();
        }
        if (!verified_by.empty()) break;
    }
    if (verified_by.empty()) throw CommandError("model signature: " + last_error);

    for (const auto& info : infos) {
        const auto name = fs::path(info.path).filename();
        fs::rename(staging.dir() / name, fs::path(o.out) / name, ec);
        if (ec)
            throw CommandError("moving " + name.string() + " into " + o.out + ": " + ec.message());
    }
    std::cout << "verified OMS model signature of " << infos.size()
              << " file(s) with publisher key " << verified_by << " (delegated " << ref.ns
              << " in trusted TUF targets)\n"
              << "pulled " << ref.ns << "/" << ref.model << "@" << ref.version << " build "
              << o.build << " into " << o.out << "\n";
}

}  // namespace

void add_pull_commands(CLI::App& app) {
    auto o = std::make_shared<PullOptions>();
    auto* p =
        app.add_subcommand("pull", "Download a build, verified through TUF and its signature");
    p->add_option("release", o->ref, "NS/MODEL@VERSION")->required();
    p->add_option("--target", o->build, "Build name")->required();
    p->add_option("--out", o->out, "Directory to put the files in")->required();
    o->reg.add_to(p);
    p->callback([o] { run_pull(*o); });
}

}  // namespace pylon::cli
