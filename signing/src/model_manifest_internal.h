// Helpers shared by model_manifest.cpp (hashing a model on disk) and model_signature.cpp
// (reading the manifest a signature lists). Private to pylon::signing.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "pylon/common/result.h"
#include "pylon/signing/model_signature.h"

namespace pylon::signing::detail {

// The manifest order: by '/'-separated components, each compared bytewise (UTF-8 bytewise is
// code point order). Equivalent to a bytewise comparison in which '/' sorts before every other
// byte, and to the order of Python's PurePosixPath, which the reference tool sorts by.
bool model_path_less(std::string_view a, std::string_view b) noexcept;

// Normalizes a '/'-separated relative path: drops empty and "." components ("./a//b" -> "a/b").
// Returns "" for a path naming the root itself, and nullopt for an absolute path or one with a
// ".." component (it could name something outside the model).
std::optional<std::string> normalize_model_path(std::string_view path);

bool is_valid_utf8(std::string_view s) noexcept;

// compute_manifest, except that a model with no file left after exclusions yields an empty
// manifest when `allow_empty` (verification then reports each signed file as missing).
[[nodiscard]] Result<ModelManifest> hash_model(const std::filesystem::path& model,
                                               const ManifestOptions& options, bool allow_empty);

}  // namespace pylon::signing::detail
