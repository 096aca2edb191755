#include "registry_tuf.h"

#include <algorithm>

namespace pylon::cli {

namespace tuf = signing::tuf;

std::string target_path(const std::string& ns, const std::string& model, const std::string& version,
                        const std::string& build, const std::string& file) {
    return ns + "/" + model + "/" + version + "/" + build + "/" + file;
}

nlohmann::json target_custom_json(const TargetCustom& c) {
    return {{"pylon",
             {{"namespace", c.ns},
              {"model", c.model},
              {"version", c.version},
              {"build", c.build},
              {"target",
               {{"arch", c.target.arch},
                {"isa", c.target.isa},
                {"accelerator", c.target.accelerator},
                {"min_ram_mb", c.target.min_ram_mb}}},
              {"format", c.format},
              {"quantization", c.quantization},
              {"license", c.license}}}};
}

std::string namespace_path_pattern(const std::string& ns) {
    return ns + "/*/*/*/*";
}

tuf::Metadata<tuf::Root> parse_self_signed_root(const std::string& root_json) {
    auto md = unwrap(tuf::Metadata<tuf::Root>::parse(root_json), "TUF root");
    const auto role = md.signed_.roles.find("root");
    if (role == md.signed_.roles.end()) throw CommandError("TUF root: no root role");
    unwrap(tuf::verify_with(md, "root", md.signed_.keys, role->second),
           "TUF root is not signed by its own root keys");
    return md;
}

RegistryTuf::RegistryTuf(const Credentials& creds) : base_(creds.registry) {
    const auto dir = tuf_metadata_dir(creds.registry);
    std::error_code ec;
    if (!std::filesystem::exists(dir / "root.json", ec)) {
        throw CommandError("no trusted TUF root for " + creds.registry + " in " + dir.string() +
                           ": run `pylon login` first (or with --tuf-root)");
    }
    net::HttpFetcherConfig config;
    config.ca_file = creds.ca_file;
    config.user_agent = "pylon-cli/0.1.0";
    fetcher_ = unwrap(net::HttpFetcher::create(config));
    updater_ = std::make_unique<tuf::Updater>(dir, base_ + "/tuf/metadata/",
                                              base_ + "/tuf/targets/", *fetcher_);
}

void RegistryTuf::refresh() {
    unwrap(updater_->refresh(), "TUF refresh from " + base_);
}

std::optional<std::string> RegistryTuf::role_bytes(const std::string& role) {
    const auto* snapshot = updater_->trusted_snapshot();
    const auto* root = updater_->trusted_root();
    if (!snapshot || !root) throw CommandError("no trusted TUF snapshot: refresh first");
    const std::string file = tuf::Updater::role_file_name(role);
    const auto it = snapshot->signed_.meta.find(file);
    if (it == snapshot->signed_.meta.end()) return std::nullopt;
    const std::string name =
        root->signed_.consistent_snapshot ? std::to_string(it->second.version) + "." + file : file;
    const std::uint64_t limit =
        it->second.length ? static_cast<std::uint64_t>(*it->second.length) : std::uint64_t{5} << 20;
    const auto bytes = unwrap(fetcher_->fetch(base_ + "/tuf/metadata/" + name, limit));
    unwrap(it->second.verify(bytes, name));
    auto text = to_string(bytes);
    // The version inside must be the one the snapshot names (mix-and-match).
    const auto md = unwrap(tuf::Metadata<tuf::Targets>::parse(text), name);
    if (md.signed_.version != it->second.version) {
        throw CommandError(name + " has version " + std::to_string(md.signed_.version) +
                           ", the trusted snapshot names " + std::to_string(it->second.version));
    }
    return text;
}

std::vector<signing::PublicKey> RegistryTuf::delegated_keys(const std::string& ns,
                                                            std::uint32_t* threshold) const {
    const auto* targets = updater_->trusted_targets("targets");
    if (!targets || !targets->signed_.delegations) {
        throw CommandError("the trusted top-level targets delegate no namespace");
    }
    const auto& d = *targets->signed_.delegations;
    const auto role = std::find_if(d.roles.begin(), d.roles.end(),
                                   [&](const tuf::DelegatedRole& r) { return r.name == ns; });
    if (role == d.roles.end()) {
        throw CommandError("the trusted top-level targets do not delegate namespace " + ns);
    }
    std::vector<signing::PublicKey> keys;
    for (const auto& id : role->keyids) {
        const auto k = d.keys.find(id);
        if (k == d.keys.end()) continue;
        if (auto pub = k->second.public_key()) keys.push_back(*pub);
    }
    if (threshold) *threshold = role->threshold;
    if (keys.empty()) throw CommandError("namespace " + ns + " has no usable publisher key");
    return keys;
}

}  // namespace pylon::cli
