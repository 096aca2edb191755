// Human-readable output of the registry commands: tables and the upload progress line. Pure
// functions of the registry's JSON, so that they are tested without a server.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace pylon::cli {

// NAMESPACE/NAME, LICENSE, DESCRIPTION; one line per model of a `GET /v1/models` items array.
std::string format_models_table(const nlohmann::json& items);
// A model object and its releases (items of `GET …/releases`).
std::string format_model(const nlohmann::json& model, const nlohmann::json& releases);
// A release object: state, licence, each build with its target and files, attestations.
std::string format_release(const nlohmann::json& release);
// "model.gguf  45%  12.0/26.7 MB  3.1 MB/s" (no percentage when total is 0).
std::string format_progress(const std::string& name, std::uint64_t done, std::uint64_t total,
                            double seconds);

// A field of an API object for a table cell: strings as they are, other values as JSON, ""
// when absent or null.
std::string field(const nlohmann::json& j, const char* name);

}  // namespace pylon::cli
