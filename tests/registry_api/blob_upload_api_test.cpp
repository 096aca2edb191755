// Blob uploads and downloads over HTTP: monolithic and chunked (OCI distribution style) uploads,
// their refusals (digest mismatch, Content-Range gaps and overlaps, foreign or unknown sessions),
// and downloads with ETag / If-None-Match and byte ranges.
#include <catch2/catch.hpp>

#include "api_fixture.h"

namespace pylon::registry_api::test {
namespace {

net::HttpHeaders headers(std::initializer_list<std::pair<std::string, std::string>> fields) {
    net::HttpHeaders h;
    h.add("Content-Type", "application/octet-stream");
    for (const auto& [name, value] : fields) h.add(name, value);
    return h;
}

std::string session_id(const Reply& r) {
    const std::string location = r.header("Location");
    REQUIRE(location.rfind("/v1/namespaces/", 0) == 0);
    return location.substr(location.rfind('/') + 1);
}

// 30 bytes, all distinct so that a wrong offset shows.
const std::string kData = "0123456789abcdefghijKLMNOPQRST";

}  // namespace

TEST_CASE("a monolithic upload is downloadable with ETag, If-None-Match and ranges",
          "[registry_api][blobs]") {
    ApiServer s;
    AcmeSetup a(s);
    const std::string digest = digest_of(kData);
    const Reply up = s.call(Method::post, "/v1/namespaces/acme/uploads?digest=" + digest,
                            a.publish_token, kData, headers({}));
    REQUIRE(up.status == 201);
    CHECK(up.header("Location") == "/v1/blobs/" + digest);
    CHECK(up.header("Docker-Content-Digest") == digest);

    const std::string blob = "/v1/blobs/" + digest;
    const Reply whole = s.get(blob, a.read_token);
    REQUIRE(whole.status == 200);
    CHECK(whole.body == kData);
    const std::string etag = "\"" + digest + "\"";
    CHECK(whole.header("ETag") == etag);
    CHECK(whole.header("Accept-Ranges") == "bytes");

    const Reply head = s.call(Method::head, blob, a.read_token);
    CHECK(head.status == 200);
    CHECK(head.header("Content-Length") == std::to_string(kData.size()));
    CHECK(head.body.empty());

    const Reply cached =
        s.call(Method::get, blob, a.read_token, {}, headers({{"If-None-Match", etag}}));
    CHECK(cached.status == 304);
    CHECK(cached.body.empty());
    const Reply other_etag = s.call(Method::get, blob, a.read_token, {},
                                    headers({{"If-None-Match", "\"sha256:0000\""}}));
    CHECK(other_etag.status == 200);

    const Reply part =
        s.call(Method::get, blob, a.read_token, {}, headers({{"Range", "bytes=10-19"}}));
    REQUIRE(part.status == 206);
    CHECK(part.body == kData.substr(10, 10));
    CHECK(part.header("Content-Range") == "bytes 10-19/30");

    const Reply suffix =
        s.call(Method::get, blob, a.read_token, {}, headers({{"Range", "bytes=-5"}}));
    REQUIRE(suffix.status == 206);
    CHECK(suffix.body == kData.substr(25));
    CHECK(suffix.header("Content-Range") == "bytes 25-29/30");

    const Reply open_end =
        s.call(Method::get, blob, a.read_token, {}, headers({{"Range", "bytes=28-"}}));
    REQUIRE(open_end.status == 206);
    CHECK(open_end.body == "ST");

    const Reply outside =
        s.call(Method::get, blob, a.read_token, {}, headers({{"Range", "bytes=30-40"}}));
    CHECK(outside.status == 416);
    CHECK(outside.error_code() == "range_not_satisfiable");
    CHECK(outside.header("Content-Range") == "bytes */30");

    const Reply missing = s.get("/v1/blobs/" + digest_of("nothing"), a.read_token);
    CHECK(missing.status == 404);
    CHECK(missing.error_code() == "not_found");
    const Reply malformed = s.get("/v1/blobs/sha256:XYZ", a.read_token);
    CHECK(malformed.status == 400);
}

TEST_CASE("a monolithic upload with the wrong digest is refused and stores nothing",
          "[registry_api][blobs]") {
    ApiServer s;
    AcmeSetup a(s);
    const std::string claimed = digest_of("something else");
    const Json before = stored_state(s);
    const Reply r = s.call(Method::post, "/v1/namespaces/acme/uploads?digest=" + claimed,
                           a.publish_token, kData, headers({}));
    INFO(r.body);
    CHECK(r.status == 422);
    CHECK(r.error_code() == "digest_mismatch");
    CHECK(s.get("/v1/blobs/" + claimed, a.read_token).status == 404);
    CHECK(s.get("/v1/blobs/" + digest_of(kData), a.read_token).status == 404);
    CHECK(stored_state(s) == before);
    CHECK(s.db()
              .exec("SELECT count(*) FROM blobs WHERE digest = '" + digest_of(kData) + "'")[0][0]
              .as<int>() == 0);

    // A body without ?digest= is not an upload at all.
    const Reply no_digest =
        s.call(Method::post, "/v1/namespaces/acme/uploads", a.publish_token, kData, headers({}));
    CHECK(no_digest.status == 400);
    CHECK_THAT(no_digest.error_message(), Catch::Contains("?digest="));
    const Reply bad_digest = s.call(Method::post, "/v1/namespaces/acme/uploads?digest=md5:abc",
                                    a.publish_token, kData, headers({}));
    CHECK(bad_digest.status == 400);
    CHECK(stored_state(s) == before);
}

TEST_CASE("a chunked upload resumes at the offset and refuses gaps and overlaps",
          "[registry_api][blobs]") {
    ApiServer s;
    AcmeSetup a(s);
    const Reply opened = s.call(Method::post, "/v1/namespaces/acme/uploads", a.publish_token);
    REQUIRE(opened.status == 202);
    const std::string id = session_id(opened);
    const std::string session = "/v1/namespaces/acme/uploads/" + id;
    CHECK(opened.header("Range") == "0-0");

    const Reply empty = s.get(session, a.publish_token);
    CHECK(empty.status == 204);
    CHECK_FALSE(empty.headers.get("Range").has_value());

    const Reply first = s.call(Method::patch, session, a.publish_token, kData.substr(0, 10),
                               headers({{"Content-Range", "0-9"}}));
    REQUIRE(first.status == 202);
    CHECK(first.header("Range") == "0-9");
    CHECK(first.header("Location") == session);

    auto offset_is = [&](const std::string& range) {
        const Reply st = s.get(session, a.publish_token);
        REQUIRE(st.status == 204);
        CHECK(st.header("Range") == range);
    };
    offset_is("0-9");

    const Reply gap = s.call(Method::patch, session, a.publish_token, kData.substr(15, 5),
                             headers({{"Content-Range", "15-19"}}));
    CHECK(gap.status == 416);
    CHECK(gap.error_code() == "range_not_satisfiable");
    CHECK_THAT(gap.error_message(), Catch::Contains("gap"));
    offset_is("0-9");

    const Reply overlap = s.call(Method::patch, session, a.publish_token, kData.substr(5, 5),
                                 headers({{"Content-Range", "5-9"}}));
    CHECK(overlap.status == 416);
    CHECK_THAT(overlap.error_message(), Catch::Contains("overlap"));
    offset_is("0-9");

    const Reply lying = s.call(Method::patch, session, a.publish_token, kData.substr(10, 5),
                               headers({{"Content-Range", "10-19"}}));
    CHECK(lying.status == 416);
    offset_is("0-9");

    const Reply second = s.call(Method::patch, session, a.publish_token, kData.substr(10, 10),
                                headers({{"Content-Range", "bytes 10-19/*"}}));
    REQUIRE(second.status == 202);
    CHECK(second.header("Range") == "0-19");

    // A PUT without ?digest= completes nothing.
    CHECK(s.call(Method::put, session, a.publish_token, {}, headers({})).status == 400);
    offset_is("0-19");

    const std::string digest = digest_of(kData);
    const Reply done = s.call(Method::put, session + "?digest=" + digest, a.publish_token,
                              kData.substr(20), headers({}));
    INFO(done.body);
    REQUIRE(done.status == 201);
    CHECK(done.header("Location") == "/v1/blobs/" + digest);
    CHECK(s.get("/v1/blobs/" + digest, a.read_token).body == kData);
    // The session is gone once completed.
    CHECK(s.get(session, a.publish_token).status == 404);
}

TEST_CASE("a chunked upload completed with the wrong digest publishes nothing",
          "[registry_api][blobs]") {
    ApiServer s;
    AcmeSetup a(s);
    const Reply opened = s.call(Method::post, "/v1/namespaces/acme/uploads", a.publish_token);
    REQUIRE(opened.status == 202);
    const std::string session = "/v1/namespaces/acme/uploads/" + session_id(opened);
    REQUIRE(s.call(Method::patch, session, a.publish_token, kData, headers({})).status == 202);
    const std::string wrong = digest_of("not the data");
    const Reply r =
        s.call(Method::put, session + "?digest=" + wrong, a.publish_token, {}, headers({}));
    CHECK(r.status == 422);
    CHECK(r.error_code() == "digest_mismatch");
    CHECK(s.get("/v1/blobs/" + wrong, a.read_token).status == 404);
    CHECK(s.get("/v1/blobs/" + digest_of(kData), a.read_token).status == 404);
}

TEST_CASE("upload sessions can be cancelled, and are private to their namespace",
          "[registry_api][blobs]") {
    ApiServer s;
    AcmeSetup a(s);
    s.create_namespace("other");

    const Reply opened = s.call(Method::post, "/v1/namespaces/acme/uploads", a.publish_token);
    REQUIRE(opened.status == 202);
    const std::string session = "/v1/namespaces/acme/uploads/" + session_id(opened);
    REQUIRE(
        s.call(Method::patch, session, a.publish_token, kData.substr(0, 4), headers({})).status ==
        202);
    const Reply cancelled = s.call(Method::delete_, session, a.publish_token);
    CHECK(cancelled.status == 204);
    CHECK(s.get(session, a.publish_token).status == 404);
    CHECK(s.call(Method::put, session + "?digest=" + digest_of(kData.substr(0, 4)), a.publish_token,
                 {}, headers({}))
              .status == 404);
    CHECK(s.call(Method::delete_, session, a.publish_token).status == 404);

    // A session of namespace "other", addressed through acme (where the token may write).
    const Reply foreign = s.call(Method::post, "/v1/namespaces/other/uploads", a.other_token);
    REQUIRE(foreign.status == 202);
    const std::string foreign_id = session_id(foreign);
    REQUIRE(s.call(Method::patch, "/v1/namespaces/other/uploads/" + foreign_id, a.other_token,
                   kData.substr(0, 6), headers({}))
                .status == 202);
    const std::string through_acme = "/v1/namespaces/acme/uploads/" + foreign_id;
    for (const Method m : {Method::get, Method::patch, Method::delete_}) {
        INFO(net::to_string(m));
        const Reply r =
            s.call(m, through_acme, a.publish_token,
                   m == Method::patch ? kData.substr(6, 2) : std::string(), headers({}));
        CHECK(r.status == 404);
        CHECK(r.error_code() == "not_found");
    }
    const Reply put = s.call(Method::put, through_acme + "?digest=" + digest_of(kData.substr(0, 6)),
                             a.publish_token, {}, headers({}));
    CHECK(put.status == 404);
    const Reply still = s.get("/v1/namespaces/other/uploads/" + foreign_id, a.other_token);
    CHECK(still.status == 204);
    CHECK(still.header("Range") == "0-5");

    for (const std::string& bad : std::vector<std::string>{
             "nonexistent", "0123456789abcdef0123456789abcdef", "%2e%2e", std::string(300, 'a')}) {
        INFO(bad);
        const Reply r = s.get("/v1/namespaces/acme/uploads/" + bad, a.publish_token);
        CHECK((r.status == 404 || r.status == 400));
        CHECK_FALSE(r.error_code().empty());
    }
    CHECK(s.get("/v1/namespaces/acme/uploads/nonexistent", a.publish_token).status == 404);
    // Uploads into a namespace that does not exist.
    CHECK(s.call(Method::post, "/v1/namespaces/nowhere/uploads", s.admin()).status == 404);
}

}  // namespace pylon::registry_api::test
