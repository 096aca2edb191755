#include "cli_support.h"

#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "pylon/common/file_io.h"

namespace pylon::cli {
namespace {

constexpr const char* kDefaultPassphraseEnv = "PYLON_KEY_PASSPHRASE";

std::optional<Secret> prompt_passphrase() {
    if (!::isatty(STDIN_FILENO)) return std::nullopt;
    std::cerr << "Passphrase: " << std::flush;
    termios old{};
    const bool have_term = ::tcgetattr(STDIN_FILENO, &old) == 0;
    if (have_term) {
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::string line;
    std::getline(std::cin, line);
    if (have_term) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::cerr << "\n";
    return Secret(std::move(line));
}

}  // namespace

void PassphraseOptions::add_to(CLI::App* cmd) {
    cmd->add_option("--passphrase-file", file,
                    "Read the key passphrase from the first line of FILE")
        ->check(CLI::ExistingFile);
    cmd->add_option("--passphrase-env", env,
                    "Read the key passphrase from environment variable NAME (default: "
                    "PYLON_KEY_PASSPHRASE when set)");
}

std::optional<Secret> PassphraseOptions::get() const {
    if (!file.empty()) {
        auto text = unwrap(read_file(file, 4096), "reading passphrase file");
        const auto nl = text.find_first_of("\r\n");
        Secret s(text.substr(0, nl));
        std::fill(text.begin(), text.end(), '\0');
        if (s.empty()) throw CommandError("passphrase file " + file + " is empty");
        return s;
    }
    const std::string var = env.empty() ? kDefaultPassphraseEnv : env;
    if (const char* v = std::getenv(var.c_str())) {
        if (*v == '\0') throw CommandError("environment variable " + var + " is empty");
        return Secret(v);
    }
    if (!env.empty()) throw CommandError("environment variable " + env + " is not set");
    return std::nullopt;
}

signing::PrivateKey load_private_key(const std::string& path, const PassphraseOptions& pass) {
    auto text = unwrap(read_file(path, 64 * 1024), "reading private key");
    std::optional<Secret> passphrase;
    if (signing::PrivateKey::is_encrypted(text)) {
        passphrase = pass.get();
        if (!passphrase) passphrase = prompt_passphrase();
        if (!passphrase) {
            throw CommandError(path +
                               " is encrypted: give its passphrase with --passphrase-file, "
                               "--passphrase-env or PYLON_KEY_PASSPHRASE");
        }
    }
    auto key = signing::PrivateKey::parse(text, passphrase ? &*passphrase : nullptr);
    std::fill(text.begin(), text.end(), '\0');
    return unwrap(std::move(key), path);
}

signing::PublicKey load_public_key(const std::string& path, const PassphraseOptions* pass) {
    auto text = unwrap(read_file(path, 64 * 1024), "reading public key");
    if (text.find("-----BEGIN PUBLIC KEY-----") == std::string::npos &&
        (text.find("PRIVATE KEY") != std::string::npos ||
         signing::PrivateKey::is_encrypted(text))) {
        if (!pass) throw CommandError(path + " is a private key; give the public key (.pub)");
        return load_private_key(path, *pass).public_key();
    }
    return unwrap(signing::PublicKey::from_pem(text), path);
}

}  // namespace pylon::cli
