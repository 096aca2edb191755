#include "api_fixture.h"

#include <catch2/catch.hpp>

#include <chrono>

#include "pylon/catalog/types.h"
#include "pylon/signing/intoto.h"
#include "pylon/signing/model_signature.h"
#include "pylon/signing/sha256.h"
#include "pylon/signing/tuf/repository.h"
#include "pylon/signing/tuf/targets_editor.h"

namespace pylon::registry_api::test {

namespace {

signing::tuf::Time in_days(int days) {
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()) +
           std::chrono::days(days);
}

// The version a snapshot lists for "<role>.json", or 0 when it does not list it.
std::int64_t listed_version(const Json& snapshot, const std::string& role) {
    const auto& meta = snapshot.at("signed").at("meta");
    const auto it = meta.find(role + ".json");
    return it == meta.end() ? 0 : it->at("version").get<std::int64_t>();
}

}  // namespace

Json Reply::json() const {
    return Json::parse(body, nullptr, false);
}

std::string Reply::error_code() const {
    const Json j = json();
    if (!j.is_object() || !j.contains("error")) return "";
    return j["error"].value("code", "");
}

std::string Reply::error_message() const {
    const Json j = json();
    if (!j.is_object() || !j.contains("error")) return "";
    return j["error"].value("message", "");
}

std::string digest_of(std::string_view bytes) {
    return "sha256:" + signing::to_hex(signing::sha256(bytes));
}

Json license(std::string_view spdx) {
    return Json{{"spdx", spdx}};
}

signing::PrivateKey new_key() {
    auto key = signing::PrivateKey::generate(signing::KeyType::ed25519);
    REQUIRE(key.ok());
    return std::move(key).value();
}

Json provenance(const signing::PrivateKey& key, const std::string& file_name,
                const std::string& bytes) {
    signing::QuantizationProvenance p;
    p.base_model_uri = "hf://example/base";
    p.base_model_sha256 = signing::sha256(std::string_view("base model"));
    p.quantizer = "llama.cpp@b4567";
    p.quantization = "Q8_0";
    p.target = "x86_64-avx2";
    auto predicate = signing::slsa_quantization_predicate(p);
    REQUIRE(predicate.ok());
    signing::Statement st;
    st.subject.push_back({file_name, "", {{"sha256", signing::to_hex(signing::sha256(bytes))}}});
    st.predicate_type = std::string(signing::kSlsaProvenanceV1);
    st.predicate = std::move(predicate).value();
    auto envelope = signing::sign_statement(st, key);
    REQUIRE(envelope.ok());
    return envelope->to_json();
}

Json model_signature(const signing::PrivateKey& key, const std::string& bytes) {
    pylon::test::TempDir dir;
    const auto file = dir.write("model.gguf", bytes);
    auto bundle = signing::sign_model(file, key);
    REQUIRE(bundle.ok());
    return Json::parse(*bundle);
}

ApiServer::ApiServer() : data_dir_(tmp_ / "data") {
    registry::RegistryConfig config;
    config.server.host = "127.0.0.1";
    config.server.port = 0;
    config.server.io_threads = 1;
    config.server.worker_threads = 2;
    config.server.header_timeout = std::chrono::seconds(5);
    config.server.body_read_timeout = std::chrono::seconds(5);
    config.server.idle_timeout = std::chrono::seconds(10);
    config.server.write_timeout = std::chrono::seconds(5);
    config.server.shutdown_grace = std::chrono::seconds(2);
    config.data_dir = data_dir_;
    config.database_url = db_.conninfo();
    config.db_pool_size = 3;
    auto created = registry::Registry::create(std::move(config));
    REQUIRE(created.ok());
    registry_ = std::move(created).value();
    auto started = registry_->start();
    INFO((started.ok() ? std::string() : started.error().to_string()));
    REQUIRE(started.ok());

    net::HttpClientConfig client_config;
    client_config.connect_timeout = std::chrono::seconds(5);
    client_config.read_timeout = std::chrono::seconds(20);
    client_config.total_timeout = std::chrono::seconds(60);
    auto client =
        net::HttpClient::create("http://127.0.0.1:" + std::to_string(port()), client_config);
    REQUIRE(client.ok());
    client_ = std::move(client).value();

    admin_token_ = pylon::test::read_all(data_dir_ / "admin.token");
    while (!admin_token_.empty() && admin_token_.back() == '\n') admin_token_.pop_back();
    REQUIRE(admin_token_.rfind("pyl_", 0) == 0);
}

ApiServer::~ApiServer() {
    client_.reset();
    if (registry_) registry_->stop();
}

Reply ApiServer::call(Method method, const std::string& target, const std::string& token,
                      std::string body, net::HttpHeaders headers) {
    net::HttpRequest request;
    request.method = method;
    request.target = target;
    request.headers = std::move(headers);
    if (!token.empty()) request.headers.add("Authorization", "Bearer " + token);
    if (!body.empty() && !request.headers.get("Content-Type")) {
        request.headers.add("Content-Type", "application/json");
    }
    request.body = std::move(body);
    auto response = client_->send(request);
    INFO(std::string(net::to_string(method))
         << " " << target << ": " << (response.ok() ? "" : response.error().to_string()));
    REQUIRE(response.ok());
    return Reply{response->status, std::move(response->headers), std::move(response->body)};
}

std::string ApiServer::create_token(const std::vector<std::string>& scopes, std::string* id,
                                    const std::string& name) {
    const Reply r = post("/v1/tokens", admin_token_, {{"name", name}, {"scopes", scopes}});
    INFO(r.body);
    REQUIRE(r.status == 201);
    const Json j = r.json();
    if (id) *id = j.at("id").get<std::string>();
    return j.at("token").get<std::string>();
}

void ApiServer::create_namespace(const std::string& ns) {
    const Reply r = post("/v1/namespaces", admin_token_, {{"name", ns}});
    INFO(r.body);
    REQUIRE(r.status == 201);
}

void ApiServer::delegate(const std::string& ns, const signing::PrivateKey& key) {
    const Reply r = call(Method::post, "/v1/tuf/targets", admin_token_, delegation_json(ns, key));
    INFO(r.body);
    REQUIRE(r.status == 200);
}

std::string ApiServer::delegation_json(const std::string& ns, const signing::PrivateKey& key) {
    auto targets_key = signing::PrivateKey::load(data_dir_ / "tuf/offline-keys/targets.key");
    REQUIRE(targets_key.ok());
    const Reply current = get("/tuf/metadata/targets.json");
    REQUIRE(current.status == 200);
    auto editor = signing::tuf::TargetsEditor::from_bytes(current.body);
    REQUIRE(editor.ok());
    signing::tuf::DelegationSpec spec;
    spec.name = ns;
    spec.keys = {key.public_key()};
    spec.threshold = 1;
    spec.terminating = true;
    spec.paths = std::vector<std::string>{ns + "/*/*/*/*"};
    REQUIRE(editor->set_delegation(spec).ok());
    editor->set_expires(in_days(60));
    auto signed_json = editor->sign({&*targets_key});
    REQUIRE(signed_json.ok());
    return *signed_json;
}

std::string ApiServer::upload(const std::string& ns, const std::string& token,
                              const std::string& bytes) {
    const std::string digest = digest_of(bytes);
    const Reply r =
        call(Method::post, "/v1/namespaces/" + ns + "/uploads?digest=" + digest, token, bytes, [] {
            net::HttpHeaders h;
            h.add("Content-Type", "application/octet-stream");
            return h;
        }());
    INFO(r.body);
    REQUIRE(r.status == 201);
    return digest;
}

void ApiServer::create_model(const std::string& ns, const std::string& model,
                             const std::string& token) {
    const Reply r = post("/v1/namespaces/" + ns + "/models", token,
                         {{"name", model}, {"license", license("MIT")}});
    INFO(r.body);
    REQUIRE(r.status == 201);
}

void ApiServer::create_release(const std::string& ns, const std::string& model,
                               const std::string& version, const std::string& token) {
    const Reply r =
        post("/v1/models/" + ns + "/" + model + "/releases", token, {{"version", version}});
    INFO(r.body);
    REQUIRE(r.status == 201);
}

Json ApiServer::build_body(const std::string& name, const std::string& digest, std::size_t size,
                           const std::vector<std::string>& isa) {
    return {{"name", name},
            {"target",
             {{"arch", "x86_64"}, {"isa", isa}, {"accelerator", "none"}, {"min_ram_mb", 512}}},
            {"format", "gguf"},
            {"quantization", "Q8_0"},
            {"files", Json::array({{{"name", "model.gguf"}, {"digest", digest}, {"size", size}}})}};
}

void ApiServer::add_build(const std::string& release_path, const Json& body,
                          const std::string& token) {
    const Reply r = post(release_path + "/builds", token, body);
    INFO(r.body);
    REQUIRE(r.status == 201);
}

std::optional<std::string> ApiServer::current_role(const std::string& ns) {
    const Reply ts = get("/tuf/metadata/timestamp.json");
    REQUIRE(ts.status == 200);
    const auto snapshot_version =
        ts.json().at("signed").at("meta").at("snapshot.json").at("version").get<std::int64_t>();
    const Reply snapshot =
        get("/tuf/metadata/" + std::to_string(snapshot_version) + ".snapshot.json");
    REQUIRE(snapshot.status == 200);
    const auto version = listed_version(snapshot.json(), ns);
    if (version == 0) return std::nullopt;
    const Reply role = get("/tuf/metadata/" + std::to_string(version) + "." + ns + ".json");
    REQUIRE(role.status == 200);
    return role.body;
}

std::map<std::string, signing::tuf::TargetFile> ApiServer::release_targets(
    const std::string& release_path, const std::string& token) {
    const Reply r = get(release_path, token);
    REQUIRE(r.status == 200);
    const Json release = r.json();
    std::map<std::string, signing::tuf::TargetFile> out;
    for (const auto& build : release.at("builds")) {
        for (const auto& file : build.at("files")) {
            signing::tuf::TargetFile t;
            t.length = file.at("size").get<std::uint64_t>();
            t.hashes = {{"sha256", file.at("digest").get<std::string>().substr(7)}};
            t.custom = Json{{"pylon",
                             {{"namespace", release.at("namespace")},
                              {"model", release.at("model")},
                              {"version", release.at("version")},
                              {"build", build.at("name")},
                              {"target", build.at("target")},
                              {"format", build.at("format")},
                              {"quantization", build.at("quantization")},
                              {"license", release.at("license")}}}};
            out.emplace(file.at("target_path").get<std::string>(), std::move(t));
        }
    }
    return out;
}

std::string ApiServer::sign_role(const std::string& ns,
                                 const std::map<std::string, signing::tuf::TargetFile>& targets,
                                 const signing::PrivateKey& key) {
    const auto current = current_role(ns);
    auto editor = signing::tuf::TargetsEditor::new_role();
    if (current) {
        auto loaded = signing::tuf::TargetsEditor::from_bytes(*current);
        REQUIRE(loaded.ok());
        editor = std::move(loaded).value();
    }
    for (const auto& [path, file] : targets) REQUIRE(editor.add_target(path, file).ok());
    editor.set_expires(in_days(60));
    auto signed_json = editor.sign({&key});
    REQUIRE(signed_json.ok());
    return *signed_json;
}

Reply ApiServer::publish(const std::string& release_path, const std::string& token,
                         const std::string& role_json) {
    return post(release_path + "/publish", token, {{"targets_metadata", Json::parse(role_json)}});
}

Json stored_state(ApiServer& s) {
    Json state = Json::object();
    for (const std::string path :
         {"/v1/namespaces?limit=500", "/v1/models?limit=500", "/v1/tokens?limit=500",
          "/v1/audit?limit=500", "/v1/models/acme/tiny/releases?limit=500",
          "/v1/models/acme/tiny/releases/1.0.0",
          "/v1/models/acme/tiny/releases/1.0.0/attestations"}) {
        const Reply r = s.get(path, s.admin());
        state[path] = {{"status", r.status}, {"body", r.json()}};
    }
    // last_used_at moves when a token is used: not a change made by the call under test.
    for (auto& t : state["/v1/tokens?limit=500"]["body"]["items"]) t.erase("last_used_at");
    return state;
}

AcmeSetup::AcmeSetup(ApiServer& server) : s(server), key(new_key()) {
    s.create_namespace("acme");
    s.delegate("acme", key);
    read_token = s.create_token({"read"}, nullptr, "reader");
    publish_token = s.create_token({"publish:acme"}, nullptr, "acme-publisher");
    other_token = s.create_token({"publish:other"}, nullptr, "other-publisher");
    blob = "GGUF model bytes for the registry API tests: 0123456789abcdefghijklmnopqrstuvwxyz";
    digest = s.upload("acme", publish_token, blob);
    s.create_model("acme", "tiny", publish_token);
    s.create_release("acme", "tiny", "1.0.0", publish_token);
}

}  // namespace pylon::registry_api::test
