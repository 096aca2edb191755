// The agent's calls to its registry: one kept-alive connection, the registry URL's path as a
// prefix, a bearer token (enrolment token or device credential) per call, bounded answers.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "pylon/common/result.h"
#include "pylon/common/secret.h"
#include "pylon/net/http_client.h"

namespace pylon::agent {

class RegistryHttp {
public:
    [[nodiscard]] static Result<std::unique_ptr<RegistryHttp>> open(const std::string& base_url,
                                                                    const std::string& ca_file);
    // `bearer` null: no Authorization header.
    [[nodiscard]] Result<net::HttpResponse> get(const std::string& path, const Secret* bearer);
    [[nodiscard]] Result<net::HttpResponse> post_json(const std::string& path, const Secret* bearer,
                                                      std::string body);
    // GET with "Range: bytes=first-last" (no credential: target files are public).
    [[nodiscard]] Result<net::HttpResponse> get_range(const std::string& path, std::uint64_t first,
                                                      std::uint64_t last);
    // GET /v1/device/director as a long poll: 304 when the document is still `version` after
    // waiting up to `wait` for a change.
    [[nodiscard]] Result<net::HttpResponse> get_director_change(const Secret* bearer,
                                                                std::int64_t version,
                                                                std::chrono::seconds wait);
    // Ends the call in flight and every later one (thread-safe).
    void cancel() { client_->cancel(); }
    [[nodiscard]] Result<net::HttpResponse> put_json(const std::string& path, const Secret* bearer,
                                                     std::string body);

private:
    RegistryHttp(std::unique_ptr<net::HttpClient> client, std::string prefix)
        : client_(std::move(client)), prefix_(std::move(prefix)) {}
    [[nodiscard]] Result<net::HttpResponse> call(net::Method m, const std::string& path,
                                                 const Secret* bearer, std::string body);
    std::unique_ptr<net::HttpClient> client_;
    std::string prefix_;
};

// An Error for a registry answer that is not the one expected: "<what>: HTTP 401 unauthorized:
// <the registry's message>".
Error registry_refusal(std::string_view what, const net::HttpResponse& r);

}  // namespace pylon::agent
