// PostgresCatalog: builds of a release, their files, and the hardware search over published
// builds.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "pg_catalog.h"
#include "pylon/catalog/errors.h"

namespace pylon::catalog {

void load_files(pqxx::work& tx, std::vector<Build>& builds) {
    if (builds.empty()) return;
    std::map<std::int64_t, Build*> by_id;
    std::string ids = "{";
    for (auto& b : builds) {
        if (ids.size() > 1) ids += ',';
        ids += std::to_string(b.id);
        by_id[b.id] = &b;
        b.files.clear();
    }
    ids += '}';
    const auto r = tx.exec_params(
        "SELECT build_id, name, digest, size FROM build_files WHERE build_id = ANY($1::bigint[])"
        " ORDER BY build_id, name",
        ids);
    for (const auto& row : r) {
        by_id.at(row[0].as<std::int64_t>())
            ->files.push_back(BuildFile{row[1].as<std::string>(), row[2].as<std::string>(),
                                        row[3].as<std::int64_t>()});
    }
}

std::vector<Build> load_builds(pqxx::work& tx, std::int64_t release_id) {
    const auto r = tx.exec_params(
        fmt::format("SELECT {} FROM builds b WHERE b.release_id = $1 ORDER BY b.name",
                    kBuildColumns),
        release_id);
    std::vector<Build> builds;
    for (const auto& row : r) builds.push_back(read_build(row));
    load_files(tx, builds);
    return builds;
}

namespace {

// The build as it will be stored: ISA sorted without duplicates, "none" for no accelerator.
Result<Build> normalized(const Build& in) {
    Build b = in;
    if (b.name.empty()) return Error(Errc::invalid_argument, "build name is empty");
    if (b.target.arch.empty()) {
        return Error(Errc::invalid_argument, fmt::format("build {}: no architecture", b.name));
    }
    if (b.target.min_ram_mb < 0) {
        return Error(Errc::invalid_argument, fmt::format("build {}: negative min_ram_mb", b.name));
    }
    if (b.files.empty()) {
        return Error(Errc::invalid_argument, fmt::format("build {} has no files", b.name));
    }
    if (b.target.accelerator.empty()) b.target.accelerator = "none";
    std::sort(b.target.isa.begin(), b.target.isa.end());
    b.target.isa.erase(std::unique(b.target.isa.begin(), b.target.isa.end()), b.target.isa.end());
    std::set<std::string> names;
    for (const auto& f : b.files) {
        if (f.name.empty() || !names.insert(f.name).second) {
            return Error(
                Errc::invalid_argument,
                fmt::format("build {}: file names must be non-empty and distinct", b.name));
        }
    }
    return b;
}

}  // namespace

Result<Build> PostgresCatalog::add_build(const std::string& ns, const std::string& model,
                                         const std::string& version, const Build& input) {
    PYLON_TRY_ASSIGN(const Build build, normalized(input));
    const auto release = release_name(ns, model, version);
    const auto what = fmt::format("adding build {} to release {}", build.name, release);
    return transact(what, [&](pqxx::work& tx) -> Result<Build> {
        PYLON_TRY_ASSIGN(const auto ref, find_release(tx, ns, model, version, true));
        if (ref.state != ReleaseState::draft) {
            return Error(Errc::invalid_state, fmt::format("release {} is {}: builds can only be "
                                                          "added to a draft",
                                                          release, to_string(ref.state)));
        }
        for (const auto& f : build.files) {
            const auto blob = tx.exec_params("SELECT size FROM blobs WHERE digest = $1", f.digest);
            if (blob.empty()) {
                return Error(Errc::not_found, fmt::format("blob {} (file {} of build {}) not found",
                                                          f.digest, f.name, build.name));
            }
            if (blob[0][0].as<std::int64_t>() != f.size) {
                return Error(
                    Errc::invalid_argument,
                    fmt::format("file {} of build {}: size {} differs from blob {} ({})", f.name,
                                build.name, f.size, f.digest, blob[0][0].as<std::int64_t>()));
            }
        }
        const auto r = tx.exec_params(
            "INSERT INTO builds (release_id, name, arch, isa, accelerator, min_ram_mb, format,"
            " quantization) VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8)"
            " ON CONFLICT (release_id, name) DO NOTHING RETURNING id",
            ref.id, build.name, build.target.arch, text_array_literal(build.target.isa),
            build.target.accelerator, build.target.min_ram_mb, build.format, build.quantization);
        if (r.empty()) {
            return Error(Errc::conflict,
                         fmt::format("build {} of release {} already exists", build.name, release));
        }
        const auto id = r[0][0].as<std::int64_t>();
        for (const auto& f : build.files) {
            tx.exec_params(
                "INSERT INTO build_files (build_id, name, digest, size) VALUES ($1, $2, $3, $4)",
                id, f.name, f.digest, f.size);
        }
        const auto b = tx.exec_params(
            fmt::format("SELECT {} FROM builds b WHERE b.id = $1", kBuildColumns), id);
        std::vector<Build> out{read_build(b[0])};
        load_files(tx, out);
        return std::move(out.front());
    });
}

Result<void> PostgresCatalog::remove_build(const std::string& ns, const std::string& model,
                                           const std::string& version, const std::string& build) {
    const auto release = release_name(ns, model, version);
    const auto what = fmt::format("removing build {} from release {}", build, release);
    return transact(what, [&](pqxx::work& tx) -> Result<void> {
        PYLON_TRY_ASSIGN(const auto ref, find_release(tx, ns, model, version, true));
        if (ref.state != ReleaseState::draft) {
            return Error(Errc::invalid_state, fmt::format("release {} is {}: builds can only be "
                                                          "removed from a draft",
                                                          release, to_string(ref.state)));
        }
        const auto r = tx.exec_params(
            "DELETE FROM builds WHERE release_id = $1 AND name = $2 RETURNING id", ref.id, build);
        if (r.empty()) {
            return Error(Errc::not_found,
                         fmt::format("build {} of release {} not found", build, release));
        }
        return ok();
    });
}

Result<std::vector<Build>> PostgresCatalog::list_builds(const std::string& ns,
                                                        const std::string& model,
                                                        const std::string& version) {
    return transact("listing builds", [&](pqxx::work& tx) -> Result<std::vector<Build>> {
        PYLON_TRY_ASSIGN(const auto ref, find_release(tx, ns, model, version, false));
        return load_builds(tx, ref.id);
    });
}

Result<std::vector<Build>> PostgresCatalog::list_builds(std::int64_t release_id) {
    return transact("listing builds", [&](pqxx::work& tx) -> Result<std::vector<Build>> {
        const auto r = tx.exec_params("SELECT 1 FROM releases WHERE id = $1", release_id);
        if (r.empty()) {
            return Error(Errc::not_found, fmt::format("release {} not found", release_id));
        }
        return load_builds(tx, release_id);
    });
}

Result<Page<BuildMatch>> PostgresCatalog::search_builds(const BuildQuery& query,
                                                        const PageRequest& page) {
    PYLON_TRY_ASSIGN(const auto bounds, page_bounds(page));
    if (query.arch.empty()) return Error(Errc::invalid_argument, "build search: no architecture");
    return transact("searching builds", [&](pqxx::work& tx) -> Result<Page<BuildMatch>> {
        // isa <@ $2: every feature the build needs is one the device has.
        const auto r = tx.exec_params(
            fmt::format("SELECT {}, n.name, m.name, r.version"
                        " FROM builds b JOIN releases r ON r.id = b.release_id"
                        " JOIN models m ON m.id = r.model_id"
                        " JOIN namespaces n ON n.id = m.namespace_id"
                        " WHERE r.state = 'published' AND b.arch = $1 AND b.isa <@ $2::text[]"
                        " AND (b.accelerator = 'none' OR b.accelerator = $3)"
                        " AND ($4::bigint IS NULL OR b.min_ram_mb <= $4)"
                        " AND ($5::text IS NULL OR b.format = $5)"
                        " AND ($6::text IS NULL OR n.name = $6)"
                        " AND ($7::bigint IS NULL OR b.id > $7)"
                        " ORDER BY b.id LIMIT $8",
                        kBuildColumns),
            query.arch, text_array_literal(query.isa), query.accelerator, query.ram_mb,
            query.format, query.ns, bounds.after, static_cast<std::int64_t>(bounds.limit) + 1);
        std::vector<Build> builds;
        std::vector<BuildMatch> items;
        for (const auto& row : r) {
            builds.push_back(read_build(row));
            items.push_back(BuildMatch{row[10].as<std::string>(),
                                       row[11].as<std::string>(),
                                       row[12].as<std::string>(),
                                       {}});
        }
        load_files(tx, builds);
        for (std::size_t i = 0; i < items.size(); ++i) items[i].build = std::move(builds[i]);
        return make_page(std::move(items), bounds.limit,
                         [](const BuildMatch& m) { return m.build.id; });
    });
}

}  // namespace pylon::catalog
