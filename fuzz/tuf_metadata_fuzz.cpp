// Fuzzes TUF metadata parsing for every role: never crash; what parses writes back to bytes that
// parse again, and writing is a fixed point from then on (nothing, unknown fields included, is
// lost or invented by a second round trip).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pylon/signing/tuf/metadata.h"

namespace {

template <typename T>
void check_role(std::string_view text) {
    auto md = pylon::signing::tuf::Metadata<T>::parse(text);
    if (!md) return;
    const std::string bytes = md->to_bytes();
    auto again = pylon::signing::tuf::Metadata<T>::parse(bytes);
    if (!again || again->to_bytes() != bytes) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_role<pylon::signing::tuf::Root>(text);
    check_role<pylon::signing::tuf::Timestamp>(text);
    check_role<pylon::signing::tuf::Snapshot>(text);
    check_role<pylon::signing::tuf::Targets>(text);
    return 0;
}
