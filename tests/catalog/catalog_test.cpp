// Namespaces, publisher keys, models, releases, builds, attestations, publishing and search.
#include "pylon/catalog/catalog.h"

#include <catch2/catch.hpp>
#include <set>

#include "pg_test_support.h"
#include "pylon/catalog/errors.h"

using namespace pylon::catalog;
using pylon::catalog::test::CatalogFixture;
using pylon::catalog::test::digest_of;

namespace {

License apache() {
    License l;
    l.spdx = "Apache-2.0";
    l.commercial_use = true;
    l.regions_denied = {"KP"};
    l.attribution = "Acme Labs";
    return l;
}

Build make_build(const std::string& name, const std::string& arch, std::vector<std::string> isa,
                 const std::string& blob_digest, std::int64_t size,
                 std::string accelerator = "none", std::int64_t ram = 0) {
    Build b;
    b.name = name;
    b.target = HardwareTarget{arch, std::move(isa), std::move(accelerator), ram};
    b.format = "gguf";
    b.quantization = "Q4_0";
    b.files = {BuildFile{"model.gguf", blob_digest, size}};
    return b;
}

// acme/tiny@1.0.0 (draft) with one recorded blob.
struct ReleaseFixture : CatalogFixture {
    ReleaseFixture() {
        REQUIRE(catalog->create_namespace("acme", "Acme Labs").ok());
        REQUIRE(catalog->create_model("acme", "tiny", "a tiny model", apache()).ok());
        REQUIRE(catalog->create_release("acme", "tiny", "1.0.0", "first", apache()).ok());
        REQUIRE(catalog->record_blob(blob, 1234).ok());
    }
    const std::string blob = digest_of("model-bytes");
};

}  // namespace

TEST_CASE_METHOD(CatalogFixture, "namespaces: create, get, conflict, not found, pages") {
    auto ns = catalog->create_namespace("acme", "Acme Labs");
    REQUIRE(ns.ok());
    CHECK(ns->name == "acme");
    CHECK(ns->description == "Acme Labs");
    CHECK(ns->id > 0);

    auto dup = catalog->create_namespace("acme", "again");
    REQUIRE(!dup.ok());
    CHECK(dup.error().code() == Errc::conflict);
    CHECK_THAT(dup.error().message(), Catch::Contains("namespace acme already exists"));

    auto got = catalog->get_namespace("acme");
    REQUIRE(got.ok());
    CHECK(got->id == ns->id);
    CHECK(got->created_at == ns->created_at);

    auto missing = catalog->get_namespace("nope");
    REQUIRE(!missing.ok());
    CHECK(missing.error().code() == Errc::not_found);
    CHECK_THAT(missing.error().message(), Catch::Contains("namespace nope not found"));

    CHECK(catalog->create_namespace("", "").error().code() == Errc::invalid_argument);

    for (int i = 0; i < 6; ++i) {
        REQUIRE(catalog->create_namespace("ns" + std::to_string(i), "").ok());
    }
    std::vector<std::string> seen;
    PageRequest req{"", 3};
    int pages = 0;
    for (;;) {
        auto page = catalog->list_namespaces(req);
        REQUIRE(page.ok());
        ++pages;
        CHECK(page->items.size() <= 3);
        for (const auto& n : page->items) seen.push_back(n.name);
        if (!page->next) break;
        req.after = *page->next;
    }
    CHECK(pages == 3);  // 7 namespaces: 3 + 3 + 1
    CHECK(seen == std::vector<std::string>{"acme", "ns0", "ns1", "ns2", "ns3", "ns4", "ns5"});

    // Exactly `limit` items left: no next cursor.
    auto exact = catalog->list_namespaces(PageRequest{"", 7});
    REQUIRE(exact.ok());
    CHECK(exact->items.size() == 7);
    CHECK(!exact->next);

    auto bad = catalog->list_namespaces(PageRequest{"not-a-cursor", 3});
    REQUIRE(!bad.ok());
    CHECK(bad.error().code() == Errc::invalid_argument);
}

TEST_CASE_METHOD(CatalogFixture, "names with SQL metacharacters are stored verbatim") {
    const std::string ns = "a'b\"c; DROP TABLE models;--";
    const std::string model = "x%_\\y'";
    REQUIRE(catalog->create_namespace(ns, "it's").ok());
    REQUIRE(catalog->create_model(ns, model, "d'esc", License{}).ok());
    REQUIRE(catalog->create_model(ns, "plain", "", License{}).ok());

    auto got = catalog->get_model(ns, model);
    REQUIRE(got.ok());
    CHECK(got->ns == ns);
    CHECK(got->name == model);
    CHECK(got->description == "d'esc");

    // The substring filter is literal: '%' and '_' are not wildcards.
    auto found = catalog->list_models(ModelFilter{ns, std::string("%_")}, PageRequest{});
    REQUIRE(found.ok());
    REQUIRE(found->items.size() == 1);
    CHECK(found->items[0].name == model);
    auto none = catalog->list_models(ModelFilter{std::nullopt, std::string("%")}, PageRequest{});
    REQUIRE(none.ok());
    CHECK(none->items.size() == 1);
    CHECK(catalog->get_namespace(ns)->description == "it's");
}

TEST_CASE_METHOD(CatalogFixture, "publisher keys are replaced as a set") {
    REQUIRE(catalog->create_namespace("acme", "").ok());
    auto empty = catalog->list_publisher_keys("acme");
    REQUIRE(empty.ok());
    CHECK(empty->keys.empty());

    const PublisherKey k1{"bbb", R"({"keytype":"ed25519","keyval":{"public":"01"}})"};
    const PublisherKey k2{"aaa", R"({"keytype":"ed25519","keyval":{"public":"02"}})"};
    const PublisherKey k3{"ccc", R"({"keytype":"ecdsa","keyval":{"public":"03"}})"};
    REQUIRE(catalog->set_publisher_keys("acme", {k1, k2}, 2).ok());
    auto set = catalog->list_publisher_keys("acme");
    REQUIRE(set.ok());
    CHECK(set->threshold == 2);
    CHECK(set->keys == std::vector<PublisherKey>{k2, k1});  // by keyid

    REQUIRE(catalog->set_publisher_keys("acme", {k3}, 1).ok());
    set = catalog->list_publisher_keys("acme");
    CHECK(set->threshold == 1);
    CHECK(set->keys == std::vector<PublisherKey>{k3});

    CHECK(catalog->set_publisher_keys("acme", {k1}, 2).error().code() == Errc::invalid_argument);
    CHECK(catalog->set_publisher_keys("acme", {k1}, 0).error().code() == Errc::invalid_argument);
    CHECK(catalog->set_publisher_keys("acme", {k1, k1}, 1).error().code() ==
          Errc::invalid_argument);
    CHECK(catalog->set_publisher_keys("acme", {PublisherKey{"x", "not json"}}, 1).error().code() ==
          Errc::invalid_argument);
    CHECK(catalog->set_publisher_keys("nope", {k1}, 1).error().code() == Errc::not_found);
    // Failed calls left the stored set alone.
    CHECK(catalog->list_publisher_keys("acme")->keys == std::vector<PublisherKey>{k3});
}

TEST_CASE_METHOD(CatalogFixture, "models: create, conflict, update, list") {
    CHECK(catalog->create_model("acme", "tiny", "", License{}).error().code() == Errc::not_found);
    REQUIRE(catalog->create_namespace("acme", "").ok());
    REQUIRE(catalog->create_namespace("other", "").ok());
    auto m = catalog->create_model("acme", "tiny", "a tiny model", apache());
    REQUIRE(m.ok());
    CHECK(m->ns == "acme");
    CHECK(m->license == apache());

    auto dup = catalog->create_model("acme", "tiny", "", License{});
    REQUIRE(!dup.ok());
    CHECK(dup.error().code() == Errc::conflict);
    CHECK_THAT(dup.error().message(), Catch::Contains("model acme/tiny already exists"));
    REQUIRE(catalog->create_model("other", "tiny", "", License{}).ok());

    auto missing = catalog->get_model("acme", "huge");
    REQUIRE(!missing.ok());
    CHECK(missing.error().code() == Errc::not_found);
    CHECK_THAT(missing.error().message(), Catch::Contains("model acme/huge not found"));

    auto updated = catalog->update_model("acme", "tiny", std::string("smaller"), std::nullopt);
    REQUIRE(updated.ok());
    CHECK(updated->description == "smaller");
    CHECK(updated->license == apache());
    CHECK(updated->updated_at >= m->updated_at);
    License mit;
    mit.spdx = "MIT";
    updated = catalog->update_model("acme", "tiny", std::nullopt, mit);
    REQUIRE(updated.ok());
    CHECK(updated->description == "smaller");
    CHECK(updated->license == mit);
    CHECK(catalog->update_model("acme", "nope", std::nullopt, mit).error().code() ==
          Errc::not_found);

    auto in_acme = catalog->list_models(ModelFilter{std::string("acme"), std::nullopt}, {});
    REQUIRE(in_acme.ok());
    REQUIRE(in_acme->items.size() == 1);
    CHECK(in_acme->items[0].ns == "acme");
    auto all = catalog->list_models(ModelFilter{}, {});
    REQUIRE(all.ok());
    CHECK(all->items.size() == 2);
}

TEST_CASE_METHOD(ReleaseFixture, "releases: create, conflict, newest first in pages") {
    auto r = catalog->get_release("acme", "tiny", "1.0.0");
    REQUIRE(r.ok());
    CHECK(r->state == ReleaseState::draft);
    CHECK(r->notes == "first");
    CHECK(r->license == apache());
    CHECK(!r->published_at);

    CHECK(catalog->create_release("acme", "tiny", "1.0.0", "", {}).error().code() ==
          Errc::conflict);
    CHECK(catalog->create_release("acme", "nope", "1.0.0", "", {}).error().code() ==
          Errc::not_found);
    auto missing = catalog->get_release("acme", "tiny", "9.9.9");
    REQUIRE(!missing.ok());
    CHECK(missing.error().code() == Errc::not_found);
    CHECK_THAT(missing.error().message(), Catch::Contains("acme/tiny@9.9.9"));

    for (int i = 1; i <= 11; ++i) {
        REQUIRE(catalog->create_release("acme", "tiny", "1.0." + std::to_string(i), "", {}).ok());
    }
    std::vector<std::string> versions;
    PageRequest req{"", 5};
    int pages = 0;
    for (;;) {
        auto page = catalog->list_releases("acme", "tiny", req);
        REQUIRE(page.ok());
        ++pages;
        for (const auto& rel : page->items) versions.push_back(rel.version);
        if (!page->next) break;
        req.after = *page->next;
    }
    CHECK(pages == 3);  // 12 releases: 5 + 5 + 2
    REQUIRE(versions.size() == 12);
    CHECK(versions.front() == "1.0.11");
    CHECK(versions.back() == "1.0.0");
    CHECK(catalog->list_releases("acme", "nope", {}).error().code() == Errc::not_found);
}

TEST_CASE_METHOD(ReleaseFixture, "builds: only on drafts, with recorded blobs") {
    auto b =
        catalog->add_build("acme", "tiny", "1.0.0",
                           make_build("x86-avx2", "x86_64", {"fma", "avx2", "avx2"}, blob, 1234));
    REQUIRE(b.ok());
    CHECK(b->id > 0);
    CHECK(b->target.isa == std::vector<std::string>{"avx2", "fma"});
    CHECK(b->target.accelerator == "none");
    REQUIRE(b->files.size() == 1);
    CHECK(b->files[0] == BuildFile{"model.gguf", blob, 1234});

    auto dup = catalog->add_build("acme", "tiny", "1.0.0",
                                  make_build("x86-avx2", "x86_64", {}, blob, 1234));
    CHECK(dup.error().code() == Errc::conflict);

    const auto unknown = digest_of("never uploaded");
    auto no_blob =
        catalog->add_build("acme", "tiny", "1.0.0", make_build("other", "x86_64", {}, unknown, 1));
    REQUIRE(!no_blob.ok());
    CHECK(no_blob.error().code() == Errc::not_found);
    CHECK_THAT(no_blob.error().message(), Catch::Contains(unknown));

    CHECK(catalog->add_build("acme", "tiny", "1.0.0", make_build("other", "x86_64", {}, blob, 99))
              .error()
              .code() == Errc::invalid_argument);
    Build two_files = make_build("two", "x86_64", {}, blob, 1234);
    two_files.files.push_back(two_files.files[0]);
    CHECK(catalog->add_build("acme", "tiny", "1.0.0", two_files).error().code() ==
          Errc::invalid_argument);
    CHECK(catalog->add_build("acme", "tiny", "9.9", make_build("x", "x86_64", {}, blob, 1234))
              .error()
              .code() == Errc::not_found);

    // The failed calls stored nothing.
    auto builds = catalog->list_builds("acme", "tiny", "1.0.0");
    REQUIRE(builds.ok());
    REQUIRE(builds->size() == 1);
    CHECK((*builds)[0].name == "x86-avx2");
    CHECK((*builds)[0].files == b->files);
    auto by_id = catalog->list_builds(b->release_id);
    REQUIRE(by_id.ok());
    CHECK(by_id->size() == 1);

    REQUIRE(
        catalog
            ->add_build("acme", "tiny", "1.0.0", make_build("arm", "aarch64", {"neon"}, blob, 1234))
            .ok());
    REQUIRE(catalog->remove_build("acme", "tiny", "1.0.0", "arm").ok());
    CHECK(catalog->remove_build("acme", "tiny", "1.0.0", "arm").error().code() == Errc::not_found);
    CHECK(catalog->list_builds("acme", "tiny", "1.0.0")->size() == 1);
}

TEST_CASE_METHOD(ReleaseFixture, "attestations are kept verbatim, per release or build") {
    REQUIRE(catalog->add_build("acme", "tiny", "1.0.0", make_build("cpu", "x86_64", {}, blob, 1234))
                .ok());
    const std::string body = R"({"payloadType":"application/vnd.in-toto+json", "payload":"e30="})";
    auto a1 = catalog->add_attestation("acme", "tiny", "1.0.0", std::string("cpu"),
                                       AttestationKind::provenance, body, "key1");
    REQUIRE(a1.ok());
    CHECK(a1->build == std::optional<std::string>("cpu"));
    auto a2 = catalog->add_attestation("acme", "tiny", "1.0.0", std::nullopt,
                                       AttestationKind::model_signature, "bundle bytes\n", "key2");
    REQUIRE(a2.ok());
    CHECK(!a2->build);
    CHECK(catalog
              ->add_attestation("acme", "tiny", "1.0.0", std::string("gpu"),
                                AttestationKind::provenance, body, "key1")
              .error()
              .code() == Errc::not_found);

    auto list = catalog->list_attestations("acme", "tiny", "1.0.0");
    REQUIRE(list.ok());
    REQUIRE(list->size() == 2);
    CHECK((*list)[0].body == body);
    CHECK((*list)[0].kind == AttestationKind::provenance);
    CHECK((*list)[0].keyid == "key1");
    CHECK((*list)[1].body == "bundle bytes\n");
    CHECK((*list)[1].kind == AttestationKind::model_signature);
}

TEST_CASE_METHOD(ReleaseFixture, "publish: needs builds, rolls back when the side effect fails") {
    int calls = 0;
    auto no_builds =
        catalog->publish_release("acme", "tiny", "1.0.0", [&]() -> pylon::Result<void> {
            ++calls;
            return {};
        });
    REQUIRE(!no_builds.ok());
    CHECK(no_builds.error().code() == Errc::invalid_state);
    CHECK(calls == 0);

    REQUIRE(catalog->add_build("acme", "tiny", "1.0.0", make_build("cpu", "x86_64", {}, blob, 1234))
                .ok());
    auto failed = catalog->publish_release("acme", "tiny", "1.0.0", [&]() -> pylon::Result<void> {
        ++calls;
        return pylon::Error(pylon::Errc::io_error, "disk full while writing targets.json");
    });
    REQUIRE(!failed.ok());
    CHECK(failed.error().code() == pylon::Errc::io_error);
    CHECK(calls == 1);
    CHECK(catalog->get_release("acme", "tiny", "1.0.0")->state == ReleaseState::draft);

    CHECK(catalog->yank_release("acme", "tiny", "1.0.0", "bad").error().code() ==
          Errc::invalid_state);

    auto published =
        catalog->publish_release("acme", "tiny", "1.0.0", [&]() -> pylon::Result<void> {
            ++calls;
            return {};
        });
    REQUIRE(published.ok());
    CHECK(calls == 2);
    CHECK(published->state == ReleaseState::published);
    REQUIRE(published->published_at.has_value());

    // A published release is immutable.
    CHECK(catalog->publish_release("acme", "tiny", "1.0.0", {}).error().code() ==
          Errc::invalid_state);
    CHECK(catalog->add_build("acme", "tiny", "1.0.0", make_build("gpu", "x86_64", {}, blob, 1234))
              .error()
              .code() == Errc::invalid_state);
    CHECK(catalog->remove_build("acme", "tiny", "1.0.0", "cpu").error().code() ==
          Errc::invalid_state);
    CHECK(catalog
              ->add_attestation("acme", "tiny", "1.0.0", std::nullopt, AttestationKind::provenance,
                                "{}", "k")
              .error()
              .code() == Errc::invalid_state);
    // ... also to SQL run by hand: the trigger refuses.
    CHECK_THROWS(db.exec("DELETE FROM builds"));
    CHECK(catalog->list_builds("acme", "tiny", "1.0.0")->size() == 1);

    auto yanked = catalog->yank_release("acme", "tiny", "1.0.0", "license problem");
    REQUIRE(yanked.ok());
    CHECK(yanked->state == ReleaseState::yanked);
    CHECK(yanked->yank_reason == "license problem");
    CHECK(yanked->yanked_at.has_value());
    CHECK(yanked->published_at == published->published_at);
    CHECK(catalog->yank_release("acme", "tiny", "1.0.0", "again").error().code() ==
          Errc::invalid_state);
}

TEST_CASE_METHOD(CatalogFixture, "search_builds: ISA subset, accelerator, RAM, published only") {
    REQUIRE(catalog->create_namespace("acme", "").ok());
    REQUIRE(catalog->create_namespace("beta", "").ok());
    const auto blob = digest_of("b");
    REQUIRE(catalog->record_blob(blob, 10).ok());
    const auto release = [&](const std::string& ns, const std::string& version,
                             std::vector<Build> builds, bool publish) {
        if (!catalog->get_model(ns, "m").ok()) {
            REQUIRE(catalog->create_model(ns, "m", "", License{}).ok());
        }
        REQUIRE(catalog->create_release(ns, "m", version, "", License{}).ok());
        for (const auto& b : builds) REQUIRE(catalog->add_build(ns, "m", version, b).ok());
        if (publish) REQUIRE(catalog->publish_release(ns, "m", version, {}).ok());
    };
    release("acme", "1.0",
            {make_build("plain", "x86_64", {}, blob, 10),
             make_build("avx2", "x86_64", {"avx2", "fma"}, blob, 10),
             make_build("avx512", "x86_64", {"avx2", "avx512f"}, blob, 10),
             make_build("cuda", "x86_64", {}, blob, 10, "cuda-sm87"),
             make_build("big", "x86_64", {}, blob, 10, "none", 64000),
             make_build("arm", "aarch64", {"neon"}, blob, 10)},
            true);
    release("acme", "2.0-draft", {make_build("draft", "x86_64", {}, blob, 10)}, false);
    release("beta", "1.0", {make_build("beta-plain", "x86_64", {}, blob, 10)}, true);
    release("beta", "0.9", {make_build("yanked", "x86_64", {}, blob, 10)}, true);
    REQUIRE(catalog->yank_release("beta", "m", "0.9", "broken").ok());

    const auto names = [&](const BuildQuery& q) {
        std::set<std::string> out;
        auto page = catalog->search_builds(q, PageRequest{"", 100});
        REQUIRE(page.ok());
        for (const auto& m : page->items) out.insert(m.build.name);
        return out;
    };
    BuildQuery q;
    q.arch = "x86_64";
    q.isa = {"avx2", "fma", "sse4_2"};
    CHECK(names(q) == std::set<std::string>{"plain", "avx2", "big", "beta-plain"});
    q.ram_mb = 16000;
    CHECK(names(q) == std::set<std::string>{"plain", "avx2", "beta-plain"});
    q.accelerator = "cuda-sm87";
    CHECK(names(q) == std::set<std::string>{"plain", "avx2", "cuda", "beta-plain"});
    q.ns = "acme";
    CHECK(names(q) == std::set<std::string>{"plain", "avx2", "cuda"});
    q.format = "safetensors";
    CHECK(names(q).empty());

    BuildQuery arm;
    arm.arch = "aarch64";
    CHECK(names(arm).empty());  // the build needs neon
    arm.isa = {"neon", "dotprod"};
    CHECK(names(arm) == std::set<std::string>{"arm"});

    // Pages of one, with the match's coordinates and files.
    BuildQuery all;
    all.arch = "x86_64";
    all.isa = {"avx2", "avx512f", "fma"};
    std::vector<std::string> order;
    PageRequest req{"", 1};
    for (;;) {
        auto page = catalog->search_builds(all, req);
        REQUIRE(page.ok());
        REQUIRE(page->items.size() == 1);
        const auto& m = page->items[0];
        CHECK(m.model == "m");
        CHECK(m.build.files.size() == 1);
        order.push_back(m.ns + "/" + m.version + "/" + m.build.name);
        if (!page->next) break;
        req.after = *page->next;
    }
    CHECK(order == std::vector<std::string>{"acme/1.0/plain", "acme/1.0/avx2", "acme/1.0/avx512",
                                            "acme/1.0/big", "beta/1.0/beta-plain"});
}
