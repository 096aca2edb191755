// Hostile GGUF files: each must be refused with an Error that names the problem, never a crash
// (run under ASan/UBSan in the sanitizer CI job to make out-of-bounds reads visible).
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "pylon/runtime/gguf.h"
#include "pylon/runtime/gguf_writer.h"

using namespace pylon::runtime;
using namespace pylon::runtime::gguf;

namespace {

// Hand-made GGUF bytes.
struct Bytes {
    std::vector<std::byte> b;
    template <typename T>
    Bytes& put(T v) {
        const auto* p = reinterpret_cast<const std::byte*>(&v);
        b.insert(b.end(), p, p + sizeof(T));
        return *this;
    }
    Bytes& u32(std::uint32_t v) { return put(v); }
    Bytes& u64(std::uint64_t v) { return put(v); }
    Bytes& str(std::string_view s) {
        u64(s.size());
        for (char c : s) b.push_back(static_cast<std::byte>(c));
        return *this;
    }
    Bytes& header(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
        return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
    }
    Bytes& kv_u32(std::string_view key, std::uint32_t v) { return str(key).u32(4).u32(v); }
    Bytes& tensor(std::string_view name, std::vector<std::uint64_t> dims, std::uint32_t type,
                  std::uint64_t offset) {
        str(name).u32(static_cast<std::uint32_t>(dims.size()));
        for (auto d : dims) u64(d);
        return u32(type).u64(offset);
    }
    Bytes& pad(std::size_t align = 32) {
        while (b.size() % align != 0) b.push_back(std::byte{0});
        return *this;
    }
    Bytes& zeros(std::size_t n) {
        b.insert(b.end(), n, std::byte{0});
        return *this;
    }
};

std::string refused(std::span<const std::byte> bytes, Limits limits = {}) {
    const auto r = File::parse(bytes, limits);
    if (r.ok()) return "(accepted)";
    return r.error().what();
}

std::vector<std::byte> small_valid_file() {
    Writer w;
    w.set_string("general.architecture", "llama");
    w.set_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
    w.set_f32s("tokenizer.ggml.scores", {0, 0, 0, -1});
    REQUIRE(w.set("nested", Value{ValueType::array,
                                  Array{ValueType::array,
                                        {Value{ValueType::array, Array{ValueType::u8, {}}}}}})
                .ok());
    std::vector<std::byte> a(32 * 4, std::byte{1});
    std::vector<std::byte> q(34 * 2, std::byte{2});
    REQUIRE(w.add_tensor("a", GgmlType::F32, {32}, a).ok());
    REQUIRE(w.add_tensor("q", GgmlType::Q8_0, {32, 2}, q).ok());
    auto bytes = w.to_bytes();
    REQUIRE(bytes.ok());
    return *bytes;
}

}  // namespace

TEST_CASE("gguf hostile: truncation at every byte is refused", "[gguf]") {
    const auto full = small_valid_file();
    const auto f = File::parse(full);
    REQUIRE(f.ok());
    // The last tensor (q: 68 bytes) ends 28 bytes before the file's final padding.
    const std::size_t end = (*f)->data_offset() + (*f)->find_tensor("q")->offset + 68;
    REQUIRE(end <= full.size());
    for (std::size_t n = 0; n < end; ++n) {
        INFO("prefix of " << n << " bytes");
        const auto msg = refused(std::span(full.data(), n));
        const bool named = msg.find("truncated") != std::string::npos ||
                           msg.find("past the end") != std::string::npos;
        CHECK(named);
        if (!named) FAIL(msg);
    }
}

TEST_CASE("gguf hostile: header", "[gguf]") {
    auto bad_magic = Bytes().u32(0x46554746).u32(3).u64(0).u64(0);
    CHECK_THAT(refused(bad_magic.b), Catch::Contains("magic"));
    for (std::uint32_t version : {0u, 1u, 4u}) {
        const auto b = Bytes().header(0, 0, version);
        const auto r = File::parse(b.b);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == pylon::Errc::unsupported);
        CHECK_THAT(r.error().what(), Catch::Contains("version"));
    }
    CHECK(File::parse(Bytes().header(0, 0, 2).b).ok());
    CHECK(File::parse(Bytes().header(0, 0, 3).b).ok());
    CHECK_THAT(refused(Bytes().header(std::uint64_t{1} << 40, 0).b),
               Catch::Contains("tensor count"));
    CHECK_THAT(refused(Bytes().header(0, ~0ull).b), Catch::Contains("metadata count"));
    // Counts under the limits that cannot fit in the bytes are refused before any reservation.
    CHECK_THAT(refused(Bytes().header(60000, 60000).zeros(100).b), Catch::Contains("cannot fit"));
}

TEST_CASE("gguf hostile: metadata", "[gguf]") {
    // String lengths past the end, at 2^63, and at 2^63 with no string limit (no overflow).
    CHECK_THAT(refused(Bytes().header(0, 1).u64(1000).zeros(40).b), Catch::Contains("truncated"));
    const auto huge = Bytes().header(0, 1).u64(std::uint64_t{1} << 63).zeros(40);
    CHECK_THAT(refused(huge.b), Catch::Contains("limit"));
    Limits unlimited;
    unlimited.max_string_bytes = ~0ull;
    CHECK_THAT(refused(huge.b, unlimited), Catch::Contains("truncated"));
    CHECK_THAT(refused(Bytes().header(0, 1).str("").u32(4).u32(1).b), Catch::Contains("empty"));

    CHECK_THAT(refused(Bytes().header(0, 1).str("k").u32(13).u32(0).b),
               Catch::Contains("unknown value type 13"));
    CHECK_THAT(refused(Bytes().header(0, 1).str("k").u32(9).u32(99).u64(0).b),
               Catch::Contains("unknown array element type 99"));
    CHECK_THAT(refused(Bytes().header(0, 1).str("k").u32(9).u32(4).u64(~0ull).b),
               Catch::Contains("array length"));
    CHECK_THAT(refused(Bytes().header(0, 1).str("k").u32(9).u32(4).u64(1 << 20).zeros(64).b),
               Catch::Contains("truncated"));
    CHECK_THAT(refused(Bytes().header(0, 1).str("k").u32(7).put<std::uint8_t>(2).b),
               Catch::Contains("boolean"));

    // Arrays nested 100 deep.
    Bytes deep;
    deep.header(0, 1).str("deep").u32(9);
    for (int i = 0; i < 100; ++i) deep.u32(9).u64(1);
    deep.u32(0).u64(0);
    CHECK_THAT(refused(deep.b), Catch::Contains("depth"));

    // Total array items over the file-wide limit (each array alone is under its limit).
    Limits few;
    few.max_total_array_items = 10;
    auto many = Bytes().header(0, 2).str("a").u32(9).u32(0).u64(6).zeros(6);
    many.str("b").u32(9).u32(0).u64(6).zeros(6);
    CHECK_THAT(refused(many.b, few), Catch::Contains("array items in the file"));

    auto dup = Bytes().header(0, 2).kv_u32("k.a", 1).kv_u32("k.a", 2);
    CHECK_THAT(refused(dup.b), Catch::Contains("duplicate metadata key 'k.a'"));
}

TEST_CASE("gguf hostile: alignment", "[gguf]") {
    for (std::uint32_t a : {0u, 3u, 48u}) {
        const auto b = Bytes().header(0, 1).kv_u32("general.alignment", a);
        CHECK_THAT(refused(b.b), Catch::Contains("power of two"));
    }
    const auto u64 = Bytes().header(0, 1).str("general.alignment").u32(10).u64(32);
    CHECK_THAT(refused(u64.b), Catch::Contains("must be a u32"));
    const auto str = Bytes().header(0, 1).str("general.alignment").u32(8).str("32");
    CHECK_THAT(refused(str.b), Catch::Contains("must be a u32"));
    // A valid alignment is honoured: offset 16 is fine with 16, not with the default 32.
    auto ok16 = Bytes().header(2, 1).kv_u32("general.alignment", 16);
    ok16.tensor("a", {4}, 0, 0).tensor("b", {4}, 0, 16).pad(16).zeros(32);
    const auto f = File::parse(ok16.b);
    REQUIRE(f.ok());
    CHECK((*f)->alignment() == 16);
    auto mis = Bytes().header(1, 0).tensor("a", {4}, 0, 16).pad().zeros(64);
    CHECK_THAT(refused(mis.b), Catch::Contains("alignment"));
}

TEST_CASE("gguf hostile: tensor infos", "[gguf]") {
    const auto one = [](std::vector<std::uint64_t> dims, std::uint32_t type, std::uint64_t off) {
        auto b = Bytes().header(1, 0).tensor("w", std::move(dims), type, off).pad();
        b.zeros(256);
        return refused(b.b);
    };
    CHECK(one({4}, 0, 0) == "(accepted)");
    CHECK_THAT(one({4}, 4, 0), Catch::Contains("unknown ggml type 4") && Catch::Contains("'w'"));
    CHECK_THAT(one({4}, 99, 0), Catch::Contains("unknown ggml type 99"));
    CHECK_THAT(one({}, 0, 0), Catch::Contains("n_dims 0"));
    CHECK_THAT(one({1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0), Catch::Contains("n_dims 9"));
    CHECK_THAT(one({4, 0}, 0, 0), Catch::Contains("dimension 1 is 0"));
    CHECK_THAT(one({1ull << 32, 1ull << 32}, 0, 0), Catch::Contains("overflow"));
    CHECK_THAT(one({1ull << 31, 1ull << 31}, 0, 0), Catch::Contains("overflow"));  // 2^62
    CHECK_THAT(one({1ull << 61}, 28, 0), Catch::Contains("overflow"));  // F64: 2^64 bytes
    CHECK_THAT(one({33, 2}, 8, 0), Catch::Contains("block size"));
    CHECK_THAT(one({4}, 0, 1ull << 40), Catch::Contains("past the end"));
    CHECK_THAT(one({64}, 0, 32), Catch::Contains("past the end"));         // 256 bytes at 32 of 256
    CHECK_THAT(one({4}, 0, ~0ull - 31), Catch::Contains("past the end"));  // offset + size wraps
    CHECK_THAT(one({4}, 0, 8), Catch::Contains("alignment"));

    auto overlap = Bytes().header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).pad();
    overlap.zeros(128);
    CHECK_THAT(refused(overlap.b), Catch::Contains("overlap"));
    auto same = Bytes().header(2, 0).tensor("a", {4}, 0, 0).tensor("a", {4}, 0, 32).pad();
    same.zeros(128);
    CHECK_THAT(refused(same.b), Catch::Contains("duplicate tensor name 'a'"));
    auto unnamed = Bytes().header(1, 0).tensor("", {4}, 0, 0).pad().zeros(64);
    CHECK_THAT(refused(unnamed.b), Catch::Contains("empty"));
    // Data section start past the end of a file that has tensors.
    auto nodata = Bytes().header(1, 0).tensor("a", {4}, 0, 0);
    CHECK_THAT(refused(nodata.b), Catch::Contains("truncated"));
}

TEST_CASE("gguf hostile: byte flips of a valid file never crash", "[gguf]") {
    // Not an assertion on the outcome (a flip may leave the file valid): the point is that every
    // mutation is parsed without a crash or out-of-bounds read (visible under ASan).
    const auto full = small_valid_file();
    const auto f = File::parse(full);
    REQUIRE(f.ok());
    const std::size_t header = (*f)->data_offset();
    int refused_count = 0;
    for (std::size_t i = 0; i < header; ++i) {
        for (std::uint8_t x : {0x01, 0x80, 0xff}) {
            auto m = full;
            m[i] ^= std::byte{x};
            const auto r = File::parse(m);
            if (!r.ok()) {
                ++refused_count;
                continue;
            }
            for (const auto& t : (*r)->tensors()) {
                REQUIRE(t.data >= m.data());
                REQUIRE(t.data + t.n_bytes <= m.data() + m.size());
            }
        }
    }
    CHECK(refused_count > static_cast<int>(header));  // most flips break the structure
}
