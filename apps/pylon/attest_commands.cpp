// pylon attest provenance | verify attestation — SLSA provenance v1 in DSSE envelopes.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "commands.h"
#include "pylon/common/file_io.h"
#include "pylon/signing/intoto.h"

namespace pylon::cli {
namespace {

constexpr std::size_t kMaxAttestationSize = 16u << 20;

std::string now_rfc3339() {
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

struct ProvenanceOptions {
    std::string path;
    std::string key;
    std::string base_model_digest;
    std::string base_model;
    std::string quantizer;
    std::string quantization;
    std::string target;
    std::string builder_id;
    std::string out;
    PassphraseOptions pass;
};

void run_provenance(const ProvenanceOptions& o) {
    if (!std::filesystem::is_regular_file(o.path))
        throw CommandError(o.path + ": not a regular file");
    std::string hex = o.base_model_digest;
    if (hex.rfind("sha256:", 0) == 0) hex = hex.substr(7);
    signing::QuantizationProvenance p;
    p.base_model_sha256 = unwrap(signing::digest_from_hex(hex), "--base-model-digest");
    p.base_model_uri = o.base_model;
    p.quantizer = o.quantizer;
    p.quantization = o.quantization;
    p.target = o.target;
    if (!o.builder_id.empty()) p.builder_id = o.builder_id;
    p.finished_on = now_rfc3339();
    auto predicate = unwrap(signing::slsa_quantization_predicate(p));

    const auto key = load_private_key(o.key, o.pass);
    const auto digest = unwrap(signing::sha256_file(o.path), "hashing " + o.path);
    signing::Statement st;
    st.subject.push_back({std::filesystem::path(o.path).filename().string(),
                          "",
                          {{"sha256", signing::to_hex(digest)}}});
    st.predicate_type = std::string(signing::kSlsaProvenanceV1);
    st.predicate = std::move(predicate);
    const auto envelope = unwrap(signing::sign_statement(st, key), "signing provenance");
    unwrap(write_file_atomic(o.out, envelope.to_json().dump(2) + "\n", 0644), "writing " + o.out);
    std::cout << "wrote SLSA provenance for " << o.path << " (sha256:" << signing::to_hex(digest)
              << ")\n"
              << "  signed by " << signing::to_string(key.type()) << " key " << key.key_id()
              << "\n  attestation: " << o.out << "\n";
}

struct VerifyAttestationOptions {
    std::string file;
    std::string key;
    std::string subject;
};

void run_verify_attestation(const VerifyAttestationOptions& o) {
    const auto key = load_public_key(o.key);
    const auto text = unwrap(read_file(o.file, kMaxAttestationSize), "reading attestation");
    const auto envelope = unwrap(signing::Envelope::parse(text), o.file);
    const auto st = unwrap(signing::verify_statement(envelope, key), "verifying " + o.file);
    if (!o.subject.empty()) {
        const auto digest = unwrap(signing::sha256_file(o.subject), "hashing " + o.subject);
        if (!st.has_subject(digest)) {
            throw CommandError("verifying " + o.file + ": " + o.subject + " (sha256:" +
                               signing::to_hex(digest) + ") is not a subject of this attestation");
        }
    }
    std::cout << "verified attestation " << o.file << " signed by "
              << signing::to_string(key.type()) << " key " << key.key_id()
              << "\n  predicateType: " << st.predicate_type << "\n";
    for (const auto& s : st.subject) {
        const auto it = s.digest.find("sha256");
        std::cout << "  subject: " << s.name
                  << (it != s.digest.end() ? " sha256:" + it->second : "") << "\n";
    }
    if (st.predicate_type == signing::kSlsaProvenanceV1) {
        const auto p =
            unwrap(signing::parse_slsa_quantization_predicate(st.predicate), "SLSA predicate");
        std::cout << "  base model: " << (p.base_model_uri.empty() ? "" : p.base_model_uri + " ")
                  << "sha256:" << signing::to_hex(p.base_model_sha256)
                  << "\n  quantizer: " << p.quantizer << "\n  quantization: " << p.quantization
                  << "\n  target: " << p.target << "\n  builder: " << p.builder_id << "\n";
    }
}

}  // namespace

void add_attest_commands(CLI::App& app) {
    auto* attest = app.add_subcommand("attest", "Make signed attestations about builds");
    attest->require_subcommand(1);
    auto po = std::make_shared<ProvenanceOptions>();
    auto* p = attest->add_subcommand(
        "provenance", "Sign SLSA v1 provenance for a quantized build (in-toto statement in DSSE)");
    p->add_option("path", po->path, "The built model file (the attestation's subject)")->required();
    p->add_option("--key", po->key, "Private key of the publisher")->required();
    p->add_option("--base-model-digest", po->base_model_digest,
                  "sha256:HEX of the base model it was quantized from")
        ->required();
    p->add_option("--base-model", po->base_model, "Where the base model came from (URI or name)");
    p->add_option("--quantizer", po->quantizer, "Quantizer as TOOL@VERSION, e.g. llama.cpp@b4747")
        ->required();
    p->add_option("--quantization", po->quantization, "Quantization type, e.g. Q4_0")->required();
    p->add_option("--target", po->target, "Hardware target, e.g. x86_64-avx2")->required();
    p->add_option("--builder-id", po->builder_id,
                  "URI of the builder (default https://pylon.dev/builders/pylon-cli)");
    p->add_option("--out", po->out, "Attestation file to write (DSSE envelope JSON)")->required();
    po->pass.add_to(p);
    p->callback([po] { run_provenance(*po); });

    auto vo = std::make_shared<VerifyAttestationOptions>();
    auto* v = verify_group(app)->add_subcommand("attestation",
                                                "Verify a DSSE-signed in-toto attestation");
    v->add_option("file", vo->file, "Attestation (DSSE envelope JSON)")->required();
    v->add_option("--key", vo->key, "Public key of the signer (PEM)")->required();
    v->add_option("--subject", vo->subject,
                  "Also check that this file is a subject of the attestation");
    v->callback([vo] { run_verify_attestation(*vo); });
}

}  // namespace pylon::cli
