// Helpers shared by the OMS model-signature tests.
#pragma once

#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "pylon/common/result.h"
#include "pylon/signing/encoding.h"

namespace pylon::test {

template <typename T>
void require_ok(const pylon::Result<T>& r) {
    INFO((r ? std::string("ok") : r.error().to_string()));
    REQUIRE(r.ok());
}

// Checks that `r` failed with `code`; returns the message so callers can check what it names.
template <typename T, typename E>
std::string expect_error(const pylon::Result<T>& r, E code) {
    if (r) {
        FAIL_CHECK("expected error " << make_error_code(code).message() << ", got success");
        return {};
    }
    INFO(r.error().to_string());
    CHECK(r.error().code() == make_error_code(code));
    return r.error().message();
}

inline nlohmann::json payload_of(const nlohmann::json& bundle) {
    const auto raw =
        signing::base64_decode(bundle["dsseEnvelope"]["payload"].get<std::string>()).value();
    return nlohmann::json::parse(pylon::to_string(raw));
}

// Verifies a DER ECDSA signature with OpenSSL alone, independently of pylon::signing's keys.
inline bool openssl_verify(const std::string& pem, std::string_view message,
                           const pylon::Bytes& sig, const char* digest) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (!pkey) return false;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit_ex(ctx, nullptr, digest, nullptr, nullptr, pkey, nullptr) == 1 &&
              EVP_DigestVerify(ctx, sig.data(), sig.size(),
                               reinterpret_cast<const unsigned char*>(message.data()),
                               message.size()) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

}  // namespace pylon::test
