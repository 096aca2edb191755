#include "api/attestations.h"

#include <set>

#include "api/errors.h"
#include "api/views.h"
#include "pylon/registry/tuf/tuf_host.h"
#include "pylon/signing/dsse.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/intoto.h"
#include "pylon/signing/json.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/model_signature.h"
#include "pylon/signing/sha256.h"

namespace pylon::registry::api {

namespace {

using nlohmann::json;

std::string hex_of(const std::string& digest) {
    return digest.substr(std::string_view("sha256:").size());
}

Result<std::vector<signing::PublicKey>> publisher_keys(const catalog::PublisherKeySet& set) {
    if (set.keys.empty()) {
        return Error(Errc::invalid_state,
                     "the namespace has no publisher keys yet: an admin delegates it first "
                     "(pylon namespace create … --publisher-key)");
    }
    std::vector<signing::PublicKey> keys;
    for (const auto& k : set.keys) {
        auto parsed = signing::PublicKey::from_tuf(json::parse(k.key_json));
        if (!parsed) return std::move(parsed).error().with_context("publisher key " + k.keyid);
        keys.push_back(std::move(parsed).value());
    }
    return keys;
}

Result<std::string> verify_provenance(const json& envelope_json, const catalog::Build& build,
                                      const catalog::PublisherKeySet& set) {
    PYLON_TRY_ASSIGN(auto keys, publisher_keys(set));
    PYLON_TRY_ASSIGN(auto envelope, signing::Envelope::from_json(envelope_json));
    PYLON_TRY_ASSIGN(auto verified,
                     signing::dsse_verify(envelope, keys, static_cast<std::size_t>(set.threshold),
                                          signing::kInTotoPayloadType));
    auto statement_json = signing::parse_json(as_string_view(verified.payload));
    if (!statement_json) {
        return Error(signing::Errc::malformed_statement,
                     "the provenance payload is not JSON: " + statement_json.error().message());
    }
    PYLON_TRY_ASSIGN(auto statement, signing::Statement::from_json(*statement_json));
    if (statement.predicate_type != signing::kSlsaProvenanceV1) {
        return Error(signing::Errc::wrong_predicate_type,
                     "provenance must be a SLSA v1 predicate, not " +
                         statement.predicate_type.substr(0, 128));
    }
    for (const auto& f : build.files) {
        PYLON_TRY_ASSIGN(signing::Digest d, signing::digest_from_hex(hex_of(f.digest)));
        if (!statement.has_subject(d)) {
            return Error(signing::Errc::subject_mismatch,
                         "the provenance does not name file " + f.name + " (" + f.digest + ")");
        }
    }
    return verified.key_ids.front();
}

Result<std::string> verify_model_signature(const json& bundle, const catalog::Build& build,
                                           const catalog::PublisherKeySet& set) {
    PYLON_TRY_ASSIGN(auto keys, publisher_keys(set));
    const std::string text = bundle.dump();
    std::optional<Error> last;
    for (const auto& key : keys) {
        auto manifest = signing::verify_model_signature(text, key);
        if (!manifest) {
            // Another publisher key may have signed it; a malformed bundle fails the same way
            // for every key.
            last = std::move(manifest).error();
            continue;
        }
        std::map<std::string, std::string> signed_files;
        for (const auto& e : manifest->files) signed_files[e.name] = signing::to_hex(e.digest);
        std::map<std::string, std::string> build_files;
        for (const auto& f : build.files) build_files[f.name] = hex_of(f.digest);
        if (build.files.size() == 1 && signed_files.size() == 1 && signed_files.count(".")) {
            signed_files = {{build.files.front().name, signed_files["."]}};
        }
        if (signed_files != build_files) {
            return Error(signing::Errc::subject_mismatch,
                         "the model signature covers other files than build " + build.name +
                             " (" + std::to_string(signed_files.size()) + " signed, " +
                             std::to_string(build_files.size()) + " in the build, or different "
                             "digests)");
        }
        return key.key_id();
    }
    return std::move(*last).with_context("model signature of build " + build.name);
}

}  // namespace

Result<std::string> verify_attestation(catalog::AttestationKind kind, const json& envelope,
                                       const catalog::Build& build,
                                       const catalog::PublisherKeySet& keys) {
    if (kind == catalog::AttestationKind::provenance) {
        return verify_provenance(envelope, build, keys);
    }
    return verify_model_signature(envelope, build, keys);
}

std::map<std::string, signing::tuf::TargetFile> expected_targets(
    const catalog::Release& release, const std::vector<catalog::Build>& builds) {
    std::map<std::string, signing::tuf::TargetFile> out;
    for (const auto& b : builds) {
        for (const auto& f : b.files) {
            signing::tuf::TargetFile t;
            t.length = static_cast<std::uint64_t>(f.size);
            t.hashes = {{"sha256", hex_of(f.digest)}};
            t.custom = json{{"pylon",
                             {{"namespace", release.ns},
                              {"model", release.model},
                              {"version", release.version},
                              {"build", b.name},
                              {"target", to_json(b.target)},
                              {"format", b.format},
                              {"quantization", b.quantization},
                              {"license", catalog::to_json(release.license)}}}};
            out.emplace(target_path(release, b, f), std::move(t));
        }
    }
    return out;
}

Result<void> submit_release_targets(tuf::TufHost& host, const std::string& ns,
                                    const std::string& role_bytes,
                                    const std::map<std::string, signing::tuf::TargetFile>& expected) {
    using signing::tuf::Metadata;
    using signing::tuf::Targets;
    auto check = [&](const Metadata<Targets>& incoming,
                     const Metadata<Targets>* previous) -> Result<void> {
        const auto& now = incoming.signed_.targets;
        std::map<std::string, signing::tuf::TargetFile> before;
        if (previous) before = previous->signed_.targets;
        for (const auto& [path, file] : before) {
            auto it = now.find(path);
            if (it == now.end()) {
                return Error(Errc::invalid_field, "targets_metadata: published target " + path +
                                                      " is missing (published files are immutable)");
            }
            if (it->second.to_json() != file.to_json()) {
                return Error(Errc::invalid_field,
                             "targets_metadata: published target " + path + " was changed");
            }
        }
        for (const auto& [path, file] : expected) {
            auto it = now.find(path);
            if (it == now.end()) {
                return Error(Errc::invalid_field, "targets_metadata: target " + path +
                                                      " of this release is missing");
            }
            if (it->second.length != file.length || it->second.hashes != file.hashes) {
                return Error(Errc::invalid_field, "targets_metadata: target " + path +
                                                      " has a length or hash other than the "
                                                      "uploaded file's");
            }
            if (it->second.custom != file.custom) {
                return Error(Errc::invalid_field,
                             "targets_metadata: target " + path +
                                 " has custom fields other than the release's (expected " +
                                 file.custom->dump().substr(0, 512) + ")");
            }
        }
        for (const auto& [path, unused] : now) {
            if (!before.count(path) && !expected.count(path)) {
                return Error(Errc::invalid_field, "targets_metadata: target " + path +
                                                      " is not a file of this release");
            }
        }
        return {};
    };
    PYLON_TRY(host.submit_role(ns, role_bytes, check));
    return {};
}

}  // namespace pylon::registry::api
