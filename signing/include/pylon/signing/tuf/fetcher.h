// Fetcher: how the TUF client gets bytes. An interface, so that the client's logic carries no
// network code: pylon::net provides HTTP(S), tests use an in-memory repository.
#pragma once

#include <cstdint>
#include <string>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"
#include "pylon/signing/tuf/errors.h"

namespace pylon::signing::tuf {

class Fetcher {
public:
    virtual ~Fetcher() = default;
    // Fetches `url` whole. Must stop reading and fail with Errc::too_large as soon as more than
    // `max_length` bytes arrive (never buffer an endless response); any transport failure or
    // non-success status is Errc::fetch_failed with a message naming the URL.
    [[nodiscard]] virtual Result<Bytes> fetch(const std::string& url, std::uint64_t max_length) = 0;
};

}  // namespace pylon::signing::tuf
