// pylon key generate | public
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli_support.h"
#include "commands.h"
#include "pylon/common/file_io.h"

namespace pylon::cli {
namespace {

struct GenerateOptions {
    std::string type = "ed25519";
    std::string out;
    bool force = false;
    bool encrypt = false;
    PassphraseOptions pass;
};

void run_generate(const GenerateOptions& o) {
    const auto type = unwrap(signing::parse_key_type(o.type));
    const std::filesystem::path key_path = o.out + ".key";
    const std::filesystem::path pub_path = o.out + ".pub";
    if (!o.force) {
        for (const auto& p : {key_path, pub_path}) {
            if (std::filesystem::exists(p)) {
                throw CommandError(p.string() + " already exists (use --force to overwrite)");
            }
        }
    }
    std::optional<Secret> passphrase = o.pass.get();
    if (o.encrypt && !passphrase) {
        throw CommandError(
            "--encrypt needs a passphrase: --passphrase-file, --passphrase-env or "
            "PYLON_KEY_PASSPHRASE");
    }
    auto key = unwrap(signing::PrivateKey::generate(type), "generating key");
    unwrap(key.save(key_path, passphrase ? &*passphrase : nullptr), "writing " + key_path.string());
    unwrap(write_file_atomic(pub_path, key.public_key().to_pem(), 0644),
           "writing " + pub_path.string());
    std::cout << "generated " << signing::to_string(type) << " key " << key.key_id() << "\n"
              << "  private: " << key_path.string()
              << (passphrase ? " (encrypted with the passphrase, Argon2id + XSalsa20-Poly1305)"
                             : " (PKCS#8 PEM, mode 0600, not encrypted)")
              << "\n  public:  " << pub_path.string() << "\n";
}

struct PublicOptions {
    std::string key;
    std::string out;
    PassphraseOptions pass;
};

void run_public(const PublicOptions& o) {
    const auto pub = load_public_key(o.key, &o.pass);
    if (o.out.empty()) {
        std::cout << pub.to_pem();
    } else {
        unwrap(write_file_atomic(o.out, pub.to_pem(), 0644), "writing " + o.out);
    }
    std::cerr << signing::to_string(pub.type()) << " key " << pub.key_id() << "\n";
}

}  // namespace

void add_key_commands(CLI::App& app) {
    auto* key = app.add_subcommand("key", "Generate signing keys and show public keys");
    key->require_subcommand(1);

    auto gen = std::make_shared<GenerateOptions>();
    auto* g =
        key->add_subcommand("generate", "Generate a key pair: PREFIX.key (private) and PREFIX.pub");
    g->add_option("--type", gen->type, "Key type: ed25519, ecdsa-p256 or ecdsa-p384")
        ->check(CLI::IsMember({"ed25519", "ecdsa-p256", "ecdsa-p384"}))
        ->capture_default_str();
    g->add_option("--out", gen->out, "Path prefix of the files to write")->required();
    g->add_flag("--force", gen->force, "Overwrite existing files");
    g->add_flag("--encrypt", gen->encrypt, "Require a passphrase and encrypt the private key");
    gen->pass.add_to(g);
    g->footer(
        "Without a passphrase the private key is written as PKCS#8 PEM readable only by its "
        "owner (0600). With one (--passphrase-file, --passphrase-env or PYLON_KEY_PASSPHRASE) "
        "it is encrypted with Argon2id and XSalsa20-Poly1305.");
    g->callback([gen] { run_generate(*gen); });

    auto pub = std::make_shared<PublicOptions>();
    auto* p = key->add_subcommand("public",
                                  "Print the public key (PEM SubjectPublicKeyInfo) of a key file");
    p->add_option("key", pub->key, "Private key file (PREFIX.key) or public key file")->required();
    p->add_option("--out", pub->out, "Write to FILE instead of standard output");
    pub->pass.add_to(p);
    p->callback([pub] { run_public(*pub); });
}

}  // namespace pylon::cli
