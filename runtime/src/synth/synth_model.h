// What write_synth_model and write_synth_pair share: one synthetic model written with optional
// departures from the plain recipe (synth_model.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>

#include "pylon/common/result.h"
#include "pylon/runtime/gguf_writer.h"
#include "pylon/runtime/synth.h"

namespace pylon::runtime::synth {

// How one member of a synthetic pair departs from a plain synthetic model. The default is none.
struct Variant {
    // Layers from this one on have attn_output and ffn_down multiplied by layer_scale (the
    // same draws, scaled before rounding, so the scale changes magnitudes, not directions).
    std::uint32_t first_scaled_layer = std::numeric_limits<std::uint32_t>::max();
    double layer_scale = 1.0;
    std::optional<double> output_stddev;  // output.weight (default: SynthOptions::stddev)
    std::string name;                     // general.name (default: "pylon synth <shape>")
    std::function<void(gguf::Writer&)> set_metadata;  // extra keys, set after the model's own
};

// Everything write_synth_model refuses before writing, except the size cap.
Result<void> check_options(const SynthOptions& options);

// write_synth_model with a variant; the size cap is checked unless options.force.
Result<SynthReport> write_model(const SynthOptions& options, const Variant& variant,
                                const std::string& path);

}  // namespace pylon::runtime::synth
