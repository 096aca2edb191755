// Metadata value accessors and the File lookups (binary search over name-sorted indices).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "gguf/gguf_internal.h"
#include "pylon/runtime/gguf.h"

namespace pylon::runtime::gguf {

namespace detail {

std::string_view value_type_name(ValueType t) noexcept {
    switch (t) {
        case ValueType::u8:
            return "u8";
        case ValueType::i8:
            return "i8";
        case ValueType::u16:
            return "u16";
        case ValueType::i16:
            return "i16";
        case ValueType::u32:
            return "u32";
        case ValueType::i32:
            return "i32";
        case ValueType::f32:
            return "f32";
        case ValueType::boolean:
            return "bool";
        case ValueType::string:
            return "string";
        case ValueType::array:
            return "array";
        case ValueType::u64:
            return "u64";
        case ValueType::i64:
            return "i64";
        case ValueType::f64:
            return "f64";
    }
    return "unknown";
}

}  // namespace detail

std::optional<std::uint64_t> Value::as_uint() const noexcept {
    if (const auto* u = std::get_if<std::uint64_t>(&v)) return *u;
    if (const auto* i = std::get_if<std::int64_t>(&v); i != nullptr && *i >= 0) {
        return static_cast<std::uint64_t>(*i);
    }
    return std::nullopt;
}

std::optional<std::int64_t> Value::as_int() const noexcept {
    if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
    if (const auto* u = std::get_if<std::uint64_t>(&v);
        u != nullptr &&
        *u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return static_cast<std::int64_t>(*u);
    }
    return std::nullopt;
}

std::optional<double> Value::as_float() const noexcept {
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* u = std::get_if<std::uint64_t>(&v)) return static_cast<double>(*u);
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    return std::nullopt;
}

std::optional<bool> Value::as_bool() const noexcept {
    if (const auto* b = std::get_if<bool>(&v)) return *b;
    return std::nullopt;
}

std::optional<std::string_view> Value::as_string() const noexcept {
    if (const auto* s = std::get_if<std::string_view>(&v)) return *s;
    return std::nullopt;
}

const Array* Value::as_array() const noexcept {
    return std::get_if<Array>(&v);
}

namespace {

// Position in `items` of the entry named `name`, using `index` sorted by name.
template <typename Items, typename NameOf>
const typename Items::value_type* lookup(const std::vector<std::uint32_t>& index,
                                         const Items& items, std::string_view name,
                                         NameOf name_of) {
    const auto it = std::lower_bound(
        index.begin(), index.end(), name,
        [&](std::uint32_t i, std::string_view n) { return name_of(items[i]) < n; });
    if (it == index.end() || name_of(items[*it]) != name) return nullptr;
    return &items[*it];
}

Error missing(std::string_view key) {
    return Error(Errc::not_found, "missing metadata key '" + std::string(key) + "'");
}

Error wrong_type(std::string_view key, const Value& v, std::string_view wanted) {
    return Error(Errc::parse_error, "metadata key '" + std::string(key) + "' is " +
                                        std::string(detail::value_type_name(v.type)) +
                                        ", expected " + std::string(wanted));
}

}  // namespace

const Value* File::find(std::string_view key) const noexcept {
    const auto* kv = lookup(kv_by_key_, kv_, key, [](const auto& p) { return p.first; });
    return kv == nullptr ? nullptr : &kv->second;
}

const TensorInfo* File::find_tensor(std::string_view name) const noexcept {
    return lookup(tensors_by_name_, tensors_, name, [](const TensorInfo& t) { return t.name; });
}

Result<std::uint64_t> File::get_uint(std::string_view key) const {
    const Value* v = find(key);
    if (v == nullptr) return missing(key);
    const auto u = v->as_uint();
    if (!u) return wrong_type(key, *v, "a non-negative integer");
    return *u;
}

Result<double> File::get_float(std::string_view key) const {
    const Value* v = find(key);
    if (v == nullptr) return missing(key);
    const auto d = v->as_float();
    if (!d) return wrong_type(key, *v, "a number");
    return *d;
}

Result<std::string_view> File::get_string(std::string_view key) const {
    const Value* v = find(key);
    if (v == nullptr) return missing(key);
    const auto s = v->as_string();
    if (!s) return wrong_type(key, *v, "a string");
    return *s;
}

Result<const Array*> File::get_array(std::string_view key) const {
    const Value* v = find(key);
    if (v == nullptr) return missing(key);
    const Array* a = v->as_array();
    if (a == nullptr) return wrong_type(key, *v, "an array");
    return a;
}

}  // namespace pylon::runtime::gguf
