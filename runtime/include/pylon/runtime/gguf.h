// GGUF v3 reader over a read-only memory map (v2 is accepted too: same layout).
//
// File layout (all little-endian): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count;
// kv_count metadata pairs (gguf string key, u32 value type, value); tensor_count tensor infos
// (string name, u32 n_dims, u64 dims[n_dims], u32 ggml type, u64 offset relative to the data
// section); padding to `general.alignment` (default 32); the data section. A gguf string is a
// u64 length followed by that many bytes (no terminator).
//
// Contract: open() checks every count, length, offset and size against the file before using it
// and refuses a hostile file with an Error (Errc::parse_error / limit_exceeded / unsupported)
// naming the problem and, where there is one, the key or tensor; it never reads outside the
// mapping and never crashes. After a successful open every tensor's bytes lie inside the data
// section, tensors do not overlap, and each is aligned to the file's alignment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/runtime/ggml_type.h"

namespace pylon::runtime::gguf {

// Metadata value types, numbered as in the file.
enum class ValueType : std::uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
    string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

struct Value;
// An array holds elements of one type; arrays of arrays are allowed (nested).
struct Array {
    ValueType element_type = ValueType::u8;
    std::vector<Value> items;
};
struct Value {
    ValueType type = ValueType::u8;
    // Integers are widened to int64/uint64; strings view the mapping (valid while the File
    // lives); arrays own their elements.
    std::variant<std::uint64_t, std::int64_t, double, bool, std::string_view, Array> v;

    std::optional<std::uint64_t> as_uint() const noexcept;  // any non-negative integer type
    std::optional<std::int64_t> as_int() const noexcept;    // any integer type that fits
    std::optional<double> as_float() const noexcept;        // f32/f64 (and integers)
    std::optional<bool> as_bool() const noexcept;
    std::optional<std::string_view> as_string() const noexcept;
    const Array* as_array() const noexcept;
};

struct TensorInfo {
    std::string_view name;
    GgmlType type = GgmlType::F32;
    std::vector<std::uint64_t> dims;  // ne[0] first: ne[0] is the row length
    std::uint64_t n_elements = 0;
    std::uint64_t offset = 0;  // relative to the data section
    std::uint64_t n_bytes = 0;
    const std::byte* data = nullptr;  // inside the mapping
};

// Limits applied while parsing (defaults are generous for real models, small enough that a
// hostile header cannot make us allocate gigabytes).
struct Limits {
    std::uint64_t max_tensors = 65536;
    std::uint64_t max_kv = 65536;
    std::uint64_t max_string_bytes = 1 << 20;       // one key or string value
    std::uint64_t max_array_items = 1 << 24;        // elements of one array (vocabularies: 256k)
    std::uint64_t max_total_array_items = 1 << 26;  // all arrays together
    std::uint32_t max_array_depth = 4;
    std::uint32_t max_dims = 4;
};

class File {
public:
    // Maps `path` read-only and parses it.
    static Result<std::shared_ptr<const File>> open(const std::string& path, Limits limits = {});
    // Parses a buffer the caller keeps alive (fuzzing, tests); no copy is made.
    static Result<std::shared_ptr<const File>> parse(std::span<const std::byte> bytes,
                                                     Limits limits = {});
    ~File();
    File(const File&) = delete;
    File& operator=(const File&) = delete;

    std::uint32_t version() const noexcept { return version_; }
    std::uint32_t alignment() const noexcept { return alignment_; }
    std::span<const std::byte> bytes() const noexcept { return bytes_; }
    std::uint64_t data_offset() const noexcept { return data_offset_; }
    // Gives this process's mapping of the whole pages inside [p, p + n) back to the kernel
    // (a model that keeps its own copy of some tensors no longer pays resident memory for
    // them); they are read from the file again if touched. No-op for a File parsed from
    // memory or a range outside the mapping.
    void release(const std::byte* p, std::size_t n) const noexcept;

    // Metadata in file order.
    const std::vector<std::pair<std::string_view, Value>>& metadata() const noexcept {
        return kv_;
    }
    const Value* find(std::string_view key) const noexcept;
    const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const noexcept;

    // Typed getters: an Error naming the key when it is missing or has another type.
    Result<std::uint64_t> get_uint(std::string_view key) const;
    Result<double> get_float(std::string_view key) const;
    Result<std::string_view> get_string(std::string_view key) const;
    Result<const Array*> get_array(std::string_view key) const;

    // Hints the kernel to read the data section ahead (MADV_WILLNEED); no-op for parse().
    void prefetch() const noexcept;

private:
    File() = default;
    friend class Parser;

    void* map_ = nullptr;
    std::size_t map_size_ = 0;
    std::span<const std::byte> bytes_;
    std::uint32_t version_ = 0;
    std::uint32_t alignment_ = 32;
    std::uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string_view, Value>> kv_;
    std::vector<TensorInfo> tensors_;
    // Indices into kv_ / tensors_ sorted by name: O(log n) lookup without hashing
    // attacker-chosen strings (no hash-collision blow-up), and duplicate detection at parse.
    std::vector<std::uint32_t> kv_by_key_;
    std::vector<std::uint32_t> tensors_by_name_;
};

}  // namespace pylon::runtime::gguf
