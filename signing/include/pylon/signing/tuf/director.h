// Director documents (DESIGN.md, "Trust": the Uptane-style director). Per device, the registry
// signs with its online director key a small TUF targets document naming exactly which target
// the device is to install — or none — with a strictly increasing version and a short expiry:
//
//   {"signed": {"_type": "targets", "spec_version": …, "version": N, "expires": …,
//               "targets": {"<path>": {"length", "hashes": {"sha256"}, "custom": {"pylon": …}}},
//               "x-pylon-device": {"id": 7, "fleet": "edge", "name": "dev-1"},
//               "x-pylon-note": "why no target is named, when none is"},
//    "signatures": [{"keyid", "sig"}]}
//
// A device accepts one only if (verify_director_document) the director key signed it, it names
// this device, its version is above the last one accepted (a replayed older document is a
// rollback), it has not expired, and it names at most one target. Operational rollback is a
// new document (a higher version) naming the older target; the target itself must then also be
// in the image repository's verified targets, identical (checked by the agent through TUF).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pylon/common/result.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/metadata.h"

namespace pylon::signing::tuf {

// Which device a director document is for.
struct DeviceBinding {
    std::int64_t id = 0;
    std::string fleet;
    std::string name;
    bool operator==(const DeviceBinding&) const = default;
};

struct DirectorDocument {
    std::int64_t version = 0;
    Time expires{};
    DeviceBinding device;
    std::optional<std::string> target_path;  // unset: install nothing (see note)
    TargetFile target;                       // when target_path is set
    std::string note;
};

// The document's signed JSON text, signed with `key`.
[[nodiscard]] Result<std::string> sign_director_document(const DirectorDocument& doc,
                                                         const PrivateKey& key);

// Parses and checks a document (at most 64 KiB). Errors: too_large, malformed_metadata (also:
// more than one target, no device binding), threshold_not_met (not signed by `director_key`),
// invalid_argument (made for another device), rollback (version <= last_version), expired
// (now >= expires).
[[nodiscard]] Result<DirectorDocument> verify_director_document(std::string_view bytes,
                                                                const PublicKey& director_key,
                                                                const DeviceBinding& device,
                                                                std::int64_t last_version,
                                                                Time now);

}  // namespace pylon::signing::tuf
