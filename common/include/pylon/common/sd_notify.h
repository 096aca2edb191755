// sd_notify(3)'s protocol without libsystemd: one datagram to $NOTIFY_SOCKET (a path, or
// "@name" for the abstract namespace). Nothing happens when the variable is unset (not started
// by systemd with Type=notify). Best effort: a failed send is not reported.
#pragma once

#include <string_view>

namespace pylon {

void sd_notify(std::string_view message);

}  // namespace pylon
