// Pylon's passphrase-encrypted private key file.
//
// A JSON object (the file is also written 0600):
//   {
//     "format": "pylon-encrypted-private-key", "version": 1, "key_type": "ed25519"|"ecdsa-p256",
//     "kdf":    {"name": "argon2id13", "opslimit": N, "memlimit": BYTES, "salt": B64(16 bytes)},
//     "cipher": {"name": "xsalsa20poly1305", "nonce": B64(24 bytes)},
//     "ciphertext": B64(secretbox(PKCS#8 DER of the key))
//   }
// The key is derived with libsodium crypto_pwhash (Argon2id v1.3) and the DER sealed with
// crypto_secretbox_easy. Reading refuses KDF parameters outside sane bounds (a hostile file
// must not make us allocate gigabytes) and reports a wrong passphrase as Errc::wrong_passphrase.
#pragma once

#include <string>
#include <string_view>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"
#include "pylon/common/secret.h"
#include "pylon/signing/keys.h"

namespace pylon::signing::detail {

bool looks_like_encrypted_key(std::string_view text) noexcept;
Result<std::string> encrypt_key(ByteView pkcs8_der, KeyType type, const Secret& passphrase,
                                KdfStrength strength);
Result<Bytes> decrypt_key(std::string_view text, const Secret& passphrase);

}  // namespace pylon::signing::detail
