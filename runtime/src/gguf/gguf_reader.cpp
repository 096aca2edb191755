// GGUF parser (format: see pylon/runtime/gguf.h). Hostile input is the design case: every count
// is compared with the bytes that remain before anything is reserved, every size is computed
// with overflow checks, and the tensor table is validated as a whole (bounds, alignment, no
// overlap) so that callers may trust TensorInfo::data for n_bytes.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "gguf/gguf_internal.h"
#include "pylon/common/unique_fd.h"
#include "pylon/runtime/gguf.h"

namespace pylon::runtime::gguf {

namespace {

constexpr std::uint64_t kMaxTensorElements = std::uint64_t{1} << 62;
// Fewest bytes of one kv: key length (8) + a non-empty key (1) + value type (4) + a 1-byte value.
constexpr std::uint64_t kMinKvBytes = 14;
// Fewest bytes of one tensor info: name length (8) + n_dims (4) + one dim (8) + type (4) +
// offset (8); empty names are refused.
constexpr std::uint64_t kMinTensorInfoBytes = 33;

std::string quoted(std::string_view s) {
    // Names come from the file: keep the message printable and bounded.
    std::string out = "'";
    for (char c : s.substr(0, 96)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (s.size() > 96) out += "...";
    out += "'";
    return out;
}

Error parse_err(std::string msg) {
    return Error(Errc::parse_error, std::move(msg));
}

Error limit_err(std::string what, std::uint64_t n, std::uint64_t limit) {
    return Error(Errc::limit_exceeded,
                 what + " " + std::to_string(n) + " exceeds the limit of " + std::to_string(limit));
}

// Sorts `index` (positions into `items`) by name and reports the first duplicate name.
template <typename Items, typename NameOf>
std::optional<std::string_view> sort_index(std::vector<std::uint32_t>& index, const Items& items,
                                           NameOf name_of) {
    index.resize(items.size());
    for (std::uint32_t i = 0; i < index.size(); ++i) index[i] = i;
    std::sort(index.begin(), index.end(), [&](std::uint32_t a, std::uint32_t b) {
        return name_of(items[a]) < name_of(items[b]);
    });
    for (std::size_t i = 1; i < index.size(); ++i) {
        if (name_of(items[index[i - 1]]) == name_of(items[index[i]])) {
            return name_of(items[index[i]]);
        }
    }
    return std::nullopt;
}

}  // namespace

// Sequential reader over the file bytes; the only code that reads them while parsing.
class Parser {
public:
    Parser(std::span<const std::byte> bytes, const Limits& limits)
        : bytes_(bytes), limits_(limits) {}

    Result<void> run(File& file);

private:
    std::uint64_t remaining() const noexcept { return bytes_.size() - pos_; }

    Result<void> need(std::uint64_t n, std::string_view what) const {
        if (n > remaining()) {
            return parse_err("truncated file: " + std::string(what) + " needs " +
                             std::to_string(n) + " bytes at offset " + std::to_string(pos_) + ", " +
                             std::to_string(remaining()) + " remain");
        }
        return {};
    }

    template <typename T>
    Result<T> fixed(std::string_view what) {
        PYLON_TRY(need(sizeof(T), what));
        T v;
        std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    Result<std::string_view> string(const std::string& what) {
        PYLON_TRY_ASSIGN(const std::uint64_t len, fixed<std::uint64_t>(what + " length"));
        if (len > limits_.max_string_bytes) {
            return limit_err(what + " length", len, limits_.max_string_bytes);
        }
        PYLON_TRY(need(len, what));
        std::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
        pos_ += len;
        return s;
    }

    Result<Value> value(ValueType type, std::uint32_t depth, const std::string& what);
    Result<void> array(Array& out, std::uint32_t depth, const std::string& what);
    Result<void> metadata(File& file, std::uint64_t n_kv);
    Result<void> alignment(File& file);
    Result<void> tensor_info(TensorInfo& t, std::uint32_t alignment);
    Result<void> place_tensors(File& file);

    std::span<const std::byte> bytes_;
    const Limits& limits_;
    std::uint64_t pos_ = 0;
    std::uint64_t total_array_items_ = 0;
};

Result<Value> Parser::value(ValueType type, std::uint32_t depth, const std::string& what) {
    Value v;
    v.type = type;
    switch (type) {
        case ValueType::u8: {
            PYLON_TRY_ASSIGN(const auto x, fixed<std::uint8_t>(what));
            v.v = std::uint64_t{x};
            break;
        }
        case ValueType::u16: {
            PYLON_TRY_ASSIGN(const auto x, fixed<std::uint16_t>(what));
            v.v = std::uint64_t{x};
            break;
        }
        case ValueType::u32: {
            PYLON_TRY_ASSIGN(const auto x, fixed<std::uint32_t>(what));
            v.v = std::uint64_t{x};
            break;
        }
        case ValueType::u64: {
            PYLON_TRY_ASSIGN(const auto x, fixed<std::uint64_t>(what));
            v.v = x;
            break;
        }
        case ValueType::i8: {
            PYLON_TRY_ASSIGN(const auto x, fixed<std::int8_t>(what));
            v.v = std::int64_t{x};
            break;
        }
        case ValueType::i16: {
            PYLON_TRY_ASSIGN(const auto x, fixed<std::int16_t>(what));
            v.v = std::int64_t{x};
            break;
        }
        case ValueType::i32: {
            PYLON_TRY_ASSIGN(const auto x, fixed<std::int32_t>(what));
            v.v = std::int64_t{x};
            break;
        }
        case ValueType::i64: {
            PYLON_TRY_ASSIGN(const auto x, fixed<std::int64_t>(what));
            v.v = x;
            break;
        }
        case ValueType::f32: {
            PYLON_TRY_ASSIGN(const auto x, fixed<float>(what));
            v.v = double{x};
            break;
        }
        case ValueType::f64: {
            PYLON_TRY_ASSIGN(const auto x, fixed<double>(what));
            v.v = x;
            break;
        }
        case ValueType::boolean: {
            PYLON_TRY_ASSIGN(const auto x, fixed<std::uint8_t>(what));
            if (x > 1)
                return parse_err(what + ": boolean byte " + std::to_string(x) + " is not 0/1");
            v.v = x != 0;
            break;
        }
        case ValueType::string: {
            PYLON_TRY_ASSIGN(v.v, string(what));
            break;
        }
        case ValueType::array: {
            Array a;
            PYLON_TRY(array(a, depth + 1, what));
            v.v = std::move(a);
            break;
        }
    }
    return v;
}

Result<void> Parser::array(Array& out, std::uint32_t depth, const std::string& what) {
    if (depth > limits_.max_array_depth) {
        return limit_err(what + ": array nesting depth", depth, limits_.max_array_depth);
    }
    PYLON_TRY_ASSIGN(const std::uint32_t raw_type, fixed<std::uint32_t>(what + " element type"));
    const auto type = detail::value_type(raw_type);
    if (!type) {
        return parse_err(what + ": unknown array element type " + std::to_string(raw_type));
    }
    PYLON_TRY_ASSIGN(const std::uint64_t count, fixed<std::uint64_t>(what + " array length"));
    if (count > limits_.max_array_items) {
        return limit_err(what + ": array length", count, limits_.max_array_items);
    }
    // count <= 2^24 and min size <= 12, so the product cannot overflow.
    PYLON_TRY(need(count * detail::min_encoded_size(*type), what + " array items"));
    if (count > limits_.max_total_array_items -
                    std::min(total_array_items_, limits_.max_total_array_items)) {
        return limit_err(what + ": array items in the file", total_array_items_ + count,
                         limits_.max_total_array_items);
    }
    total_array_items_ += count;
    out.element_type = *type;
    out.items.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
        PYLON_TRY_ASSIGN(Value item, value(*type, depth, what));
        out.items.push_back(std::move(item));
    }
    return {};
}

Result<void> Parser::metadata(File& file, std::uint64_t n_kv) {
    file.kv_.reserve(n_kv);
    for (std::uint64_t i = 0; i < n_kv; ++i) {
        PYLON_TRY_ASSIGN(const std::string_view key, string("key " + std::to_string(i)));
        if (key.empty()) return parse_err("metadata key " + std::to_string(i) + " is empty");
        const std::string what = "key " + quoted(key);
        PYLON_TRY_ASSIGN(const std::uint32_t raw_type, fixed<std::uint32_t>(what + " type"));
        const auto type = detail::value_type(raw_type);
        if (!type) return parse_err(what + ": unknown value type " + std::to_string(raw_type));
        PYLON_TRY_ASSIGN(Value v, value(*type, 0, what));
        file.kv_.emplace_back(key, std::move(v));
    }
    if (auto dup = sort_index(file.kv_by_key_, file.kv_, [](const auto& kv) { return kv.first; })) {
        return parse_err("duplicate metadata key " + quoted(*dup));
    }
    return {};
}

Result<void> Parser::alignment(File& file) {
    file.alignment_ = detail::kDefaultAlignment;
    const Value* v = file.find(detail::kAlignmentKey);
    if (v == nullptr) return {};
    if (v->type != ValueType::u32) {
        return parse_err("general.alignment must be a u32, not " +
                         std::string(detail::value_type_name(v->type)));
    }
    const std::uint64_t a = *v->as_uint();
    if (a == 0 || (a & (a - 1)) != 0) {
        return parse_err("general.alignment " + std::to_string(a) + " is not a power of two");
    }
    file.alignment_ = static_cast<std::uint32_t>(a);
    return {};
}

Result<void> Parser::tensor_info(TensorInfo& t, std::uint32_t alignment) {
    PYLON_TRY_ASSIGN(t.name, string("tensor name"));
    if (t.name.empty()) return parse_err("tensor name is empty");
    const std::string what = "tensor " + quoted(t.name);
    PYLON_TRY_ASSIGN(const std::uint32_t n_dims, fixed<std::uint32_t>(what + " n_dims"));
    if (n_dims == 0 || n_dims > limits_.max_dims) {
        return parse_err(what + ": n_dims " + std::to_string(n_dims) + " is not in 1.." +
                         std::to_string(limits_.max_dims));
    }
    t.dims.resize(n_dims);
    std::uint64_t n = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
        PYLON_TRY_ASSIGN(t.dims[d], fixed<std::uint64_t>(what + " dims"));
        if (t.dims[d] == 0) return parse_err(what + ": dimension " + std::to_string(d) + " is 0");
        if (__builtin_mul_overflow(n, t.dims[d], &n) || n >= kMaxTensorElements) {
            return parse_err(what + ": element count overflows (too many elements)");
        }
    }
    t.n_elements = n;
    PYLON_TRY_ASSIGN(const std::uint32_t raw_type, fixed<std::uint32_t>(what + " type"));
    const auto info = type_info(raw_type);
    if (!info) return parse_err(what + ": unknown ggml type " + std::to_string(raw_type));
    t.type = info->type;
    if (t.dims[0] % info->block_size != 0) {
        return parse_err(what + ": row of " + std::to_string(t.dims[0]) +
                         " elements is not a multiple of the " + std::string(info->name) +
                         " block size " + std::to_string(info->block_size));
    }
    const auto row = row_bytes(t.type, t.dims[0]);
    if (!row) return parse_err(what + ": row byte size overflows");
    if (__builtin_mul_overflow(std::uint64_t{*row}, n / t.dims[0], &t.n_bytes)) {
        return parse_err(what + ": byte size overflows");
    }
    PYLON_TRY_ASSIGN(t.offset, fixed<std::uint64_t>(what + " offset"));
    if (t.offset % alignment != 0) {
        return parse_err(what + ": offset " + std::to_string(t.offset) +
                         " is not a multiple of the alignment " + std::to_string(alignment));
    }
    return {};
}

Result<void> Parser::place_tensors(File& file) {
    std::uint64_t data_offset = 0;
    const std::uint64_t a = file.alignment_;
    if (__builtin_add_overflow(pos_, a - 1, &data_offset)) return parse_err("offset overflows");
    data_offset -= data_offset % a;
    if (data_offset > bytes_.size()) {
        // A file without tensors may end before the padding (nothing follows it).
        if (!file.tensors_.empty()) {
            return parse_err("truncated file: data section starts at " +
                             std::to_string(data_offset) + " past the end of the file (" +
                             std::to_string(bytes_.size()) + " bytes)");
        }
        data_offset = bytes_.size();
    }
    file.data_offset_ = data_offset;
    const std::uint64_t data_size = bytes_.size() - data_offset;
    for (TensorInfo& t : file.tensors_) {
        if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
            return parse_err("tensor " + quoted(t.name) + ": data [" + std::to_string(t.offset) +
                             ", +" + std::to_string(t.n_bytes) +
                             ") extends past the end of the file (data section is " +
                             std::to_string(data_size) + " bytes)");
        }
        t.data = bytes_.data() + data_offset + t.offset;
    }
    std::vector<const TensorInfo*> by_offset;
    by_offset.reserve(file.tensors_.size());
    for (const TensorInfo& t : file.tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* x, const TensorInfo* y) { return x->offset < y->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
        const TensorInfo& prev = *by_offset[i - 1];
        if (prev.offset + prev.n_bytes > by_offset[i]->offset) {  // both are bounded by the file
            return parse_err("tensors " + quoted(prev.name) + " and " + quoted(by_offset[i]->name) +
                             " overlap");
        }
    }
    return {};
}

Result<void> Parser::run(File& file) {
    PYLON_TRY_ASSIGN(const std::uint32_t magic, fixed<std::uint32_t>("magic"));
    if (magic != detail::kMagic) return parse_err("bad magic: not a GGUF file");
    PYLON_TRY_ASSIGN(file.version_, fixed<std::uint32_t>("version"));
    if (file.version_ != 2 && file.version_ != 3) {
        return Error(Errc::unsupported, "unsupported GGUF version " +
                                            std::to_string(file.version_) + " (need 2 or 3)");
    }
    PYLON_TRY_ASSIGN(const std::uint64_t n_tensors, fixed<std::uint64_t>("tensor count"));
    PYLON_TRY_ASSIGN(const std::uint64_t n_kv, fixed<std::uint64_t>("metadata count"));
    if (n_tensors > limits_.max_tensors)
        return limit_err("tensor count", n_tensors, limits_.max_tensors);
    if (n_kv > limits_.max_kv) return limit_err("metadata count", n_kv, limits_.max_kv);
    // Both counts are <= 2^32 here (limits are u64 but sane), checked again for overflow.
    std::uint64_t min_bytes = 0;
    std::uint64_t kv_bytes = 0;
    std::uint64_t ti_bytes = 0;
    if (__builtin_mul_overflow(n_kv, kMinKvBytes, &kv_bytes) ||
        __builtin_mul_overflow(n_tensors, kMinTensorInfoBytes, &ti_bytes) ||
        __builtin_add_overflow(kv_bytes, ti_bytes, &min_bytes) || min_bytes > remaining()) {
        return parse_err("truncated file: " + std::to_string(n_kv) + " metadata pairs and " +
                         std::to_string(n_tensors) + " tensors cannot fit in " +
                         std::to_string(remaining()) + " bytes");
    }
    PYLON_TRY(metadata(file, n_kv));
    PYLON_TRY(alignment(file));
    file.tensors_.resize(n_tensors);
    for (TensorInfo& t : file.tensors_) PYLON_TRY(tensor_info(t, file.alignment_));
    if (auto dup = sort_index(file.tensors_by_name_, file.tensors_,
                              [](const TensorInfo& t) { return t.name; })) {
        return parse_err("duplicate tensor name " + quoted(*dup));
    }
    return place_tensors(file);
}

File::~File() {
    if (map_ != nullptr) ::munmap(map_, map_size_);
}

Result<std::shared_ptr<const File>> File::parse(std::span<const std::byte> bytes, Limits limits) {
    std::shared_ptr<File> file(new File());
    file->bytes_ = bytes;
    Parser parser(bytes, limits);
    PYLON_TRY(parser.run(*file));
    return std::shared_ptr<const File>(std::move(file));
}

Result<std::shared_ptr<const File>> File::open(const std::string& path, Limits limits) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Error::from_errno(errno, "open " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::from_errno(errno, "stat " + path);
    if (!S_ISREG(st.st_mode)) return Error(Errc::invalid_argument, path + " is not a regular file");
    if (st.st_size == 0) return parse_err("truncated file: " + path + " is empty");
    const auto size = static_cast<std::size_t>(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (map == MAP_FAILED) return Error::from_errno(errno, "mmap " + path);
    std::shared_ptr<File> file(new File());
    file->map_ = map;  // unmapped by ~File on every path from here
    file->map_size_ = size;
    file->bytes_ = std::span(static_cast<const std::byte*>(map), size);
    Parser parser(file->bytes_, limits);
    if (auto r = parser.run(*file); !r) return std::move(r).error().with_context(path);
    return std::shared_ptr<const File>(std::move(file));
}

void File::release(const std::byte* p, std::size_t n) const noexcept {
    if (map_ == nullptr || n == 0) return;
    const auto base = reinterpret_cast<std::uintptr_t>(map_);
    const auto first = reinterpret_cast<std::uintptr_t>(p);
    if (first < base || first - base > map_size_ || n > map_size_ - (first - base)) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const std::uintptr_t lo = (first + page - 1) / page * page;
    const std::uintptr_t hi = (first + n) / page * page;
    // The mapping is private and read-only: dropping it loses nothing.
    if (lo < hi) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

void File::prefetch() const noexcept {
    if (map_ == nullptr || data_offset_ >= map_size_) return;
    // madvise needs a page-aligned start: round the data section's start down.
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t start = data_offset_ - data_offset_ % page;
    ::madvise(static_cast<char*>(map_) + start, map_size_ - start, MADV_WILLNEED);
}

}  // namespace pylon::runtime::gguf
