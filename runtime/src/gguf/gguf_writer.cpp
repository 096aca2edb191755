// GGUF v3 writer: header, metadata and tensor infos are built in memory (small), then tensor data
// is streamed one tensor at a time through a buffered sink into a temporary file.
#include "pylon/runtime/gguf_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include "gguf/gguf_internal.h"
#include "pylon/common/file_io.h"
#include "pylon/common/unique_fd.h"

namespace pylon::runtime::gguf {

namespace {

constexpr std::size_t kBufferBytes = std::size_t{1} << 20;

template <typename T>
void put_raw(std::string& out, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
}

void put_string(std::string& out, std::string_view s) {
    put_raw<std::uint64_t>(out, s.size());
    out.append(s);
}

Error bad(std::string_view key, std::string msg) {
    return Error(Errc::invalid_argument, "metadata key '" + std::string(key) + "': " + msg);
}

// Range of each integer type, as (min, max) over int128-free comparisons.
bool fits(ValueType t, const Value& v) {
    if (const auto* u = std::get_if<std::uint64_t>(&v.v)) {
        switch (t) {
            case ValueType::u8:
                return *u <= 0xff;
            case ValueType::u16:
                return *u <= 0xffff;
            case ValueType::u32:
                return *u <= 0xffffffffu;
            case ValueType::u64:
                return true;
            default:
                return false;
        }
    }
    if (const auto* i = std::get_if<std::int64_t>(&v.v)) {
        switch (t) {
            case ValueType::i8:
                return *i >= -128 && *i <= 127;
            case ValueType::i16:
                return *i >= -32768 && *i <= 32767;
            case ValueType::i32:
                return *i >= std::numeric_limits<std::int32_t>::min() &&
                       *i <= std::numeric_limits<std::int32_t>::max();
            case ValueType::i64:
                return true;
            default:
                return false;
        }
    }
    return false;
}

// Appends the value (without its type tag) to `out`.
Result<void> encode(std::string& out, std::string_view key, const Value& v, std::uint32_t depth) {
    switch (v.type) {
        case ValueType::u8:
        case ValueType::u16:
        case ValueType::u32:
        case ValueType::u64:
        case ValueType::i8:
        case ValueType::i16:
        case ValueType::i32:
        case ValueType::i64: {
            if (!fits(v.type, v)) return bad(key, "integer does not fit its type");
            const std::uint64_t bits =
                v.as_uint() ? *v.as_uint() : static_cast<std::uint64_t>(*v.as_int());
            char b[8];
            std::memcpy(b, &bits, 8);  // little-endian: the low bytes come first
            out.append(b, detail::scalar_size(v.type));
            return {};
        }
        case ValueType::f32:
        case ValueType::f64: {
            const auto* d = std::get_if<double>(&v.v);
            if (d == nullptr) return bad(key, "float value does not hold a double");
            if (v.type == ValueType::f32) {
                put_raw(out, static_cast<float>(*d));
            } else {
                put_raw(out, *d);
            }
            return {};
        }
        case ValueType::boolean: {
            const auto b = v.as_bool();
            if (!b) return bad(key, "bool value does not hold a bool");
            out.push_back(*b ? 1 : 0);
            return {};
        }
        case ValueType::string: {
            const auto s = v.as_string();
            if (!s) return bad(key, "string value does not hold a string");
            put_string(out, *s);
            return {};
        }
        case ValueType::array: {
            const Array* a = v.as_array();
            if (a == nullptr) return bad(key, "array value does not hold an array");
            if (depth >= 64) return bad(key, "arrays nested too deep");
            put_raw(out, static_cast<std::uint32_t>(a->element_type));
            put_raw<std::uint64_t>(out, a->items.size());
            for (const Value& item : a->items) {
                if (item.type != a->element_type) return bad(key, "array item of another type");
                PYLON_TRY(encode(out, key, item, depth + 1));
            }
            return {};
        }
    }
    return bad(key, "unknown value type");
}

std::string tagged(ValueType t) {
    std::string out;
    put_raw(out, static_cast<std::uint32_t>(t));
    return out;
}

}  // namespace

void Writer::put(std::string key, std::string encoded) {
    if (auto it = kv_index_.find(key); it != kv_index_.end()) {
        kv_[it->second].second = std::move(encoded);
        return;
    }
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(encoded));
}

Result<void> Writer::set(std::string key, const Value& value) {
    if (key.empty()) return Error(Errc::invalid_argument, "empty metadata key");
    std::string enc = tagged(value.type);
    PYLON_TRY(encode(enc, key, value, 0));
    put(std::move(key), std::move(enc));
    return {};
}

void Writer::set_u32(std::string key, std::uint32_t v) {
    std::string e = tagged(ValueType::u32);
    put_raw(e, v);
    put(std::move(key), std::move(e));
}
void Writer::set_i32(std::string key, std::int32_t v) {
    std::string e = tagged(ValueType::i32);
    put_raw(e, v);
    put(std::move(key), std::move(e));
}
void Writer::set_u64(std::string key, std::uint64_t v) {
    std::string e = tagged(ValueType::u64);
    put_raw(e, v);
    put(std::move(key), std::move(e));
}
void Writer::set_f32(std::string key, float v) {
    std::string e = tagged(ValueType::f32);
    put_raw(e, v);
    put(std::move(key), std::move(e));
}
void Writer::set_bool(std::string key, bool v) {
    std::string e = tagged(ValueType::boolean);
    e.push_back(v ? 1 : 0);
    put(std::move(key), std::move(e));
}
void Writer::set_string(std::string key, std::string_view v) {
    std::string e = tagged(ValueType::string);
    put_string(e, v);
    put(std::move(key), std::move(e));
}
void Writer::set_strings(std::string key, const std::vector<std::string>& v) {
    std::string e = tagged(ValueType::array);
    put_raw(e, static_cast<std::uint32_t>(ValueType::string));
    put_raw<std::uint64_t>(e, v.size());
    for (const auto& s : v) put_string(e, s);
    put(std::move(key), std::move(e));
}
void Writer::set_f32s(std::string key, const std::vector<float>& v) {
    std::string e = tagged(ValueType::array);
    put_raw(e, static_cast<std::uint32_t>(ValueType::f32));
    put_raw<std::uint64_t>(e, v.size());
    for (float f : v) put_raw(e, f);
    put(std::move(key), std::move(e));
}
void Writer::set_i32s(std::string key, const std::vector<std::int32_t>& v) {
    std::string e = tagged(ValueType::array);
    put_raw(e, static_cast<std::uint32_t>(ValueType::i32));
    put_raw<std::uint64_t>(e, v.size());
    for (std::int32_t i : v) put_raw(e, i);
    put(std::move(key), std::move(e));
}

Result<void> Writer::copy_metadata(const File& src, std::string_view prefix) {
    for (const auto& [key, value] : src.metadata()) {
        if (key.starts_with(prefix)) PYLON_TRY(set(std::string(key), value));
    }
    return {};
}

Result<void> Writer::add_tensor(std::string name, GgmlType type, std::vector<std::uint64_t> dims,
                                Fill fill) {
    const auto fail = [&](std::string msg) {
        return Error(Errc::invalid_argument, "tensor '" + name + "': " + msg);
    };
    if (name.empty()) return Error(Errc::invalid_argument, "empty tensor name");
    if (tensor_index_.count(name) != 0) return fail("duplicate tensor name");
    if (dims.empty() || dims.size() > 4) return fail("needs 1 to 4 dimensions");
    std::uint64_t rows = 1;
    for (std::size_t d = 0; d < dims.size(); ++d) {
        if (dims[d] == 0) return fail("dimension " + std::to_string(d) + " is 0");
        if (d > 0 && __builtin_mul_overflow(rows, dims[d], &rows)) return fail("size overflows");
    }
    const auto row = row_bytes(type, dims[0]);
    if (!row) return fail("row length is not a multiple of the block size");
    std::uint64_t n_bytes = 0;
    if (__builtin_mul_overflow(std::uint64_t{*row}, rows, &n_bytes)) return fail("size overflows");
    if (!fill) return fail("no data source");
    tensor_index_.emplace(name, tensors_.size());
    tensors_.push_back({std::move(name), type, std::move(dims), n_bytes, std::move(fill)});
    return {};
}

Result<void> Writer::add_tensor(std::string name, GgmlType type, std::vector<std::uint64_t> dims,
                                std::span<const std::byte> data) {
    const std::size_t size = data.size();
    PYLON_TRY(add_tensor(name, type, std::move(dims), [data](std::span<std::byte> out) {
        std::memcpy(out.data(), data.data(), out.size());
    }));
    if (tensors_.back().n_bytes != size) {
        const std::uint64_t want = tensors_.back().n_bytes;
        tensor_index_.erase(tensors_.back().name);
        tensors_.pop_back();
        return Error(Errc::invalid_argument, "tensor '" + name + "': data is " +
                                                 std::to_string(size) + " bytes, expected " +
                                                 std::to_string(want));
    }
    return {};
}

Result<std::uint32_t> Writer::alignment() const {
    const auto it = kv_index_.find(detail::kAlignmentKey);
    if (it == kv_index_.end()) return detail::kDefaultAlignment;
    const std::string& e = kv_[it->second].second;
    std::uint32_t type = 0;
    std::uint32_t a = 0;
    std::memcpy(&type, e.data(), 4);
    if (type != static_cast<std::uint32_t>(ValueType::u32) || e.size() != 8) {
        return Error(Errc::invalid_argument, "general.alignment must be a u32");
    }
    std::memcpy(&a, e.data() + 4, 4);
    if (a == 0 || (a & (a - 1)) != 0) {
        return Error(Errc::invalid_argument, "general.alignment must be a power of two");
    }
    return a;
}

Result<void> Writer::emit(const Sink& sink) const {
    PYLON_TRY_ASSIGN(const std::uint32_t align, alignment());
    std::string head;
    put_raw(head, detail::kMagic);
    put_raw<std::uint32_t>(head, 3);
    put_raw<std::uint64_t>(head, tensors_.size());
    put_raw<std::uint64_t>(head, kv_.size());
    for (const auto& [key, enc] : kv_) {
        put_string(head, key);
        head += enc;
    }
    std::uint64_t offset = 0;
    std::vector<std::uint64_t> offsets;
    for (const Tensor& t : tensors_) {
        put_string(head, t.name);
        put_raw<std::uint32_t>(head, static_cast<std::uint32_t>(t.dims.size()));
        for (std::uint64_t d : t.dims) put_raw(head, d);
        put_raw(head, static_cast<std::uint32_t>(t.type));
        put_raw(head, offset);
        offsets.push_back(offset);
        offset += (t.n_bytes + align - 1) / align * align;
    }
    head.resize((head.size() + align - 1) / align * align, '\0');
    PYLON_TRY(sink(std::as_bytes(std::span(head.data(), head.size()))));
    std::vector<std::byte> buf;
    for (const Tensor& t : tensors_) {
        const std::uint64_t padded = (t.n_bytes + align - 1) / align * align;
        buf.assign(padded, std::byte{0});
        t.fill(std::span(buf.data(), t.n_bytes));
        PYLON_TRY(sink(buf));
    }
    return {};
}

Result<std::vector<std::byte>> Writer::to_bytes() const {
    std::vector<std::byte> out;
    PYLON_TRY(emit([&](std::span<const std::byte> b) -> Result<void> {
        out.insert(out.end(), b.begin(), b.end());
        return {};
    }));
    return out;
}

Result<void> Writer::write(const std::string& path) const {
    const std::filesystem::path target(path);
    std::filesystem::path tmp = target;
    tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(std::random_device{}());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) return Error::from_errno(errno, "create " + tmp.string());
    std::string buffer;
    const auto flush = [&]() -> Result<void> {
        std::size_t done = 0;
        while (done < buffer.size()) {
            const ssize_t n = ::write(fd.get(), buffer.data() + done, buffer.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return Error::from_errno(errno, "write " + tmp.string());
            done += static_cast<std::size_t>(n);
        }
        buffer.clear();
        return {};
    };
    auto result = emit([&](std::span<const std::byte> b) -> Result<void> {
        buffer.append(reinterpret_cast<const char*>(b.data()), b.size());
        if (buffer.size() >= kBufferBytes) return flush();
        return {};
    });
    if (result) result = flush();
    if (result && ::fsync(fd.get()) != 0)
        result = Error::from_errno(errno, "fsync " + tmp.string());
    if (result && ::close(fd.release()) != 0) {
        result = Error::from_errno(errno, "close " + tmp.string());
    }
    if (result && ::rename(tmp.c_str(), target.c_str()) != 0) {
        result = Error::from_errno(errno, "rename to " + path);
    }
    if (!result) {
        ::unlink(tmp.c_str());
        return result;
    }
    return fsync_directory(target.parent_path());
}

}  // namespace pylon::runtime::gguf
