// The registry's REST API against a real PostgreSQL and a real server: one Registry started
// in-process per test (fresh database from the PG* variables, data directory in a TempDir,
// port 0), spoken to over HTTP with pylon::net::HttpClient.
//
// Helpers cover what the publishing flow needs from a client: tokens, namespaces delegated to a
// publisher key through the top-level TUF targets role (signed with the offline targets key the
// bootstrap leaves in DATA/tuf/offline-keys/), blob uploads, releases, attestations and the
// namespace's signed targets role for publishing. Every helper REQUIREs the answer it needs, so
// a broken step fails where it happens.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pg_test_support.h"
#include "pylon/net/http_client.h"
#include "pylon/registry/registry.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/metadata.h"
#include "temp_dir.h"

namespace pylon::registry_api::test {

using Json = nlohmann::json;
using net::Method;

struct Reply {
    unsigned status = 0;
    net::HttpHeaders headers;
    std::string body;

    // The body as JSON (null when it is not JSON).
    Json json() const;
    // error.code / error.message of an error body ("" when absent).
    std::string error_code() const;
    std::string error_message() const;
    std::string header(std::string_view name) const { return headers.get(name).value_or(""); }
};

// "sha256:<hex>" of `bytes`.
std::string digest_of(std::string_view bytes);
// A licence object with only an SPDX expression.
Json license(std::string_view spdx = "MIT");
// The model-signing key type used for publishers: Ed25519.
signing::PrivateKey new_key();
// A SLSA provenance DSSE envelope (as `pylon attest provenance` writes it) naming one subject.
Json provenance(const signing::PrivateKey& key, const std::string& file_name,
                const std::string& bytes);
// An OMS model-signature bundle over a single file holding `bytes`.
Json model_signature(const signing::PrivateKey& key, const std::string& bytes);

class ApiServer {
public:
    ApiServer();
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // Raw call; `token` empty: no Authorization header.
    Reply call(Method method, const std::string& target, const std::string& token = {},
               std::string body = {}, net::HttpHeaders headers = {});
    Reply get(const std::string& target, const std::string& token = {}) {
        return call(Method::get, target, token);
    }
    Reply post(const std::string& target, const std::string& token, const Json& body) {
        return call(Method::post, target, token, body.dump());
    }

    const std::string& admin() const { return admin_token_; }
    // A new token with these scopes (through POST /v1/tokens); its id in *id when given.
    std::string create_token(const std::vector<std::string>& scopes, std::string* id = nullptr,
                             const std::string& name = "test");

    // POST /v1/namespaces, then a new version of the top-level targets delegating
    // "<ns>/*/*/*/*" to `key` (signed with the offline targets key), POST /v1/tuf/targets.
    void create_namespace(const std::string& ns);
    void delegate(const std::string& ns, const signing::PrivateKey& key);
    // The signed top-level targets role delegate() posts (not posted).
    std::string delegation_json(const std::string& ns, const signing::PrivateKey& key);

    // Monolithic upload (POST ?digest=); returns the digest.
    std::string upload(const std::string& ns, const std::string& token, const std::string& bytes);
    void create_model(const std::string& ns, const std::string& model, const std::string& token);
    void create_release(const std::string& ns, const std::string& model, const std::string& version,
                        const std::string& token);
    // A build with one file ("model.gguf") of `digest`/`size`, target x86_64 with `isa`.
    Json build_body(const std::string& name, const std::string& digest, std::size_t size,
                    const std::vector<std::string>& isa = {"avx2"});
    void add_build(const std::string& release_path, const Json& body, const std::string& token);

    // The namespace's delegated role as published now (nullopt before its first publish).
    std::optional<std::string> current_role(const std::string& ns);
    // The targets a release's files become, exactly as the registry expects them, built from
    // GET <release_path> (path → target file).
    std::map<std::string, signing::tuf::TargetFile> release_targets(const std::string& release_path,
                                                                    const std::string& token);
    // The next version of the namespace's role: the current one plus `targets`, signed by `key`.
    std::string sign_role(const std::string& ns,
                          const std::map<std::string, signing::tuf::TargetFile>& targets,
                          const signing::PrivateKey& key);
    Reply publish(const std::string& release_path, const std::string& token,
                  const std::string& role_json);

    catalog::test::TestDatabase& db() { return db_; }
    const std::filesystem::path& data_dir() const { return data_dir_; }
    std::uint16_t port() const { return registry_->port(); }
    const registry::Registry& registry() const { return *registry_; }

private:
    catalog::test::TestDatabase db_;
    pylon::test::TempDir tmp_;
    std::filesystem::path data_dir_;
    std::unique_ptr<registry::Registry> registry_;
    std::unique_ptr<net::HttpClient> client_;
    std::string admin_token_;
};

// Everything a refused call must leave as it was: namespaces, models, acme/tiny's releases and
// release 1.0.0 (builds, attestations), tokens, the audit log; one JSON value to compare.
Json stored_state(ApiServer& s);

// A namespace "acme" delegated to a publisher key, with tokens of each kind, a model "tiny",
// a draft release 1.0.0 and an uploaded blob: the starting point of most tests.
struct AcmeSetup {
    explicit AcmeSetup(ApiServer& server);

    ApiServer& s;
    signing::PrivateKey key;
    std::string read_token;
    std::string publish_token;  // publish:acme
    std::string other_token;    // publish:other
    std::string blob;           // bytes of the uploaded file
    std::string digest;
    const std::string release = "/v1/models/acme/tiny/releases/1.0.0";
};

}  // namespace pylon::registry_api::test
