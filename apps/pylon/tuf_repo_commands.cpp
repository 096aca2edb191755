// pylon tuf-repo init | add-target | remove-target | delegate | rotate | snapshot | timestamp |
// refresh-expiry: maintain a TUF repository directory (see pylon/signing/tuf/repository.h).
//
// Every command that changes metadata publishes at once. Signing keys are private key files:
// --root-key, --targets-key, --snapshot-key, --timestamp-key, --role-key NAME=FILE, or
// --signing-key FILE (used for every role, before or after the change, that lists the key).
// With both snapshot and timestamp keys the snapshot and timestamp are re-signed too; with
// neither, only the changed roles are written and `pylon tuf-repo snapshot` publishes them.
#include <chrono>
#include <ctime>
#include <deque>
#include <iostream>
#include <memory>
#include <set>

#include "cli_support.h"
#include "commands.h"
#include "pylon/signing/tuf/repository.h"

namespace pylon::cli {
namespace {

namespace tuf = signing::tuf;

tuf::Time now() {
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

std::pair<std::string, std::string> split_assignment(const std::string& s, const char* option) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size()) {
        throw CommandError(std::string(option) + " wants NAME=VALUE, got \"" + s + "\"");
    }
    return {s.substr(0, eq), s.substr(eq + 1)};
}

// Options shared by every command that signs.
struct SigningOptions {
    std::vector<std::string> root, targets, snapshot, timestamp, role_keys, any;
    std::vector<std::string> expires;  // ROLE=DAYS
    PassphraseOptions pass;

    void add_to(CLI::App* cmd) {
        cmd->add_option("--root-key", root, "Root private key (repeatable)");
        cmd->add_option("--targets-key", targets, "Targets private key (repeatable)");
        cmd->add_option("--snapshot-key", snapshot, "Snapshot private key (repeatable)");
        cmd->add_option("--timestamp-key", timestamp, "Timestamp private key (repeatable)");
        cmd->add_option("--role-key", role_keys, "NAME=FILE: private key of any role (repeatable)");
        cmd->add_option("--signing-key", any,
                        "Private key used for every role that lists it (repeatable)");
        cmd->add_option("--expires-days", expires,
                        "ROLE=DAYS: validity of new versions (defaults: root 365, targets and "
                        "delegated 90, snapshot 7, timestamp 1)");
        pass.add_to(cmd);
    }

    tuf::ExpiryPolicy policy() const {
        tuf::ExpiryPolicy p;
        for (const auto& e : expires) {
            const auto [role, days_text] = split_assignment(e, "--expires-days");
            int days = 0;
            try {
                std::size_t used = 0;
                days = std::stoi(days_text, &used);
                if (used != days_text.size() || days < 1) throw std::invalid_argument(e);
            } catch (const std::exception&) {
                throw CommandError("--expires-days " + e + ": DAYS must be a positive integer");
            }
            const std::chrono::days d{days};
            if (role == "root") {
                p.root = d;
            } else if (role == "targets") {
                p.targets = d;
            } else if (role == "snapshot") {
                p.snapshot = d;
            } else if (role == "timestamp") {
                p.timestamp = d;
            } else {
                throw CommandError("--expires-days: unknown role \"" + role +
                                   "\" (root, targets, snapshot or timestamp)");
            }
        }
        return p;
    }

    bool publishes_snapshot() const {
        const bool any_key = !any.empty();
        if (!any_key && snapshot.empty() != timestamp.empty()) {
            throw CommandError(
                "give both --snapshot-key and --timestamp-key (or neither, to publish the "
                "snapshot later with `pylon tuf-repo snapshot`)");
        }
        return any_key || !snapshot.empty();
    }
};

// Loaded private keys and the Signers that refer to them.
class KeyRing {
public:
    explicit KeyRing(const SigningOptions& o) : options_(o) {
        for (const auto& p : o.root) add("root", p);
        for (const auto& p : o.targets) add("targets", p);
        for (const auto& p : o.snapshot) add("snapshot", p);
        for (const auto& p : o.timestamp) add("timestamp", p);
        for (const auto& r : o.role_keys) {
            const auto [name, path] = split_assignment(r, "--role-key");
            add(name, path);
        }
        for (const auto& p : o.any) any_.push_back(&load(p));
    }

    void add(const std::string& role, const std::string& path) { assign(role, load(path)); }

    // Assigns every --signing-key to the roles of `repo` that list it (call before and after a
    // change of keys, so that both the old and the new root keys are used).
    void assign_listed(const tuf::Repository& repo) {
        const auto& root = repo.root().signed_;
        for (const signing::PrivateKey* k : any_) {
            const auto& id = k->key_id();
            for (const auto& [role, rk] : root.roles) {
                if (std::count(rk.keyids.begin(), rk.keyids.end(), id)) assign(role, *k);
            }
            for (const auto& name : repo.targets_roles()) {
                const auto& d = (*repo.targets(name))->signed_.delegations;
                if (!d) continue;
                for (const auto& r : d->roles) {
                    if (std::count(r.keyids.begin(), r.keyids.end(), id)) assign(r.name, *k);
                }
            }
        }
    }

    const tuf::Signers& signers() const { return signers_; }

private:
    const signing::PrivateKey& load(const std::string& path) {
        keys_.push_back(load_private_key(path, options_.pass));
        return keys_.back();
    }
    void assign(const std::string& role, const signing::PrivateKey& k) {
        if (assigned_.insert({role, k.key_id()}).second) signers_.add(role, k);
    }

    const SigningOptions& options_;
    std::deque<signing::PrivateKey> keys_;
    std::vector<const signing::PrivateKey*> any_;
    std::set<std::pair<std::string, std::string>> assigned_;
    tuf::Signers signers_;
};

tuf::Repository open_repo(const std::string& dir, const SigningOptions& o) {
    return unwrap(tuf::Repository::open(dir, o.policy()), "opening " + dir);
}

void publish(tuf::Repository& repo, KeyRing& ring, const SigningOptions& o) {
    ring.assign_listed(repo);
    const auto scope =
        o.publishes_snapshot() ? tuf::PublishScope::everything : tuf::PublishScope::roles_only;
    const auto report = unwrap(repo.publish(ring.signers(), now(), scope), "publishing");
    for (const auto& f : report.written) std::cout << "wrote metadata/" << f << "\n";
    for (const auto& r : report.pending) {
        std::cout << "role " << r << " not yet signed (give its keys with --role-key " << r
                  << "=FILE)\n";
    }
    if (scope == tuf::PublishScope::roles_only) {
        std::cout << "snapshot and timestamp not re-signed: run `pylon tuf-repo snapshot`\n";
    }
}

std::optional<tuf::Json> parse_custom(const std::string& text) {
    if (text.empty()) return std::nullopt;
    auto j = tuf::Json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        throw CommandError("--custom must be a JSON object");
    }
    return j;
}

// --- init ---

struct InitOptions {
    std::string dir;
    std::uint32_t t_root = 1, t_targets = 1, t_snapshot = 1, t_timestamp = 1;
    bool no_consistent = false;
    SigningOptions sign;
};

void run_init(const InitOptions& o) {
    KeyRing ring(o.sign);
    tuf::CreateOptions c;
    c.consistent_snapshot = !o.no_consistent;
    auto keys_of = [&](const std::vector<std::string>& paths, const char* option) {
        if (paths.empty()) throw CommandError(std::string("init needs ") + option);
        std::vector<signing::PublicKey> out;
        for (const auto& p : paths) out.push_back(load_private_key(p, o.sign.pass).public_key());
        return out;
    };
    c.root = {keys_of(o.sign.root, "--root-key"), o.t_root};
    c.targets = {keys_of(o.sign.targets, "--targets-key"), o.t_targets};
    c.snapshot = {keys_of(o.sign.snapshot, "--snapshot-key"), o.t_snapshot};
    c.timestamp = {keys_of(o.sign.timestamp, "--timestamp-key"), o.t_timestamp};
    auto repo = unwrap(tuf::Repository::create(o.dir, c, o.sign.policy()));
    publish(repo, ring, o.sign);
}

// --- add-target / remove-target ---

struct TargetOptions {
    std::string dir, file, path, custom, role = "targets";
    std::vector<std::string> keys;
    SigningOptions sign;
};

void run_add_target(const TargetOptions& o) {
    auto repo = open_repo(o.dir, o.sign);
    KeyRing ring(o.sign);
    for (const auto& k : o.keys) ring.add(o.role, k);
    const std::string target_path =
        o.path.empty() ? std::filesystem::path(o.file).filename().string() : o.path;
    const auto tf =
        unwrap(repo.add_target_file(target_path, o.file, parse_custom(o.custom), o.role),
               "adding " + o.file);
    std::cout << "target " << target_path << " (" << tf.length << " bytes, sha256 "
              << tf.hashes.at("sha256") << ") in role " << o.role << "\n";
    publish(repo, ring, o.sign);
}

void run_remove_target(const TargetOptions& o) {
    auto repo = open_repo(o.dir, o.sign);
    KeyRing ring(o.sign);
    for (const auto& k : o.keys) ring.add(o.role, k);
    unwrap(repo.remove_target(o.path, o.role));
    publish(repo, ring, o.sign);
}

// --- delegate ---

struct DelegateOptions {
    std::string dir, name, delegator = "targets";
    std::vector<std::string> keys, paths, prefixes;
    std::uint32_t threshold = 1;
    bool terminating = false;
    SigningOptions sign;
};

void run_delegate(const DelegateOptions& o) {
    auto repo = open_repo(o.dir, o.sign);
    KeyRing ring(o.sign);
    tuf::DelegationSpec spec;
    spec.name = o.name;
    for (const auto& k : o.keys) spec.keys.push_back(load_public_key(k, &o.sign.pass));
    spec.threshold = o.threshold;
    spec.terminating = o.terminating;
    if (!o.paths.empty()) spec.paths = o.paths;
    if (!o.prefixes.empty()) spec.path_hash_prefixes = o.prefixes;
    unwrap(repo.delegate(spec, o.delegator));
    publish(repo, ring, o.sign);
}

// --- rotate ---

struct RotateOptions {
    std::string dir, role;
    std::vector<std::string> add, remove, remove_files;
    std::uint32_t threshold = 0;
    SigningOptions sign;
};

void run_rotate(const RotateOptions& o) {
    auto repo = open_repo(o.dir, o.sign);
    KeyRing ring(o.sign);
    ring.assign_listed(repo);  // the old keys, before the change
    tuf::KeyChange change;
    for (const auto& k : o.add) change.add.push_back(load_public_key(k, &o.sign.pass));
    change.remove_keyids = o.remove;
    for (const auto& k : o.remove_files) {
        change.remove_keyids.push_back(load_public_key(k, &o.sign.pass).key_id());
    }
    if (o.threshold > 0) change.threshold = o.threshold;
    if (change.add.empty() && change.remove_keyids.empty() && !change.threshold) {
        throw CommandError("rotate needs --add-key, --remove-key(id) or --threshold");
    }
    unwrap(repo.change_keys(o.role, change));
    publish(repo, ring, o.sign);
}

// --- snapshot / timestamp / refresh-expiry ---

struct RefreshOptions {
    std::string dir;
    std::vector<std::string> roles;
    SigningOptions sign;
};

void run_snapshot(const RefreshOptions& o, bool snapshot) {
    auto repo = open_repo(o.dir, o.sign);
    KeyRing ring(o.sign);
    if (snapshot) unwrap(repo.bump("snapshot"));
    if (o.sign.timestamp.empty() && o.sign.any.empty()) {
        throw CommandError("give the timestamp key with --timestamp-key");
    }
    ring.assign_listed(repo);
    const auto report = unwrap(repo.publish(ring.signers(), now()), "publishing");
    for (const auto& f : report.written) std::cout << "wrote metadata/" << f << "\n";
}

void run_refresh(const RefreshOptions& o) {
    auto repo = open_repo(o.dir, o.sign);
    KeyRing ring(o.sign);
    for (const auto& r : o.roles) unwrap(repo.bump(r));
    publish(repo, ring, o.sign);
}

CLI::App* add_dir(CLI::App* cmd, std::string& dir) {
    cmd->add_option("dir", dir, "Repository directory (metadata/ and targets/ inside)")->required();
    return cmd;
}

}  // namespace

void add_tuf_repo_commands(CLI::App& app) {
    auto* group = app.add_subcommand("tuf-repo", "Maintain a TUF repository directory");
    group->require_subcommand(1);
    group->footer(
        "The directory can be served by any static HTTP server: clients use DIR/metadata/ and "
        "DIR/targets/. See docs/TUF.md.");

    auto init = std::make_shared<InitOptions>();
    auto* i = add_dir(group->add_subcommand("init", "Create a repository and publish version 1"),
                      init->dir);
    i->add_option("--threshold-root", init->t_root, "Root threshold")->capture_default_str();
    i->add_option("--threshold-targets", init->t_targets, "Targets threshold");
    i->add_option("--threshold-snapshot", init->t_snapshot, "Snapshot threshold");
    i->add_option("--threshold-timestamp", init->t_timestamp, "Timestamp threshold");
    i->add_flag("--no-consistent-snapshot", init->no_consistent,
                "Write unversioned metadata and target names only (not recommended)");
    init->sign.add_to(i);
    i->callback([init] { run_init(*init); });

    auto add = std::make_shared<TargetOptions>();
    auto* a =
        add_dir(group->add_subcommand("add-target", "Add (or replace) a target file"), add->dir);
    a->add_option("file", add->file, "File to add")->required();
    a->add_option("--path", add->path, "Target path (default: the file's name)");
    a->add_option("--custom", add->custom, "Custom fields, a JSON object");
    a->add_option("--role", add->role, "Targets role to add to")->capture_default_str();
    a->add_option("--key", add->keys, "Private key of --role (repeatable)");
    add->sign.add_to(a);
    a->callback([add] { run_add_target(*add); });

    auto rm = std::make_shared<TargetOptions>();
    auto* r = add_dir(group->add_subcommand("remove-target", "Remove a target (the file stays)"),
                      rm->dir);
    r->add_option("path", rm->path, "Target path")->required();
    r->add_option("--role", rm->role, "Targets role to remove from")->capture_default_str();
    r->add_option("--key", rm->keys, "Private key of --role (repeatable)");
    rm->sign.add_to(r);
    r->callback([rm] { run_remove_target(*rm); });

    auto del = std::make_shared<DelegateOptions>();
    auto* d = add_dir(group->add_subcommand("delegate", "Delegate a namespace to publisher keys"),
                      del->dir);
    d->add_option("--name", del->name, "Name of the new delegated role")->required();
    d->add_option("--key", del->keys, "Public key of the new role (repeatable)")->required();
    d->add_option("--paths", del->paths, "Path pattern it may sign, e.g. 'acme/*' (repeatable)");
    d->add_option("--path-hash-prefix", del->prefixes, "Hex prefix of sha256(path) (repeatable)");
    d->add_option("--threshold", del->threshold, "Signatures required")->capture_default_str();
    d->add_flag("--terminating", del->terminating, "Stop the search at this role");
    d->add_option("--delegator", del->delegator, "Role that delegates")->capture_default_str();
    del->sign.add_to(d);
    d->footer(
        "The delegating role is re-signed (--targets-key, or --role-key NAME=FILE). The new "
        "role's metadata is published when its keys are first given (--role-key NAME=FILE), "
        "e.g. by its first add-target.");
    d->callback([del] { run_delegate(*del); });

    auto rot = std::make_shared<RotateOptions>();
    auto* ro = add_dir(group->add_subcommand("rotate", "Change the keys or threshold of a role"),
                       rot->dir);
    ro->add_option("--role", rot->role, "Role: root, targets, snapshot, timestamp or delegated")
        ->required();
    ro->add_option("--add-key", rot->add, "Public key to add (repeatable)");
    ro->add_option("--remove-keyid", rot->remove, "Key ID to remove (repeatable)");
    ro->add_option("--remove-key", rot->remove_files,
                   "Public (or private) key file whose key to remove (repeatable)");
    ro->add_option("--threshold", rot->threshold, "New threshold");
    rot->sign.add_to(ro);
    ro->footer(
        "A new root is signed by a threshold of the previous root's keys and of its own: give "
        "both old and new root keys. The rotated role is re-signed with its new keys.");
    ro->callback([rot] { run_rotate(*rot); });

    auto snap = std::make_shared<RefreshOptions>();
    auto* s =
        add_dir(group->add_subcommand("snapshot", "Re-sign snapshot and timestamp"), snap->dir);
    snap->sign.add_to(s);
    s->callback([snap] { run_snapshot(*snap, true); });

    auto ts = std::make_shared<RefreshOptions>();
    auto* t = add_dir(group->add_subcommand("timestamp", "Re-sign the timestamp"), ts->dir);
    ts->sign.add_to(t);
    t->callback([ts] { run_snapshot(*ts, false); });

    auto ref = std::make_shared<RefreshOptions>();
    auto* f = add_dir(group->add_subcommand("refresh-expiry",
                                            "Publish new versions of roles with renewed expiry"),
                      ref->dir);
    f->add_option("--role", ref->roles, "Role to renew (repeatable)")->required();
    ref->sign.add_to(f);
    f->callback([ref] { run_refresh(*ref); });
}

}  // namespace pylon::cli
