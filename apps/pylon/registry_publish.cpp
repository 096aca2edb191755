// pylon publish NS/MODEL@VERSION — the publishing flow of docs/API.md: draft release, blob
// uploads, build, attestations (SLSA provenance in DSSE, OMS model signature), and the
// namespace's delegated targets role signed here with the publisher key.
//
// The build's files are signed as one OMS model: the directory that holds them, every other
// entry of it excluded, so each manifest entry is a file's name (what `pylon pull` verifies in
// its download directory). All --file paths must therefore be in one directory.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>

#include "commands.h"
#include "pylon/signing/intoto.h"
#include "pylon/signing/model_signature.h"
#include "pylon/signing/tuf/targets_editor.h"
#include "registry_client.h"
#include "registry_tuf.h"
#include "registry_upload.h"

namespace pylon::cli {
namespace {

namespace fs = std::filesystem;
namespace tuf = signing::tuf;

struct PublishOptions {
    RegistryOptions reg;
    std::string ref;
    std::string build;
    BuildTarget target;
    std::string isa_text;
    std::string format;
    std::string quantization;
    std::vector<std::string> files;
    std::string key;
    PassphraseOptions pass;
    std::string notes;
    std::string base_model_digest;
    std::string quantizer;
    std::string quantizer_version;
    std::uint64_t chunk_mb = 64;
    bool draft = false;  // add the build to the draft; publish later
};

struct LocalFile {
    std::string path;
    std::string name;
    signing::Digest digest{};
    std::uint64_t size = 0;
    std::string digest_text() const { return "sha256:" + signing::to_hex(digest); }
};

std::string now_rfc3339() {
    return tuf::format_time(
        std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
}

std::vector<std::string> split_csv(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        const auto part = text.substr(start, comma - start);
        if (!part.empty()) out.push_back(part);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

// POST …/releases; an existing draft is continued, anything else already there is an error.
nlohmann::json open_draft(RegistryClient& client, const std::string& base, const ModelRef& ref,
                          const std::string& notes) {
    nlohmann::json body{{"version", ref.version}};
    if (!notes.empty()) body["notes"] = notes;
    net::HttpRequest rq;
    rq.method = net::Method::post;
    rq.target = base + "/releases";
    rq.body = body.dump();
    rq.headers.add("Content-Type", "application/json");
    const auto r = client.send(std::move(rq));
    if (r.status != 409) expect_success(r);
    const auto release =
        client.call(net::Method::get, base + "/releases/" + url_encode(ref.version));
    const std::string state = release.value("state", "");
    if (state != "draft") {
        throw CommandError(ref.ns + "/" + ref.model + "@" + ref.version + " is already " + state +
                           "; a published release cannot change");
    }
    std::cout << (r.status == 409 ? "continuing draft " : "created draft ") << ref.ns << "/"
              << ref.model << "@" << ref.version << "\n";
    return release;
}

void add_build(RegistryClient& client, const std::string& base, const ModelRef& ref,
               const PublishOptions& o, const std::vector<LocalFile>& files) {
    nlohmann::json jfiles = nlohmann::json::array();
    for (const auto& f : files) {
        jfiles.push_back({{"name", f.name}, {"digest", f.digest_text()}, {"size", f.size}});
    }
    const nlohmann::json body{{"name", o.build},
                              {"target",
                               {{"arch", o.target.arch},
                                {"isa", o.target.isa},
                                {"accelerator", o.target.accelerator},
                                {"min_ram_mb", o.target.min_ram_mb}}},
                              {"format", o.format},
                              {"quantization", o.quantization},
                              {"files", jfiles}};
    net::HttpRequest rq;
    rq.method = net::Method::post;
    rq.target = base + "/releases/" + url_encode(ref.version) + "/builds";
    rq.body = body.dump();
    rq.headers.add("Content-Type", "application/json");
    const auto r = client.send(std::move(rq));
    if (r.status == 409) {
        std::cout << "build " << o.build << " is already in the draft\n";
        return;
    }
    expect_success(r);
    std::cout << "added build " << o.build << "\n";
}

void post_attestation(RegistryClient& client, const std::string& target, const std::string& kind,
                      const std::string& build, const std::string& envelope_json) {
    client.call(
        net::Method::post, target,
        nlohmann::json{
            {"kind", kind}, {"build", build}, {"envelope", nlohmann::json::parse(envelope_json)}});
    std::cout << "uploaded " << kind << " attestation\n";
}

void run_publish(const PublishOptions& o) {
    const auto ref = parse_model_ref(o.ref, true);
    PublishOptions opts = o;
    opts.target.isa = split_csv(o.isa_text);
    const bool provenance = !o.base_model_digest.empty();
    if (provenance && (o.quantizer.empty() || o.quantizer_version.empty())) {
        throw UsageError("--base-model-digest needs --quantizer and --quantizer-version");
    }
    std::vector<LocalFile> files;
    std::set<std::string> names;
    fs::path dir;
    for (const auto& p : o.files) {
        if (!fs::is_regular_file(p)) throw CommandError(p + ": not a regular file");
        LocalFile f;
        f.path = p;
        f.name = fs::path(p).filename().string();
        if (!names.insert(f.name).second) throw UsageError("two --file named " + f.name);
        const auto parent = fs::weakly_canonical(fs::absolute(p)).parent_path();
        if (dir.empty()) dir = parent;
        if (parent != dir) throw UsageError("every --file must be in the same directory");
        f.digest = unwrap(signing::sha256_file(p), "hashing " + p);
        f.size = fs::file_size(p);
        files.push_back(std::move(f));
    }
    const auto key = load_private_key(o.key, o.pass);
    RegistryClient client(o.reg.resolve());
    RegistryTuf tuf_client(client.credentials());
    const std::string base = "/v1/models/" + url_encode(ref.ns) + "/" + url_encode(ref.model);
    const std::string release_path = base + "/releases/" + url_encode(ref.version);

    auto release = open_draft(client, base, ref, o.notes);
    UploadOptions up;
    up.chunk_size = std::max<std::uint64_t>(1, o.chunk_mb) << 20;
    up.show_progress = ::isatty(STDERR_FILENO) != 0;
    for (const auto& f : files) {
        const auto r = upload_blob(client, ref.ns, f.path, f.digest_text(), f.size, up);
        std::cout << (r.skipped ? "already there: " : "uploaded: ") << f.name << " "
                  << f.digest_text() << " (" << f.size << " bytes)\n";
    }
    add_build(client, base, ref, opts, files);

    // Attestations, signed with the publisher key.
    if (provenance) {
        std::string hex = o.base_model_digest;
        if (hex.rfind("sha256:", 0) == 0) hex = hex.substr(7);
        signing::QuantizationProvenance p;
        p.base_model_sha256 = unwrap(signing::digest_from_hex(hex), "--base-model-digest");
        p.quantizer = o.quantizer + "@" + o.quantizer_version;
        p.quantization = o.quantization;
        p.target = o.build;
        p.finished_on = now_rfc3339();
        signing::Statement st;
        for (const auto& f : files) {
            st.subject.push_back({f.name, "", {{"sha256", signing::to_hex(f.digest)}}});
        }
        st.predicate_type = std::string(signing::kSlsaProvenanceV1);
        st.predicate = unwrap(signing::slsa_quantization_predicate(p));
        const auto envelope = unwrap(signing::sign_statement(st, key), "signing provenance");
        post_attestation(client, release_path + "/attestations", "provenance", o.build,
                         envelope.to_json_text());
    }
    signing::ManifestOptions mo;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const auto n = entry.path().filename().string();
        if (!names.count(n)) mo.ignore_paths.push_back(n);
    }
    mo.ignore_git_paths = false;
    const auto bundle = unwrap(signing::sign_model(dir, key, mo), "signing the build's files");
    post_attestation(client, release_path + "/attestations", "model_signature", o.build, bundle);

    if (o.draft) {
        std::cout << "added build " << o.build << " to the draft of " << ref.ns << "/" << ref.model
                  << "@" << ref.version
                  << "; the next `pylon publish` without --draft publishes every build\n";
        return;
    }

    // The namespace's delegated targets, with one target per file of every build of the release
    // (builds added earlier with --draft included).
    tuf_client.refresh();
    const auto current = tuf_client.role_bytes(ref.ns);
    auto editor = current ? unwrap(tuf::TargetsEditor::from_bytes(*current), ref.ns + ".json")
                          : tuf::TargetsEditor::new_role();
    release = client.call(net::Method::get, release_path);
    std::size_t builds = 0;
    for (const auto& b : release.value("builds", nlohmann::json::array())) {
        const auto& t = b.at("target");
        BuildTarget target;
        target.arch = t.at("arch").get<std::string>();
        target.isa = t.value("isa", std::vector<std::string>{});
        target.accelerator = t.value("accelerator", "none");
        target.min_ram_mb = t.value("min_ram_mb", std::uint64_t{0});
        const std::string name = b.at("name").get<std::string>();
        TargetCustom custom{ref.ns,
                            ref.model,
                            ref.version,
                            name,
                            target,
                            b.at("format").get<std::string>(),
                            b.at("quantization").get<std::string>(),
                            release.value("license", nlohmann::json::object())};
        for (const auto& f : b.at("files")) {
            std::string hex = f.at("digest").get<std::string>();
            if (hex.rfind("sha256:", 0) == 0) hex = hex.substr(7);
            tuf::TargetFile tf;
            tf.length = f.at("size").get<std::uint64_t>();
            tf.hashes["sha256"] = hex;
            tf.custom = target_custom_json(custom);
            unwrap(editor.add_target(
                target_path(ref.ns, ref.model, ref.version, name, f.at("name").get<std::string>()),
                std::move(tf)));
        }
        ++builds;
    }
    editor.set_expires(tuf::Time(std::chrono::floor<std::chrono::seconds>(
        std::chrono::system_clock::now() + std::chrono::days(365))));
    const auto version = editor.next_version();
    const auto role_json = unwrap(editor.sign({&key}), "signing " + ref.ns + ".json");
    client.call(net::Method::post, release_path + "/publish",
                nlohmann::json{{"targets_metadata", nlohmann::json::parse(role_json)}});
    std::cout << "published " << ref.ns << "/" << ref.model << "@" << ref.version << " (build "
              << o.build << ", " << files.size() << " file(s); " << builds << " build(s) in all); "
              << ref.ns << ".json version " << version << " signed by key " << key.key_id() << "\n";
}

}  // namespace

void add_publish_commands(CLI::App& app) {
    auto o = std::make_shared<PublishOptions>();
    auto* p = app.add_subcommand("publish", "Upload, sign and publish a build of a release");
    p->add_option("release", o->ref, "NS/MODEL@VERSION")->required();
    p->add_option("--build", o->build, "Build name, e.g. x86_64-avx2-q8_0")->required();
    p->add_option("--arch", o->target.arch, "CPU architecture, e.g. x86_64")->required();
    p->add_option("--isa", o->isa_text, "Required ISA features, comma-separated (e.g. avx2,fma)");
    p->add_option("--accelerator", o->target.accelerator, "Accelerator (default none)");
    p->add_option("--min-ram-mb", o->target.min_ram_mb, "Minimum RAM in MB")->required();
    p->add_option("--format", o->format, "File format, e.g. gguf")->required();
    p->add_option("--quantization", o->quantization, "Quantization, e.g. Q8_0")->required();
    p->add_option("--file", o->files, "A file of the build (repeatable, one directory)")
        ->required()
        ->check(CLI::ExistingFile);
    p->add_option("--key", o->key, "Publisher private key of the namespace")
        ->required()
        ->check(CLI::ExistingFile);
    p->add_option("--notes", o->notes, "Release notes");
    p->add_flag("--draft", o->draft,
                "Add the build to the draft release only; a later publish without --draft "
                "publishes every build");
    p->add_option("--base-model-digest", o->base_model_digest,
                  "sha256:HEX of the base model (adds SLSA provenance)");
    p->add_option("--quantizer", o->quantizer, "Quantizer tool, e.g. llama.cpp");
    p->add_option("--quantizer-version", o->quantizer_version, "Quantizer version, e.g. b4747");
    p->add_option("--chunk-mb", o->chunk_mb, "Upload chunk size in MiB (default 64)")
        ->check(CLI::PositiveNumber);
    o->pass.add_to(p);
    o->reg.add_to(p);
    p->callback([o] { run_publish(*o); });
}

}  // namespace pylon::cli
