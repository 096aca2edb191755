// GGUF v3 writer (the format is described in gguf.h).
//
// Metadata is encoded when it is set (so a Value's string views need to live only for the call);
// setting a key again replaces its value in place, keeping the first position. Tensors are
// written in the order added; their data comes from a span the caller keeps alive until write()
// returns, or from a callback that fills one tensor's bytes at a time, so a model never has to
// be held in memory whole. The data section is aligned to `general.alignment` when that key is
// set (a u32 power of two), else 32, and padded with zeros between tensors.
//
// write() is atomic: a temporary file beside `path`, fsync, rename, fsync of the directory; on
// failure `path` is untouched and the temporary file removed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/runtime/ggml_type.h"
#include "pylon/runtime/gguf.h"

namespace pylon::runtime::gguf {

class Writer {
public:
    // Fills `out` (already zeroed, exactly the tensor's n_bytes) with the tensor's data.
    using Fill = std::function<void(std::span<std::byte> out)>;

    // Any value, arrays and nested arrays included. invalid_argument when the variant does not
    // match `value.type`, an integer does not fit its type, an array item's type differs from the
    // element type, or the key is empty.
    [[nodiscard]] Result<void> set(std::string key, const Value& value);
    void set_u32(std::string key, std::uint32_t v);
    void set_i32(std::string key, std::int32_t v);
    void set_u64(std::string key, std::uint64_t v);
    void set_f32(std::string key, float v);
    void set_bool(std::string key, bool v);
    void set_string(std::string key, std::string_view v);
    void set_strings(std::string key, const std::vector<std::string>& v);
    void set_f32s(std::string key, const std::vector<float>& v);
    void set_i32s(std::string key, const std::vector<std::int32_t>& v);

    // Copies every metadata pair of `src` whose key starts with `prefix` ("" copies all).
    [[nodiscard]] Result<void> copy_metadata(const File& src, std::string_view prefix);

    // invalid_argument for an empty or duplicate name, 0 or more than 4 dims, a zero dimension,
    // a row length that is not a multiple of the type's block size, an overflowing size, or a
    // span whose size is not the tensor's byte size.
    [[nodiscard]] Result<void> add_tensor(std::string name, GgmlType type,
                                          std::vector<std::uint64_t> dims, Fill fill);
    [[nodiscard]] Result<void> add_tensor(std::string name, GgmlType type,
                                          std::vector<std::uint64_t> dims,
                                          std::span<const std::byte> data);

    [[nodiscard]] Result<void> write(const std::string& path) const;
    // The whole file in memory (tests, fuzz seeds).
    [[nodiscard]] Result<std::vector<std::byte>> to_bytes() const;

private:
    struct Tensor {
        std::string name;
        GgmlType type;
        std::vector<std::uint64_t> dims;
        std::uint64_t n_bytes;
        Fill fill;
    };
    using Sink = std::function<Result<void>(std::span<const std::byte>)>;

    void put(std::string key, std::string encoded);
    Result<std::uint32_t> alignment() const;
    Result<void> emit(const Sink& sink) const;

    std::vector<std::pair<std::string, std::string>> kv_;  // key, encoded type + value
    std::map<std::string, std::size_t, std::less<>> kv_index_;
    std::vector<Tensor> tensors_;
    std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

}  // namespace pylon::runtime::gguf
