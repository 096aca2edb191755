// Synthetic model generator: shape parsing, per-tensor types, that written files load and run,
// determinism per seed, the generated and the copied vocabulary, the size cap.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "pylon/runtime/context.h"
#include "pylon/runtime/gguf.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/synth.h"
#include "pylon/runtime/tokenizer.h"
#include "temp_dir.h"

using namespace pylon::runtime;

namespace {

std::string data_file(const std::string& name) {
    return std::string(PYLON_TEST_DATA) + "/runtime/" + name;
}

constexpr std::string_view kTinyShape =
    "dim=64,ffn=128,layers=2,heads=4,kv_heads=2,vocab=300,ctx=64";

SynthOptions tiny(GgmlType type, std::string_view shape = kTinyShape) {
    SynthOptions o;
    o.shape = parse_synth_shape(shape).value();
    o.type = type;
    o.seed = 7;
    return o;
}

GgmlType tensor_type(const gguf::File& f, const std::string& name) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    REQUIRE(t != nullptr);
    return t->type;
}

std::vector<std::uint64_t> tensor_dims(const gguf::File& f, const std::string& name) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    REQUIRE(t != nullptr);
    return t->dims;
}

// Evaluates a few tokens and checks every logit is finite and that they are not all equal.
void check_runs(const std::shared_ptr<const Model>& model) {
    auto ctx = Context::create(model, {});
    REQUIRE(ctx);
    const std::vector<std::int32_t> tokens = {1, 5, 42, 260, 7};
    auto logits = (*ctx)->eval(tokens, true);
    REQUIRE(logits);
    REQUIRE(logits->size() == tokens.size() * model->hparams().n_vocab);
    float lo = (*logits)[0];
    float hi = lo;
    for (float v : *logits) {
        REQUIRE(std::isfinite(v));
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    CHECK(hi > lo);
}

}  // namespace

TEST_CASE("synth: presets and key=value shapes parse", "[synth]") {
    CHECK(parse_synth_shape("synth110M").value() == SynthShape::synth110M());
    CHECK(parse_synth_shape("stories260K").value() == SynthShape::stories260K());
    CHECK(SynthShape::synth110M().n_params() == 134'105'856);  // llama.cpp's synth110M-f32
    CHECK(SynthShape::stories260K().n_params() == 292'800);    // 260,032 + the untied classifier

    const auto s =
        parse_synth_shape("dim=768,ffn=2048,layers=12,heads=12,kv_heads=12,vocab=32000,ctx=1024");
    REQUIRE(s);
    CHECK(*s == SynthShape::synth110M());
    CHECK(parse_synth_shape(format_synth_shape(*s)).value() == *s);

    const auto d = parse_synth_shape("dim=64,ffn=172,layers=5,heads=8,vocab=512,tied");
    REQUIRE(d);
    CHECK(d->n_head_kv == 8);  // defaults to heads
    CHECK(d->n_ctx == 2048);
    CHECK(d->tied_output);
    CHECK(parse_synth_shape(format_synth_shape(*d)).value() == *d);

    const auto o = parse_synth_shape("stories260K,vocab=300,tied");
    REQUIRE(o);
    CHECK(o->n_vocab == 300);
    CHECK(o->n_head_kv == 4);
    CHECK(o->tied_output);
}

TEST_CASE("synth: bad shapes are refused with a reason", "[synth]") {
    const auto refuses = [](std::string_view text, pylon::Errc code, std::string_view needle) {
        INFO(text);
        const auto r = parse_synth_shape(text);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == code);
        CHECK_THAT(r.error().what(), Catch::Contains(std::string(needle)));
    };
    using pylon::Errc;
    refuses("", Errc::invalid_argument, "empty");
    refuses("llama7B", Errc::invalid_argument, "unknown preset");
    refuses("dim=64,ffn=128,layers=2,heads=4,vocab=300,colour=3", Errc::invalid_argument,
            "unknown key 'colour'");
    refuses("dim=64,dim=64,ffn=128,layers=2,heads=4,vocab=300", Errc::invalid_argument, "twice");
    refuses("dim=64,ffn=128,layers=2,heads=4", Errc::invalid_argument, "missing key 'vocab'");
    refuses("dim=64,ffn=12x,layers=2,heads=4,vocab=300", Errc::invalid_argument, "not a number");
    refuses("dim=64,ffn=-1,layers=2,heads=4,vocab=300", Errc::invalid_argument, "not a number");
    refuses("dim=64,ffn=,layers=2,heads=4,vocab=300", Errc::invalid_argument, "not a number");
    refuses("dim=64,ffn=99999999999,layers=2,heads=4,vocab=300", Errc::invalid_argument,
            "not a number");
    refuses("dim=64,ffn=128,layers=0,heads=4,vocab=300", Errc::limit_exceeded, "layers = 0");
    refuses("dim=1000000,ffn=128,layers=2,heads=4,vocab=300", Errc::limit_exceeded, "dim");
    refuses("dim=64,ffn=128,layers=2,heads=5,vocab=300", Errc::invalid_argument,
            "not a multiple of heads");
    refuses("dim=64,ffn=128,layers=2,heads=4,kv_heads=3,vocab=300", Errc::invalid_argument,
            "not a multiple of kv_heads");
    refuses("dim=12,ffn=128,layers=2,heads=4,vocab=300", Errc::invalid_argument, "even");
    refuses("stories260K,64", Errc::invalid_argument, "not key=value");
}

TEST_CASE("synth: every type writes a model that loads and runs", "[synth]") {
    pylon::test::TempDir dir;
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
        DYNAMIC_SECTION("type " << type_name(type)) {
            const std::string path = (dir / "tiny.gguf").string();
            const auto report = write_synth_model(tiny(type), path);
            REQUIRE(report);
            auto model = Model::load(path);
            REQUIRE(model);
            const LlamaHparams& hp = (*model)->hparams();
            CHECK(hp.n_embd == 64);
            CHECK(hp.n_ff == 128);
            CHECK(hp.n_layer == 2);
            CHECK(hp.n_head == 4);
            CHECK(hp.n_head_kv == 2);
            CHECK(hp.n_vocab == 300);
            CHECK(hp.n_ctx_train == 64);
            CHECK(hp.n_rot == 16);
            CHECK_FALSE((*model)->tied_output());
            CHECK(report->n_tensors == 3 + 2 * 9);
            CHECK(report->n_params == (*model)->n_params());
            CHECK(report->n_params == tiny(type).shape.n_params());

            const gguf::File& f = (*model)->gguf();
            CHECK(f.tensors().size() == report->n_tensors);
            CHECK(f.bytes().size() == report->n_bytes);
            CHECK(f.alignment() == 32);
            CHECK(tensor_type(f, "blk.1.attn_norm.weight") == GgmlType::F32);
            CHECK(tensor_type(f, "output_norm.weight") == GgmlType::F32);
            for (const char* name : {"token_embd.weight", "output.weight", "blk.0.attn_q.weight",
                                     "blk.1.attn_k.weight", "blk.0.ffn_down.weight"}) {
                INFO(name);
                CHECK(tensor_type(f, name) == type);
            }
            CHECK(tensor_dims(f, "blk.0.attn_k.weight") == std::vector<std::uint64_t>{64, 32});
            CHECK(tensor_dims(f, "blk.0.ffn_down.weight") == std::vector<std::uint64_t>{128, 64});
            CHECK(tensor_dims(f, "blk.0.ffn_up.weight") == std::vector<std::uint64_t>{64, 128});
            const std::uint64_t want_ftype = type == GgmlType::F32    ? 0
                                             : type == GgmlType::F16  ? 1
                                             : type == GgmlType::Q8_0 ? 7
                                                                      : 2;
            CHECK(f.get_uint("general.file_type").value() == want_ftype);
            CHECK((*model)->layers()[0].attn_norm == std::vector<float>(64, 1.0f));
            check_runs(*model);
        }
    }
}

TEST_CASE("synth: weights are N(0, stddev^2)", "[synth]") {
    pylon::test::TempDir dir;
    SynthOptions o = tiny(GgmlType::F32);
    o.stddev = 0.5f;
    REQUIRE(write_synth_model(o, (dir / "m.gguf").string()));
    auto file = gguf::File::open((dir / "m.gguf").string());
    REQUIRE(file);
    const gguf::TensorInfo* t = (*file)->find_tensor("token_embd.weight");
    REQUIRE(t != nullptr);
    const auto* x = reinterpret_cast<const float*>(t->data);
    const std::size_t n = t->n_elements;  // 19200
    double sum = 0, sum2 = 0;
    std::size_t beyond_2sd = 0;
    for (std::size_t i = 0; i < n; ++i) {
        sum += x[i];
        sum2 += double{x[i]} * x[i];
        if (std::fabs(x[i]) > 1.0f) ++beyond_2sd;
    }
    const double mean = sum / static_cast<double>(n);
    const double sd = std::sqrt(sum2 / static_cast<double>(n) - mean * mean);
    CHECK(std::fabs(mean) < 0.02);  // 5 standard errors
    CHECK(sd == Approx(0.5).epsilon(0.03));
    // 4.55% of a normal lies beyond 2 sd.
    CHECK(static_cast<double>(beyond_2sd) / static_cast<double>(n) == Approx(0.0455).margin(0.008));
}

TEST_CASE("synth: rows that do not fill blocks fall back to F16; output and embd types",
          "[synth]") {
    pylon::test::TempDir dir;
    SynthOptions o = tiny(GgmlType::Q4_0, "stories260K,vocab=300");  // ffn=172
    o.output_type = GgmlType::Q8_0;
    o.embd_type = GgmlType::F16;
    const std::string path = (dir / "m.gguf").string();
    REQUIRE(write_synth_model(o, path));
    auto model = Model::load(path);
    REQUIRE(model);
    const gguf::File& f = (*model)->gguf();
    CHECK(tensor_type(f, "blk.0.ffn_down.weight") == GgmlType::F16);  // rows of 172
    CHECK(tensor_dims(f, "blk.0.ffn_down.weight") == std::vector<std::uint64_t>{172, 64});
    CHECK(tensor_type(f, "blk.0.ffn_up.weight") == GgmlType::Q4_0);
    CHECK(tensor_type(f, "blk.4.attn_v.weight") == GgmlType::Q4_0);
    CHECK(tensor_type(f, "output.weight") == GgmlType::Q8_0);
    CHECK(tensor_type(f, "token_embd.weight") == GgmlType::F16);
    CHECK(f.get_uint("general.file_type").value() == 2);
    check_runs(*model);

    SECTION("tied output has no output.weight") {
        o.shape.tied_output = true;
        REQUIRE(write_synth_model(o, path));
        auto tied = Model::load(path);
        REQUIRE(tied);
        CHECK((*tied)->tied_output());
        CHECK((*tied)->gguf().find_tensor("output.weight") == nullptr);
        check_runs(*tied);
    }
}

TEST_CASE("synth: the same seed gives the same bytes, another seed other weights", "[synth]") {
    pylon::test::TempDir dir;
    SynthOptions o = tiny(GgmlType::Q8_0);
    REQUIRE(write_synth_model(o, (dir / "a.gguf").string()));
    REQUIRE(write_synth_model(o, (dir / "b.gguf").string()));
    o.seed = 8;
    REQUIRE(write_synth_model(o, (dir / "c.gguf").string()));
    const std::string a = pylon::test::read_all(dir / "a.gguf");
    CHECK(a == pylon::test::read_all(dir / "b.gguf"));
    const std::string c = pylon::test::read_all(dir / "c.gguf");
    REQUIRE(a.size() == c.size());
    CHECK(a != c);
    // Every matrix differs, not just one.
    auto fa = gguf::File::open((dir / "a.gguf").string());
    auto fc = gguf::File::open((dir / "c.gguf").string());
    REQUIRE(fa);
    REQUIRE(fc);
    for (const gguf::TensorInfo& t : (*fa)->tensors()) {
        if (t.dims.size() != 2) continue;
        INFO(t.name);
        const gguf::TensorInfo* u = (*fc)->find_tensor(t.name);
        REQUIRE(u != nullptr);
        CHECK(std::memcmp(t.data, u->data, t.n_bytes) != 0);
    }
}

TEST_CASE("synth: the generated vocabulary is a valid llama tokenizer", "[synth]") {
    pylon::test::TempDir dir;
    const std::string path = (dir / "m.gguf").string();
    REQUIRE(write_synth_model(tiny(GgmlType::F16), path));
    auto file = gguf::File::open(path);
    REQUIRE(file);
    auto tok = Tokenizer::from_gguf(**file);
    REQUIRE(tok);
    CHECK(tok->n_vocab() == 300);
    CHECK(tok->has_byte_fallback());
    CHECK(tok->piece(0) == "<unk>");
    CHECK(tok->is_control(1));
    CHECK(tok->is_control(2));
    CHECK(tok->type(3 + 0x41) == TokenType::byte);
    const std::string space = "\xE2\x96\x81";  // U+2581
    CHECK(tok->find(space + "a").has_value());
    CHECK(tok->find(space).has_value());
    const std::string text = "a b? \xC3\xA9";
    const auto ids = tok->encode(text, true);
    REQUIRE(ids.size() >= 2);
    CHECK(ids.front() == 1);
    CHECK(tok->decode(ids) == " " + text);

    auto small = write_synth_model(tiny(GgmlType::F32, "stories260K,vocab=258"), path);
    REQUIRE_FALSE(small);
    CHECK(small.error().code() == pylon::Errc::invalid_argument);
}

TEST_CASE("synth: --vocab-from copies a real tokenizer", "[synth]") {
    pylon::test::TempDir dir;
    const std::string src_path = data_file("stories260K-f32.gguf");
    SynthOptions o = tiny(GgmlType::Q8_0, "stories260K");
    o.vocab_from = src_path;
    const std::string path = (dir / "m.gguf").string();
    REQUIRE(write_synth_model(o, path));
    auto model = Model::load(path);
    REQUIRE(model);
    CHECK((*model)->hparams().n_vocab == 512);
    CHECK((*model)->hparams().n_head_kv == 4);
    CHECK(tensor_type((*model)->gguf(), "blk.0.ffn_down.weight") == GgmlType::F16);
    check_runs(*model);

    auto src = gguf::File::open(src_path);
    REQUIRE(src);
    auto want = Tokenizer::from_gguf(**src);
    auto got = Tokenizer::from_gguf((*model)->gguf());
    REQUIRE(want);
    REQUIRE(got);
    REQUIRE(got->n_vocab() == want->n_vocab());
    for (std::int32_t id = 0; id < want->n_vocab(); ++id) {
        REQUIRE(got->piece(id) == want->piece(id));
        REQUIRE(got->score(id) == want->score(id));
        REQUIRE(got->type(id) == want->type(id));
    }
    const std::string sentence = "Once upon a time, there was a little girl named Lily.";
    CHECK(got->encode(sentence) == want->encode(sentence));
    CHECK(got->encode(sentence).size() > 5);

    SECTION("a token count other than vocab is refused and writes nothing") {
        o.shape.n_vocab = 300;
        const std::string other = (dir / "other.gguf").string();
        auto r = write_synth_model(o, other);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == pylon::Errc::invalid_argument);
        CHECK_THAT(r.error().what(), Catch::Contains("512 tokens"));
        CHECK_FALSE(std::filesystem::exists(other));
    }
    SECTION("a missing file is an error") {
        o.vocab_from = (dir / "nope.gguf").string();
        CHECK_FALSE(write_synth_model(o, (dir / "x.gguf").string()));
    }
}

TEST_CASE("synth: sizes past the cap, bad types and bad stddev are refused", "[synth]") {
    pylon::test::TempDir dir;
    const std::string path = (dir / "big.gguf").string();
    SynthOptions o = tiny(GgmlType::F32, "dim=16384,ffn=65536,layers=64,heads=128,vocab=32000");
    const auto estimate = estimate_synth_bytes(o);
    REQUIRE(estimate);
    CHECK(*estimate > kSynthMaxBytes);
    auto r = write_synth_model(o, path);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == pylon::Errc::limit_exceeded);
    CHECK_FALSE(std::filesystem::exists(path));

    SynthOptions q = tiny(GgmlType::Q4_0);
    const auto small = estimate_synth_bytes(q);
    REQUIRE(small);
    auto written = write_synth_model(q, path);
    REQUIRE(written);
    // The estimate is close (the header term is rough).
    CHECK(static_cast<double>(*small) ==
          Approx(static_cast<double>(written->n_bytes)).epsilon(0.1));

    q.type = GgmlType::Q4_K;
    CHECK(write_synth_model(q, path).error().code() == pylon::Errc::unsupported);
    q.type = GgmlType::Q4_0;
    q.output_type = GgmlType::BF16;
    CHECK(write_synth_model(q, path).error().code() == pylon::Errc::unsupported);
    q.output_type.reset();
    q.stddev = 0.0f;
    CHECK(write_synth_model(q, path).error().code() == pylon::Errc::invalid_argument);
    q.stddev = std::nanf("");
    CHECK(write_synth_model(q, path).error().code() == pylon::Errc::invalid_argument);
}
