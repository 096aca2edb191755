// Tests of TargetsEditor: editing and signing targets roles on the client side, and the result
// accepted by Repository::import_role.
#include <catch2/catch.hpp>

#include "pylon/signing/json.h"
#include "pylon/signing/tuf/repository.h"
#include "pylon/signing/tuf/targets_editor.h"
#include "temp_dir.h"

using pylon::as_bytes;
using namespace pylon::signing;
using namespace pylon::signing::tuf;
using pylon::test::read_all;
using pylon::test::TempDir;

namespace {

const Time kNow = std::chrono::sys_days{std::chrono::year{2030} / 1 / 1};
const Time kLater = kNow + std::chrono::days(90);

PrivateKey new_key() {
    return PrivateKey::generate(KeyType::ed25519).value();
}

TargetFile file_of(const std::string& content) {
    return TargetFile::from_data(as_bytes(content), Json{{"quantization", "q4_0"}});
}

DelegationSpec namespace_spec(const std::string& name, const PrivateKey& key) {
    DelegationSpec spec;
    spec.name = name;
    spec.keys = {key.public_key()};
    spec.paths = std::vector<std::string>{name + "/*/*/*/*"};
    return spec;
}

Metadata<Targets> parse(const std::string& bytes) {
    auto md = Metadata<Targets>::parse(bytes);
    REQUIRE(md);
    return std::move(*md);
}

}  // namespace

TEST_CASE("TargetsEditor: a new role signs as version 1, canonical, verifiable") {
    const PrivateKey key = new_key();
    TargetsEditor editor = TargetsEditor::new_role();
    REQUIRE(editor.add_target("acme/m/1.0.0/cpu/model.gguf", file_of("abc")));
    auto no_expiry = editor.sign({&key});
    REQUIRE_FALSE(no_expiry);
    CHECK(no_expiry.error().code() == Errc::invalid_argument);
    CHECK_FALSE(editor.sign({}));

    editor.set_expires(kLater);
    auto bytes = editor.sign({&key});
    REQUIRE(bytes);
    CHECK(canonical_json(Json::parse(*bytes)).value() == *bytes);
    const auto md = parse(*bytes);
    CHECK(md.signed_.version == 1);
    CHECK(md.signed_.expires == kLater);
    CHECK(md.signed_.targets.at("acme/m/1.0.0/cpu/model.gguf").length == 3);
    const Key k = Key::from_public_key(key.public_key());
    CHECK(verify_with(md, "acme", {{k.key_id(), k}}, RoleKeys{{k.key_id()}, 1, {}}));
    // Signing again gives the same version: the editor is not changed by sign().
    CHECK(parse(editor.sign({&key}).value()).signed_.version == 1);
}

TEST_CASE("TargetsEditor: edits keep what they do not touch, unknown fields included") {
    const PrivateKey key = new_key(), a = new_key(), b = new_key(), c = new_key();
    Metadata<Targets> md;
    md.signed_.version = 4;
    md.signed_.expires = kLater;
    md.signed_.unrecognized["x-pylon-note"] = "kept";
    md.signed_.targets["acme/m/1.0.0/cpu/old.gguf"] = file_of("old");
    md.signed_.targets["acme/m/1.0.0/cpu/old.gguf"].unrecognized["x-extra"] = 7;
    REQUIRE(md.sign(key));

    auto editor = TargetsEditor::from_bytes(md.to_bytes());
    REQUIRE(editor);
    REQUIRE(editor->add_target("acme/m/1.0.0/cpu/new.gguf", file_of("new")));
    REQUIRE(editor->set_delegation(namespace_spec("acme", a)));
    REQUIRE(editor->set_delegation(namespace_spec("beta", b)));
    // Replacing acme's keys keeps its place in the search order and drops the unused key.
    REQUIRE(editor->set_delegation(namespace_spec("acme", c)));
    const auto out = parse(editor->sign({&key}).value());
    CHECK(out.signed_.version == 5);
    CHECK(out.signed_.expires == kLater);
    CHECK(out.signed_.unrecognized.at("x-pylon-note") == "kept");
    CHECK(out.signed_.targets.at("acme/m/1.0.0/cpu/old.gguf").unrecognized.at("x-extra") == 7);
    CHECK(out.signed_.targets.size() == 2);
    REQUIRE(out.signed_.delegations);
    const auto& d = *out.signed_.delegations;
    REQUIRE(d.roles.size() == 2);
    CHECK(d.roles[0].name == "acme");
    CHECK(d.roles[0].keyids == std::vector<std::string>{c.key_id()});
    CHECK(d.roles[1].name == "beta");
    CHECK(d.keys.size() == 2);
    CHECK_FALSE(d.keys.count(a.key_id()));
    CHECK(out.signatures.size() == 1);

    REQUIRE(editor->remove_delegation("beta"));
    REQUIRE(editor->remove_target("acme/m/1.0.0/cpu/old.gguf"));
    const auto removed = parse(editor->sign({&key}).value());
    CHECK(removed.signed_.delegations->roles.size() == 1);
    CHECK(removed.signed_.delegations->keys.size() == 1);
    CHECK(removed.signed_.targets.size() == 1);

    CHECK(editor->remove_delegation("beta").error().code() == Errc::invalid_argument);
    CHECK(editor->remove_target("nope").error().code() == Errc::target_not_found);
    CHECK(editor->add_target("../x", file_of("x")).error().code() == Errc::invalid_argument);
    CHECK(editor->add_target("a//b", file_of("x")).error().code() == Errc::invalid_argument);
    DelegationSpec bad = namespace_spec("snapshot", a);
    CHECK(editor->set_delegation(bad).error().code() == Errc::invalid_argument);
    bad = namespace_spec("acme", a);
    bad.threshold = 2;
    CHECK(editor->set_delegation(bad).error().code() == Errc::invalid_argument);

    CHECK(TargetsEditor::from_bytes("{}").error().code() == Errc::malformed_metadata);
}

TEST_CASE("TargetsEditor: admin and publisher edits are accepted by import_role") {
    TempDir tmp;
    const PrivateKey root = new_key(), targets = new_key(), snapshot = new_key(),
                     timestamp = new_key(), acme = new_key();
    CreateOptions o;
    o.root.keys = {root.public_key()};
    o.targets.keys = {targets.public_key()};
    o.snapshot.keys = {snapshot.public_key()};
    o.timestamp.keys = {timestamp.public_key()};
    auto repo = Repository::create(tmp / "repo", o);
    REQUIRE(repo);
    Signers all, online;
    all.add("root", root).add("targets", targets);
    all.add("snapshot", snapshot).add("timestamp", timestamp);
    online.add("snapshot", snapshot).add("timestamp", timestamp);
    REQUIRE(repo->publish(all, kNow));

    // The admin delegates the namespace with the offline targets key.
    auto admin = TargetsEditor::from_bytes(read_all(repo->metadata_dir() / "targets.json"));
    REQUIRE(admin);
    REQUIRE(admin->set_delegation(namespace_spec("acme", acme)));
    admin->set_expires(kLater);
    REQUIRE(repo->import_role("targets", admin->sign({&targets}).value(), kNow));
    auto report = repo->publish(online, kNow);
    REQUIRE(report);
    CHECK(report->pending == std::vector<std::string>{"acme"});

    // The publisher signs its role's first version, then a second one.
    TargetsEditor first = TargetsEditor::new_role();
    REQUIRE(first.add_target("acme/m/1.0.0/cpu/model.gguf", file_of("v1")));
    first.set_expires(kLater);
    REQUIRE(repo->import_role("acme", first.sign({&acme}).value(), kNow));
    REQUIRE(repo->publish(online, kNow));

    auto second = TargetsEditor::from_bytes(read_all(repo->metadata_dir() / "acme.json"));
    REQUIRE(second);
    REQUIRE(second->add_target("acme/m/1.1.0/cpu/model.gguf", file_of("v2")));
    const std::string v2 = second->sign({&acme}).value();
    REQUIRE(repo->import_role("acme", v2, kNow));
    REQUIRE(repo->publish(online, kNow));
    CHECK(read_all(repo->metadata_dir() / "2.acme.json") == v2);
    CHECK((*repo->targets("acme"))->signed_.targets.size() == 2);

    // A publisher cannot sign the top-level targets.
    auto forged = TargetsEditor::from_bytes(read_all(repo->metadata_dir() / "targets.json"));
    REQUIRE(forged);
    auto refused = repo->import_role("targets", forged->sign({&acme}).value(), kNow);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code() == Errc::threshold_not_met);
}
