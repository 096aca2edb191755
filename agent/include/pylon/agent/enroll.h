// The device's identity and its enrolment with a registry (issue 7, "Enrolment").
//
// State directory (0700):
//   identity/device.key     the device's Ed25519 identity key, PKCS#8, 0600 (made once, kept
//                           across enrolment attempts)
//   identity/credential     the pyd_ credential the registry handed out, 0600
//   identity/identity.json  {registry, device_id, fleet, name, director_key}, 0600
//   tuf/root.json           the image repository's trusted root (from --tuf-root, or the
//                           registry's version 1 on first use, checked to be self-signed)
//
// Enrolment: probe the hardware, sign {name, public_key, hardware} with the device key (DSSE,
// proof of possession), POST /v1/device/enroll with the fleet's enrolment token, then store the
// credential and identity. The enrolment token itself is never stored.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/common/secret.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/director.h"

namespace pylon::agent {

struct Identity {
    std::string registry;  // base URL
    std::int64_t device_id = 0;
    std::string fleet;
    std::string name;
    std::string director_key_json;  // the director's TUF key, pinned at enrolment

    signing::tuf::DeviceBinding binding() const { return {device_id, fleet, name}; }
};

class IdentityStore {
public:
    explicit IdentityStore(std::filesystem::path state_dir);
    // nullopt before enrolment. Errors for files that exist but cannot be read or parsed, or
    // that others may read.
    [[nodiscard]] Result<std::optional<Identity>> load() const;
    [[nodiscard]] Result<Secret> credential() const;
    // The device key, made (0600) on first call.
    [[nodiscard]] Result<signing::PrivateKey> device_key() const;
    [[nodiscard]] Result<signing::PublicKey> director_key() const;
    [[nodiscard]] Result<void> save(const Identity& id, const Secret& credential) const;
    std::filesystem::path dir() const { return dir_; }
    std::filesystem::path tuf_dir() const { return state_ / "tuf"; }

private:
    std::filesystem::path state_, dir_;
};

struct EnrollOptions {
    std::string registry;  // http(s)://host[:port][/prefix]
    Secret token;          // the fleet's pye_ enrolment token
    std::string name;      // empty: the host name
    std::string ca_file;
    std::string tuf_root_file;  // empty: trust the registry's root on first use
    // The director's public key (PEM), obtained out of band: the registry's must be this one.
    // Empty: trust the key the registry answers (on first use).
    std::string director_key_file;
    std::vector<std::string> accelerators;
};

// Errors name the step and, for a refusal, the registry's message; a device already enrolled
// is refused (Errc::invalid_argument) without contacting the registry.
[[nodiscard]] Result<Identity> enroll(const std::filesystem::path& state_dir,
                                      const EnrollOptions& options);

}  // namespace pylon::agent
