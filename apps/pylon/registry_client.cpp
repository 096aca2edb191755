#include "registry_client.h"

#include <sys/stat.h>

#include <cctype>
#include <cstdlib>

#include "pylon/common/file_io.h"
#include "pylon/net/url.h"

namespace pylon::cli {
namespace {

constexpr std::size_t kMaxCredentialsSize = 64 * 1024;
constexpr std::size_t kMaxTokenSize = 4096;

std::string trim(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    std::size_t i = 0;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    return s.substr(i);
}

std::string strip_slash(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

}  // namespace

std::filesystem::path config_dir() {
    if (const char* d = std::getenv("PYLON_CONFIG_DIR"); d && *d) return d;
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) {
        return std::filesystem::path(x) / "pylon";
    }
    const char* home = std::getenv("HOME");
    if (!home || !*home) throw CommandError("set PYLON_CONFIG_DIR or HOME to find the config");
    return std::filesystem::path(home) / ".config" / "pylon";
}

std::string registry_dir_name(std::string_view registry) {
    std::string out;
    bool last_sep = false;
    for (const char c : registry) {
        const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
        if (keep) out += c;
        if (!keep && !last_sep && !out.empty()) out += '_';
        last_sep = !keep;
    }
    while (!out.empty() && out.back() == '_') out.pop_back();
    return out.empty() ? "registry" : out;
}

std::filesystem::path tuf_metadata_dir(std::string_view registry) {
    return config_dir() / "tuf" / registry_dir_name(strip_slash(std::string(registry)));
}

Result<Credentials> parse_credentials(std::string_view json_text) {
    const auto j = nlohmann::json::parse(json_text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("registry") ||
        !j["registry"].is_string() || !j.contains("token") || !j["token"].is_string()) {
        return Error(pylon::Errc::parse_error, "credentials.json is not {registry, token, ...}");
    }
    Credentials c;
    c.registry = j["registry"].get<std::string>();
    c.token = j["token"].get<std::string>();
    if (j.contains("ca_file") && j["ca_file"].is_string())
        c.ca_file = j["ca_file"].get<std::string>();
    return c;
}

std::string credentials_to_json(const Credentials& c) {
    return nlohmann::json{{"registry", c.registry}, {"token", c.token}, {"ca_file", c.ca_file}}
               .dump(2) +
           "\n";
}

std::optional<Credentials> load_credentials() {
    const auto path = config_dir() / "credentials.json";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return std::nullopt;
    const auto text = unwrap(read_file(path, kMaxCredentialsSize), "reading " + path.string());
    return unwrap(parse_credentials(text), path.string());
}

void save_credentials(const Credentials& c) {
    const auto dir = config_dir();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw CommandError("creating " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
    unwrap(write_file_atomic(dir / "credentials.json", credentials_to_json(c), 0600),
           "saving credentials");
}

std::string format_api_error(unsigned status, std::string_view body) {
    const auto j = nlohmann::json::parse(body, nullptr, false);
    std::string code = "http_" + std::to_string(status);
    std::string message;
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
        const auto& e = j["error"];
        if (e.contains("code") && e["code"].is_string()) code = e["code"].get<std::string>();
        if (e.contains("message") && e["message"].is_string())
            message = e["message"].get<std::string>();
    }
    if (message.empty()) message = "the registry refused the request";
    return code + ": " + message + " (HTTP " + std::to_string(status) + ")";
}

ModelRef parse_model_ref(std::string_view text, bool need_version) {
    const auto bad = [&](const std::string& why) {
        return UsageError("'" + std::string(text) + "' is not " +
                          (need_version ? "NS/MODEL@VERSION" : "NS/MODEL") + ": " + why);
    };
    ModelRef ref;
    const auto at = text.find('@');
    std::string_view name = text.substr(0, at);
    if (at != std::string_view::npos) ref.version = std::string(text.substr(at + 1));
    const auto slash = name.find('/');
    if (slash == std::string_view::npos) throw bad("missing '/'");
    ref.ns = std::string(name.substr(0, slash));
    ref.model = std::string(name.substr(slash + 1));
    if (ref.ns.empty() || ref.model.empty()) throw bad("empty namespace or model");
    if (ref.model.find('/') != std::string::npos) throw bad("more than one '/'");
    if (need_version && ref.version.empty()) throw bad("missing @VERSION");
    if (!need_version && at != std::string_view::npos && ref.version.empty()) {
        throw bad("empty version");
    }
    return ref;
}

std::string url_encode(std::string_view s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else {
            out += '%';
            out += kHex[u >> 4];
            out += kHex[u & 15];
        }
    }
    return out;
}

void RegistryOptions::add_to(CLI::App* cmd, bool with_ca_file) {
    cmd->add_option("--registry", registry, "Registry URL (default: from `pylon login`)");
    cmd->add_option("--token-file", token_file, "File holding the API token")
        ->check(CLI::ExistingFile);
    if (with_ca_file) {
        cmd->add_option("--ca-file", ca_file, "PEM CA certificates to trust for HTTPS")
            ->check(CLI::ExistingFile);
    }
}

Credentials RegistryOptions::resolve(bool need_token) const {
    Credentials c;
    const auto saved = load_credentials();
    if (saved) c = *saved;
    if (!registry.empty()) {
        if (!saved || strip_slash(saved->registry) != strip_slash(registry)) c = Credentials{};
        c.registry = registry;
    }
    if (!token_file.empty()) {
        c.token = trim(unwrap(read_file(token_file, kMaxTokenSize), "reading token file"));
        if (c.token.empty()) throw CommandError("token file " + token_file + " is empty");
    }
    if (!ca_file.empty()) c.ca_file = ca_file;
    if (c.registry.empty()) {
        throw CommandError("no registry: run `pylon login` or pass --registry and --token-file");
    }
    if (need_token && c.token.empty()) {
        throw CommandError("no token for " + c.registry +
                           ": run `pylon login` or pass "
                           "--token-file");
    }
    c.registry = strip_slash(c.registry);
    return c;
}

RegistryClient::RegistryClient(Credentials creds) : creds_(std::move(creds)) {
    const auto url = unwrap(net::parse_url(creds_.registry), "--registry");
    prefix_ = strip_slash(url.target);
    net::HttpClientConfig config;
    config.ca_file = creds_.ca_file;
    config.user_agent = "pylon-cli/0.1.0";
    http_ = unwrap(net::HttpClient::create(creds_.registry, config));
}

std::string RegistryClient::base_url() const {
    return strip_slash(creds_.registry);
}

net::HttpResponse RegistryClient::send(net::HttpRequest request) {
    return unwrap(try_send(std::move(request)));
}

Result<net::HttpResponse> RegistryClient::try_send(net::HttpRequest request) {
    if (!request.target.empty() && request.target.front() == '/') {
        request.target = prefix_ + request.target;
    }
    if (!creds_.token.empty() && !request.headers.get("Authorization")) {
        request.headers.add("Authorization", "Bearer " + creds_.token);
    }
    return http_->send(request);
}

nlohmann::json RegistryClient::call(net::Method method, const std::string& target,
                                    const std::optional<nlohmann::json>& body) {
    net::HttpRequest rq;
    rq.method = method;
    rq.target = target;
    rq.headers.add("Accept", "application/json");
    if (body) {
        rq.body = body->dump();
        rq.headers.add("Content-Type", "application/json");
    }
    const auto r = send(std::move(rq));
    expect_success(r);
    return json_body(r);
}

nlohmann::json RegistryClient::list_all(const std::string& target) {
    nlohmann::json items = nlohmann::json::array();
    std::string page;
    const char sep = target.find('?') == std::string::npos ? '?' : '&';
    for (int pages = 0; pages < 10000; ++pages) {
        std::string t = target + sep + "limit=500";
        if (!page.empty()) t += "&page_token=" + url_encode(page);
        const auto j = call(net::Method::get, t);
        if (j.is_object() && j.contains("items") && j["items"].is_array()) {
            for (const auto& item : j["items"]) items.push_back(item);
        }
        if (!j.is_object() || !j.contains("next_page_token") || !j["next_page_token"].is_string() ||
            j["next_page_token"].get<std::string>().empty()) {
            break;
        }
        page = j["next_page_token"].get<std::string>();
    }
    return items;
}

void expect_success(const net::HttpResponse& r) {
    if (r.status < 200 || r.status > 299) throw CommandError(format_api_error(r.status, r.body));
}

nlohmann::json json_body(const net::HttpResponse& r) {
    if (r.body.empty()) return nullptr;
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded()) {
        throw CommandError("the registry answered HTTP " + std::to_string(r.status) +
                           " with a body that is not JSON");
    }
    return j;
}

}  // namespace pylon::cli
