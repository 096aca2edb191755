// write_synth_pair: a synthetic draft and a target that extends it (see synth.h for the
// construction and why).
//
// Both files are plain synthetic llama models (synth_model.cpp) from the same seed, so every
// tensor the target shares with the draft (token_embd, output_norm, output, blk.0 ..
// blk.<draft layers - 1>) has the same name, hence the same random stream and the same bytes.
// Metadata keys beyond llama.cpp's, for provenance (llama.cpp ignores them):
//   pylon.synth_pair.role           "draft" or "target"
//   pylon.synth_pair.logit_stddev   f32, both files
//   pylon.synth_pair.shared_layers  u32, target only: the draft's layer count
//   pylon.synth_pair.divergence     f32, target only
// The draft carries no key that depends on the target, so one draft serves every divergence.
#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <system_error>

#include "pylon/common/error.h"
#include "pylon/common/file_io.h"
#include "pylon/runtime/synth.h"
#include "synth/synth_model.h"

namespace pylon::runtime {
namespace {

constexpr float kMaxDivergence = 100.0f;
constexpr float kMaxLogitStddev = 1000.0f;

SynthOptions member_options(const SynthPairOptions& p, const SynthShape& shape) {
    SynthOptions o;
    o.shape = shape;
    o.type = p.type;
    o.seed = p.seed;
    o.stddev = p.stddev;
    o.vocab_from = p.vocab_from;
    o.force = true;  // the cap applies to the pair as a whole (checked by write_synth_pair)
    return o;
}

std::string format_float(float v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
    return buf;
}

Result<void> check_pair(const SynthPairOptions& p, const std::string& target_path,
                        const std::string& draft_path) {
    if (p.draft_shape.tied_output) {
        return Error(Errc::invalid_argument,
                     "draft_shape: a pair needs an untied output head (its head is scaled by "
                     "logit_stddev, the token embedding must not be)");
    }
    if (p.extra_layers == 0) {
        return Error(Errc::invalid_argument,
                     "extra_layers must be at least 1 (the target is the draft plus extra layers)");
    }
    if (!std::isfinite(p.divergence) || p.divergence < 0.0f || p.divergence > kMaxDivergence) {
        return Error(Errc::invalid_argument, "divergence = " + format_float(p.divergence) +
                                                 " is outside [0, " + format_float(kMaxDivergence) +
                                                 "]");
    }
    if (!std::isfinite(p.logit_stddev) || p.logit_stddev <= 0.0f ||
        p.logit_stddev > kMaxLogitStddev) {
        return Error(Errc::invalid_argument, "logit_stddev = " + format_float(p.logit_stddev) +
                                                 " is outside (0, " +
                                                 format_float(kMaxLogitStddev) + "]");
    }
    if (target_path.empty() || draft_path.empty()) {
        return Error(Errc::invalid_argument, "the target and the draft each need a path");
    }
    std::error_code ec1, ec2;
    const auto t = std::filesystem::weakly_canonical(target_path, ec1);
    const auto d = std::filesystem::weakly_canonical(draft_path, ec2);
    if (target_path == draft_path || (!ec1 && !ec2 && t == d)) {
        return Error(Errc::invalid_argument,
                     "the target and the draft have the same path " + target_path);
    }
    return {};
}

}  // namespace

SynthShape SynthPairOptions::target_shape() const noexcept {
    SynthShape s = draft_shape;
    s.n_layer = draft_shape.n_layer + extra_layers;  // validate_synth_shape bounds both terms
    return s;
}

Result<SynthPairReport> write_synth_pair(const SynthPairOptions& p, const std::string& target_path,
                                         const std::string& draft_path) {
    PYLON_TRY(check_pair(p, target_path, draft_path));
    if (auto r = validate_synth_shape(p.draft_shape); !r) {
        return std::move(r).error().with_context("draft_shape");
    }
    if (std::uint64_t{p.draft_shape.n_layer} + p.extra_layers > 0xffffffffull) {
        return Error(Errc::limit_exceeded, "extra_layers: the target has too many layers");
    }
    const SynthOptions draft = member_options(p, p.draft_shape);
    const SynthOptions target = member_options(p, p.target_shape());
    PYLON_TRY(synth::check_options(draft));
    if (auto r = synth::check_options(target); !r) {
        return std::move(r).error().with_context("target (draft_shape with " +
                                                 std::to_string(p.extra_layers) + " extra layers)");
    }
    const std::uint64_t estimate = *estimate_synth_bytes(draft) + *estimate_synth_bytes(target);
    if (estimate > kSynthMaxBytes && !p.force) {
        return Error(Errc::limit_exceeded,
                     "the pair would be about " + std::to_string((estimate + (1 << 29)) >> 30) +
                         " GiB, more than the " + std::to_string(kSynthMaxBytes >> 30) +
                         " GiB limit (force, --force in the CLI, writes it anyway)");
    }

    synth::Variant dv;
    dv.output_stddev = p.logit_stddev / std::sqrt(static_cast<double>(p.draft_shape.n_embd));
    synth::Variant tv = dv;
    dv.name = "pylon synth pair draft " + format_synth_shape(draft.shape);
    dv.set_metadata = [&p](gguf::Writer& w) {
        w.set_string("pylon.synth_pair.role", "draft");
        w.set_f32("pylon.synth_pair.logit_stddev", p.logit_stddev);
    };
    tv.first_scaled_layer = p.draft_shape.n_layer;
    tv.layer_scale = p.divergence;
    tv.name = "pylon synth pair target " + format_synth_shape(target.shape) +
              " divergence=" + format_float(p.divergence);
    tv.set_metadata = [&p](gguf::Writer& w) {
        w.set_string("pylon.synth_pair.role", "target");
        w.set_f32("pylon.synth_pair.logit_stddev", p.logit_stddev);
        w.set_u32("pylon.synth_pair.shared_layers", p.draft_shape.n_layer);
        w.set_f32("pylon.synth_pair.divergence", p.divergence);
    };

    // The draft is staged under a name of its own beside draft_path and renamed into place only
    // once the target is written, so a failure leaves both paths as they were.
    std::filesystem::path staged = draft_path;
    staged += ".pair." + std::to_string(::getpid()) + "." + std::to_string(std::random_device{}());
    SynthPairReport report;
    auto d = synth::write_model(draft, dv, staged.string());
    if (!d) return std::move(d).error().with_context("draft " + draft_path);
    report.draft = *d;
    auto t = synth::write_model(target, tv, target_path);
    std::error_code ec;
    if (!t) {
        std::filesystem::remove(staged, ec);
        return std::move(t).error().with_context("target " + target_path);
    }
    report.target = *t;
    std::filesystem::rename(staged, draft_path, ec);
    if (ec) {
        std::error_code ignored;
        std::filesystem::remove(staged, ignored);
        return Error(Errc::io_error, "rename to " + draft_path + ": " + ec.message());
    }
    const std::filesystem::path dir = std::filesystem::absolute(draft_path).parent_path();
    PYLON_TRY(fsync_directory(dir));
    report.byte_ratio =
        static_cast<double>(report.target.n_bytes) / static_cast<double>(report.draft.n_bytes);
    return report;
}

}  // namespace pylon::runtime
