// Fleets, enrolment tokens and devices (admin): pylon fleet …, pylon devices ….
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "pylon/common/file_io.h"
#include "registry_client.h"
#include "registry_format.h"

namespace pylon::cli {
namespace {

// The release object under `key` of a device ("-" when null or absent).
std::string release_text(const nlohmann::json& device, const char* key) {
    if (!device.is_object() || !device.contains(key)) return "-";
    const nlohmann::json& r = device[key];
    if (!r.is_object()) return "-";
    return field(r, "namespace") + "/" + field(r, "model") + "@" + field(r, "version");
}

// A device given as its id, FLEET/NAME, or a name unique across fleets.
std::string device_id(RegistryClient& client, const std::string& ref) {
    if (!ref.empty() && ref.find_first_not_of("0123456789") == std::string::npos) return ref;
    const auto slash = ref.find('/');
    const std::string fleet = slash == std::string::npos ? "" : ref.substr(0, slash);
    const std::string name = slash == std::string::npos ? ref : ref.substr(slash + 1);
    const auto items =
        client.list_all(fleet.empty() ? "/v1/devices" : "/v1/devices?fleet=" + url_encode(fleet));
    std::string found;
    for (const auto& d : items) {
        if (field(d, "name") != name) continue;
        if (!found.empty()) {
            throw UsageError("device name " + name + " is in several fleets: give FLEET/NAME");
        }
        found = field(d, "id");
    }
    if (found.empty()) throw CommandError("no device " + ref);
    return found;
}

void print_devices(const nlohmann::json& items) {
    std::printf("%-8s %-16s %-24s %-14s %-28s %-28s %s\n", "ID", "FLEET", "NAME", "STATE",
                "CURRENT", "DESIRED", "LAST SEEN");
    for (const auto& d : items) {
        std::printf("%-8s %-16s %-24s %-14s %-28s %-28s %s\n", field(d, "id").c_str(),
                    field(d, "fleet").c_str(), field(d, "name").c_str(),
                    field(d, "update_state").c_str(), release_text(d, "current").c_str(),
                    release_text(d, "desired").c_str(), field(d, "last_seen_at").c_str());
    }
}

struct TokenOptions {
    RegistryOptions reg;
    std::string fleet, name, out;
    int max_uses = 0, expires_in_hours = 0;
};

}  // namespace

void add_device_commands(CLI::App& app) {
    auto* fleet = app.add_subcommand("fleet", "Manage fleets and their enrolment tokens (admin)");
    fleet->require_subcommand(1);
    fleet->alias("fleets");
    struct FleetOptions {
        RegistryOptions reg;
        std::string name, description, region;
        bool commercial = false, non_commercial = false;
    };
    auto fc = std::make_shared<FleetOptions>();
    auto* create = fleet->add_subcommand("create", "Create a fleet");
    create->add_option("name", fc->name, "Fleet name")->required();
    create->add_option("--description", fc->description, "Description");
    create->add_option("--region", fc->region,
                       "ISO 3166 code where its devices stand (licences are checked against it)");
    create->add_flag("--commercial-use", fc->commercial, "Its devices are used commercially");
    fc->reg.add_to(create);
    create->callback([fc] {
        RegistryClient client(fc->reg.resolve());
        nlohmann::json body{{"name", fc->name}, {"commercial_use", fc->commercial}};
        if (!fc->description.empty()) body["description"] = fc->description;
        if (!fc->region.empty()) body["region"] = fc->region;
        client.call(net::Method::post, "/v1/fleets", body);
        std::cout << "created fleet " << fc->name << "\n";
    });
    auto fs = std::make_shared<FleetOptions>();
    auto* set = fleet->add_subcommand("set", "Set a fleet's region and commercial use");
    set->add_option("name", fs->name, "Fleet name")->required();
    set->add_option("--region", fs->region, "ISO 3166 code (\"\" for unknown)");
    set->add_flag("--commercial-use", fs->commercial, "Its devices are used commercially");
    set->add_flag("--non-commercial", fs->non_commercial, "Its devices are not used commercially");
    fs->reg.add_to(set);
    set->callback([fs, set] {
        RegistryClient client(fs->reg.resolve());
        nlohmann::json body = nlohmann::json::object();
        if (set->count("--region") > 0) body["region"] = fs->region;
        if (fs->commercial) body["commercial_use"] = true;
        if (fs->non_commercial) body["commercial_use"] = false;
        const auto f = client.call(net::Method::put, "/v1/fleets/" + url_encode(fs->name), body);
        std::cout << "fleet " << field(f, "name") << ": region "
                  << (field(f, "region").empty() ? "-" : field(f, "region")) << ", "
                  << (f.value("commercial_use", false) ? "commercial" : "non-commercial") << "\n";
    });
    auto fl = std::make_shared<RegistryOptions>();
    auto* flist = fleet->add_subcommand("list", "List fleets");
    fl->add_to(flist);
    flist->callback([fl] {
        RegistryClient client(fl->resolve());
        std::printf("%-24s %-7s %-11s %s\n", "FLEET", "REGION", "USE", "DESCRIPTION");
        for (const auto& f : client.list_all("/v1/fleets")) {
            std::printf("%-24s %-7s %-11s %s\n", field(f, "name").c_str(),
                        field(f, "region").empty() ? "-" : field(f, "region").c_str(),
                        f.value("commercial_use", false) ? "commercial" : "-",
                        field(f, "description").c_str());
        }
    });
    auto to = std::make_shared<TokenOptions>();
    auto* token = fleet->add_subcommand(
        "enrollment-token", "Create an enrolment token for a fleet; it is shown only once");
    token->add_option("fleet", to->fleet, "Fleet")->required();
    token->add_option("--name", to->name, "Name of the token");
    token->add_option("--max-uses", to->max_uses, "How many devices may enrol with it")
        ->check(CLI::PositiveNumber);
    token->add_option("--expires-in-hours", to->expires_in_hours, "Lifetime in hours")
        ->check(CLI::PositiveNumber);
    token->add_option("--out", to->out, "Write the token to FILE (mode 0600) instead of stdout");
    to->reg.add_to(token);
    token->callback([to] {
        RegistryClient client(to->reg.resolve());
        nlohmann::json body = nlohmann::json::object();
        if (!to->name.empty()) body["name"] = to->name;
        if (to->max_uses > 0) body["max_uses"] = to->max_uses;
        if (to->expires_in_hours > 0) body["expires_in_hours"] = to->expires_in_hours;
        const auto j = client.call(
            net::Method::post, "/v1/fleets/" + url_encode(to->fleet) + "/enrollment-tokens", body);
        const std::string secret = field(j, "token");
        if (secret.empty()) throw CommandError("the registry's answer holds no token");
        if (!to->out.empty()) {
            unwrap(write_file_atomic(to->out, secret + "\n", 0600), "writing " + to->out);
            std::cout << "created enrolment token " << field(j, "id") << " for fleet " << to->fleet
                      << ", written to " << to->out << "\n";
        } else {
            std::cerr << "created enrolment token " << field(j, "id") << " for fleet " << to->fleet
                      << "; it is shown only once:\n";
            std::cout << secret << "\n";
        }
    });

    auto* devices = app.add_subcommand("devices", "Inspect devices and assign releases (admin)");
    devices->require_subcommand(1);
    auto dl = std::make_shared<std::pair<RegistryOptions, std::string>>();
    auto* dlist = devices->add_subcommand("list", "List devices");
    dlist->add_option("--fleet", dl->second, "Only this fleet");
    dl->first.add_to(dlist);
    dlist->callback([dl] {
        RegistryClient client(dl->first.resolve());
        print_devices(client.list_all(
            dl->second.empty() ? "/v1/devices" : "/v1/devices?fleet=" + url_encode(dl->second)));
    });
    auto ds = std::make_shared<std::pair<RegistryOptions, std::string>>();
    auto* dshow = devices->add_subcommand("show", "A device, as JSON, with its recent events");
    dshow->add_option("device", ds->second, "ID, FLEET/NAME or NAME")->required();
    ds->first.add_to(dshow);
    dshow->callback([ds] {
        RegistryClient client(ds->first.resolve());
        const std::string id = device_id(client, ds->second);
        auto d = client.call(net::Method::get, "/v1/devices/" + id);
        d["events"] = client.call(net::Method::get, "/v1/devices/" + id + "/events?limit=20")
                          .value("items", nlohmann::json::array());
        std::cout << d.dump(2) << "\n";
    });
    auto da = std::make_shared<std::tuple<RegistryOptions, std::string, std::string>>();
    auto* assign = devices->add_subcommand(
        "assign", "Set the release a device is to run (its director document names the build)");
    assign->add_option("device", std::get<1>(*da), "ID, FLEET/NAME or NAME")->required();
    assign->add_option("release", std::get<2>(*da), "NS/MODEL@VERSION (published)")->required();
    std::get<0>(*da).add_to(assign);
    assign->callback([da] {
        const ModelRef ref = parse_model_ref(std::get<2>(*da), true);
        RegistryClient client(std::get<0>(*da).resolve());
        const std::string id = device_id(client, std::get<1>(*da));
        const auto d = client.call(
            net::Method::put, "/v1/devices/" + id + "/release",
            nlohmann::json{{"model", ref.ns + "/" + ref.model}, {"version", ref.version}});
        std::cout << "device " << field(d, "fleet") << "/" << field(d, "name") << " (" << id
                  << ") is to run " << release_text(d, "desired") << "\n";
    });
    auto dr = std::make_shared<std::pair<RegistryOptions, std::string>>();
    auto* revoke = devices->add_subcommand(
        "revoke", "Revoke a device's credential (it is refused from then on; enrol it again)");
    revoke->add_option("device", dr->second, "ID, FLEET/NAME or NAME")->required();
    dr->first.add_to(revoke);
    revoke->callback([dr] {
        RegistryClient client(dr->first.resolve());
        const std::string id = device_id(client, dr->second);
        client.call(net::Method::delete_, "/v1/devices/" + id);
        std::cout << "revoked device " << id << " (" << dr->second << ")\n";
    });
    auto dlab =
        std::make_shared<std::tuple<RegistryOptions, std::string, std::vector<std::string>>>();
    auto* label = devices->add_subcommand(
        "label", "Set a device's labels (KEY=VALUE …; KEY- removes one), matched by rollouts");
    label->add_option("device", std::get<1>(*dlab), "ID, FLEET/NAME or NAME")->required();
    label->add_option("labels", std::get<2>(*dlab), "KEY=VALUE or KEY-")->required();
    std::get<0>(*dlab).add_to(label);
    label->callback([dlab] {
        RegistryClient client(std::get<0>(*dlab).resolve());
        const std::string id = device_id(client, std::get<1>(*dlab));
        auto labels = client.call(net::Method::get, "/v1/devices/" + id)
                          .value("labels", nlohmann::json::object());
        for (const auto& l : std::get<2>(*dlab)) {
            const auto eq = l.find('=');
            if (eq != std::string::npos && eq > 0) {
                labels[l.substr(0, eq)] = l.substr(eq + 1);
            } else if (l.size() > 1 && l.back() == '-') {
                labels.erase(l.substr(0, l.size() - 1));
            } else {
                throw UsageError("a label is KEY=VALUE, or KEY- to remove it: " + l);
            }
        }
        const auto d = client.call(net::Method::put, "/v1/devices/" + id + "/labels",
                                   nlohmann::json{{"labels", labels}});
        std::cout << "device " << field(d, "fleet") << "/" << field(d, "name") << " labels "
                  << d.value("labels", nlohmann::json::object()).dump() << "\n";
    });
}

}  // namespace pylon::cli
