// Fuzzes the GGUF reader: hostile bytes give an Error, never a crash. On success every metadata
// value (nested arrays included) and the first and last byte of every tensor are read, so an
// out-of-bounds view shows up under ASan; violations of the File contract abort.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "pylon/runtime/gguf.h"

namespace {

using pylon::runtime::gguf::Value;

volatile std::uint64_t g_sink = 0;

void touch(const Value& v) {
    if (auto s = v.as_string()) {
        for (char c : *s) g_sink = g_sink + static_cast<unsigned char>(c);
    } else if (const auto* a = v.as_array()) {
        for (const Value& item : a->items) {
            if (item.type != a->element_type) std::abort();
            touch(item);
        }
    } else {
        g_sink = g_sink + v.as_uint().value_or(0) + (v.as_bool().value_or(false) ? 1 : 0) +
                 (v.as_float().value_or(0.0) != 0.0 ? 1 : 0);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = std::as_bytes(std::span(data, size));
    auto file = pylon::runtime::gguf::File::parse(bytes);
    if (!file) return 0;
    const auto& f = **file;
    for (const auto& [key, value] : f.metadata()) {
        if (key.empty() || f.find(key) != &value) std::abort();
        touch(value);
    }
    const auto a = f.alignment();
    if (a == 0 || (a & (a - 1)) != 0 || f.data_offset() > size) std::abort();
    for (const auto& t : f.tensors()) {
        if (f.find_tensor(t.name) != &t || t.n_bytes == 0 || t.offset % a != 0) std::abort();
        if (t.data < bytes.data() + f.data_offset() || t.data + t.n_bytes > bytes.data() + size) {
            std::abort();
        }
        g_sink = g_sink + static_cast<std::uint8_t>(t.data[0]) +
                 static_cast<std::uint8_t>(t.data[t.n_bytes - 1]);
    }
    return 0;
}
