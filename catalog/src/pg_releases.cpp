// PostgresCatalog: releases, their attestations, publishing and yanking.
#include <fmt/format.h>

#include "pg_catalog.h"
#include "pylon/catalog/errors.h"

namespace pylon::catalog {

Result<ReleaseRef> find_release(pqxx::work& tx, const std::string& ns, const std::string& model,
                                const std::string& version, bool lock) {
    const auto r = tx.exec_params(std::string("SELECT r.id, r.state") + kReleaseFrom +
                                      " WHERE n.name = $1 AND m.name = $2 AND r.version = $3" +
                                      (lock ? " FOR UPDATE OF r" : ""),
                                  ns, model, version);
    if (r.empty()) {
        return Error(Errc::not_found,
                     fmt::format("release {} not found", release_name(ns, model, version)));
    }
    PYLON_TRY_ASSIGN(const auto state, parse_release_state(r[0][1].as<std::string>()));
    return ReleaseRef{r[0][0].as<std::int64_t>(), state};
}

Result<Release> load_release(pqxx::work& tx, std::int64_t release_id) {
    const auto r = tx.exec_params(
        fmt::format("SELECT {} {} WHERE r.id = $1", kReleaseColumns, kReleaseFrom), release_id);
    if (r.empty()) return Error(Errc::not_found, fmt::format("release {} not found", release_id));
    return read_release(r[0]);
}

namespace {

Result<ReleaseRef> find_draft(pqxx::work& tx, const std::string& ns, const std::string& model,
                              const std::string& version, std::string_view doing) {
    PYLON_TRY_ASSIGN(const auto ref, find_release(tx, ns, model, version, true));
    if (ref.state != ReleaseState::draft) {
        return Error(Errc::invalid_state,
                     fmt::format("release {} is {}: cannot {}", release_name(ns, model, version),
                                 to_string(ref.state), doing));
    }
    return ref;
}

Attestation read_attestation(const pqxx::row& row) {
    Attestation a;
    a.id = row[0].as<std::int64_t>();
    a.release_id = row[1].as<std::int64_t>();
    a.build = to_optional_string(row[2]);
    auto kind = parse_attestation_kind(row[3].as<std::string>());
    if (!kind) throw std::runtime_error("stored attestation kind is unknown");
    a.kind = *kind;
    a.body = row[4].as<std::string>();
    a.keyid = row[5].as<std::string>();
    a.created_at = to_timestamp(row[6]);
    return a;
}

constexpr const char* kAttestationSelect =
    "SELECT a.id, a.release_id, b.name, a.kind, a.body, a.keyid, a.created_at"
    " FROM attestations a LEFT JOIN builds b ON b.id = a.build_id ";

}  // namespace

Result<Release> PostgresCatalog::create_release(const std::string& ns, const std::string& model,
                                                const std::string& version,
                                                const std::string& notes, const License& license) {
    if (version.empty()) return Error(Errc::invalid_argument, "release version is empty");
    const auto what = fmt::format("creating release {}", release_name(ns, model, version));
    return transact(what, [&](pqxx::work& tx) -> Result<Release> {
        PYLON_TRY_ASSIGN(const auto id, model_id(tx, ns, model));
        const auto r = tx.exec_params(
            "INSERT INTO releases (model_id, version, notes, license)"
            " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (model_id, version) DO NOTHING"
            " RETURNING id",
            id, version, notes, license_json(license));
        if (r.empty()) {
            return Error(Errc::conflict, fmt::format("release {} already exists",
                                                     release_name(ns, model, version)));
        }
        return load_release(tx, r[0][0].as<std::int64_t>());
    });
}

Result<Release> PostgresCatalog::get_release(const std::string& ns, const std::string& model,
                                             const std::string& version) {
    return transact("reading release", [&](pqxx::work& tx) -> Result<Release> {
        const auto r = tx.exec_params(
            fmt::format("SELECT {} {} WHERE n.name = $1 AND m.name = $2 AND r.version = $3",
                        kReleaseColumns, kReleaseFrom),
            ns, model, version);
        if (r.empty()) {
            return Error(Errc::not_found,
                         fmt::format("release {} not found", release_name(ns, model, version)));
        }
        return read_release(r[0]);
    });
}

Result<Page<Release>> PostgresCatalog::list_releases(const std::string& ns,
                                                     const std::string& model,
                                                     const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    return transact("listing releases", [&](pqxx::work& tx) -> Result<Page<Release>> {
        PYLON_TRY_ASSIGN(const auto id, model_id(tx, ns, model));
        const auto r = tx.exec_params(
            fmt::format("SELECT {} {} WHERE r.model_id = $1 AND ($2::bigint IS NULL OR r.id < $2)"
                        " ORDER BY r.id DESC LIMIT $3",
                        kReleaseColumns, kReleaseFrom),
            id, bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<Release> items;
        for (const auto& row : r) items.push_back(read_release(row));
        return make_page(std::move(items), bounds.limit, [](const Release& x) { return x.id; });
    });
}

Result<Attestation> PostgresCatalog::add_attestation(const std::string& ns,
                                                     const std::string& model,
                                                     const std::string& version,
                                                     const std::optional<std::string>& build,
                                                     AttestationKind kind, const std::string& body,
                                                     const std::string& keyid) {
    if (body.empty()) return Error(Errc::invalid_argument, "attestation body is empty");
    const auto what = fmt::format("adding an attestation to {}", release_name(ns, model, version));
    return transact(what, [&](pqxx::work& tx) -> Result<Attestation> {
        PYLON_TRY_ASSIGN(const auto ref, find_draft(tx, ns, model, version, "add attestations"));
        std::optional<std::int64_t> build_id;
        if (build) {
            const auto b = tx.exec_params(
                "SELECT id FROM builds WHERE release_id = $1 AND name = $2", ref.id, *build);
            if (b.empty()) {
                return Error(Errc::not_found,
                             fmt::format("build {} of release {} not found", *build,
                                         release_name(ns, model, version)));
            }
            build_id = b[0][0].as<std::int64_t>();
        }
        const auto r = tx.exec_params(
            "INSERT INTO attestations (release_id, build_id, kind, body, keyid)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            ref.id, build_id, std::string(to_string(kind)), body, keyid);
        const auto a = tx.exec_params(std::string(kAttestationSelect) + "WHERE a.id = $1",
                                      r[0][0].as<std::int64_t>());
        return read_attestation(a[0]);
    });
}

Result<std::vector<Attestation>> PostgresCatalog::list_attestations(const std::string& ns,
                                                                    const std::string& model,
                                                                    const std::string& version) {
    return transact(
        "listing attestations", [&](pqxx::work& tx) -> Result<std::vector<Attestation>> {
            PYLON_TRY_ASSIGN(const auto ref, find_release(tx, ns, model, version, false));
            const auto r = tx.exec_params(
                std::string(kAttestationSelect) + "WHERE a.release_id = $1 ORDER BY a.id", ref.id);
            std::vector<Attestation> out;
            for (const auto& row : r) out.push_back(read_attestation(row));
            return out;
        });
}

Result<Release> PostgresCatalog::publish_release(const std::string& ns, const std::string& model,
                                                 const std::string& version,
                                                 const std::function<Result<void>()>& side_effect) {
    const auto name = release_name(ns, model, version);
    const auto what = fmt::format("publishing release {}", name);
    // No retry: side_effect must run at most once.
    return transact(
        what,
        [&](pqxx::work& tx) -> Result<Release> {
            PYLON_TRY_ASSIGN(const auto ref, find_draft(tx, ns, model, version, "publish it"));
            tx.exec_params("SELECT pg_advisory_xact_lock($1)",
                           static_cast<std::int64_t>(kPublishLockKey));
            const auto builds =
                tx.exec_params("SELECT count(*) FROM builds WHERE release_id = $1", ref.id);
            if (builds[0][0].as<std::int64_t>() == 0) {
                return Error(Errc::invalid_state,
                             fmt::format("release {} has no builds: cannot publish it", name));
            }
            if (side_effect) {
                auto done = side_effect();
                if (!done) return std::move(done).error().with_context(what);
            }
            tx.exec_params(
                "UPDATE releases SET state = 'published', published_at = now() WHERE id = $1",
                ref.id);
            return load_release(tx, ref.id);
        },
        false);
}

Result<void> PostgresCatalog::with_tuf_lock(const std::function<Result<void>()>& fn) {
    // No retry: fn must run at most once.
    return transact(
        "writing TUF metadata",
        [&](pqxx::work& tx) -> Result<void> {
            tx.exec_params("SELECT pg_advisory_xact_lock($1)",
                           static_cast<std::int64_t>(kPublishLockKey));
            return fn();
        },
        false);
}

Result<Release> PostgresCatalog::yank_release(const std::string& ns, const std::string& model,
                                              const std::string& version,
                                              const std::string& reason) {
    const auto name = release_name(ns, model, version);
    return transact(
        fmt::format("yanking release {}", name), [&](pqxx::work& tx) -> Result<Release> {
            PYLON_TRY_ASSIGN(const auto ref, find_release(tx, ns, model, version, true));
            if (ref.state != ReleaseState::published) {
                return Error(Errc::invalid_state, fmt::format("release {} is {}: only a published "
                                                              "release can be yanked",
                                                              name, to_string(ref.state)));
            }
            tx.exec_params(
                "UPDATE releases SET state = 'yanked', yanked_at = now(), yank_reason = $2"
                " WHERE id = $1",
                ref.id, reason);
            return load_release(tx, ref.id);
        });
}

}  // namespace pylon::catalog
