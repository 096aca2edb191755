// TUF pieces of the registry commands: the client's trusted metadata per registry, the role
// files a publisher or admin edits, and the custom fields every published target carries.
//
// Target paths: "<ns>/<model>/<version>/<build>/<file>". Each target's custom field is
//     {"pylon": {"namespace", "model", "version", "build",
//                "target": {"arch", "isa": [...], "accelerator", "min_ram_mb"},
//                "format", "quantization", "license": {...the release's licence...}}}
// and a namespace's delegation covers "<ns>/*/*/*/*".
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pylon/net/http_fetcher.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/metadata.h"
#include "pylon/signing/tuf/updater.h"
#include "registry_client.h"

namespace pylon::cli {

struct BuildTarget {
    std::string arch;
    std::vector<std::string> isa;
    std::string accelerator = "none";
    std::uint64_t min_ram_mb = 0;
};

struct TargetCustom {
    std::string ns, model, version, build;
    BuildTarget target;
    std::string format, quantization;
    nlohmann::json license = nlohmann::json::object();
};

std::string target_path(const std::string& ns, const std::string& model, const std::string& version,
                        const std::string& build, const std::string& file);
nlohmann::json target_custom_json(const TargetCustom& c);
// The delegation pattern of a namespace: "<ns>/*/*/*/*".
std::string namespace_path_pattern(const std::string& ns);

// Checks that `root_json` is root metadata signed by a threshold of its own root keys.
signing::tuf::Metadata<signing::tuf::Root> parse_self_signed_root(const std::string& root_json);

// The TUF client of one registry, over its trusted metadata directory (which must hold the
// root.json that `pylon login` placed there).
class RegistryTuf {
public:
    explicit RegistryTuf(const Credentials& creds);
    signing::tuf::Updater& updater() { return *updater_; }
    // Refreshes, throwing CommandError on failure.
    void refresh();
    // The bytes of role `role` ("targets" or a namespace) at the version the trusted snapshot
    // names, checked against the snapshot's hashes and length; nullopt when the snapshot does
    // not list it (a role never published). Call refresh() first.
    std::optional<std::string> role_bytes(const std::string& role);
    // The public keys the trusted top-level targets delegate `ns` to, and the threshold.
    std::vector<signing::PublicKey> delegated_keys(const std::string& ns,
                                                   std::uint32_t* threshold = nullptr) const;

private:
    std::string base_;
    std::unique_ptr<net::HttpFetcher> fetcher_;
    std::unique_ptr<signing::tuf::Updater> updater_;
};

}  // namespace pylon::cli
