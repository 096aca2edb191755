// Fetching this device's director document from its registry and checking it
// (signing::tuf::verify_director_document with the director key pinned at enrolment).
#pragma once

#include <filesystem>

#include "pylon/common/result.h"
#include "pylon/signing/tuf/director.h"

namespace pylon::agent {

// GET /v1/device/director with the device credential; the document must verify for this
// device, with a version above `last_version`, unexpired at `now`. Nothing is stored.
[[nodiscard]] Result<signing::tuf::DirectorDocument> fetch_director(
    const std::filesystem::path& state_dir, std::int64_t last_version, signing::tuf::Time now,
    const std::string& ca_file = {});

}  // namespace pylon::agent
