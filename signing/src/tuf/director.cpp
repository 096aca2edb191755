// Director documents (director.h).
#include "pylon/signing/tuf/director.h"

namespace pylon::signing::tuf {
namespace {

constexpr std::size_t kMaxDocument = 64 * 1024;
constexpr const char* kDeviceField = "x-pylon-device";
constexpr const char* kNoteField = "x-pylon-note";

Error malformed(std::string what) {
    return Error(Errc::malformed_metadata, "director document: " + std::move(what));
}

}  // namespace

Result<std::string> sign_director_document(const DirectorDocument& doc, const PrivateKey& key) {
    Metadata<Targets> md;
    md.signed_.version = doc.version;
    md.signed_.expires = doc.expires;
    if (doc.target_path) md.signed_.targets[*doc.target_path] = doc.target;
    md.signed_.unrecognized[kDeviceField] = {
        {"id", doc.device.id}, {"fleet", doc.device.fleet}, {"name", doc.device.name}};
    if (!doc.note.empty()) md.signed_.unrecognized[kNoteField] = doc.note;
    PYLON_TRY(md.sign(key));
    return md.to_bytes();
}

Result<DirectorDocument> verify_director_document(std::string_view bytes,
                                                  const PublicKey& director_key,
                                                  const DeviceBinding& device,
                                                  std::int64_t last_version, Time now) {
    if (bytes.size() > kMaxDocument) {
        return Error(Errc::too_large, "director document: larger than 64 KiB");
    }
    PYLON_TRY_ASSIGN(const Metadata<Targets> md, Metadata<Targets>::parse(bytes));
    const Key key = Key::from_public_key(director_key);
    const std::map<std::string, Key> keys{{key.key_id(), key}};
    RoleKeys role;
    role.keyids = {key.key_id()};
    role.threshold = 1;
    PYLON_TRY(verify_with(md, "director", keys, role));

    const Targets& t = md.signed_;
    DirectorDocument doc;
    doc.version = t.version;
    doc.expires = t.expires;
    const auto d = t.unrecognized.find(kDeviceField);
    if (d == t.unrecognized.end() || !d->is_object()) return malformed("no x-pylon-device");
    try {
        doc.device.id = d->at("id").get<std::int64_t>();
        doc.device.fleet = d->at("fleet").get<std::string>();
        doc.device.name = d->at("name").get<std::string>();
    } catch (const Json::exception&) {
        return malformed("x-pylon-device needs id, fleet and name");
    }
    if (const auto n = t.unrecognized.find(kNoteField); n != t.unrecognized.end()) {
        if (!n->is_string()) return malformed("x-pylon-note is not a string");
        doc.note = n->get<std::string>();
    }
    if (t.targets.size() > 1) return malformed("names more than one target");
    if (t.delegations) return malformed("has delegations");
    if (!t.targets.empty()) {
        doc.target_path = t.targets.begin()->first;
        doc.target = t.targets.begin()->second;
    }
    if (!(doc.device == device)) {
        return Error(Errc::invalid_argument,
                     "director document is for device " + std::to_string(doc.device.id) + " (" +
                         doc.device.fleet + "/" + doc.device.name + "), not this one");
    }
    if (doc.version <= last_version) {
        return Error(Errc::rollback, "director document version " + std::to_string(doc.version) +
                                         " is not above the accepted version " +
                                         std::to_string(last_version));
    }
    if (t.is_expired(now)) {
        return Error(Errc::expired, "director document expired at " + format_time(t.expires));
    }
    return doc;
}

}  // namespace pylon::signing::tuf
