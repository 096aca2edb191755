// pylon login | token create/list/revoke | namespace create/list — credentials and the admin's
// side of the registry. `namespace create` also delegates the namespace to its publisher keys in
// the top-level TUF targets, signed here with the (offline) targets key.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

#include "commands.h"
#include "pylon/common/file_io.h"
#include "pylon/signing/tuf/targets_editor.h"
#include "registry_client.h"
#include "registry_format.h"
#include "registry_tuf.h"

namespace pylon::cli {
namespace {

namespace tuf = signing::tuf;
constexpr std::size_t kMaxRootSize = 512 * 1024;

std::string scopes_text(const nlohmann::json& scopes) {
    std::string out;
    if (!scopes.is_array()) return out;
    for (const auto& s : scopes) {
        if (!s.is_string()) continue;
        if (!out.empty()) out += ", ";
        out += s.get<std::string>();
    }
    return out;
}

struct LoginOptions {
    std::string registry;
    std::string token_file;
    std::string ca_file;
    std::string tuf_root;
};

// Trust on first use: an existing trusted root for this registry is kept; --tuf-root replaces
// whatever was trusted (and the metadata trusted through it).
void trust_root(RegistryClient& client, const LoginOptions& o) {
    const auto dir = tuf_metadata_dir(client.base_url());
    std::error_code ec;
    std::string text;
    if (!o.tuf_root.empty()) {
        text = unwrap(read_file(o.tuf_root, kMaxRootSize), "reading --tuf-root");
    } else if (std::filesystem::exists(dir / "root.json", ec)) {
        text = unwrap(read_file(dir / "root.json", kMaxRootSize), "reading trusted root");
        const auto md = parse_self_signed_root(text);
        std::cout << "TUF root: keeping the trusted root (version " << md.signed_.version << ") in "
                  << dir.string() << "\n";
        return;
    } else {
        net::HttpRequest rq;
        rq.target = "/tuf/metadata/1.root.json";
        rq.max_response_size = kMaxRootSize;
        const auto r = client.send(std::move(rq));
        expect_success(r);
        text = r.body;
    }
    const auto md = parse_self_signed_root(text);
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
    if (ec) throw CommandError("creating " + dir.string() + ": " + ec.message());
    unwrap(write_file_atomic(dir / "root.json", text, 0644), "saving the trusted root");
    std::cout << "TUF root: trusting version " << md.signed_.version
              << (o.tuf_root.empty() ? " (first use)" : " (from " + o.tuf_root + ")")
              << "; root keys:\n";
    const auto& role = md.signed_.roles.at("root");
    for (const auto& id : role.keyids) std::cout << "  " << id << "\n";
    std::cout << "  threshold " << role.threshold << "\n";
}

void run_login(const LoginOptions& o) {
    RegistryOptions ro;
    ro.registry = o.registry;
    ro.token_file = o.token_file;
    ro.ca_file = o.ca_file;
    Credentials creds = ro.resolve();
    if (!o.ca_file.empty()) {
        creds.ca_file = std::filesystem::absolute(o.ca_file).string();
    }
    RegistryClient client(creds);
    const auto who = client.call(net::Method::get, "/v1/whoami");
    trust_root(client, o);
    save_credentials(client.credentials());
    std::cout << "logged in to " << client.base_url() << " as " << field(who, "name") << " (token "
              << field(who, "id") << ")\n  scopes: " << scopes_text(who["scopes"]) << "\n"
              << "  credentials: " << (config_dir() / "credentials.json").string() << "\n";
}

struct TokenCreateOptions {
    RegistryOptions reg;
    std::string name;
    std::vector<std::string> scopes;
    int expires_in_days = 0;
    std::string out;
};

void run_token_create(const TokenCreateOptions& o) {
    RegistryClient client(o.reg.resolve());
    nlohmann::json body{{"name", o.name}, {"scopes", o.scopes}};
    if (o.expires_in_days > 0) body["expires_in_days"] = o.expires_in_days;
    const auto j = client.call(net::Method::post, "/v1/tokens", body);
    const std::string token = field(j, "token");
    if (token.empty()) throw CommandError("the registry's answer holds no token");
    if (!o.out.empty()) {
        unwrap(write_file_atomic(o.out, token + "\n", 0600), "writing " + o.out);
        std::cout << "created token " << field(j, "id") << " (" << o.name << "), written to "
                  << o.out << "\n";
    } else {
        std::cerr << "created token " << field(j, "id") << " (" << o.name
                  << "); it is shown only once:\n";
        std::cout << token << "\n";
    }
}

void run_token_list(const RegistryOptions& reg) {
    RegistryClient client(reg.resolve());
    const auto items = client.list_all("/v1/tokens");
    std::printf("%-38s %-24s %-22s %s\n", "ID", "NAME", "EXPIRES", "SCOPES");
    for (const auto& t : items) {
        std::printf("%-38s %-24s %-22s %s\n", field(t, "id").c_str(), field(t, "name").c_str(),
                    field(t, "expires_at").c_str(),
                    scopes_text(t.value("scopes", nlohmann::json())).c_str());
    }
}

void run_token_revoke(const RegistryOptions& reg, const std::string& id) {
    RegistryClient client(reg.resolve());
    client.call(net::Method::delete_, "/v1/tokens/" + url_encode(id));
    std::cout << "revoked token " << id << "\n";
}

struct NamespaceCreateOptions {
    RegistryOptions reg;
    std::string name;
    std::string description;
    std::vector<std::string> publisher_keys;
    unsigned threshold = 1;
    std::string targets_key;
    int expires_in_days = 365;
    PassphraseOptions pass;
};

void run_namespace_create(const NamespaceCreateOptions& o) {
    if (o.threshold < 1 || o.threshold > o.publisher_keys.size()) {
        throw UsageError("--threshold must be between 1 and the number of --publisher-key");
    }
    std::vector<signing::PublicKey> keys;
    for (const auto& k : o.publisher_keys) keys.push_back(load_public_key(k));
    const auto targets_key = load_private_key(o.targets_key, o.pass);
    RegistryClient client(o.reg.resolve());
    RegistryTuf tuf_client(client.credentials());

    nlohmann::json body{{"name", o.name}};
    if (!o.description.empty()) body["description"] = o.description;
    net::HttpRequest rq;
    rq.method = net::Method::post;
    rq.target = "/v1/namespaces";
    rq.body = body.dump();
    rq.headers.add("Content-Type", "application/json");
    const auto r = client.send(std::move(rq));
    if (r.status == 409) {
        std::cout << "namespace " << o.name << " exists; updating its delegation\n";
    } else {
        expect_success(r);
        std::cout << "created namespace " << o.name << "\n";
    }

    tuf_client.refresh();
    if (r.status == 409) {
        // A new key set must still verify the namespace's current role: removing the keys that
        // signed it would make every client refuse the namespace's releases. A rotation adds
        // the new key first, publishes with it (which re-signs the role), then removes the old.
        if (const auto role = tuf_client.role_bytes(o.name)) {
            auto md = unwrap(tuf::Metadata<tuf::Targets>::parse(*role), o.name + ".json");
            std::map<std::string, tuf::Key> by_id;
            tuf::RoleKeys wanted;
            wanted.threshold = o.threshold;
            for (const auto& k : keys) {
                by_id.emplace(k.key_id(), tuf::Key::from_public_key(k));
                wanted.keyids.push_back(k.key_id());
            }
            if (auto ok = tuf::verify_with(md, o.name, by_id, wanted); !ok) {
                throw CommandError(
                    "refusing to re-delegate " + o.name + ": its current role (" + o.name +
                    ".json version " + std::to_string(md.signed_.version) + ") is not signed by " +
                    std::to_string(o.threshold) +
                    " of the keys given, so every client would refuse its releases. Delegate "
                    "the new key beside the old one, publish once with the new key (that "
                    "re-signs the role), then remove the old key (docs/OPERATIONS.md, \"Key "
                    "rotation\")");
            }
        }
    }
    const auto current = tuf_client.role_bytes("targets");
    if (!current) throw CommandError("the trusted snapshot does not list targets.json");
    auto editor = unwrap(tuf::TargetsEditor::from_bytes(*current), "top-level targets");
    tuf::DelegationSpec spec;
    spec.name = o.name;
    spec.keys = keys;
    spec.threshold = o.threshold;
    spec.paths = std::vector<std::string>{namespace_path_pattern(o.name)};
    unwrap(editor.set_delegation(spec), "delegating " + o.name);
    editor.set_expires(tuf::Time(std::chrono::floor<std::chrono::seconds>(
        std::chrono::system_clock::now() + std::chrono::days(o.expires_in_days))));
    const auto next_version = editor.next_version();
    const auto signed_json = unwrap(editor.sign({&targets_key}), "signing top-level targets");
    client.call(net::Method::post, "/v1/tuf/targets", nlohmann::json::parse(signed_json));
    std::cout << "delegated " << namespace_path_pattern(o.name) << " to " << keys.size()
              << " publisher key(s), threshold " << o.threshold << " (targets version "
              << next_version << "):\n";
    for (const auto& k : keys) std::cout << "  " << k.key_id() << "\n";
}

void run_namespace_list(const RegistryOptions& reg) {
    RegistryClient client(reg.resolve());
    const auto items = client.list_all("/v1/namespaces");
    std::printf("%-32s %s\n", "NAMESPACE", "DESCRIPTION");
    for (const auto& n : items) {
        std::printf("%-32s %s\n", field(n, "name").c_str(), field(n, "description").c_str());
    }
}

}  // namespace

void add_login_commands(CLI::App& app) {
    auto lo = std::make_shared<LoginOptions>();
    auto* login =
        app.add_subcommand("login", "Check a registry token, save it, trust the TUF root");
    login->add_option("--registry", lo->registry, "Registry URL")->required();
    login->add_option("--token-file", lo->token_file, "File holding the API token (never argv)")
        ->required()
        ->check(CLI::ExistingFile);
    login->add_option("--ca-file", lo->ca_file, "PEM CA certificates to trust for HTTPS")
        ->check(CLI::ExistingFile);
    login
        ->add_option("--tuf-root", lo->tuf_root,
                     "Trust this root.json (obtained out of band) instead of the registry's")
        ->check(CLI::ExistingFile);
    login->callback([lo] { run_login(*lo); });

    auto* token = app.add_subcommand("token", "Manage API tokens (admin)");
    token->require_subcommand(1);
    auto tc = std::make_shared<TokenCreateOptions>();
    auto* create = token->add_subcommand("create", "Create a token; it is shown only once");
    create->add_option("--name", tc->name, "Name of the token")->required();
    create->add_option("--scope", tc->scopes, "admin, read or publish:<ns> (repeatable)")
        ->required();
    create->add_option("--expires-in-days", tc->expires_in_days, "Lifetime in days")
        ->check(CLI::PositiveNumber);
    create->add_option("--out", tc->out, "Write the token to FILE (mode 0600) instead of stdout");
    tc->reg.add_to(create);
    create->callback([tc] { run_token_create(*tc); });
    auto tl = std::make_shared<RegistryOptions>();
    auto* list = token->add_subcommand("list", "List tokens (never their secrets)");
    tl->add_to(list);
    list->callback([tl] { run_token_list(*tl); });
    auto tr = std::make_shared<RegistryOptions>();
    auto tr_id = std::make_shared<std::string>();
    auto* revoke = token->add_subcommand("revoke", "Revoke a token");
    revoke->add_option("id", *tr_id, "Token ID")->required();
    tr->add_to(revoke);
    revoke->callback([tr, tr_id] { run_token_revoke(*tr, *tr_id); });

    auto* ns = app.add_subcommand("namespace", "Manage namespaces (admin)");
    ns->require_subcommand(1);
    auto nc = std::make_shared<NamespaceCreateOptions>();
    auto* nsc = ns->add_subcommand(
        "create", "Create a namespace and delegate it to publisher keys in the TUF targets");
    nsc->add_option("name", nc->name, "Namespace name")->required();
    nsc->add_option("--description", nc->description, "Description");
    nsc->add_option("--publisher-key", nc->publisher_keys, "Publisher public key PEM (repeatable)")
        ->required()
        ->check(CLI::ExistingFile);
    nsc->add_option("--threshold", nc->threshold, "Publisher signatures required (default 1)");
    nsc->add_option("--targets-key", nc->targets_key, "Private key of the top-level targets role")
        ->required()
        ->check(CLI::ExistingFile);
    nsc->add_option("--expires-in-days", nc->expires_in_days,
                    "Expiry of the new top-level targets version (default 365)")
        ->check(CLI::PositiveNumber);
    nc->pass.add_to(nsc);
    nc->reg.add_to(nsc);
    nsc->callback([nc] { run_namespace_create(*nc); });
    auto nl = std::make_shared<RegistryOptions>();
    auto* nsl = ns->add_subcommand("list", "List namespaces");
    nl->add_to(nsl);
    nsl->callback([nl] { run_namespace_list(*nl); });
}

}  // namespace pylon::cli
