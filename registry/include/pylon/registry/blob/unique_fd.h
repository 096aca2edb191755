// The blob store hands out descriptors as pylon::UniqueFd (common/unique_fd.h).
#pragma once

#include "pylon/common/unique_fd.h"

namespace pylon::registry::blob {
using pylon::UniqueFd;
}  // namespace pylon::registry::blob
