// OMS v1.0 model signature bundles, key-based (see model_signature.h and docs/SIGNING.md).
//
// The bundle, as the reference tool (sigstore/model-transparency >= v1.1.0) writes it, compact:
//   {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
//    "verificationMaterial": {"publicKey": {"hint": <hex SHA-256 of the key's SPKI PEM>},
//                             "tlogEntries": []},
//    "dsseEnvelope": {"payload": <base64 statement>, "payloadType": "application/vnd.in-toto+json",
//                     "signatures": [{"sig": <base64 signature over DSSE PAE>, "keyid": ""}]}}
// The statement (payload):
//   {"_type": "https://in-toto.io/Statement/v1",
//    "subject": [{"name": <model name>, "digest": {"sha256": <root digest>}}],
//    "predicateType": "https://model_signing/signature/v1.0",
//    "predicate": {"resources": [{"name": <path>, "algorithm": "sha256", "digest": <hex>}, ...],
//                  "serialization": {"method": "files", "hash_type": "sha256",
//                                    "allow_symlinks": false, "ignore_paths": [...]}}}
// root digest = SHA-256 of the resources' raw digests concatenated in the listed order.
// ECDSA P-256 signatures are DER over SHA-256(PAE); Ed25519 signs PAE itself.
//
// Reading is lenient where the reference tool's older releases differ (v0.3.1-v1.0.x wrote
// publicKey.rawBytes instead of hint and "keyid": null; ignore_paths may be absent; a
// single-file model's resource may carry the file's name instead of ".") and strict elsewhere.
#include "pylon/signing/model_signature.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model_manifest_internal.h"
#include "pylon/signing/dsse.h"
#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/intoto.h"
#include "pylon/signing/json.h"

namespace pylon::signing {
namespace fs = std::filesystem;

namespace {

using ojson = nlohmann::ordered_json;

constexpr JsonLimits kBundleLimits{64u << 20, 64};  // a manifest of ~300k files fits
constexpr std::size_t kMaxNamesInMessage = 5;

Error malformed_bundle(std::string what) {
    return Error(Errc::malformed_envelope, "model signature bundle: " + std::move(what));
}
Error malformed_statement(std::string what) {
    return Error(Errc::malformed_statement, "model signature statement: " + std::move(what));
}

// "a, b, c (and 4 more)".
std::string name_list(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < kMaxNamesInMessage; ++i) {
        if (i) out += ", ";
        out += names[i];
    }
    if (names.size() > kMaxNamesInMessage) {
        out += " (and " + std::to_string(names.size() - kMaxNamesInMessage) + " more)";
    }
    return out;
}

ojson statement_json(const ModelManifest& m) {
    ojson resources = ojson::array();
    for (const auto& f : m.files) {
        resources.push_back(
            {{"name", f.name}, {"algorithm", "sha256"}, {"digest", to_hex(f.digest)}});
    }
    ojson serialization = {{"method", "files"},
                           {"hash_type", "sha256"},
                           {"allow_symlinks", false},
                           {"ignore_paths", m.ignore_paths}};
    ojson subject = ojson::array();
    subject.push_back({{"name", m.model_name}, {"digest", {{"sha256", to_hex(m.root_digest())}}}});
    return {{"_type", kStatementType},
            {"subject", std::move(subject)},
            {"predicateType", kModelSignaturePredicate},
            {"predicate",
             {{"resources", std::move(resources)}, {"serialization", std::move(serialization)}}}};
}

// Checks that verificationMaterial names `key` (or names no key at all, as the reference tool
// accepts); the signature check that follows is what proves the key signed.
Result<void> check_verification_material(const nlohmann::json& vm, const PublicKey& key) {
    if (!vm.is_object()) return malformed_bundle("\"verificationMaterial\" is not an object");
    if (!vm.contains("publicKey")) {
        if (vm.contains("certificate") || vm.contains("x509CertificateChain")) {
            return Error(pylon::Errc::unsupported,
                         "model signature bundle is certificate-based; only key-based bundles "
                         "are supported");
        }
        return malformed_bundle("\"verificationMaterial\" has no \"publicKey\"");
    }
    const auto& pk = vm["publicKey"];
    if (!pk.is_object()) return malformed_bundle("\"publicKey\" is not an object");
    if (pk.contains("hint") && !pk["hint"].is_null()) {
        if (!pk["hint"].is_string()) return malformed_bundle("\"publicKey.hint\" is not a string");
        const auto& hint = pk["hint"].get_ref<const std::string&>();
        if (hint != public_key_hint(key)) {
            return Error(Errc::untrusted_key, "model signature names key " + hint.substr(0, 64) +
                                                  ", not the verifying key " +
                                                  public_key_hint(key));
        }
    }
    if (pk.contains("rawBytes") && !pk["rawBytes"].is_null()) {
        if (!pk["rawBytes"].is_string()) {
            return malformed_bundle("\"publicKey.rawBytes\" is not a string");
        }
        auto raw = base64_decode_any(pk["rawBytes"].get_ref<const std::string&>());
        if (!raw) return malformed_bundle("\"publicKey.rawBytes\" is not base64");
        // The reference tool wrote the PEM text here; protobuf's PublicKey would hold DER.
        auto named = PublicKey::from_pem(as_string_view(*raw));
        if (!named) named = PublicKey::from_der(*raw);
        if (!named || !(*named == key)) {
            return Error(Errc::untrusted_key,
                         "model signature carries a public key other than the verifying key");
        }
    }
    return {};
}

Result<DsseVerified> verify_envelope(const nlohmann::json& bundle, const PublicKey& key) {
    if (!bundle.contains("dsseEnvelope")) {
        return malformed_bundle(
            "no \"dsseEnvelope\" (message-signature bundles are not model "
            "signatures)");
    }
    nlohmann::json env_json = bundle["dsseEnvelope"];
    if (env_json.is_object() && env_json.contains("signatures") &&
        env_json["signatures"].is_array()) {
        for (auto& sig : env_json["signatures"]) {
            // Releases before v1.1.0 wrote "keyid": null; DSSE makes keyid optional.
            if (sig.is_object() && sig.contains("keyid") && sig["keyid"].is_null()) {
                sig.erase("keyid");
            }
        }
    }
    PYLON_TRY_ASSIGN(Envelope env, Envelope::from_json(env_json));
    return dsse_verify(env, {key}, 1, kInTotoPayloadType);
}

const nlohmann::json& member(const nlohmann::json& obj, const char* name) {
    static const nlohmann::json kNull;
    return obj.is_object() && obj.contains(name) ? obj[name] : kNull;
}

Result<std::string> string_member(const nlohmann::json& obj, const char* name, const char* where) {
    const auto& v = member(obj, name);
    if (!v.is_string()) {
        return malformed_statement(std::string(where) + " lacks a string \"" + name + "\"");
    }
    return v.get<std::string>();
}

Result<void> parse_serialization(const nlohmann::json& s, ModelManifest& out) {
    if (!s.is_object()) return malformed_statement("predicate lacks a \"serialization\" object");
    PYLON_TRY_ASSIGN(std::string method, string_member(s, "method", "serialization"));
    if (method == "shards") {
        return Error(pylon::Errc::unsupported,
                     "model signature uses shard serialization; only \"files\" is supported");
    }
    if (method != "files") return malformed_statement("unknown serialization method " + method);
    PYLON_TRY_ASSIGN(std::string hash_type, string_member(s, "hash_type", "serialization"));
    if (hash_type != "sha256") {
        return Error(pylon::Errc::unsupported, "model signature uses hash type " +
                                                   hash_type.substr(0, 32) +
                                                   "; only sha256 is supported");
    }
    if (!member(s, "allow_symlinks").is_boolean()) {
        return malformed_statement("serialization lacks a boolean \"allow_symlinks\"");
    }
    const auto& ignore = member(s, "ignore_paths");
    if (ignore.is_null()) return {};
    if (!ignore.is_array()) return malformed_statement("\"ignore_paths\" is not an array");
    for (const auto& p : ignore) {
        if (!p.is_string()) return malformed_statement("an ignore path is not a string");
        // An entry that cannot name anything inside the model (absolute, "..") excludes nothing.
        auto norm = detail::normalize_model_path(p.get_ref<const std::string&>());
        if (norm && !norm->empty()) out.ignore_paths.push_back(std::move(*norm));
    }
    return {};
}

// Parses and checks the signed statement; the returned manifest lists the resources in the
// signed order, names normalized.
Result<ModelManifest> parse_statement(ByteView payload) {
    auto parsed = parse_json(as_string_view(payload), kBundleLimits);
    if (!parsed) return malformed_statement("payload is not JSON: " + parsed.error().message());
    const nlohmann::json& st = *parsed;
    if (!st.is_object()) return malformed_statement("payload is not a JSON object");
    if (member(st, "_type") != kStatementType) {
        return malformed_statement("\"_type\" is not " + std::string(kStatementType));
    }
    PYLON_TRY_ASSIGN(std::string predicate_type, string_member(st, "predicateType", "statement"));
    if (predicate_type != kModelSignaturePredicate) {
        return Error(Errc::wrong_predicate_type,
                     "statement predicateType is \"" + predicate_type.substr(0, 128) +
                         "\", expected \"" + std::string(kModelSignaturePredicate) + "\"");
    }
    const auto& subjects = member(st, "subject");
    if (!subjects.is_array() || subjects.size() != 1) {
        return malformed_statement("a model signature has exactly one subject");
    }
    ModelManifest m;
    PYLON_TRY_ASSIGN(m.model_name, string_member(subjects[0], "name", "subject"));
    PYLON_TRY_ASSIGN(std::string subject_hex,
                     string_member(member(subjects[0], "digest"), "sha256", "subject digest"));
    auto subject_digest = digest_from_hex(subject_hex);
    if (!subject_digest) return malformed_statement("subject sha256 is not a SHA-256 digest");

    const auto& predicate = member(st, "predicate");
    if (!predicate.is_object()) return malformed_statement("\"predicate\" is not an object");
    PYLON_TRY(parse_serialization(member(predicate, "serialization"), m));
    const auto& resources = member(predicate, "resources");
    if (!resources.is_array() || resources.empty()) {
        return malformed_statement("predicate lacks a non-empty \"resources\" array");
    }
    std::set<std::string> seen;
    for (const auto& r : resources) {
        PYLON_TRY_ASSIGN(std::string name, string_member(r, "name", "a resource"));
        PYLON_TRY_ASSIGN(std::string algorithm, string_member(r, "algorithm", "a resource"));
        PYLON_TRY_ASSIGN(std::string hex, string_member(r, "digest", "a resource"));
        if (algorithm != "sha256") {
            return Error(pylon::Errc::unsupported, "model signature resource uses algorithm " +
                                                       algorithm.substr(0, 32) +
                                                       "; only sha256 is supported");
        }
        auto digest = digest_from_hex(hex);
        if (!digest) return malformed_statement("resource " + name + " has a malformed digest");
        auto norm = detail::normalize_model_path(name);
        if (!norm) return malformed_statement("resource name leaves the model: " + name);
        if (norm->empty()) *norm = ".";
        if (!seen.insert(*norm).second)
            return malformed_statement("resource listed twice: " + name);
        m.files.push_back({std::move(*norm), *digest});
    }
    if (m.root_digest() != *subject_digest) {
        return Error(Errc::subject_mismatch, "model signature subject digest " + subject_hex +
                                                 " is not the digest of its resources (" +
                                                 to_hex(m.root_digest()) + ")");
    }
    std::sort(m.ignore_paths.begin(), m.ignore_paths.end());
    m.ignore_paths.erase(std::unique(m.ignore_paths.begin(), m.ignore_paths.end()),
                         m.ignore_paths.end());
    return m;
}

// Compares the signed manifest with the one hashed from disk; the first kind of difference found
// (modified, renamed, missing, extra, in that order) is the error, naming its files.
Result<void> compare_manifests(const ModelManifest& signed_m, const ModelManifest& disk,
                               const fs::path& model) {
    // A single-file model: the reference tool names its resource "."; accept its file name too.
    if (disk.files.size() == 1 && disk.files[0].name == "." && signed_m.files.size() == 1 &&
        (signed_m.files[0].name == "." || signed_m.files[0].name == model.filename().string())) {
        if (signed_m.files[0].digest != disk.files[0].digest) {
            return Error(Errc::digest_mismatch, "model file modified: " + model.string());
        }
        return {};
    }
    std::map<std::string, Digest> on_disk;
    for (const auto& f : disk.files) on_disk.emplace(f.name, f.digest);
    std::vector<std::string> modified;
    std::vector<const ManifestEntry*> missing;
    for (const auto& f : signed_m.files) {
        auto it = on_disk.find(f.name);
        if (it == on_disk.end()) {
            missing.push_back(&f);
            continue;
        }
        if (it->second != f.digest) modified.push_back(f.name);
        on_disk.erase(it);  // what remains is extra
    }
    if (!modified.empty()) {
        return Error(Errc::digest_mismatch, "model file" +
                                                std::string(modified.size() > 1 ? "s" : "") +
                                                " modified: " + name_list(modified));
    }
    // Each unsigned file on disk can explain at most one missing signed file.
    std::multimap<Digest, std::string> extra_by_digest;
    for (const auto& [name, digest] : on_disk) extra_by_digest.emplace(digest, name);
    std::vector<std::string> renamed;
    std::vector<std::string> gone;
    for (const ManifestEntry* f : missing) {
        auto it = extra_by_digest.find(f->digest);
        if (it == extra_by_digest.end()) {
            gone.push_back(f->name);
            continue;
        }
        renamed.push_back(f->name + " -> " + it->second);
        on_disk.erase(it->second);
        extra_by_digest.erase(it);
    }
    if (!renamed.empty()) {
        return Error(Errc::file_renamed, "model file" + std::string(renamed.size() > 1 ? "s" : "") +
                                             " renamed: " + name_list(renamed));
    }
    if (!gone.empty()) {
        return Error(Errc::file_missing, "signed model file" +
                                             std::string(gone.size() > 1 ? "s" : "") +
                                             " missing: " + name_list(gone));
    }
    if (!on_disk.empty()) {
        std::vector<std::string> extra;
        for (const auto& [name, digest] : on_disk) extra.push_back(name);
        return Error(Errc::file_extra, "model file" + std::string(extra.size() > 1 ? "s" : "") +
                                           " not covered by the signature: " + name_list(extra));
    }
    return {};
}

}  // namespace

std::string public_key_hint(const PublicKey& key) {
    return to_hex(sha256(key.to_pem()));
}

Result<std::string> sign_model(const fs::path& model, const PrivateKey& key,
                               const ManifestOptions& options) {
    PYLON_TRY_ASSIGN(ModelManifest manifest, compute_manifest(model, options));
    // Every string in the statement is valid UTF-8 (compute_manifest checks names), so dump()
    // cannot throw.
    const std::string payload = statement_json(manifest).dump();
    PYLON_TRY_ASSIGN(Envelope env, dsse_sign(kInTotoPayloadType, as_bytes(payload), {&key}));
    ojson signatures = ojson::array();
    for (const auto& s : env.signatures) {
        // OMS identifies the key by verificationMaterial; the reference tool writes an empty keyid.
        signatures.push_back({{"sig", base64_encode(s.sig)}, {"keyid", ""}});
    }
    const ojson bundle = {{"mediaType", kSigstoreBundleMediaType},
                          {"verificationMaterial",
                           {{"publicKey", {{"hint", public_key_hint(key.public_key())}}},
                            {"tlogEntries", ojson::array()}}},
                          {"dsseEnvelope",
                           {{"payload", base64_encode(as_bytes(payload))},
                            {"payloadType", kInTotoPayloadType},
                            {"signatures", std::move(signatures)}}}};
    return bundle.dump();
}

Result<ModelManifest> verify_model_signature(std::string_view bundle, const PublicKey& key) {
    auto parsed = parse_json(bundle, kBundleLimits);
    if (!parsed) {
        if (parsed.error().code() == pylon::Errc::limit_exceeded) return std::move(parsed).error();
        return malformed_bundle(parsed.error().message());
    }
    const nlohmann::json& j = *parsed;
    if (!j.is_object()) return malformed_bundle("not a JSON object");
    const auto& media_type = member(j, "mediaType");
    if (media_type != kSigstoreBundleMediaType) {
        return malformed_bundle("mediaType is " + media_type.dump().substr(0, 128) + ", expected " +
                                std::string(kSigstoreBundleMediaType));
    }
    PYLON_TRY(check_verification_material(member(j, "verificationMaterial"), key));
    PYLON_TRY_ASSIGN(DsseVerified verified, verify_envelope(j, key));
    return parse_statement(verified.payload);
}

Result<ModelManifest> verify_model(const fs::path& model, std::string_view bundle,
                                   const PublicKey& key, const ManifestOptions& options) {
    PYLON_TRY_ASSIGN(ModelManifest signed_manifest, verify_model_signature(bundle, key));
    ManifestOptions disk_options = options;
    disk_options.ignore_paths.insert(disk_options.ignore_paths.end(),
                                     signed_manifest.ignore_paths.begin(),
                                     signed_manifest.ignore_paths.end());
    PYLON_TRY_ASSIGN(ModelManifest disk, detail::hash_model(model, disk_options, true));
    PYLON_TRY(compare_manifests(signed_manifest, disk, model));
    return signed_manifest;
}

}  // namespace pylon::signing
