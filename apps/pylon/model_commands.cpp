// pylon sign model | verify model — OMS v1.0 model signature bundles.
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli_support.h"
#include "commands.h"
#include "pylon/common/file_io.h"
#include "pylon/signing/model_signature.h"

namespace pylon::cli {
namespace {

constexpr std::size_t kMaxBundleSize = 16u << 20;

// When the bundle lives inside a model directory it must not sign or verify itself.
signing::ManifestOptions options_for(const std::filesystem::path& model,
                                     const std::filesystem::path& bundle) {
    signing::ManifestOptions opts;
    std::error_code ec;
    if (!std::filesystem::is_directory(model, ec)) return opts;
    const auto root = std::filesystem::weakly_canonical(model, ec);
    const auto b = std::filesystem::weakly_canonical(bundle, ec);
    const auto rel = b.lexically_relative(root);
    if (!rel.empty() && *rel.begin() != "..") opts.ignore_paths.push_back(rel.generic_string());
    return opts;
}

std::string default_bundle(const std::string& model) {
    std::string m = model;
    while (m.size() > 1 && m.back() == '/') m.pop_back();
    return m + ".sig";
}

struct SignOptions {
    std::string model;
    std::string key;
    std::string out;
    PassphraseOptions pass;
};

void run_sign(const SignOptions& o) {
    if (!std::filesystem::exists(o.model))
        throw CommandError(o.model + ": no such file or directory");
    const auto key = load_private_key(o.key, o.pass);
    const std::string out = o.out.empty() ? default_bundle(o.model) : o.out;
    const auto bundle =
        unwrap(signing::sign_model(o.model, key, options_for(o.model, out)), "signing " + o.model);
    unwrap(write_file_atomic(out, bundle, 0644), "writing " + out);
    std::cout << "signed " << o.model << " with " << signing::to_string(key.type()) << " key "
              << key.key_id() << "\n  bundle: " << out << "\n";
}

struct VerifyOptions {
    std::string model;
    std::string key;
    std::string bundle;
};

void run_verify(const VerifyOptions& o) {
    if (!std::filesystem::exists(o.model)) {
        throw CommandError(o.model + ": no such file or directory");
    }
    const auto key = load_public_key(o.key);
    const std::string bundle_path = o.bundle.empty() ? default_bundle(o.model) : o.bundle;
    const auto bundle = unwrap(read_file(bundle_path, kMaxBundleSize), "reading signature bundle");
    const auto manifest =
        unwrap(signing::verify_model(o.model, bundle, key, options_for(o.model, bundle_path)),
               "verifying " + o.model);
    std::cout << "verified " << o.model << ": " << manifest.files.size()
              << (manifest.files.size() == 1 ? " file" : " files") << " signed by "
              << signing::to_string(key.type()) << " key " << key.key_id() << "\n";
}

}  // namespace

CLI::App* verify_group(CLI::App& app) {
    for (auto* sub : app.get_subcommands({})) {
        if (sub->get_name() == "verify") return sub;
    }
    auto* v = app.add_subcommand("verify", "Verify model signatures and attestations");
    v->require_subcommand(1);
    return v;
}

void add_model_commands(CLI::App& app) {
    auto* sign = app.add_subcommand("sign", "Sign models");
    sign->require_subcommand(1);
    auto so = std::make_shared<SignOptions>();
    auto* s = sign->add_subcommand(
        "model", "Sign a model file or directory (OpenSSF model-signing v1.0 bundle)");
    s->add_option("path", so->model, "Model file or directory")->required();
    s->add_option("--key", so->key, "Private key file (from `pylon key generate`)")->required();
    s->add_option("--out", so->out, "Bundle to write (default: PATH.sig)");
    so->pass.add_to(s);
    s->callback([so] { run_sign(*so); });

    auto vo = std::make_shared<VerifyOptions>();
    auto* v =
        verify_group(app)->add_subcommand("model", "Verify a model against its signature bundle");
    v->add_option("path", vo->model, "Model file or directory")->required();
    v->add_option("--key", vo->key, "Public key of the signer (PEM)")->required();
    v->add_option("--bundle", vo->bundle, "Signature bundle (default: PATH.sig)");
    v->callback([vo] { run_verify(*vo); });
}

}  // namespace pylon::cli
