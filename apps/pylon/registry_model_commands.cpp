// pylon models list | show | create — the registry's model catalogue.
#include <iostream>
#include <memory>

#include "commands.h"
#include "registry_client.h"
#include "registry_format.h"

namespace pylon::cli {
namespace {

struct ListOptions {
    RegistryOptions reg;
    std::string ns;
    bool json = false;
};

void run_list(const ListOptions& o) {
    RegistryClient client(o.reg.resolve());
    const auto items =
        client.list_all("/v1/models" + (o.ns.empty() ? "" : "?namespace=" + url_encode(o.ns)));
    if (o.json) {
        std::cout << items.dump(2) << "\n";
        return;
    }
    std::cout << format_models_table(items);
}

struct ShowOptions {
    RegistryOptions reg;
    std::string ref;
    std::string version;
    bool json = false;
};

void run_show(const ShowOptions& o) {
    auto ref = parse_model_ref(o.ref, false);
    if (!o.version.empty()) ref.version = o.version;
    RegistryClient client(o.reg.resolve());
    const std::string base = "/v1/models/" + url_encode(ref.ns) + "/" + url_encode(ref.model);
    if (!ref.version.empty()) {
        const auto release =
            client.call(net::Method::get, base + "/releases/" + url_encode(ref.version));
        std::cout << (o.json ? release.dump(2) + "\n" : format_release(release));
        return;
    }
    const auto model = client.call(net::Method::get, base);
    const auto releases = client.list_all(base + "/releases");
    if (o.json) {
        std::cout << nlohmann::json{{"model", model}, {"releases", releases}}.dump(2) << "\n";
        return;
    }
    std::cout << format_model(model, releases);
}

struct CreateOptions {
    RegistryOptions reg;
    std::string ref;
    std::string spdx;
    std::string description;
    std::string commercial_use;
    std::vector<std::string> regions_allowed;
    std::vector<std::string> regions_denied;
    bool acceptance_required = false;
    std::string attribution;
};

void run_create(const CreateOptions& o) {
    const auto ref = parse_model_ref(o.ref, false);
    if (!ref.version.empty()) throw UsageError("models create takes NS/MODEL, not a version");
    nlohmann::json license{{"spdx", o.spdx},
                           {"regions_allowed", o.regions_allowed},
                           {"regions_denied", o.regions_denied},
                           {"acceptance_required", o.acceptance_required}};
    if (!o.commercial_use.empty()) license["commercial_use"] = o.commercial_use == "yes";
    if (!o.attribution.empty()) license["attribution"] = o.attribution;
    nlohmann::json body{{"name", ref.model}, {"license", license}};
    if (!o.description.empty()) body["description"] = o.description;
    RegistryClient client(o.reg.resolve());
    client.call(net::Method::post, "/v1/namespaces/" + url_encode(ref.ns) + "/models", body);
    std::cout << "created model " << ref.ns << "/" << ref.model << " (" << o.spdx << ")\n";
}

}  // namespace

void add_models_commands(CLI::App& app) {
    auto* models = app.add_subcommand("models", "Browse and create models in a registry");
    models->require_subcommand(1);

    auto lo = std::make_shared<ListOptions>();
    auto* list = models->add_subcommand("list", "List models");
    list->add_option("--namespace", lo->ns, "Only this namespace");
    list->add_flag("--json", lo->json, "Print the raw JSON");
    lo->reg.add_to(list);
    list->callback([lo] { run_list(*lo); });

    auto so = std::make_shared<ShowOptions>();
    auto* show = models->add_subcommand("show", "Show a model, or one release with --version");
    show->add_option("model", so->ref, "NS/MODEL (or NS/MODEL@VERSION)")->required();
    show->add_option("--version", so->version, "Show this release");
    show->add_flag("--json", so->json, "Print the raw JSON");
    so->reg.add_to(show);
    show->callback([so] { run_show(*so); });

    auto co = std::make_shared<CreateOptions>();
    auto* create = models->add_subcommand("create", "Create a model with its licence terms");
    create->add_option("model", co->ref, "NS/MODEL")->required();
    create->add_option("--license", co->spdx, "SPDX expression (LicenseRef-… allowed)")->required();
    create->add_option("--description", co->description, "Description");
    create->add_option("--commercial-use", co->commercial_use, "Commercial use allowed: yes|no")
        ->check(CLI::IsMember({"yes", "no"}));
    create->add_option("--regions-allowed", co->regions_allowed, "Region codes (repeatable)")
        ->delimiter(',');
    create->add_option("--regions-denied", co->regions_denied, "Region codes (repeatable)")
        ->delimiter(',');
    create->add_flag("--acceptance-required", co->acceptance_required,
                     "Users must accept the licence");
    create->add_option("--attribution", co->attribution, "Attribution text");
    co->reg.add_to(create);
    create->callback([co] { run_create(*co); });
}

}  // namespace pylon::cli
