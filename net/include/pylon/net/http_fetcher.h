// HttpFetcher: the TUF client's transport over HTTP and HTTPS.
//
// Contract (on top of signing::tuf::Fetcher's):
// - GET only; a 200 answer's body is the result. 301/302/303/307/308 are followed up to
//   `max_redirects` times (https -> http downgrades are refused); any other status is
//   Errc::fetch_failed naming the URL and the status.
// - The body never grows past `max_length`: a Content-Length above it is refused before the body
//   is read, and a chunked or close-delimited body fails with Errc::too_large as soon as it passes
//   the limit.
// - HTTPS verifies the server's chain against the system CA store (or `ca_file` when set) and the
//   certificate's names against the URL's host; there is no switch to turn verification off.
// - Every connect, handshake, write and read waits at most its timeout, and one fetch (redirects
//   included) at most `total_timeout`, so a server that drips bytes cannot hold the client.
// One HttpFetcher may be used for many fetches, one at a time (it is not thread-safe); each fetch
// opens its own connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "pylon/common/bytes.h"
#include "pylon/common/result.h"
#include "pylon/signing/tuf/fetcher.h"

namespace pylon::net {

struct HttpFetcherConfig {
    std::chrono::milliseconds connect_timeout{10'000};  // resolve + TCP connect + TLS handshake
    std::chrono::milliseconds read_timeout{30'000};     // each write or read on the connection
    std::chrono::milliseconds total_timeout{300'000};   // the whole fetch, redirects included
    int max_redirects = 3;
    std::filesystem::path ca_file;  // PEM CA certificates trusted instead of the system store
    std::string user_agent = "pylon-tuf-client";
};

class HttpFetcher final : public signing::tuf::Fetcher {
public:
    // Fails (Errc::invalid_argument) when `ca_file` cannot be loaded or TLS cannot be set up.
    [[nodiscard]] static Result<std::unique_ptr<HttpFetcher>> create(HttpFetcherConfig config = {});
    ~HttpFetcher() override;
    HttpFetcher(const HttpFetcher&) = delete;
    HttpFetcher& operator=(const HttpFetcher&) = delete;

    [[nodiscard]] Result<Bytes> fetch(const std::string& url, std::uint64_t max_length) override;

private:
    struct Impl;
    explicit HttpFetcher(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pylon::net
