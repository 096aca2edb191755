#include "registry_http.h"

#include <nlohmann/json.hpp>

#include "pylon/net/url.h"

namespace pylon::agent {

Result<std::unique_ptr<RegistryHttp>> RegistryHttp::open(const std::string& base_url,
                                                         const std::string& ca_file) {
    PYLON_TRY_ASSIGN(const net::Url url, net::parse_url(base_url));
    net::HttpClientConfig config;
    config.ca_file = ca_file;
    config.user_agent = "pylon-agent";
    config.total_timeout = std::chrono::seconds(60);
    PYLON_TRY_ASSIGN(auto client, net::HttpClient::create(base_url, config));
    std::string prefix = url.target;
    const auto q = prefix.find('?');
    if (q != std::string::npos) prefix.resize(q);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    return std::unique_ptr<RegistryHttp>(new RegistryHttp(std::move(client), std::move(prefix)));
}

Result<net::HttpResponse> RegistryHttp::call(net::Method m, const std::string& path,
                                             const Secret* bearer, std::string body) {
    net::HttpRequest rq;
    rq.method = m;
    rq.target = prefix_ + path;
    rq.body = std::move(body);
    rq.max_response_size = 1u << 20;
    if (bearer != nullptr) rq.headers.add("Authorization", "Bearer " + bearer->reveal());
    if (m == net::Method::post || m == net::Method::put) {
        rq.headers.add("Content-Type", "application/json");
    }
    return client_->send(rq);
}

Result<net::HttpResponse> RegistryHttp::get(const std::string& path, const Secret* bearer) {
    return call(net::Method::get, path, bearer, {});
}

Result<net::HttpResponse> RegistryHttp::post_json(const std::string& path, const Secret* bearer,
                                                  std::string body) {
    return call(net::Method::post, path, bearer, std::move(body));
}

Result<net::HttpResponse> RegistryHttp::get_range(const std::string& path, std::uint64_t first,
                                                  std::uint64_t last) {
    net::HttpRequest rq;
    rq.method = net::Method::get;
    rq.target = prefix_ + path;
    rq.max_response_size = last - first + 1 + 4096;
    rq.headers.add("Range", "bytes=" + std::to_string(first) + "-" + std::to_string(last));
    return client_->send(rq);
}

Result<net::HttpResponse> RegistryHttp::get_director_change(const Secret* bearer,
                                                            std::int64_t version,
                                                            std::chrono::seconds wait) {
    net::HttpRequest rq;
    rq.method = net::Method::get;
    rq.target = prefix_ + "/v1/device/director";
    rq.max_response_size = 1u << 20;
    rq.server_wait = wait;
    rq.headers.add("Authorization", "Bearer " + bearer->reveal());
    rq.headers.add("If-None-Match", "\"" + std::to_string(version) + "\"");
    rq.headers.add("Prefer", "wait=" + std::to_string(wait.count()));
    return client_->send(rq);
}

Result<net::HttpResponse> RegistryHttp::put_json(const std::string& path, const Secret* bearer,
                                                 std::string body) {
    return call(net::Method::put, path, bearer, std::move(body));
}

Error registry_refusal(std::string_view what, const net::HttpResponse& r) {
    std::string detail;
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
        detail = j["error"].value("code", "") + ": " + j["error"].value("message", "");
    }
    const Errc code = r.status == 401 || r.status == 403 ? Errc::permission_denied
                      : r.status == 404                  ? Errc::not_found
                                                         : Errc::io_error;
    return Error(code, std::string(what) + ": HTTP " + std::to_string(r.status) +
                           (detail.empty() ? "" : " " + detail.substr(0, 512)));
}

}  // namespace pylon::agent
