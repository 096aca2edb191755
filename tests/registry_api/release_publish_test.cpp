// Releases end to end over HTTP: a build, its attestations (SLSA provenance in DSSE, an OMS
// model signature) verified against the namespace's publisher key, and publishing through the
// namespace's TUF targets role signed on the client side; the refusals leave the release a
// draft and the TUF repository unchanged.
#include <catch2/catch.hpp>

#include "api_fixture.h"
#include "pylon/signing/tuf/targets_editor.h"

namespace pylon::registry_api::test {
namespace {

using Targets = std::map<std::string, signing::tuf::TargetFile>;

std::string release_state(ApiServer& s, const std::string& release, const std::string& token) {
    const Reply r = s.get(release, token);
    REQUIRE(r.status == 200);
    return r.json().at("state").get<std::string>();
}

std::size_t attestation_count(ApiServer& s, const std::string& release, const std::string& token) {
    const Reply r = s.get(release + "/attestations", token);
    REQUIRE(r.status == 200);
    return r.json().at("items").size();
}

Json attestation(const std::string& kind, const std::string& build, const Json& envelope) {
    return {{"kind", kind}, {"build", build}, {"envelope", envelope}};
}

std::size_t builds_found(ApiServer& s, const std::string& query, const std::string& token) {
    const Reply r = s.get("/v1/builds?" + query, token);
    INFO(query << ": " << r.body);
    REQUIRE(r.status == 200);
    return r.json().at("items").size();
}

}  // namespace

TEST_CASE("attestations are verified against the namespace's publisher key",
          "[registry_api][releases]") {
    ApiServer s;
    AcmeSetup a(s);
    s.add_build(a.release, s.build_body("b1", a.digest, a.blob.size()), a.publish_token);
    const std::string url = a.release + "/attestations";
    const auto stranger = new_key();

    const Json prov = provenance(a.key, "model.gguf", a.blob);
    const Reply p = s.post(url, a.publish_token, attestation("provenance", "b1", prov));
    INFO(p.body);
    REQUIRE(p.status == 201);
    CHECK(p.json().at("keyid") == a.key.key_id());
    const Json oms = model_signature(a.key, a.blob);
    const Reply m = s.post(url, a.publish_token, attestation("model_signature", "b1", oms));
    INFO(m.body);
    REQUIRE(m.status == 201);
    CHECK(m.json().at("kind") == "model_signature");

    const Json before = stored_state(s);
    struct Refusal {
        std::string label;
        Json body;
        unsigned status;
        std::string code;
        std::string message;
    };
    const std::vector<Refusal> refusals = {
        {"provenance by another key",
         attestation("provenance", "b1", provenance(stranger, "model.gguf", a.blob)), 422,
         "bad_signature", ""},
        {"model signature by another key",
         attestation("model_signature", "b1", model_signature(stranger, a.blob)), 422,
         "bad_signature", ""},
        {"provenance of other bytes",
         attestation("provenance", "b1", provenance(a.key, "model.gguf", "other bytes")), 422,
         "bad_signature", "model.gguf"},
        {"model signature of other bytes",
         attestation("model_signature", "b1", model_signature(a.key, "other bytes")), 422,
         "bad_signature", "b1"},
        {"unknown build", attestation("provenance", "b2", prov), 404, "not_found", "b2"},
        {"unknown kind", attestation("sbom", "b1", prov), 400, "invalid_field", "kind"},
        {"envelope not an object", attestation("provenance", "b1", Json("x")), 400, "invalid_field",
         "envelope"},
        {"envelope not DSSE", attestation("provenance", "b1", Json{{"payload", 1}}), 400, "", ""},
    };
    for (const auto& r : refusals) {
        const Reply reply = s.post(url, a.publish_token, r.body);
        INFO(r.label << ": " << reply.body);
        CHECK(reply.status == r.status);
        if (!r.code.empty()) CHECK(reply.error_code() == r.code);
        CHECK_FALSE(reply.error_code().empty());
        CHECK_THAT(reply.error_message(), Catch::Contains(r.message));
        CHECK(stored_state(s) == before);
    }

    CHECK(attestation_count(s, a.release, a.read_token) == 2);
    // The stored bytes come back as they were sent.
    const Json items = s.get(url, a.read_token).json().at("items");
    REQUIRE(items.size() == 2);
    CHECK(items[0].at("envelope") == prov);
    CHECK(items[1].at("envelope") == oms);
    CHECK(items[0].at("build") == "b1");
}

TEST_CASE("a release is published only with exactly its targets, signed by the namespace key",
          "[registry_api][releases]") {
    ApiServer s;
    AcmeSetup a(s);
    s.add_build(a.release, s.build_body("b1", a.digest, a.blob.size(), {"avx2", "fma"}),
                a.publish_token);
    const Targets expected = s.release_targets(a.release, a.read_token);
    REQUIRE(expected.size() == 1);
    const std::string path = "acme/tiny/1.0.0/b1/model.gguf";
    REQUIRE(expected.count(path) == 1);

    // Nothing published yet: searches find nothing.
    CHECK(builds_found(s, "arch=x86_64&isa=avx2,fma", a.read_token) == 0);

    struct Refusal {
        std::string label;
        std::string role;
        unsigned status;
        std::string code;
        std::string message;
    };
    Targets wrong_hash = expected;
    wrong_hash[path].hashes["sha256"] = std::string(64, '0');
    Targets wrong_length = expected;
    wrong_length[path].length += 1;
    Targets extra = expected;
    extra["acme/tiny/1.0.0/b1/extra.bin"] = expected.at(path);
    Targets wrong_custom = expected;
    (*wrong_custom[path].custom)["pylon"]["quantization"] = "Q4_0";
    Targets no_custom = expected;
    no_custom[path].custom.reset();
    const auto stranger = new_key();
    const std::vector<Refusal> refusals = {
        {"signed by another key", s.sign_role("acme", expected, stranger), 422, "bad_signature",
         ""},
        {"missing target", s.sign_role("acme", {}, a.key), 400, "invalid_field", "is missing"},
        {"wrong hash", s.sign_role("acme", wrong_hash, a.key), 400, "invalid_field", "hash"},
        {"wrong length", s.sign_role("acme", wrong_length, a.key), 400, "invalid_field", "length"},
        {"extra target", s.sign_role("acme", extra, a.key), 400, "invalid_field",
         "not a file of this release"},
        {"wrong custom fields", s.sign_role("acme", wrong_custom, a.key), 400, "invalid_field",
         "custom fields"},
        {"no custom fields", s.sign_role("acme", no_custom, a.key), 400, "invalid_field",
         "custom fields"},
    };
    const Reply timestamp_before = s.get("/tuf/metadata/timestamp.json");
    for (const auto& r : refusals) {
        const Json before = stored_state(s);
        const Reply reply = s.publish(a.release, a.publish_token, r.role);
        INFO(r.label << ": " << reply.body);
        CHECK(reply.status == r.status);
        CHECK(reply.error_code() == r.code);
        CHECK_THAT(reply.error_message(), Catch::Contains(r.message));
        CHECK(release_state(s, a.release, a.read_token) == "draft");
        CHECK(stored_state(s) == before);
        CHECK_FALSE(s.current_role("acme").has_value());
        CHECK(s.get("/tuf/metadata/timestamp.json").body == timestamp_before.body);
    }
    // A token of another namespace cannot publish, even with a correctly signed role.
    const std::string good_role = s.sign_role("acme", expected, a.key);
    CHECK(s.publish(a.release, a.other_token, good_role).status == 403);
    CHECK(release_state(s, a.release, a.read_token) == "draft");

    const Reply published = s.publish(a.release, a.publish_token, good_role);
    INFO(published.body);
    REQUIRE(published.status == 200);
    CHECK(published.json().at("state") == "published");
    CHECK(published.json().contains("published_at"));

    // The TUF chain: timestamp → snapshot → acme's role lists the file as the catalog has it.
    const auto role = s.current_role("acme");
    REQUIRE(role.has_value());
    const Json listed = Json::parse(*role).at("signed").at("targets");
    REQUIRE(listed.contains(path));
    CHECK(listed.at(path).at("length") == a.blob.size());
    CHECK(listed.at(path).at("hashes").at("sha256") == a.digest.substr(7));
    CHECK(listed.at(path).at("custom").at("pylon").at("build") == "b1");
    const std::string hex = a.digest.substr(7);
    const Reply target = s.get("/tuf/targets/acme/tiny/1.0.0/b1/" + hex + ".model.gguf");
    REQUIRE(target.status == 200);
    CHECK(target.body == a.blob);
    CHECK(s.get("/tuf/targets/acme/tiny/1.0.0/b1/" + std::string(64, 'f') + ".model.gguf").status ==
          404);
    CHECK(s.get("/tuf/targets/acme/tiny/1.0.0/b1/model.gguf").status == 404);

    // Published releases are immutable.
    const Reply twice = s.publish(a.release, a.publish_token, good_role);
    CHECK(twice.status == 409);
    CHECK(twice.error_code() == "invalid_state");
    const Json frozen = stored_state(s);
    const Reply more =
        s.post(a.release + "/builds", a.publish_token, s.build_body("b2", a.digest, a.blob.size()));
    CHECK(more.status == 409);
    CHECK(more.error_code() == "invalid_state");
    CHECK_THAT(more.error_message(), Catch::Contains("draft"));
    const Reply remove = s.call(Method::delete_, a.release + "/builds/b1", a.publish_token);
    CHECK(remove.status == 409);
    CHECK(stored_state(s) == frozen);

    // Hardware search: only when the device's ISA set covers the build's.
    CHECK(builds_found(s, "arch=x86_64&isa=avx2,fma", a.read_token) == 1);
    CHECK(builds_found(s, "arch=x86_64&isa=avx2,fma,avx512f", a.read_token) == 1);
    CHECK(builds_found(s, "arch=x86_64&isa=avx2", a.read_token) == 0);
    CHECK(builds_found(s, "arch=x86_64", a.read_token) == 0);
    CHECK(builds_found(s, "arch=aarch64&isa=avx2,fma", a.read_token) == 0);
    CHECK(builds_found(s, "arch=x86_64&isa=avx2,fma&ram_mb=256", a.read_token) == 0);
    CHECK(builds_found(s, "arch=x86_64&isa=avx2,fma&ram_mb=1024", a.read_token) == 1);
    const Json found = s.get("/v1/builds?arch=x86_64&isa=fma,avx2", a.read_token).json();
    REQUIRE(found.at("items").size() == 1);
    CHECK(found.at("items")[0].at("name") == "b1");
    CHECK(found.at("items")[0].at("version") == "1.0.0");
    CHECK(s.get("/v1/builds?isa=avx2", a.read_token).status == 400);

    // A second release: its role must keep the first release's target unchanged.
    s.create_release("acme", "tiny", "1.1.0", a.publish_token);
    const std::string second = "/v1/models/acme/tiny/releases/1.1.0";
    s.add_build(second, s.build_body("b1", a.digest, a.blob.size(), {}), a.publish_token);
    CHECK(builds_found(s, "arch=x86_64", a.read_token) == 0);  // 1.1.0 is a draft
    const Targets second_targets = s.release_targets(second, a.read_token);
    {
        auto editor = signing::tuf::TargetsEditor::from_bytes(*role);
        REQUIRE(editor.ok());
        REQUIRE(editor->remove_target(path).ok());
        for (const auto& [p, f] : second_targets) REQUIRE(editor->add_target(p, f).ok());
        auto dropped = editor->sign({&a.key});
        REQUIRE(dropped.ok());
        const Reply r = s.publish(second, a.publish_token, *dropped);
        CHECK(r.status == 400);
        CHECK_THAT(r.error_message(), Catch::Contains("published files are immutable"));
        CHECK(release_state(s, second, a.read_token) == "draft");
    }
    const Reply second_published =
        s.publish(second, a.publish_token, s.sign_role("acme", second_targets, a.key));
    INFO(second_published.body);
    REQUIRE(second_published.status == 200);
    CHECK(builds_found(s, "arch=x86_64", a.read_token) == 1);
    CHECK(s.get("/tuf/targets/acme/tiny/1.0.0/b1/" + hex + ".model.gguf").body == a.blob);

    // Yanking takes the release out of the search; its state says why.
    const Reply yanked = s.post(a.release + "/yank", a.publish_token, {{"reason", "CVE-0000"}});
    INFO(yanked.body);
    REQUIRE(yanked.status == 200);
    CHECK(yanked.json().at("state") == "yanked");
    CHECK(yanked.json().at("yank_reason") == "CVE-0000");
    CHECK(release_state(s, a.release, a.read_token) == "yanked");
    CHECK(builds_found(s, "arch=x86_64&isa=avx2,fma", a.read_token) == 1);  // only 1.1.0
    CHECK(s.post(a.release + "/yank", a.publish_token, {{"reason", "again"}}).status == 409);
}

TEST_CASE("a release without builds cannot be published", "[registry_api][releases]") {
    ApiServer s;
    AcmeSetup a(s);
    const Reply r = s.publish(a.release, a.publish_token, s.sign_role("acme", {}, a.key));
    CHECK(r.status == 409);
    CHECK(r.error_code() == "invalid_state");
    CHECK(release_state(s, a.release, a.read_token) == "draft");
    CHECK_FALSE(s.current_role("acme").has_value());
}

}  // namespace pylon::registry_api::test
