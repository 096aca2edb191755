// GGUF reader and writer: round trips of every value and tensor type, and the known facts of the
// real files in tests/data/runtime/ (see its README). Hostile files: gguf_hostile_test.cpp.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <string>

#include "pylon/runtime/gguf.h"
#include "pylon/runtime/gguf_writer.h"
#include "temp_dir.h"

using namespace pylon::runtime;
using namespace pylon::runtime::gguf;

namespace {

const std::string kData = std::string(PYLON_TEST_DATA) + "/runtime/";

Value scalar(ValueType t, std::uint64_t u) {
    return Value{t, u};
}
Value scalar_i(ValueType t, std::int64_t i) {
    return Value{t, i};
}
Value array_of(ValueType t, std::vector<Value> items) {
    return Value{ValueType::array, Array{t, std::move(items)}};
}

std::byte pattern(std::size_t tensor, std::size_t i) {
    return static_cast<std::byte>((tensor * 131 + i * 7 + 1) & 0xff);
}

std::map<std::string, int> count_types(const File& f) {
    std::map<std::string, int> n;
    for (const auto& t : f.tensors()) ++n[std::string(type_name(t.type))];
    return n;
}

}  // namespace

TEST_CASE("gguf: every value type survives writer -> reader", "[gguf]") {
    Writer w;
    REQUIRE(w.set("v.u8", scalar(ValueType::u8, 255)).ok());
    REQUIRE(w.set("v.u16", scalar(ValueType::u16, 65535)).ok());
    REQUIRE(w.set("v.u32", scalar(ValueType::u32, 0xffffffffu)).ok());
    REQUIRE(w.set("v.u64", scalar(ValueType::u64, ~0ull)).ok());
    REQUIRE(w.set("v.i8", scalar_i(ValueType::i8, -128)).ok());
    REQUIRE(w.set("v.i16", scalar_i(ValueType::i16, -32768)).ok());
    REQUIRE(w.set("v.i32", scalar_i(ValueType::i32, -2147483647 - 1)).ok());
    REQUIRE(w.set("v.i64", scalar_i(ValueType::i64, -5)).ok());
    REQUIRE(w.set("v.f32", Value{ValueType::f32, 1.5}).ok());
    REQUIRE(w.set("v.f64", Value{ValueType::f64, -0.1}).ok());
    REQUIRE(w.set("v.bool", Value{ValueType::boolean, true}).ok());
    REQUIRE(w.set("v.str", Value{ValueType::string, std::string_view("h\0llo", 5)}).ok());
    REQUIRE(w.set("v.empty", array_of(ValueType::u32, {})).ok());
    REQUIRE(
        w.set("v.nested", array_of(ValueType::array,
                                   {array_of(ValueType::i16, {scalar_i(ValueType::i16, -3)}),
                                    array_of(ValueType::string,
                                             {Value{ValueType::string, std::string_view("x")}})}))
            .ok());
    w.set_strings("tokenizer.ggml.tokens", {"<unk>", "a", ""});
    w.set_f32s("tokenizer.ggml.scores", {0.5f, -1.0f, 2.0f});
    w.set_i32s("tokenizer.ggml.token_type", {2, 1, 1});
    w.set_u32("v.replaced", 1);
    w.set_u32("v.replaced", 7);

    const auto bytes = w.to_bytes();
    REQUIRE(bytes.ok());
    const auto f = File::parse(*bytes);
    REQUIRE(f.ok());
    const File& file = **f;
    REQUIRE(file.version() == 3);
    REQUIRE(file.metadata().size() == 18);
    CHECK(file.metadata().front().first == "v.u8");  // file order is insertion order
    CHECK(file.get_uint("v.u8").value() == 255);
    CHECK(file.get_uint("v.u16").value() == 65535);
    CHECK(file.get_uint("v.u32").value() == 0xffffffffu);
    CHECK(file.get_uint("v.u64").value() == ~0ull);
    CHECK_FALSE(file.find("v.u64")->as_int().has_value());  // does not fit int64
    CHECK(file.find("v.i8")->as_int() == -128);
    CHECK_FALSE(file.find("v.i8")->as_uint().has_value());
    CHECK(file.find("v.i16")->as_int() == -32768);
    CHECK(file.find("v.i32")->as_int() == -2147483647 - 1);
    CHECK(file.find("v.i64")->type == ValueType::i64);
    CHECK(file.get_float("v.f32").value() == 1.5);
    CHECK(file.get_float("v.f64").value() == -0.1);
    CHECK(file.get_float("v.u16").value() == 65535.0);  // integers read as numbers too
    CHECK(file.find("v.bool")->as_bool() == true);
    CHECK(file.get_string("v.str").value() == std::string_view("h\0llo", 5));
    CHECK(file.get_array("v.empty").value()->items.empty());
    CHECK(file.get_array("v.empty").value()->element_type == ValueType::u32);
    const Array* nested = file.get_array("v.nested").value();
    REQUIRE(nested->items.size() == 2);
    CHECK(nested->items[0].as_array()->items[0].as_int() == -3);
    CHECK(nested->items[1].as_array()->items[0].as_string() == "x");
    const Array* tokens = file.get_array("tokenizer.ggml.tokens").value();
    REQUIRE(tokens->items.size() == 3);
    CHECK(tokens->items[2].as_string() == "");
    CHECK(file.get_array("tokenizer.ggml.scores").value()->items[1].as_float() == -1.0);
    CHECK(file.get_array("tokenizer.ggml.token_type").value()->items[0].as_int() == 2);
    CHECK(file.get_uint("v.replaced").value() == 7);

    // Typed getters refuse other types and missing keys.
    CHECK(file.get_uint("v.i8").error().code() == pylon::Errc::parse_error);
    CHECK(file.get_string("v.u8").error().message().find("v.u8") != std::string::npos);
    CHECK(file.get_uint("nope").error().code() == pylon::Errc::not_found);
    CHECK(file.get_array("v.str").error().code() == pylon::Errc::parse_error);
    CHECK(file.find("v.zzz") == nullptr);
}

TEST_CASE("gguf: the writer refuses malformed values and tensors", "[gguf]") {
    Writer w;
    CHECK_FALSE(w.set("k", scalar(ValueType::u8, 256)).ok());
    CHECK_FALSE(w.set("k", scalar_i(ValueType::i32, std::int64_t{1} << 31)).ok());
    CHECK_FALSE(w.set("k", Value{ValueType::string, 1.0}).ok());
    CHECK_FALSE(w.set("k", array_of(ValueType::u8, {scalar(ValueType::u16, 1)})).ok());
    CHECK_FALSE(w.set("", scalar(ValueType::u8, 1)).ok());
    const std::vector<std::byte> four(4);
    CHECK_FALSE(w.add_tensor("t", GgmlType::Q8_0, {33}, four).ok());   // not whole blocks
    CHECK_FALSE(w.add_tensor("t", GgmlType::F32, {1, 0}, four).ok());  // zero dim
    CHECK_FALSE(w.add_tensor("t", GgmlType::F32, {1, 1, 1, 1, 1}, four).ok());
    CHECK_FALSE(w.add_tensor("t", GgmlType::F32, {2}, four).ok());  // wrong data size
    REQUIRE(w.add_tensor("t", GgmlType::F32, {1}, four).ok());
    CHECK_FALSE(w.add_tensor("t", GgmlType::F32, {1}, four).ok());  // duplicate
    w.set_u32("general.alignment", 3);
    CHECK_FALSE(w.to_bytes().ok());
    w.set_u64("general.alignment", 64);
    CHECK_FALSE(w.to_bytes().ok());
    w.set_u32("general.alignment", 64);
    CHECK(w.to_bytes().ok());
}

TEST_CASE("gguf: tensors of every type round trip through a file on disk", "[gguf]") {
    pylon::test::TempDir dir;
    Writer w;
    w.set_string("general.architecture", "test");
    w.set_u32("general.alignment", 64);
    std::vector<std::pair<std::string, std::uint64_t>> expect;  // name, n_bytes
    for (std::uint32_t raw = 0; raw < 40; ++raw) {
        const auto info = type_info(raw);
        if (!info) continue;
        const std::string name = "t." + std::string(info->name);
        const std::uint64_t n_bytes = 2ull * info->type_size * 3;
        const std::size_t index = expect.size();
        REQUIRE(w.add_tensor(name, info->type, {info->block_size * 2ull, 3},
                             [index, n_bytes](std::span<std::byte> out) {
                                 REQUIRE(out.size() == n_bytes);
                                 for (std::size_t i = 0; i < out.size(); ++i) {
                                     out[i] = pattern(index, i);
                                 }
                             })
                    .ok());
        expect.emplace_back(name, n_bytes);
    }
    REQUIRE(expect.size() == 20);
    const std::string path = (dir / "all.gguf").string();
    REQUIRE(w.write(path).ok());

    const auto f = File::open(path);
    REQUIRE(f.ok());
    const File& file = **f;
    file.prefetch();
    CHECK(file.alignment() == 64);
    CHECK(file.data_offset() % 64 == 0);
    REQUIRE(file.tensors().size() == expect.size());
    for (std::size_t k = 0; k < expect.size(); ++k) {
        const TensorInfo* t = file.find_tensor(expect[k].first);
        REQUIRE(t != nullptr);
        CHECK(t == &file.tensors()[k]);
        CHECK(t->n_bytes == expect[k].second);
        CHECK(t->offset % 64 == 0);
        CHECK(t->n_elements == t->dims[0] * 3);
        CHECK(t->data == file.bytes().data() + file.data_offset() + t->offset);
        bool same = true;
        for (std::size_t i = 0; i < t->n_bytes; ++i) same = same && t->data[i] == pattern(k, i);
        CHECK(same);
    }
    CHECK(file.find_tensor("t.Q4_2") == nullptr);
    // Padding between tensors is zeros (t.F32 is 24 bytes, padded to 64).
    const TensorInfo* f32 = file.find_tensor("t.F32");
    for (std::size_t i = f32->n_bytes; i < 64; ++i) CHECK(f32->data[i] == std::byte{0});

    // The atomic write leaves no temporary file behind.
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path()))
        ++entries;
    CHECK(entries == 1);
    CHECK_FALSE(w.write((dir / "missing" / "x.gguf").string()).ok());
}

TEST_CASE("gguf: stories260K files have the known layout", "[gguf]") {
    struct Case {
        const char* file;
        std::map<std::string, int> types;
        std::string embd_type;
    };
    const std::vector<Case> cases = {
        {"stories260K-f32.gguf", {{"F32", 48}}, "F32"},
        {"stories260K-f16.gguf", {{"F16", 37}, {"F32", 11}}, "F16"},
        {"stories260K-q8_0.gguf", {{"Q8_0", 32}, {"F16", 5}, {"F32", 11}}, "Q8_0"},
        {"stories260K-q4_0.gguf", {{"Q4_0", 31}, {"Q8_0", 1}, {"F16", 5}, {"F32", 11}}, "Q4_0"},
    };
    for (const auto& c : cases) {
        INFO(c.file);
        const auto f = File::open(kData + c.file);
        REQUIRE(f.ok());
        const File& file = **f;
        CHECK(file.version() == 3);
        CHECK(file.alignment() == 32);
        CHECK(file.tensors().size() == 48);
        CHECK(count_types(file) == c.types);
        CHECK(file.get_string("general.architecture").value() == "llama");
        CHECK(file.get_uint("llama.embedding_length").value() == 64);
        CHECK(file.get_uint("llama.block_count").value() == 5);
        CHECK(file.get_uint("llama.attention.head_count_kv").value() == 4);
        CHECK(file.get_uint("llama.context_length").value() == 512);
        CHECK(file.get_float("llama.attention.layer_norm_rms_epsilon").value() ==
              Approx(1e-5).epsilon(1e-6));
        CHECK(file.get_uint("tokenizer.ggml.bos_token_id").value() == 1);
        const Array* tokens = file.get_array("tokenizer.ggml.tokens").value();
        REQUIRE(tokens->items.size() == 512);
        CHECK(tokens->element_type == ValueType::string);
        CHECK(tokens->items[0].as_string() == "<unk>");
        CHECK(tokens->items[3].as_string() == "<0x00>");
        const TensorInfo* embd = file.find_tensor("token_embd.weight");
        REQUIRE(embd != nullptr);
        CHECK(embd->dims == std::vector<std::uint64_t>{64, 512});
        CHECK(std::string(type_name(embd->type)) == c.embd_type);
        CHECK(embd->n_elements == 64 * 512);
        const TensorInfo* down = file.find_tensor("blk.4.ffn_down.weight");
        REQUIRE(down != nullptr);
        CHECK(down->dims == std::vector<std::uint64_t>{172, 64});
        std::uint64_t total = 0;
        for (const auto& t : file.tensors()) total += t.n_bytes;
        CHECK(file.data_offset() + total <= file.bytes().size());
    }
    // The f32 file: the first row of token_embd is 64 finite floats.
    const auto f = File::open(kData + "stories260K-f32.gguf");
    REQUIRE(f.ok());
    const TensorInfo* embd = (*f)->find_tensor("token_embd.weight");
    REQUIRE(embd->n_bytes == 64 * 512 * 4);
}

TEST_CASE("gguf: the Llama-2 vocab file has no tensors and 32000 tokens", "[gguf]") {
    const auto f = File::open(kData + "ggml-vocab-llama-spm.gguf");
    REQUIRE(f.ok());
    const File& file = **f;
    CHECK(file.tensors().empty());
    CHECK(file.get_string("tokenizer.ggml.model").value() == "llama");
    CHECK(file.get_array("tokenizer.ggml.tokens").value()->items.size() == 32000);
    CHECK(file.get_array("tokenizer.ggml.scores").value()->element_type == ValueType::f32);
    CHECK(file.find("tokenizer.ggml.add_bos_token")->as_bool() == true);

    // copy_metadata carries the tokenizer into a new file unchanged.
    Writer w;
    REQUIRE(w.copy_metadata(file, "tokenizer.").ok());
    const auto bytes = w.to_bytes();
    REQUIRE(bytes.ok());
    const auto copy = File::parse(*bytes);
    REQUIRE(copy.ok());
    CHECK((*copy)->find("general.architecture") == nullptr);
    const Array* a = file.get_array("tokenizer.ggml.tokens").value();
    const Array* b = (*copy)->get_array("tokenizer.ggml.tokens").value();
    REQUIRE(a->items.size() == b->items.size());
    CHECK(a->items[31999].as_string() == b->items[31999].as_string());
    CHECK((*copy)->get_array("tokenizer.ggml.scores").value()->items[500].as_float() ==
          file.get_array("tokenizer.ggml.scores").value()->items[500].as_float());
}

TEST_CASE("gguf: open reports missing and empty files", "[gguf]") {
    pylon::test::TempDir dir;
    CHECK(File::open((dir / "nope.gguf").string()).error().code() == pylon::Errc::not_found);
    const auto empty = dir.write("empty.gguf", "");
    const auto r = File::open(empty.string());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().what(), Catch::Contains("truncated"));
}
