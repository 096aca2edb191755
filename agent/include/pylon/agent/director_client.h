// Fetching this device's director document from its registry and checking it
// (signing::tuf::verify_director_document with the director key pinned at enrolment).
#pragma once

#include <filesystem>
#include <string_view>

#include "pylon/common/result.h"
#include "pylon/signing/tuf/director.h"

namespace pylon::agent {

// Checks a director document the registry answered: it must verify with the director key for
// this device, with a version above `last_version` and unexpired at `now` — except the very
// bytes accepted last (`state_dir/director.json`), which the registry serves again while they
// are fresh: those are no replay (still verified, expiry included). `*repeated` says which.
[[nodiscard]] Result<signing::tuf::DirectorDocument> check_director(
    const std::filesystem::path& state_dir, std::string_view bytes,
    const signing::PublicKey& director_key, const signing::tuf::DeviceBinding& device,
    std::int64_t last_version, signing::tuf::Time now, bool* repeated);
// Records an accepted document as the last one (director.json, 0600, atomically).
[[nodiscard]] Result<void> save_accepted_director(const std::filesystem::path& state_dir,
                                                  std::string_view bytes);

// GET /v1/device/director with the device credential; the document must verify for this
// device, with a version above `last_version`, unexpired at `now`. Nothing is stored.
[[nodiscard]] Result<signing::tuf::DirectorDocument> fetch_director(
    const std::filesystem::path& state_dir, std::int64_t last_version, signing::tuf::Time now,
    const std::string& ca_file = {});

}  // namespace pylon::agent
