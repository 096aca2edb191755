// Shared pieces of the pylon CLI: passphrase sources, key loading, the failure convention.
//
// Every command reports failure by throwing CommandError (or returning a failed Result that
// it turns into one); main() prints exactly one line, "pylon: error: ...", and exits 1.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <stdexcept>
#include <string>

#include "pylon/common/result.h"
#include "pylon/common/secret.h"
#include "pylon/signing/keys.h"

namespace pylon::cli {

class CommandError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Unwraps a Result or throws CommandError with its message (prefixed by `what` if given).
template <typename T>
T unwrap(Result<T> r, const std::string& what = {}) {
    if (!r) throw CommandError(what.empty() ? r.error().what() : what + ": " + r.error().what());
    if constexpr (!std::is_void_v<T>) return std::move(r).value();
}

// Where a passphrase comes from: --passphrase-file, --passphrase-env, else the variable
// PYLON_KEY_PASSPHRASE, else (for reading an encrypted key on a terminal) a prompt.
struct PassphraseOptions {
    std::string file;
    std::string env;
    void add_to(CLI::App* cmd);
    // nullopt when no source is configured.
    std::optional<Secret> get() const;
};

// Loads a private key, asking for the passphrase only if the key is encrypted.
signing::PrivateKey load_private_key(const std::string& path, const PassphraseOptions& pass);
// Loads a public key from a PEM file (or the public half of a private key file).
signing::PublicKey load_public_key(const std::string& path,
                                   const PassphraseOptions* pass = nullptr);

}  // namespace pylon::cli
