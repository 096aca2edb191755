// Signing keys: Ed25519 (libsodium), ECDSA P-256 with SHA-256 and ECDSA P-384 with SHA-384
// (OpenSSL). P-256 is the default ECDSA curve (TUF, OMS); P-384 is there because the OpenSSF
// model-signing reference tool signs with it.
//
// Public keys travel as PEM SubjectPublicKeyInfo (readable by `openssl pkey -pubin`) and as TUF
// key objects:
//   ed25519:    {"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"<64 hex>"}}
//   ecdsa-p256: {"keytype":"ecdsa","scheme":"ecdsa-sha2-nistp256","keyval":{"public":"<SPKI PEM>"}}
//   ecdsa-p384: {"keytype":"ecdsa","scheme":"ecdsa-sha2-nistp384","keyval":{"public":"<SPKI PEM>"}}
// A key ID is, as TUF defines it, the hex SHA-256 of the canonical JSON of that object.
//
// Signatures: Ed25519 signs the message itself (64 bytes, RFC 8032). ECDSA signs SHA-256 (P-256)
// or SHA-384 (P-384) of the message; the signature is DER (as `openssl dgst -sha256 -sign` writes
// it), and both low-S and high-S forms verify, as with OpenSSL and TUF. DER that is not strict
// (BER) is refused.
//
// Private keys on disk are either PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----", the file kept
// 0600) or encrypted with a passphrase in Pylon's format (see encrypted_key.h).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"
#include "pylon/common/secret.h"

namespace pylon::signing {

enum class KeyType { ed25519, ecdsa_p256, ecdsa_p384 };

// "ed25519" / "ecdsa-p256" / "ecdsa-p384".
std::string_view to_string(KeyType type) noexcept;
[[nodiscard]] Result<KeyType> parse_key_type(std::string_view name);

namespace detail {
struct KeyHandle;  // an OpenSSL EVP_PKEY, hidden from users of this header
}

class PublicKey {
public:
    [[nodiscard]] static Result<PublicKey> from_pem(std::string_view pem);
    [[nodiscard]] static Result<PublicKey> from_der(ByteView spki_der);
    // Ed25519: the 32-byte key. ECDSA: a SEC1 point, uncompressed or compressed
    // (P-256: 65 or 33 bytes; P-384: 97 or 49).
    [[nodiscard]] static Result<PublicKey> from_raw(KeyType type, ByteView raw);
    [[nodiscard]] static Result<PublicKey> from_tuf(const nlohmann::json& key);

    KeyType type() const noexcept { return type_; }
    // Ed25519: 32 bytes. ECDSA: the uncompressed point (P-256: 65 bytes, P-384: 97).
    const Bytes& raw() const noexcept { return raw_; }
    std::string to_pem() const;
    Bytes to_der() const;
    nlohmann::json to_tuf() const;
    const std::string& key_id() const noexcept { return key_id_; }

    // Succeeds only when `signature` is a valid signature of `message` by this key;
    // otherwise Errc::bad_signature (or bad_encoding for a signature that cannot be parsed).
    [[nodiscard]] Result<void> verify(ByteView message, ByteView signature) const;
    [[nodiscard]] Result<void> verify(std::string_view message, ByteView signature) const {
        return verify(as_bytes(message), signature);
    }

    friend bool operator==(const PublicKey& a, const PublicKey& b) {
        return a.type_ == b.type_ && a.raw_ == b.raw_;
    }

private:
    PublicKey() = default;
    static Result<PublicKey> make(KeyType type, Bytes raw);

    KeyType type_ = KeyType::ed25519;
    Bytes raw_;
    std::string key_id_;
    std::shared_ptr<const detail::KeyHandle> handle_;
};

// How hard the passphrase KDF (Argon2id) works when encrypting a private key.
enum class KdfStrength {
    interactive,  // libsodium OPSLIMIT/MEMLIMIT_INTERACTIVE: 64 MiB (tests)
    moderate,     // OPSLIMIT/MEMLIMIT_MODERATE: 256 MiB (default for keys at rest)
};

class PrivateKey {
public:
    [[nodiscard]] static Result<PrivateKey> generate(KeyType type);
    // Ed25519 from its 32-byte seed (RFC 8032's "secret key").
    [[nodiscard]] static Result<PrivateKey> from_ed25519_seed(ByteView seed);
    [[nodiscard]] static Result<PrivateKey> from_pkcs8_pem(std::string_view pem);
    [[nodiscard]] static Result<PrivateKey> from_pkcs8_der(ByteView der);
    // Parses either form. An encrypted key with no passphrase is Errc::encrypted_key; a wrong
    // passphrase is Errc::wrong_passphrase.
    [[nodiscard]] static Result<PrivateKey> parse(std::string_view text,
                                                  const Secret* passphrase = nullptr);
    [[nodiscard]] static Result<PrivateKey> load(const std::filesystem::path& path,
                                                 const Secret* passphrase = nullptr);
    static bool is_encrypted(std::string_view text) noexcept;

    PrivateKey(PrivateKey&&) noexcept;
    PrivateKey& operator=(PrivateKey&&) noexcept;
    ~PrivateKey();

    KeyType type() const noexcept { return public_key_.type(); }
    const PublicKey& public_key() const noexcept { return public_key_; }
    const std::string& key_id() const noexcept { return public_key_.key_id(); }

    [[nodiscard]] Result<Bytes> sign(ByteView message) const;
    [[nodiscard]] Result<Bytes> sign(std::string_view message) const {
        return sign(as_bytes(message));
    }

    [[nodiscard]] Result<std::string> to_pkcs8_pem() const;
    [[nodiscard]] Result<Bytes> to_pkcs8_der() const;
    [[nodiscard]] Result<std::string> to_encrypted(
        const Secret& passphrase, KdfStrength strength = KdfStrength::moderate) const;
    // Writes the key atomically with mode 0600: encrypted when a passphrase is given, else PKCS#8.
    [[nodiscard]] Result<void> save(const std::filesystem::path& path, const Secret* passphrase,
                                    KdfStrength strength = KdfStrength::moderate) const;

private:
    struct Impl;
    explicit PrivateKey(std::unique_ptr<Impl> impl, PublicKey pub);
    std::unique_ptr<Impl> impl_;
    PublicKey public_key_;
};

}  // namespace pylon::signing
