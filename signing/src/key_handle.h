// detail::KeyHandle and helpers shared by the key implementation files.
#pragma once

#include <utility>

#include "openssl_util.h"
#include "pylon/common/result.h"
#include "pylon/signing/keys.h"

namespace pylon::signing::detail {

struct KeyHandle {
    explicit KeyHandle(ossl::Pkey p) : pkey(std::move(p)) {}
    ossl::Pkey pkey;
};

Result<ossl::Pkey> pkey_from_raw_public(KeyType type, ByteView raw);
Result<std::pair<KeyType, Bytes>> raw_public_from_pkey(EVP_PKEY* pkey);

}  // namespace pylon::signing::detail
