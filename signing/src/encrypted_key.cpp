#include "encrypted_key.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"
#include "pylon/signing/json.h"

namespace pylon::signing::detail {
namespace {

constexpr std::string_view kFormat = "pylon-encrypted-private-key";
constexpr unsigned long long kMaxOpsLimit = 16;
constexpr std::size_t kMaxMemLimit = std::size_t{1} << 30;  // 1 GiB
constexpr std::size_t kMaxCiphertext = 4096;

Result<Bytes> b64_field(const nlohmann::json& obj, const char* name, std::size_t want_size) {
    if (!obj.contains(name) || !obj[name].is_string()) {
        return Error(Errc::bad_key,
                     std::string("encrypted key: missing string field '") + name + "'");
    }
    auto raw = base64_decode(obj[name].get_ref<const std::string&>());
    if (!raw || (want_size != 0 && raw->size() != want_size)) {
        return Error(Errc::bad_key,
                     std::string("encrypted key: field '") + name + "' is malformed");
    }
    return std::move(*raw);
}

Result<std::array<std::uint8_t, crypto_secretbox_KEYBYTES>> derive(const Secret& passphrase,
                                                                   ByteView salt,
                                                                   unsigned long long ops,
                                                                   std::size_t mem) {
    std::array<std::uint8_t, crypto_secretbox_KEYBYTES> key{};
    if (crypto_pwhash(key.data(), key.size(), passphrase.reveal().data(),
                      passphrase.reveal().size(), salt.data(), ops, mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return Error(Errc::crypto_failure, "passphrase key derivation ran out of memory");
    }
    return key;
}

}  // namespace

bool looks_like_encrypted_key(std::string_view text) noexcept {
    const auto first = text.find_first_not_of(" \t\r\n");
    return first != std::string_view::npos && text[first] == '{' &&
           text.find(kFormat) != std::string_view::npos;
}

Result<std::string> encrypt_key(ByteView der, KeyType type, const Secret& passphrase,
                                KdfStrength strength) {
    if (sodium_init() < 0) return Error(Errc::crypto_failure, "libsodium failed to initialise");
    if (passphrase.empty())
        return Error(Errc::bad_key, "refusing to encrypt a key with an empty passphrase");
    const unsigned long long ops = strength == KdfStrength::moderate
                                       ? crypto_pwhash_OPSLIMIT_MODERATE
                                       : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    const std::size_t mem = strength == KdfStrength::moderate ? crypto_pwhash_MEMLIMIT_MODERATE
                                                              : crypto_pwhash_MEMLIMIT_INTERACTIVE;
    Bytes salt(crypto_pwhash_SALTBYTES);
    Bytes nonce(crypto_secretbox_NONCEBYTES);
    randombytes_buf(salt.data(), salt.size());
    randombytes_buf(nonce.data(), nonce.size());
    PYLON_TRY_ASSIGN(auto key, derive(passphrase, salt, ops, mem));
    Bytes sealed(der.size() + crypto_secretbox_MACBYTES);
    crypto_secretbox_easy(sealed.data(), der.data(), der.size(), nonce.data(), key.data());
    sodium_memzero(key.data(), key.size());
    nlohmann::json doc = {
        {"format", kFormat},
        {"version", 1},
        {"key_type", to_string(type)},
        {"kdf",
         {{"name", "argon2id13"},
          {"opslimit", ops},
          {"memlimit", mem},
          {"salt", base64_encode(salt)}}},
        {"cipher", {{"name", "xsalsa20poly1305"}, {"nonce", base64_encode(nonce)}}},
        {"ciphertext", base64_encode(sealed)},
    };
    return doc.dump(2) + "\n";
}

Result<Bytes> decrypt_key(std::string_view text, const Secret& passphrase) {
    if (sodium_init() < 0) return Error(Errc::crypto_failure, "libsodium failed to initialise");
    auto parsed = parse_json(text, JsonLimits{64 * 1024, 8});
    if (!parsed)
        return Error(Errc::bad_key, "encrypted key is not valid JSON: " + parsed.error().message());
    const nlohmann::json& doc = *parsed;
    if (!doc.is_object() || doc.value("format", "") != kFormat || doc.value("version", 0) != 1) {
        return Error(Errc::bad_key, "not a version 1 Pylon encrypted private key");
    }
    if (!doc.contains("kdf") || !doc["kdf"].is_object() || !doc.contains("cipher") ||
        !doc["cipher"].is_object()) {
        return Error(Errc::bad_key, "encrypted key: missing kdf or cipher");
    }
    const auto& kdf = doc["kdf"];
    const auto& cipher = doc["cipher"];
    if (kdf.value("name", "") != "argon2id13" || cipher.value("name", "") != "xsalsa20poly1305") {
        return Error(Errc::bad_key, "encrypted key: unsupported kdf or cipher");
    }
    if (!kdf.contains("opslimit") || !kdf["opslimit"].is_number_unsigned() ||
        !kdf.contains("memlimit") || !kdf["memlimit"].is_number_unsigned()) {
        return Error(Errc::bad_key, "encrypted key: kdf opslimit and memlimit must be integers");
    }
    const auto ops = kdf["opslimit"].get<unsigned long long>();
    const auto mem = kdf["memlimit"].get<std::uint64_t>();
    if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > kMaxOpsLimit ||
        mem < crypto_pwhash_MEMLIMIT_MIN || mem > kMaxMemLimit) {
        return Error(Errc::bad_key, "encrypted key: kdf parameters out of bounds (opslimit " +
                                        std::to_string(ops) + ", memlimit " + std::to_string(mem) +
                                        ")");
    }
    PYLON_TRY_ASSIGN(Bytes salt, b64_field(kdf, "salt", crypto_pwhash_SALTBYTES));
    PYLON_TRY_ASSIGN(Bytes nonce, b64_field(cipher, "nonce", crypto_secretbox_NONCEBYTES));
    PYLON_TRY_ASSIGN(Bytes sealed, b64_field(doc, "ciphertext", 0));
    if (sealed.size() <= crypto_secretbox_MACBYTES || sealed.size() > kMaxCiphertext) {
        return Error(Errc::bad_key, "encrypted key: ciphertext has an impossible length");
    }
    PYLON_TRY_ASSIGN(auto key, derive(passphrase, salt, ops, static_cast<std::size_t>(mem)));
    Bytes der(sealed.size() - crypto_secretbox_MACBYTES);
    const int rc = crypto_secretbox_open_easy(der.data(), sealed.data(), sealed.size(),
                                              nonce.data(), key.data());
    sodium_memzero(key.data(), key.size());
    if (rc != 0)
        return Error(Errc::wrong_passphrase, "wrong passphrase (or the key file was altered)");
    return der;
}

}  // namespace pylon::signing::detail
