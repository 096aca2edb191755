// The audit log and token storage: one entry per mutating call (actor, action, target, remote
// address), never a token secret; tokens stored only as hashes.
#include <catch2/catch.hpp>

#include <set>

#include "api_fixture.h"
#include "pylon/signing/sha256.h"

namespace pylon::registry_api::test {
namespace {

struct Expected {
    std::string action;
    std::string target;
    std::string actor_name;
};

std::string actor_of(ApiServer& s, const std::string& token) {
    const Json who = s.get("/v1/whoami", token).json();
    return "token " + who.at("id").get<std::string>() + " (" + who.at("name").get<std::string>() +
           ")";
}

}  // namespace

TEST_CASE("every mutating call leaves one audit entry, and no secret", "[registry_api][audit]") {
    ApiServer s;
    AcmeSetup a(s);
    std::string revoke_id;
    const std::string doomed = s.create_token({"read"}, &revoke_id, "doomed");
    REQUIRE(s.call(Method::delete_, "/v1/tokens/" + revoke_id, s.admin()).status == 204);

    REQUIRE(s.call(Method::patch, "/v1/models/acme/tiny", a.publish_token,
                   R"({"description": "audited"})")
                .status == 200);
    s.add_build(a.release, s.build_body("b1", a.digest, a.blob.size()), a.publish_token);
    REQUIRE(s.post(a.release + "/attestations", a.publish_token,
                   {{"kind", "provenance"},
                    {"build", "b1"},
                    {"envelope", provenance(a.key, "model.gguf", a.blob)}})
                .status == 201);
    const Reply opened = s.call(Method::post, "/v1/namespaces/acme/uploads", a.publish_token);
    REQUIRE(opened.status == 202);
    const std::string session = opened.header("Docker-Upload-UUID");
    REQUIRE_FALSE(session.empty());
    REQUIRE(
        s.call(Method::delete_, "/v1/namespaces/acme/uploads/" + session, a.publish_token).status ==
        204);
    s.create_release("acme", "tiny", "0.9.0", a.publish_token);
    s.add_build("/v1/models/acme/tiny/releases/0.9.0", s.build_body("old", a.digest, a.blob.size()),
                a.publish_token);
    REQUIRE(
        s.call(Method::delete_, "/v1/models/acme/tiny/releases/0.9.0/builds/old", a.publish_token)
            .status == 204);
    const Reply published =
        s.publish(a.release, a.publish_token,
                  s.sign_role("acme", s.release_targets(a.release, a.read_token), a.key));
    REQUIRE(published.status == 200);
    REQUIRE(s.post(a.release + "/yank", a.publish_token, {{"reason", "audit test"}}).status == 200);
    // Reads and refusals are not audited.
    REQUIRE(s.get("/v1/models/acme/tiny", a.read_token).status == 200);
    REQUIRE(s.post("/v1/namespaces", a.read_token, {{"name", "nope"}}).status == 403);
    REQUIRE(s.post("/v1/namespaces", "", {{"name", "nope"}}).status == 401);

    const std::string admin = "bootstrap-admin";
    const std::string pub = "acme-publisher";
    const std::vector<Expected> expected = {
        {"namespace.create", "acme", admin},
        {"tuf.targets", "targets", admin},
        {"token.create", "", admin},
        {"token.create", "", admin},
        {"token.create", "", admin},
        {"blob.upload", a.digest, pub},
        {"model.create", "acme/tiny", pub},
        {"release.create", "acme/tiny@1.0.0", pub},
        {"token.create", "token " + revoke_id, admin},
        {"token.revoke", "token " + revoke_id, admin},
        {"model.update", "acme/tiny", pub},
        {"build.add", "acme/tiny@1.0.0/b1", pub},
        {"attestation.add", "acme/tiny@1.0.0/b1", pub},
        {"upload.open", session, pub},
        {"upload.cancel", session, pub},
        {"release.create", "acme/tiny@0.9.0", pub},
        {"build.add", "acme/tiny@0.9.0/old", pub},
        {"build.remove", "acme/tiny@0.9.0/old", pub},
        {"release.publish", "acme/tiny@1.0.0", pub},
        {"release.yank", "acme/tiny@1.0.0", pub},
    };

    const Reply log = s.get("/v1/audit?limit=500", s.admin());
    REQUIRE(log.status == 200);
    const Json items = log.json().at("items");
    INFO(items.dump(1));
    REQUIRE(items.size() == expected.size());
    const std::string admin_actor = actor_of(s, s.admin());
    const std::string pub_actor = actor_of(s, a.publish_token);
    // Newest first: the i-th expected entry is items[n - 1 - i].
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const Json& e = items[expected.size() - 1 - i];
        const Expected& x = expected[i];
        INFO("entry " << i << ": " << e.dump());
        CHECK(e.at("action") == x.action);
        if (!x.target.empty()) CHECK(e.at("target") == x.target);
        CHECK(e.at("actor") == (x.actor_name == admin ? admin_actor : pub_actor));
        CHECK(e.at("remote_addr").get<std::string>().rfind("127.0.0.1", 0) == 0);
        CHECK_FALSE(e.at("at").get<std::string>().empty());
    }

    const Reply by_action = s.get("/v1/audit?action=build.add", s.admin());
    REQUIRE(by_action.status == 200);
    CHECK(by_action.json().at("items").size() == 2);
    // The actor has spaces and parentheses: percent-encoded in the query.
    std::string encoded;
    for (char c : admin_actor) {
        if (c == ' ') {
            encoded += "%20";
        } else if (c == '(') {
            encoded += "%28";
        } else if (c == ')') {
            encoded += "%29";
        } else {
            encoded += c;
        }
    }
    const Reply by_actor_encoded = s.get("/v1/audit?limit=500&actor=" + encoded, s.admin());
    REQUIRE(by_actor_encoded.status == 200);
    CHECK(by_actor_encoded.json().at("items").size() == 7);

    // No secret anywhere: not in the audit log (API or table), not in the tokens table.
    const std::vector<std::string> secrets = {s.admin(), a.read_token, a.publish_token,
                                              a.other_token, doomed};
    std::string audit_table;
    for (const auto& row : s.db().exec("SELECT actor, action, target, remote_addr, details::text "
                                       "FROM audit_log")) {
        for (const auto& field : row) audit_table += std::string(field.c_str()) + "\n";
    }
    std::string tokens_table;
    for (const auto& row : s.db().exec("SELECT * FROM api_tokens")) {
        for (const auto& field : row) tokens_table += std::string(field.c_str()) + "\n";
    }
    for (const auto& secret : secrets) {
        CHECK(log.body.find(secret) == std::string::npos);
        CHECK(audit_table.find(secret) == std::string::npos);
        CHECK(tokens_table.find(secret) == std::string::npos);
        // Not even without its prefix.
        CHECK(tokens_table.find(secret.substr(4)) == std::string::npos);
        const auto hashed = s.db().exec("SELECT count(*) FROM api_tokens WHERE token_hash = '" +
                                        signing::to_hex(signing::sha256(secret)) + "'");
        CHECK(hashed[0][0].as<int>() == 1);
    }
    const Reply listed = s.get("/v1/tokens?limit=500", s.admin());
    REQUIRE(listed.status == 200);
    for (const auto& secret : secrets) CHECK(listed.body.find(secret) == std::string::npos);
    CHECK(tokens_table.find("pyl_") == std::string::npos);
    CHECK(audit_table.find("pyl_") == std::string::npos);
}

}  // namespace pylon::registry_api::test
