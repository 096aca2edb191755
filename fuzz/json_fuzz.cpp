// Fuzzes strict JSON parsing and canonical JSON: never crash; a parsed document written out again
// parses to the same value with the same canonical form. (Canonical JSON itself need not be
// valid JSON: it writes control characters in strings raw, as securesystemslib does.)
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pylon/signing/json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto doc = pylon::signing::parse_json(text);
    if (!doc) return 0;
    auto again = pylon::signing::parse_json(doc->dump(), {size * 8 + 64, 1024});
    if (!again || *again != *doc) std::abort();
    auto canonical = pylon::signing::canonical_json(*doc);
    auto canonical2 = pylon::signing::canonical_json(*again);
    if (canonical.ok() != canonical2.ok()) std::abort();
    if (canonical && *canonical != *canonical2) std::abort();
    return 0;
}
