// PostgresCatalog: namespaces, publisher keys and models, plus the row readers shared by the
// other pg_*.cpp files.
#include "pg_catalog.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "pylon/catalog/errors.h"

namespace pylon::catalog {

Namespace read_namespace(const pqxx::row& row) {
    return Namespace{row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                     to_timestamp(row[3])};
}

Model read_model(const pqxx::row& row) {
    return Model{row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                 row[3].as<std::string>(),  to_license(row[4]),       to_timestamp(row[5]),
                 to_timestamp(row[6])};
}

Release read_release(const pqxx::row& row) {
    Release r;
    r.id = row[0].as<std::int64_t>();
    r.ns = row[1].as<std::string>();
    r.model = row[2].as<std::string>();
    r.version = row[3].as<std::string>();
    auto state = parse_release_state(row[4].as<std::string>());
    if (!state) throw std::runtime_error("stored release state is unknown");
    r.state = *state;
    r.notes = row[5].as<std::string>();
    r.license = to_license(row[6]);
    r.created_at = to_timestamp(row[7]);
    r.published_at = to_optional_timestamp(row[8]);
    r.yanked_at = to_optional_timestamp(row[9]);
    r.yank_reason = row[10].as<std::string>();
    return r;
}

Build read_build(const pqxx::row& row) {
    Build b;
    b.id = row[0].as<std::int64_t>();
    b.release_id = row[1].as<std::int64_t>();
    b.name = row[2].as<std::string>();
    b.target.arch = row[3].as<std::string>();
    b.target.isa = to_string_vector(row[4]);
    b.target.accelerator = row[5].as<std::string>();
    b.target.min_ram_mb = row[6].as<std::int64_t>();
    b.format = row[7].as<std::string>();
    b.quantization = row[8].as<std::string>();
    b.created_at = to_timestamp(row[9]);
    return b;
}

std::string model_name(const std::string& ns, const std::string& model) {
    return fmt::format("{}/{}", ns, model);
}

std::string release_name(const std::string& ns, const std::string& model,
                         const std::string& version) {
    return fmt::format("{}/{}@{}", ns, model, version);
}

Result<std::int64_t> namespace_id(pqxx::work& tx, const std::string& ns) {
    const auto r = tx.exec_params("SELECT id FROM namespaces WHERE name = $1", ns);
    if (r.empty()) return Error(Errc::not_found, fmt::format("namespace {} not found", ns));
    return r[0][0].as<std::int64_t>();
}

Result<std::int64_t> model_id(pqxx::work& tx, const std::string& ns, const std::string& model) {
    const auto r = tx.exec_params(
        "SELECT m.id FROM models m JOIN namespaces n ON n.id = m.namespace_id"
        " WHERE n.name = $1 AND m.name = $2",
        ns, model);
    if (r.empty()) {
        return Error(Errc::not_found, fmt::format("model {} not found", model_name(ns, model)));
    }
    return r[0][0].as<std::int64_t>();
}

Result<std::unique_ptr<Catalog>> make_postgres_catalog(std::shared_ptr<ConnectionPool> pool) {
    if (!pool) return Error(Errc::invalid_argument, "make_postgres_catalog: no connection pool");
    return std::unique_ptr<Catalog>(std::make_unique<PostgresCatalog>(std::move(pool)));
}

Result<void> PostgresCatalog::ping() {
    return pool_->ping();
}

// --- namespaces ---------------------------------------------------------------------------

Result<Namespace> PostgresCatalog::create_namespace(const std::string& name,
                                                    const std::string& description) {
    if (name.empty()) return Error(Errc::invalid_argument, "namespace name is empty");
    const auto what = fmt::format("creating namespace {}", name);
    return transact(what, [&](pqxx::work& tx) -> Result<Namespace> {
        const auto r = tx.exec_params(
            fmt::format("INSERT INTO namespaces AS ns (name, description) VALUES ($1, $2)"
                        " ON CONFLICT (name) DO NOTHING RETURNING {}",
                        kNamespaceColumns),
            name, description);
        if (r.empty()) {
            return Error(Errc::conflict, fmt::format("namespace {} already exists", name));
        }
        return read_namespace(r[0]);
    });
}

Result<Namespace> PostgresCatalog::get_namespace(const std::string& name) {
    return transact("reading namespace", [&](pqxx::work& tx) -> Result<Namespace> {
        const auto r = tx.exec_params(
            fmt::format("SELECT {} FROM namespaces ns WHERE ns.name = $1", kNamespaceColumns),
            name);
        if (r.empty()) return Error(Errc::not_found, fmt::format("namespace {} not found", name));
        return read_namespace(r[0]);
    });
}

Result<Page<Namespace>> PostgresCatalog::list_namespaces(const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing namespaces", [&](pqxx::work& tx) -> Result<Page<Namespace>> {
        const auto r = tx.exec_params(
            fmt::format("SELECT {} FROM namespaces ns WHERE ($1::bigint IS NULL OR ns.id > $1)"
                        " ORDER BY ns.id LIMIT $2",
                        kNamespaceColumns),
            bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<Namespace> items;
        for (const auto& row : r) items.push_back(read_namespace(row));
        return make_page(std::move(items), bounds.limit, [](const Namespace& n) { return n.id; });
    });
}

// --- publisher keys -----------------------------------------------------------------------

Result<void> PostgresCatalog::set_publisher_keys(const std::string& ns,
                                                 const std::vector<PublisherKey>& keys,
                                                 int threshold) {
    if (threshold < 1 || static_cast<std::size_t>(threshold) > keys.size()) {
        return Error(Errc::invalid_argument,
                     fmt::format("threshold {} is not between 1 and the number of keys ({})",
                                 threshold, keys.size()));
    }
    std::set<std::string> seen;
    for (const auto& key : keys) {
        if (key.keyid.empty()) return Error(Errc::invalid_argument, "a publisher key has no keyid");
        if (!seen.insert(key.keyid).second) {
            return Error(Errc::invalid_argument, fmt::format("keyid {} appears twice", key.keyid));
        }
        const auto parsed = nlohmann::json::parse(key.key_json, nullptr, false);
        if (!parsed.is_object()) {
            return Error(Errc::invalid_argument,
                         fmt::format("key {} is not a JSON object", key.keyid));
        }
    }
    const auto what = fmt::format("setting the publisher keys of namespace {}", ns);
    return transact(what, [&](pqxx::work& tx) -> Result<void> {
        const auto r = tx.exec_params(
            "UPDATE namespaces SET key_threshold = $2 WHERE name = $1 RETURNING id", ns, threshold);
        if (r.empty()) return Error(Errc::not_found, fmt::format("namespace {} not found", ns));
        const auto id = r[0][0].as<std::int64_t>();
        tx.exec_params("DELETE FROM publisher_keys WHERE namespace_id = $1", id);
        for (const auto& key : keys) {
            tx.exec_params(
                "INSERT INTO publisher_keys (namespace_id, keyid, key_json) VALUES ($1, $2, $3)",
                id, key.keyid, key.key_json);
        }
        return ok();
    });
}

Result<PublisherKeySet> PostgresCatalog::list_publisher_keys(const std::string& ns) {
    return transact("listing publisher keys", [&](pqxx::work& tx) -> Result<PublisherKeySet> {
        const auto n =
            tx.exec_params("SELECT id, key_threshold FROM namespaces WHERE name = $1", ns);
        if (n.empty()) return Error(Errc::not_found, fmt::format("namespace {} not found", ns));
        PublisherKeySet set;
        set.threshold = n[0][1].as<int>();
        const auto r = tx.exec_params(
            "SELECT keyid, key_json FROM publisher_keys WHERE namespace_id = $1 ORDER BY keyid",
            n[0][0].as<std::int64_t>());
        for (const auto& row : r) {
            set.keys.push_back(PublisherKey{row[0].as<std::string>(), row[1].as<std::string>()});
        }
        if (set.keys.empty()) set.threshold = 1;
        return set;
    });
}

// --- models -------------------------------------------------------------------------------

Result<Model> PostgresCatalog::create_model(const std::string& ns, const std::string& name,
                                            const std::string& description,
                                            const License& license) {
    if (name.empty()) return Error(Errc::invalid_argument, "model name is empty");
    const auto what = fmt::format("creating model {}", model_name(ns, name));
    return transact(what, [&](pqxx::work& tx) -> Result<Model> {
        PYLON_TRY_ASSIGN(const auto ns_id, namespace_id(tx, ns));
        const auto r = tx.exec_params(
            "INSERT INTO models (namespace_id, name, description, license)"
            " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (namespace_id, name) DO NOTHING"
            " RETURNING id",
            ns_id, name, description, license_json(license));
        if (r.empty()) {
            return Error(Errc::conflict,
                         fmt::format("model {} already exists", model_name(ns, name)));
        }
        const auto m =
            tx.exec_params(fmt::format("SELECT {} {} WHERE m.id = $1", kModelColumns, kModelFrom),
                           r[0][0].as<std::int64_t>());
        return read_model(m[0]);
    });
}

Result<Model> PostgresCatalog::get_model(const std::string& ns, const std::string& name) {
    return transact("reading model", [&](pqxx::work& tx) -> Result<Model> {
        const auto r = tx.exec_params(fmt::format("SELECT {} {} WHERE n.name = $1 AND m.name = $2",
                                                  kModelColumns, kModelFrom),
                                      ns, name);
        if (r.empty()) {
            return Error(Errc::not_found, fmt::format("model {} not found", model_name(ns, name)));
        }
        return read_model(r[0]);
    });
}

Result<Page<Model>> PostgresCatalog::list_models(const ModelFilter& filter,
                                                 const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing models", [&](pqxx::work& tx) -> Result<Page<Model>> {
        // strpos, not LIKE: the filter is a plain substring, '%' and '_' included.
        const auto r =
            tx.exec_params(fmt::format("SELECT {} {}"
                                       " WHERE ($1::text IS NULL OR n.name = $1)"
                                       " AND ($2::text IS NULL OR strpos(m.name, $2) > 0)"
                                       " AND ($3::bigint IS NULL OR m.id > $3)"
                                       " ORDER BY m.id LIMIT $4",
                                       kModelColumns, kModelFrom),
                           filter.ns, filter.name_contains, bounds.after,
                           static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<Model> items;
        for (const auto& row : r) items.push_back(read_model(row));
        return make_page(std::move(items), bounds.limit, [](const Model& m) { return m.id; });
    });
}

Result<Model> PostgresCatalog::update_model(const std::string& ns, const std::string& name,
                                            const std::optional<std::string>& description,
                                            const std::optional<License>& license) {
    const auto what = fmt::format("updating model {}", model_name(ns, name));
    std::optional<std::string> license_text;
    if (license) license_text = license_json(*license);
    return transact(what, [&](pqxx::work& tx) -> Result<Model> {
        PYLON_TRY_ASSIGN(const auto id, model_id(tx, ns, name));
        tx.exec_params(
            "UPDATE models SET description = coalesce($2, description),"
            " license = coalesce($3::jsonb, license), updated_at = now() WHERE id = $1",
            id, description, license_text);
        const auto m = tx.exec_params(
            fmt::format("SELECT {} {} WHERE m.id = $1", kModelColumns, kModelFrom), id);
        return read_model(m[0]);
    });
}

}  // namespace pylon::catalog
