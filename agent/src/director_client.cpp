#include "pylon/agent/director_client.h"

#include "pylon/agent/enroll.h"
#include "pylon/common/file_io.h"
#include "registry_http.h"

namespace pylon::agent {

namespace {
constexpr const char* kAccepted = "director.json";
constexpr std::size_t kMaxDocument = 64 * 1024;
}  // namespace

Result<signing::tuf::DirectorDocument> check_director(const std::filesystem::path& state_dir,
                                                      std::string_view bytes,
                                                      const signing::PublicKey& director_key,
                                                      const signing::tuf::DeviceBinding& device,
                                                      std::int64_t last_version,
                                                      signing::tuf::Time now, bool* repeated) {
    const auto accepted = read_file(state_dir / kAccepted, kMaxDocument);
    const bool same = accepted && *accepted == bytes && last_version > 0;
    if (repeated != nullptr) *repeated = same;
    return signing::tuf::verify_director_document(bytes, director_key, device,
                                                  last_version - (same ? 1 : 0), now);
}

Result<void> save_accepted_director(const std::filesystem::path& state_dir,
                                    std::string_view bytes) {
    return write_file_atomic(state_dir / kAccepted, bytes, 0600);
}

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
    auto doc = check_director(state_dir, r.body, key, id->binding(), last_version, now, nullptr);
    if (!doc) return std::move(doc).error().with_context("the director document");
    return doc;
}

}  // namespace pylon::agent
