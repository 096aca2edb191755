// Model signatures in the OpenSSF model-signing (OMS) v1.0 layout, key-based, as written and
// read by the reference `model_signing` tool (sigstore/model-transparency).
//
// A model is a single file or a directory tree. Its manifest lists every regular file (path
// relative to the model root, '/'-separated; a single-file model's one entry is named ".") with
// its SHA-256, ordered as the reference tool orders them (by path components; see
// ModelManifest::files). The manifest becomes an in-toto Statement v1 with predicateType
// https://model_signing/signature/v1.0, signed in a DSSE envelope, wrapped in a Sigstore bundle
// (v0.3 media type) whose verification material is a public key hint. Keys: ECDSA P-256 and
// P-384 (OMS key types) and, as a Pylon extension that other OMS verifiers refuse, Ed25519.
// The exact JSON is documented in docs/SIGNING.md ("Model signatures (OMS v1.0)").
//
// Verification recomputes the manifest from disk and compares: a modified, missing, extra or
// renamed file is refused with its own error code naming the file.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/result.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/sha256.h"

namespace pylon::signing {

inline constexpr std::string_view kModelSignaturePredicate = "https://model_signing/signature/v1.0";
inline constexpr std::string_view kSigstoreBundleMediaType =
    "application/vnd.dev.sigstore.bundle.v0.3+json";

struct ManifestEntry {
    std::string name;  // relative path, '/'-separated; "." for a single-file model
    Digest digest{};
};

struct ModelManifest {
    std::string model_name;  // the file or directory name (informational, not verified)
    // Sorted by path components compared bytewise (the order of Python's PurePosixPath, which
    // the reference tool uses): "a/b" sorts before "a.b" and "ab". For a manifest read from a
    // signature, the order in which the signature lists them.
    std::vector<ManifestEntry> files;
    // Paths relative to the model root that were excluded, as recorded in the signature
    // (serialization.ignore_paths), sorted.
    std::vector<std::string> ignore_paths;
    // The statement subject's digest: SHA-256 over the concatenated raw file digests in order.
    Digest root_digest() const;
};

struct ManifestOptions {
    // Paths that are neither hashed nor required, each relative to the model root, or absolute
    // and inside it (e.g. the signature bundle itself when it lives in the model directory). A
    // directory excludes its whole subtree. Entries outside the model are ignored.
    std::vector<std::string> ignore_paths;
    // Also exclude .git, .gitattributes, .github and .gitignore at the model root, as the OMS
    // spec and the reference tool do by default (it verifies with them excluded).
    bool ignore_git_paths = true;
};

// Hashes a model file or directory. The model path itself may be a symlink (it names the
// model); inside a directory, symlinks and special files are refused (pylon::Errc::unsupported),
// as are names that are not valid UTF-8. A model without any regular file after exclusions is
// pylon::Errc::invalid_argument.
[[nodiscard]] Result<ModelManifest> compute_manifest(const std::filesystem::path& model,
                                                     const ManifestOptions& options = {});

// Signs the model and returns the bundle JSON text (compact, one line, no trailing newline).
[[nodiscard]] Result<std::string> sign_model(const std::filesystem::path& model,
                                             const PrivateKey& key,
                                             const ManifestOptions& options = {});

// Verifies `bundle` (JSON text) against the model on disk with `key`; returns the signed manifest.
// Paths the signature records in serialization.ignore_paths are excluded in addition to
// `options`. Errors (signing::Errc unless noted):
//   malformed_envelope   bundle is not JSON, is truncated, lacks fields, or has another mediaType
//   untrusted_key        the bundle's key hint (or raw key) names a different key
//   wrong_payload_type   DSSE payloadType is not application/vnd.in-toto+json
//   bad_signature        the DSSE signature does not verify with `key`
//   malformed_statement  payload is not an in-toto Statement v1 with a well-formed OMS predicate
//   wrong_predicate_type predicateType is not https://model_signing/signature/v1.0
//   subject_mismatch     subject digest is not the digest of the listed resources
//   digest_mismatch      a signed file's content changed (message names the file)
//   file_renamed         a signed file is now under another name ("old -> new")
//   file_missing         a signed file is absent
//   file_extra           a file on disk is not covered by the signature
//   pylon::Errc::unsupported  shard serialization, hash types other than sha256, certificate or
//                        Sigstore (keyless) bundles
[[nodiscard]] Result<ModelManifest> verify_model(const std::filesystem::path& model,
                                                 std::string_view bundle, const PublicKey& key,
                                                 const ManifestOptions& options = {});

// Verifies only the bundle: its form, its key hint and its signature by `key`, and that the
// statement's subject is the digest of the manifest it lists; returns that manifest, for a
// caller that compares it with digests it already knows (the registry, against uploaded blobs).
// Errors as verify_model's, without those about files on disk.
[[nodiscard]] Result<ModelManifest> verify_model_signature(std::string_view bundle,
                                                           const PublicKey& key);

// The OMS key hint: lower-case hex SHA-256 of the key's SubjectPublicKeyInfo PEM text
// ("-----BEGIN PUBLIC KEY-----\n", base64 in 64-column lines, "-----END PUBLIC KEY-----\n"),
// as the reference tool computes it.
std::string public_key_hint(const PublicKey& key);

}  // namespace pylon::signing
