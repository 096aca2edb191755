// Blobs, API tokens, the audit log, the connection pool and the value types.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "pg_test_support.h"
#include "pylon/catalog/catalog.h"
#include "pylon/catalog/errors.h"

using namespace pylon::catalog;
using namespace std::chrono_literals;
using pylon::catalog::test::CatalogFixture;
using pylon::catalog::test::digest_of;

namespace {

std::string hash_of(const std::string& token) {
    return digest_of(token).substr(7);  // lower-case hex
}

}  // namespace

TEST_CASE_METHOD(CatalogFixture, "blobs: idempotent record, size conflict, bad digests") {
    const auto d = digest_of("x");
    auto b = catalog->record_blob(d, 42);
    REQUIRE(b.ok());
    CHECK(b->size == 42);
    auto again = catalog->record_blob(d, 42);
    REQUIRE(again.ok());
    CHECK(again->created_at == b->created_at);
    auto other = catalog->record_blob(d, 43);
    REQUIRE(!other.ok());
    CHECK(other.error().code() == Errc::conflict);
    CHECK(catalog->get_blob(d)->size == 42);

    CHECK(catalog->record_blob("sha256:abc", 1).error().code() == Errc::invalid_argument);
    CHECK(catalog->record_blob("md5:" + std::string(64, 'a'), 1).error().code() ==
          Errc::invalid_argument);
    CHECK(catalog->record_blob("sha256:" + std::string(64, 'A'), 1).error().code() ==
          Errc::invalid_argument);
    CHECK(catalog->record_blob(digest_of("y"), -1).error().code() == Errc::invalid_argument);
    auto missing = catalog->get_blob(digest_of("z"));
    REQUIRE(!missing.ok());
    CHECK(missing.error().code() == Errc::not_found);
}

TEST_CASE_METHOD(CatalogFixture, "tokens: found while live, not found revoked or expired") {
    CHECK(*catalog->count_tokens() == 0);
    auto t = catalog->create_token("ci", hash_of("secret-1"), {"publish:acme", "read"},
                                   std::nullopt, "admin");
    REQUIRE(t.ok());
    CHECK(t->scopes == std::vector<std::string>{"publish:acme", "read"});
    CHECK(!t->revoked);
    CHECK(!t->last_used_at);
    CHECK(t->created_by == "admin");

    auto found = catalog->find_token_by_hash(hash_of("secret-1"));
    REQUIRE(found.ok());
    CHECK(found->id == t->id);
    REQUIRE(found->last_used_at.has_value());
    // Within a minute last_used_at is not written again.
    auto again = catalog->find_token_by_hash(hash_of("secret-1"));
    REQUIRE(again.ok());
    CHECK(again->last_used_at == found->last_used_at);
    db.exec("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes'");
    auto later = catalog->find_token_by_hash(hash_of("secret-1"));
    REQUIRE(later.ok());
    CHECK(*later->last_used_at > *found->last_used_at - 2min + 30s);

    CHECK(catalog->find_token_by_hash(hash_of("wrong")).error().code() == Errc::not_found);
    CHECK(catalog->create_token("dup", hash_of("secret-1"), {}, std::nullopt, "").error().code() ==
          Errc::conflict);
    CHECK(catalog->create_token("bad", "not-hex", {}, std::nullopt, "").error().code() ==
          Errc::invalid_argument);

    REQUIRE(catalog->revoke_token(t->id).ok());
    REQUIRE(catalog->revoke_token(t->id).ok());
    CHECK(catalog->find_token_by_hash(hash_of("secret-1")).error().code() == Errc::not_found);
    CHECK(catalog->revoke_token(t->id + 1000).error().code() == Errc::not_found);

    const auto now = std::chrono::system_clock::now();
    REQUIRE(catalog->create_token("old", hash_of("secret-2"), {}, now - 1h, "").ok());
    CHECK(catalog->find_token_by_hash(hash_of("secret-2")).error().code() == Errc::not_found);
    auto future = catalog->create_token("new", hash_of("secret-3"), {}, now + 1h, "");
    REQUIRE(future.ok());
    REQUIRE(future->expires_at.has_value());
    CHECK(*future->expires_at == std::chrono::floor<std::chrono::microseconds>(now + 1h));
    CHECK(catalog->find_token_by_hash(hash_of("secret-3")).ok());

    CHECK(*catalog->count_tokens() == 3);  // revoked and expired ones count
    for (int i = 0; i < 4; ++i) {
        REQUIRE(catalog
                    ->create_token("t" + std::to_string(i), hash_of("more" + std::to_string(i)), {},
                                   std::nullopt, "")
                    .ok());
    }
    auto p1 = catalog->list_tokens(PageRequest{"", 4});
    REQUIRE(p1.ok());
    CHECK(p1->items.size() == 4);
    CHECK(p1->items[0].revoked);
    REQUIRE(p1->next);
    auto p2 = catalog->list_tokens(PageRequest{*p1->next, 4});
    REQUIRE(p2.ok());
    CHECK(p2->items.size() == 3);
    CHECK(!p2->next);
    CHECK(p2->items[0].id > p1->items[3].id);
}

TEST_CASE_METHOD(CatalogFixture, "audit log: append, newest first, filters, pages") {
    for (int i = 0; i < 5; ++i) {
        AuditEntry e;
        e.actor = i % 2 == 0 ? "alice" : "bob";
        e.action = i < 3 ? "model.create" : "release.publish";
        e.target = "acme/m" + std::to_string(i);
        e.remote_addr = "192.0.2.1";
        e.details = R"({"n": )" + std::to_string(i) + "}";
        auto stored = catalog->append_audit(e);
        REQUIRE(stored.ok());
        CHECK(stored->id > 0);
        CHECK(nlohmann::json::parse(stored->details)["n"] == i);
    }
    AuditEntry bad;
    bad.actor = "x";
    bad.action = "y";
    bad.details = "[1,2]";
    CHECK(catalog->append_audit(bad).error().code() == Errc::invalid_argument);
    bad.details = "{";
    CHECK(catalog->append_audit(bad).error().code() == Errc::invalid_argument);
    bad.details = "{}";
    bad.actor = "";
    CHECK(catalog->append_audit(bad).error().code() == Errc::invalid_argument);

    auto all = catalog->list_audit(PageRequest{"", 3}, AuditFilter{});
    REQUIRE(all.ok());
    REQUIRE(all->items.size() == 3);
    CHECK(all->items[0].target == "acme/m4");
    REQUIRE(all->next);
    auto rest = catalog->list_audit(PageRequest{*all->next, 3}, AuditFilter{});
    REQUIRE(rest.ok());
    REQUIRE(rest->items.size() == 2);
    CHECK(rest->items[1].target == "acme/m0");
    CHECK(!rest->next);

    auto alice = catalog->list_audit({}, AuditFilter{std::string("alice"), std::nullopt});
    REQUIRE(alice.ok());
    CHECK(alice->items.size() == 3);
    auto alice_create =
        catalog->list_audit({}, AuditFilter{std::string("alice"), std::string("model.create")});
    REQUIRE(alice_create.ok());
    CHECK(alice_create->items.size() == 2);
}

TEST_CASE("connection pool: bad settings fail early without leaking the password") {
    auto pool = ConnectionPool::create(
        "host=127.0.0.1 port=1 password=hunter2secret "
        "connect_timeout=2",
        2);
    REQUIRE(!pool.ok());
    CHECK(pool.error().code() == Errc::database);
    CHECK_THAT(pool.error().message(), !Catch::Contains("hunter2secret"));
    CHECK(ConnectionPool::create("", 0).error().code() == Errc::invalid_argument);
}

TEST_CASE("connection pool: waits for a free connection, then gives up") {
    CatalogFixture f(1, 300ms);
    REQUIRE(f.catalog->create_namespace("acme", "").ok());
    // The publish holds the only connection while its side effect runs; the ping inside it
    // cannot get one.
    REQUIRE(f.catalog->create_model("acme", "m", "", License{}).ok());
    REQUIRE(f.catalog->create_release("acme", "m", "1", "", License{}).ok());
    REQUIRE(f.catalog->record_blob(digest_of("b"), 1).ok());
    Build b;
    b.name = "cpu";
    b.target.arch = "x86_64";
    b.files = {BuildFile{"f", digest_of("b"), 1}};
    REQUIRE(f.catalog->add_build("acme", "m", "1", b).ok());
    std::optional<pylon::Error> inner;
    auto published = f.catalog->publish_release("acme", "m", "1", [&]() -> pylon::Result<void> {
        auto ping = f.catalog->ping();
        if (!ping) inner = ping.error();
        return ping;
    });
    REQUIRE(!published.ok());
    REQUIRE(inner.has_value());
    CHECK(inner->code() == Errc::database);
    CHECK_THAT(inner->message(), Catch::Contains("no database connection free within 300ms"));
    // Once the connection is back, the pool works again.
    CHECK(f.catalog->ping().ok());
    CHECK(f.catalog->get_release("acme", "m", "1")->state == ReleaseState::draft);
}

TEST_CASE("connection pool: a connection killed by the server is replaced") {
    CatalogFixture f(1);
    REQUIRE(f.catalog->create_namespace("acme", "").ok());
    const auto killed = f.db.exec(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()");
    REQUIRE(killed[0][0].as<int>() >= 1);
    // The idle pooled connection is dead; the call notices, reconnects and succeeds.
    auto got = f.catalog->get_namespace("acme");
    REQUIRE(got.ok());
    CHECK(got->name == "acme");
    CHECK(f.catalog->ping().ok());
}

TEST_CASE("catalog calls from several threads") {
    CatalogFixture f(3);
    REQUIRE(f.catalog->create_namespace("acme", "").ok());
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i) {
                const auto name = "m" + std::to_string(t) + "-" + std::to_string(i);
                if (!f.catalog->create_model("acme", name, "", License{}).ok()) ++failures;
                if (!f.catalog->get_model("acme", name).ok()) ++failures;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(failures == 0);
    auto page = f.catalog->list_models(ModelFilter{}, PageRequest{"", 500});
    REQUIRE(page.ok());
    CHECK(page->items.size() == 60);
}

TEST_CASE("licence JSON and RFC 3339 timestamps round-trip") {
    License l;
    l.spdx = "LicenseRef-Llama-3";
    l.commercial_use = false;
    l.regions_allowed = {"US", "DE"};
    l.acceptance_required = true;
    l.attribution = "Built with Llama";
    auto back = license_from_json(to_json(l));
    REQUIRE(back.ok());
    CHECK(*back == l);
    CHECK(!to_json(License{}).contains("commercial_use"));
    CHECK(license_from_json(nlohmann::json::parse(R"({"spdx": 1})")).error().code() ==
          Errc::invalid_argument);
    CHECK(license_from_json(nlohmann::json::parse(R"({"spdx": "MIT", "x": 1})")).error().code() ==
          Errc::invalid_argument);

    auto t = parse_rfc3339("2026-11-21T17:19:19.123456Z");
    REQUIRE(t.ok());
    CHECK(format_rfc3339(*t) == "2026-11-21T17:19:19.123456Z");
    CHECK(format_rfc3339(*parse_rfc3339("2026-11-21T18:19:19+01:00")) == "2026-11-21T17:19:19Z");
    CHECK(!parse_rfc3339("2026-11-21 17:19:19").ok());
    CHECK(!parse_rfc3339("2026-02-30T00:00:00Z").ok());
    CHECK(to_string(ReleaseState::yanked) == "yanked");
    CHECK(*parse_release_state("published") == ReleaseState::published);
    CHECK(!parse_release_state("gone").ok());
}
