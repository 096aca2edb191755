#include "pylon/signing/intoto.h"

#include <cctype>

#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/json.h"

namespace pylon::signing {
namespace {

Error malformed(std::string what) {
    return Error(Errc::malformed_statement, std::move(what));
}

bool is_lower_hex(std::string_view s) {
    for (char c : s) {
        if (!std::isxdigit(static_cast<unsigned char>(c)) ||
            std::isupper(static_cast<unsigned char>(c)))
            return false;
    }
    return !s.empty();
}

// Expected hex lengths of the digest algorithms we check; others must merely be hex.
std::size_t digest_hex_length(std::string_view algorithm) {
    if (algorithm == "sha256") return 64;
    if (algorithm == "sha384") return 96;
    if (algorithm == "sha512") return 128;
    return 0;
}

const nlohmann::json* field(const nlohmann::json& obj, const char* name,
                            nlohmann::json::value_t type) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(name);
    if (it == obj.end() || it->type() != type) return nullptr;
    return &*it;
}

}  // namespace

nlohmann::json ResourceDescriptor::to_json() const {
    nlohmann::json j = nlohmann::json::object();
    if (!name.empty()) j["name"] = name;
    if (!uri.empty()) j["uri"] = uri;
    if (!digest.empty()) j["digest"] = digest;
    return j;
}

Result<ResourceDescriptor> ResourceDescriptor::from_json(const nlohmann::json& j) {
    using T = nlohmann::json::value_t;
    if (!j.is_object()) return malformed("a resource descriptor is not an object");
    ResourceDescriptor r;
    if (j.contains("name")) {
        if (!j["name"].is_string()) return malformed("resource \"name\" is not a string");
        r.name = j["name"].get<std::string>();
    }
    if (j.contains("uri")) {
        if (!j["uri"].is_string()) return malformed("resource \"uri\" is not a string");
        r.uri = j["uri"].get<std::string>();
    }
    if (j.contains("digest")) {
        const auto* d = field(j, "digest", T::object);
        if (!d) return malformed("resource \"digest\" is not an object");
        for (const auto& [alg, value] : d->items()) {
            if (!value.is_string()) return malformed("digest \"" + alg + "\" is not a string");
            const auto& hex = value.get_ref<const std::string&>();
            const std::size_t want = digest_hex_length(alg);
            if ((want && hex.size() != want) || (want && !is_lower_hex(hex))) {
                return malformed("digest \"" + alg + "\" is not " + std::to_string(want) +
                                 " lower-case hex characters");
            }
            r.digest[alg] = hex;
        }
    }
    if (r.name.empty() && r.uri.empty() && r.digest.empty()) {
        return malformed("a resource descriptor needs a name, uri or digest");
    }
    return r;
}

nlohmann::json Statement::to_json() const {
    nlohmann::json subjects = nlohmann::json::array();
    for (const auto& s : subject) subjects.push_back(s.to_json());
    return {{"_type", kStatementType},
            {"subject", subjects},
            {"predicateType", predicate_type},
            {"predicate", predicate}};
}

Result<Statement> Statement::from_json(const nlohmann::json& j) {
    using T = nlohmann::json::value_t;
    if (!j.is_object()) return malformed("statement is not a JSON object");
    const auto* type = field(j, "_type", T::string);
    if (!type || *type != kStatementType) {
        return malformed("statement \"_type\" is not " + std::string(kStatementType));
    }
    const auto* subjects = field(j, "subject", T::array);
    if (!subjects || subjects->empty()) return malformed("statement has no \"subject\"");
    const auto* ptype = field(j, "predicateType", T::string);
    if (!ptype || ptype->get_ref<const std::string&>().empty())
        return malformed("statement has no \"predicateType\"");
    Statement st;
    st.predicate_type = ptype->get<std::string>();
    if (j.contains("predicate")) {
        if (!j["predicate"].is_object())
            return malformed("statement \"predicate\" is not an object");
        st.predicate = j["predicate"];
    }
    for (const auto& s : *subjects) {
        PYLON_TRY_ASSIGN(ResourceDescriptor r, ResourceDescriptor::from_json(s));
        if (r.digest.empty()) return malformed("a statement subject has no digest");
        st.subject.push_back(std::move(r));
    }
    return st;
}

bool Statement::has_subject(const Digest& sha256, std::string_view name) const {
    const std::string hex = to_hex(sha256);
    for (const auto& s : subject) {
        auto it = s.digest.find("sha256");
        if (it != s.digest.end() && it->second == hex && (name.empty() || s.name == name))
            return true;
    }
    return false;
}

Result<nlohmann::json> slsa_quantization_predicate(const QuantizationProvenance& p) {
    if (p.quantization.empty()) return malformed("provenance: quantization type is empty");
    if (p.target.empty()) return malformed("provenance: hardware target is empty");
    const auto at = p.quantizer.rfind('@');
    if (at == std::string::npos || at == 0 || at + 1 == p.quantizer.size()) {
        return malformed("provenance: quantizer must be TOOL@VERSION, got \"" + p.quantizer + "\"");
    }
    nlohmann::json metadata = nlohmann::json::object();
    if (!p.invocation_id.empty()) metadata["invocationId"] = p.invocation_id;
    if (!p.started_on.empty()) metadata["startedOn"] = p.started_on;
    if (!p.finished_on.empty()) metadata["finishedOn"] = p.finished_on;
    nlohmann::json run = {{"builder", {{"id", p.builder_id}}}};
    if (!metadata.empty()) run["metadata"] = metadata;
    return nlohmann::json{
        {"buildDefinition",
         {{"buildType", kQuantizeBuildType},
          {"externalParameters", {{"quantization", p.quantization}, {"target", p.target}}},
          {"resolvedDependencies",
           nlohmann::json::array(
               {ResourceDescriptor{
                    "base-model", p.base_model_uri, {{"sha256", to_hex(p.base_model_sha256)}}}
                    .to_json(),
                ResourceDescriptor{"quantizer", "pkg:generic/" + p.quantizer, {}}.to_json()})}}},
        {"runDetails", run}};
}

Result<QuantizationProvenance> parse_slsa_quantization_predicate(const nlohmann::json& pred) {
    using T = nlohmann::json::value_t;
    const auto* def = field(pred, "buildDefinition", T::object);
    const auto* run = field(pred, "runDetails", T::object);
    if (!def || !run)
        return malformed("SLSA provenance needs buildDefinition and runDetails objects");
    const auto* build_type = field(*def, "buildType", T::string);
    if (!build_type || *build_type != kQuantizeBuildType) {
        return malformed("SLSA buildType is not " + std::string(kQuantizeBuildType));
    }
    const auto* ext = field(*def, "externalParameters", T::object);
    if (!ext) return malformed("SLSA buildDefinition has no externalParameters object");
    const auto* quant = field(*ext, "quantization", T::string);
    const auto* target = field(*ext, "target", T::string);
    if (!quant || !target)
        return malformed("externalParameters need string quantization and target");
    const auto* builder = field(*run, "builder", T::object);
    const auto* builder_id = builder ? field(*builder, "id", T::string) : nullptr;
    if (!builder_id) return malformed("SLSA runDetails.builder.id is missing");
    QuantizationProvenance p;
    p.quantization = quant->get<std::string>();
    p.target = target->get<std::string>();
    p.builder_id = builder_id->get<std::string>();
    bool have_base = false;
    bool have_quantizer = false;
    if (const auto* deps = field(*def, "resolvedDependencies", T::array)) {
        for (const auto& d : *deps) {
            PYLON_TRY_ASSIGN(ResourceDescriptor r, ResourceDescriptor::from_json(d));
            if (r.name == "base-model") {
                auto it = r.digest.find("sha256");
                if (it == r.digest.end())
                    return malformed("the base-model dependency has no sha256 digest");
                PYLON_TRY_ASSIGN(p.base_model_sha256, digest_from_hex(it->second));
                p.base_model_uri = r.uri;
                have_base = true;
            } else if (r.name == "quantizer") {
                constexpr std::string_view kPrefix = "pkg:generic/";
                p.quantizer = r.uri.rfind(kPrefix, 0) == 0 ? r.uri.substr(kPrefix.size()) : r.uri;
                have_quantizer = true;
            }
        }
    }
    if (!have_base || !have_quantizer)
        return malformed("SLSA resolvedDependencies must name base-model and quantizer");
    if (const auto* md = field(*run, "metadata", T::object)) {
        if (const auto* v = field(*md, "invocationId", T::string))
            p.invocation_id = v->get<std::string>();
        if (const auto* v = field(*md, "startedOn", T::string))
            p.started_on = v->get<std::string>();
        if (const auto* v = field(*md, "finishedOn", T::string))
            p.finished_on = v->get<std::string>();
    }
    return p;
}

Result<Envelope> sign_statement(const Statement& statement, const PrivateKey& key) {
    const std::string payload = statement.to_json().dump();
    return dsse_sign(kInTotoPayloadType, as_bytes(payload), {&key});
}

Result<Statement> verify_statement(const Envelope& envelope, const PublicKey& key,
                                   std::string_view expected_predicate_type) {
    PYLON_TRY_ASSIGN(DsseVerified verified, dsse_verify(envelope, {key}, 1, kInTotoPayloadType));
    auto j = parse_json(as_string_view(verified.payload));
    if (!j) return malformed("statement payload is not JSON: " + j.error().message());
    PYLON_TRY_ASSIGN(Statement st, Statement::from_json(*j));
    if (!expected_predicate_type.empty() && st.predicate_type != expected_predicate_type) {
        return Error(Errc::wrong_predicate_type,
                     "predicateType is \"" + st.predicate_type.substr(0, 128) + "\", expected \"" +
                         std::string(expected_predicate_type) + "\"");
    }
    return st;
}

}  // namespace pylon::signing
