// The registry side of the pylon CLI: saved credentials, the options every registry command
// shares, and a small JSON-over-HTTP client that turns the registry's error bodies into the one
// line the CLI prints.
//
// credentials.json (in config_dir(), mode 0600, written atomically):
//     {"registry": "https://registry.example", "token": "<bearer token>", "ca_file": "/path.pem"}
// ca_file is "" when the system CA store is used. The trusted TUF metadata of each registry
// lives beside it in tuf/<registry_dir_name(registry)>/ (root.json first, placed by login).
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "pylon/net/http_client.h"

namespace pylon::cli {

// Bad usage that CLI11 cannot see (a malformed NS/MODEL@VERSION); main() exits 2 for it.
class UsageError : public CommandError {
public:
    using CommandError::CommandError;
};

struct Credentials {
    std::string registry;
    std::string token;
    std::string ca_file;
};

// $PYLON_CONFIG_DIR, else $XDG_CONFIG_HOME/pylon, else $HOME/.config/pylon.
std::filesystem::path config_dir();
// A file-system-safe name for a registry URL ("https://r.example:8443/" -> "https_r.example_8443").
std::string registry_dir_name(std::string_view registry);
// config_dir()/tuf/<registry_dir_name>: the TUF client's metadata directory for that registry.
std::filesystem::path tuf_metadata_dir(std::string_view registry);

[[nodiscard]] Result<Credentials> parse_credentials(std::string_view json_text);
std::string credentials_to_json(const Credentials& c);
// Reads config_dir()/credentials.json; nullopt when there is none.
std::optional<Credentials> load_credentials();
void save_credentials(const Credentials& c);

// "<code>: <message> (HTTP <status>)" from a registry error body (main() prints it after
// "pylon: error: "); the code is "http_<status>" when the body is not the registry's error JSON.
std::string format_api_error(unsigned status, std::string_view body);

// "NS/MODEL" or "NS/MODEL@VERSION".
struct ModelRef {
    std::string ns;
    std::string model;
    std::string version;  // empty when not given
};
// Throws UsageError when the text is not NS/MODEL (with `need_version`: NS/MODEL@VERSION).
ModelRef parse_model_ref(std::string_view text, bool need_version);

// Percent-encodes a query parameter value.
std::string url_encode(std::string_view s);

// --registry, --token-file, --ca-file: each overrides the saved credentials.
struct RegistryOptions {
    std::string registry;
    std::string token_file;
    std::string ca_file;
    void add_to(CLI::App* cmd, bool with_ca_file = true);
    // The effective credentials; throws CommandError when no registry or token is known.
    Credentials resolve(bool need_token = true) const;
};

// Throws CommandError for a failed response (any status outside 2xx and not in `accepted`).
class RegistryClient {
public:
    explicit RegistryClient(Credentials creds);

    // Sends a request with the bearer token; returns the response, whatever its status.
    net::HttpResponse send(net::HttpRequest request);
    // The same, with transport failures as an Error instead of a CommandError.
    [[nodiscard]] Result<net::HttpResponse> try_send(net::HttpRequest request);
    // JSON call: throws CommandError with format_api_error() unless the status is 2xx.
    nlohmann::json call(net::Method method, const std::string& target,
                        const std::optional<nlohmann::json>& body = std::nullopt);
    // GETs every page of a list endpoint and returns the concatenated items.
    nlohmann::json list_all(const std::string& target);

    const Credentials& credentials() const { return creds_; }
    // The registry URL without a trailing '/'.
    std::string base_url() const;

private:
    Credentials creds_;
    std::string prefix_;  // the registry URL's path, prepended to every target
    std::unique_ptr<net::HttpClient> http_;
};

// Throws CommandError(format_api_error(...)) when `r` is not 2xx.
void expect_success(const net::HttpResponse& r);
// Parses a 2xx response body as JSON (an empty body is null).
nlohmann::json json_body(const net::HttpResponse& r);

}  // namespace pylon::cli
