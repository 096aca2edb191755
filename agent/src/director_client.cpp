#include "pylon/agent/director_client.h"

#include "pylon/agent/enroll.h"
#include "pylon/common/file_io.h"
#include "registry_http.h"

namespace pylon::agent {

Result<signing::tuf::DirectorDocument> fetch_director(const std::filesystem::path& state_dir,
                                                      std::int64_t last_version,
                                                      signing::tuf::Time now,
                                                      const std::string& ca_file) {
    IdentityStore store(state_dir);
    PYLON_TRY_ASSIGN(auto id, store.load());
    if (!id) return Error(Errc::not_found, "this device is not enrolled (pylon-agent enroll)");
    PYLON_TRY_ASSIGN(const Secret credential, store.credential());
    PYLON_TRY_ASSIGN(const auto key, store.director_key());
    PYLON_TRY_ASSIGN(auto http, RegistryHttp::open(id->registry, ca_file));
    PYLON_TRY_ASSIGN(auto r, http->get("/v1/device/director", &credential));
    if (r.status != 200) return registry_refusal("fetching the director document", r);
    // The very document accepted last, served again while fresh, is no replay (updater.cpp).
    const auto accepted = read_file(state_dir / "director.json", 64 * 1024);
    const bool same = accepted && *accepted == r.body && last_version > 0;
    auto doc = signing::tuf::verify_director_document(r.body, key, id->binding(),
                                                      last_version - (same ? 1 : 0), now);
    if (!doc) return std::move(doc).error().with_context("the director document");
    return doc;
}

}  // namespace pylon::agent
