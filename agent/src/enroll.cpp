// Device identity and enrolment (enroll.h).
#include "pylon/agent/enroll.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "pylon/agent/hardware.h"
#include "pylon/common/file_io.h"
#include "pylon/net/http_client.h"
#include "pylon/signing/dsse.h"
#include "pylon/signing/json.h"
#include "pylon/signing/tuf/metadata.h"
#include "registry_http.h"

namespace pylon::agent {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr std::size_t kMaxSmallFile = 64 * 1024;
constexpr std::size_t kMaxRoot = 512 * 1024;

Result<void> private_dir(const fs::path& d) {
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec) return Error(Errc::io_error, "create " + d.string() + ": " + ec.message());
    if (::chmod(d.c_str(), 0700) != 0) return Error::from_errno(errno, "chmod " + d.string());
    return {};
}

// Refuses files that group or others may read (secrets, and what they protect).
Result<std::string> read_private(const fs::path& f) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) return Error::from_errno(errno, "stat " + f.string());
    if ((st.st_mode & 077) != 0) {
        return Error(Errc::permission_denied,
                     f.string() + " is accessible to group or others; chmod 600 it");
    }
    return read_file(f, kMaxSmallFile);
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "device";
    return buf;
}

// The image repository's root: from a file given out of band, or the registry's first version,
// which must at least verify by itself.
Result<std::string> fetch_root(RegistryHttp& http, const std::string& root_file) {
    std::string bytes;
    if (!root_file.empty()) {
        PYLON_TRY_ASSIGN(bytes, read_file(root_file, kMaxRoot));
    } else {
        PYLON_TRY_ASSIGN(auto r, http.get("/tuf/metadata/1.root.json", nullptr));
        if (r.status != 200) {
            return Error(Errc::io_error,
                         "the registry has no TUF root (HTTP " + std::to_string(r.status) + ")");
        }
        bytes = std::move(r.body);
    }
    PYLON_TRY_ASSIGN(const auto md, signing::tuf::Metadata<signing::tuf::Root>::parse(bytes));
    const auto role = md.signed_.roles.find("root");
    if (role == md.signed_.roles.end())
        return Error(Errc::invalid_argument, "root.json has no root role");
    PYLON_TRY(signing::tuf::verify_with(md, "root", md.signed_.keys, role->second));
    return bytes;
}

}  // namespace

IdentityStore::IdentityStore(fs::path state_dir)
    : state_(std::move(state_dir)), dir_(state_ / "identity") {}

Result<std::optional<Identity>> IdentityStore::load() const {
    std::error_code ec;
    if (!fs::exists(dir_ / "identity.json", ec)) return std::optional<Identity>{};
    PYLON_TRY_ASSIGN(const std::string text, read_private(dir_ / "identity.json"));
    const Json j = Json::parse(text, nullptr, false);
    Identity id;
    try {
        id.registry = j.at("registry").get<std::string>();
        id.device_id = j.at("device_id").get<std::int64_t>();
        id.fleet = j.at("fleet").get<std::string>();
        id.name = j.at("name").get<std::string>();
        id.director_key_json = j.at("director_key").dump();
    } catch (const Json::exception& e) {
        return Error(Errc::parse_error, (dir_ / "identity.json").string() + ": " + e.what());
    }
    return std::optional<Identity>(std::move(id));
}

Result<Secret> IdentityStore::credential() const {
    PYLON_TRY_ASSIGN(std::string text, read_private(dir_ / "credential"));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return Secret(std::move(text));
}

Result<signing::PrivateKey> IdentityStore::device_key() const {
    const fs::path f = dir_ / "device.key";
    std::error_code ec;
    if (!fs::exists(f, ec)) {
        PYLON_TRY(private_dir(state_));
        PYLON_TRY(private_dir(dir_));
        PYLON_TRY_ASSIGN(auto key, signing::PrivateKey::generate(signing::KeyType::ed25519));
        PYLON_TRY(key.save(f, nullptr));
        return key;
    }
    PYLON_TRY(read_private(f));  // the mode check
    return signing::PrivateKey::load(f);
}

Result<signing::PublicKey> IdentityStore::director_key() const {
    PYLON_TRY_ASSIGN(auto id, load());
    if (!id) return Error(Errc::not_found, "this device is not enrolled (pylon-agent enroll)");
    return signing::PublicKey::from_tuf(Json::parse(id->director_key_json));
}

Result<void> IdentityStore::save(const Identity& id, const Secret& credential) const {
    PYLON_TRY(private_dir(dir_));
    PYLON_TRY(write_file_atomic(dir_ / "credential", credential.reveal() + "\n", 0600));
    const Json j = {{"registry", id.registry},
                    {"device_id", id.device_id},
                    {"fleet", id.fleet},
                    {"name", id.name},
                    {"director_key", Json::parse(id.director_key_json)}};
    return write_file_atomic(dir_ / "identity.json", j.dump(2) + "\n", 0600);
}

Result<Identity> enroll(const fs::path& state_dir, const EnrollOptions& o) {
    IdentityStore store(state_dir);
    PYLON_TRY_ASSIGN(auto existing, store.load());
    if (existing) {
        return Error(Errc::invalid_argument,
                     "already enrolled as " + existing->fleet + "/" + existing->name + " (device " +
                         std::to_string(existing->device_id) + ") with " + existing->registry);
    }
    PYLON_TRY(private_dir(state_dir));
    PYLON_TRY_ASSIGN(auto key, store.device_key());
    PYLON_TRY_ASSIGN(auto hw, probe_hardware(o.accelerators));
    const std::string name = o.name.empty() ? host_name() : o.name;
    const Json pub = signing::tuf::Key::from_public_key(key.public_key()).to_json();
    const Json hardware = hw.to_json();
    PYLON_TRY_ASSIGN(
        const std::string payload,
        signing::canonical_json(Json{{"name", name}, {"public_key", pub}, {"hardware", hardware}}));
    PYLON_TRY_ASSIGN(auto proof, signing::dsse_sign("application/vnd.pylon.enrollment+json",
                                                    as_bytes(payload), {&key}));

    std::optional<signing::PublicKey> pinned;
    if (!o.director_key_file.empty()) {
        PYLON_TRY_ASSIGN(const std::string pem, read_file(o.director_key_file, kMaxSmallFile));
        auto k = signing::PublicKey::from_pem(pem);
        if (!k) return std::move(k).error().with_context(o.director_key_file);
        pinned = std::move(*k);
    }
    PYLON_TRY_ASSIGN(auto http, RegistryHttp::open(o.registry, o.ca_file));
    PYLON_TRY_ASSIGN(const std::string root, fetch_root(*http, o.tuf_root_file));
    const Json body = {
        {"name", name}, {"public_key", pub}, {"hardware", hardware}, {"proof", proof.to_json()}};
    PYLON_TRY_ASSIGN(auto r, http->post_json("/v1/device/enroll", &o.token, body.dump()));
    if (r.status != 201) return registry_refusal("enrolment", r);
    const Json answer = Json::parse(r.body, nullptr, false);
    Identity id;
    Secret credential;
    try {
        const Json& d = answer.at("device");
        id.registry = o.registry;
        id.device_id = std::stoll(d.at("id").get<std::string>());
        id.fleet = d.at("fleet").get<std::string>();
        id.name = d.at("name").get<std::string>();
        id.director_key_json = answer.at("director_key").dump();
        credential = Secret(answer.at("credential").get<std::string>());
        PYLON_TRY_ASSIGN(const auto director,
                         signing::PublicKey::from_tuf(answer.at("director_key")));
        if (pinned && !(director == *pinned)) {
            return Error(Errc::permission_denied,
                         "the registry's director key " + director.key_id() +
                             " is not the one given with --director-key (" + pinned->key_id() +
                             "); nothing was stored");
        }
    } catch (const std::exception& e) {
        return Error(Errc::parse_error,
                     std::string("the registry's enrolment answer is malformed: ") + e.what());
    }
    PYLON_TRY(private_dir(store.tuf_dir()));
    PYLON_TRY(write_file_atomic(store.tuf_dir() / "root.json", root, 0644));
    PYLON_TRY(store.save(id, credential));
    return id;
}

}  // namespace pylon::agent
