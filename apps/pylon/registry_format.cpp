#include "registry_format.h"

#include <cstdio>

namespace pylon::cli {
namespace {

std::string str(const nlohmann::json& j, const char* name) {
    if (!j.is_object() || !j.contains(name) || j[name].is_null()) return "";
    const auto& v = j[name];
    return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string join(const nlohmann::json& a, const char* sep = ",") {
    std::string out;
    if (!a.is_array()) return out;
    for (const auto& x : a) {
        if (!out.empty()) out += sep;
        out += x.is_string() ? x.get<std::string>() : x.dump();
    }
    return out;
}

std::string row(const std::string& a, const std::string& b, const std::string& c) {
    char line[512];
    std::snprintf(line, sizeof(line), "%-40s %-24s %s\n", a.c_str(), b.c_str(), c.c_str());
    return line;
}

std::string license_text(const nlohmann::json& l) {
    if (!l.is_object()) return "";
    std::string out = str(l, "spdx");
    if (l.contains("commercial_use") && l["commercial_use"].is_boolean()) {
        out += l["commercial_use"].get<bool>() ? ", commercial use allowed" : ", no commercial use";
    }
    if (!join(l.value("regions_allowed", nlohmann::json())).empty()) {
        out += ", regions allowed: " + join(l["regions_allowed"]);
    }
    if (!join(l.value("regions_denied", nlohmann::json())).empty()) {
        out += ", regions denied: " + join(l["regions_denied"]);
    }
    if (l.value("acceptance_required", false)) out += ", acceptance required";
    if (!str(l, "attribution").empty()) out += ", attribution: \"" + str(l, "attribution") + "\"";
    return out;
}

}  // namespace

std::string format_models_table(const nlohmann::json& items) {
    std::string out = row("MODEL", "LICENSE", "DESCRIPTION");
    if (!items.is_array()) return out;
    for (const auto& m : items) {
        out += row(str(m, "namespace") + "/" + str(m, "name"),
                   m.contains("license") ? str(m["license"], "spdx") : "", str(m, "description"));
    }
    return out;
}

std::string format_model(const nlohmann::json& model, const nlohmann::json& releases) {
    std::string out = str(model, "namespace") + "/" + str(model, "name") + "\n";
    if (!str(model, "description").empty())
        out += "  description: " + str(model, "description") + "\n";
    if (model.contains("license")) out += "  license: " + license_text(model["license"]) + "\n";
    if (!str(model, "created_at").empty()) out += "  created: " + str(model, "created_at") + "\n";
    out += "  releases:";
    if (!releases.is_array() || releases.empty()) return out + " none\n";
    out += "\n";
    for (const auto& r : releases) {
        out += "    " + str(r, "version") + "  " + str(r, "state");
        if (!str(r, "published_at").empty()) out += "  " + str(r, "published_at");
        out += "\n";
    }
    return out;
}

std::string format_release(const nlohmann::json& release) {
    std::string out = str(release, "namespace") + "/" + str(release, "model") + "@" +
                      str(release, "version") + "  (" + str(release, "state") + ")\n";
    if (!str(release, "notes").empty()) out += "  notes: " + str(release, "notes") + "\n";
    if (release.contains("license")) out += "  license: " + license_text(release["license"]) + "\n";
    if (!str(release, "published_at").empty()) {
        out += "  published: " + str(release, "published_at") + "\n";
    }
    for (const auto& b : release.value("builds", nlohmann::json::array())) {
        const auto t = b.value("target", nlohmann::json::object());
        out += "  build " + str(b, "name") + ": " + str(t, "arch") +
               " isa=" + join(t.value("isa", nlohmann::json())) +
               " accelerator=" + str(t, "accelerator") + " min_ram_mb=" + str(t, "min_ram_mb") +
               " " + str(b, "format") + " " + str(b, "quantization") + "\n";
        for (const auto& f : b.value("files", nlohmann::json::array())) {
            out += "    " + str(f, "name") + "  " + str(f, "size") + " bytes  " + str(f, "digest") +
                   "\n";
        }
    }
    for (const auto& a : release.value("attestations", nlohmann::json::array())) {
        out += "  attestation " + str(a, "kind") + " (build " + str(a, "build") + ", key " +
               str(a, "keyid") + ")\n";
    }
    return out;
}

std::string format_progress(const std::string& name, std::uint64_t done, std::uint64_t total,
                            double seconds) {
    constexpr double kMb = 1000.0 * 1000.0;
    const double rate = seconds > 0 ? static_cast<double>(done) / kMb / seconds : 0.0;
    char line[256];
    if (total > 0) {
        const unsigned pct = static_cast<unsigned>(done * 100 / total);
        std::snprintf(line, sizeof(line), "%s  %3u%%  %.1f/%.1f MB  %.1f MB/s", name.c_str(), pct,
                      static_cast<double>(done) / kMb, static_cast<double>(total) / kMb, rate);
    } else {
        std::snprintf(line, sizeof(line), "%s  %.1f MB  %.1f MB/s", name.c_str(),
                      static_cast<double>(done) / kMb, rate);
    }
    return line;
}

std::string field(const nlohmann::json& j, const char* name) {
    if (!j.is_object() || !j.contains(name)) return "";
    const auto& v = j[name];
    if (v.is_null()) return "";
    return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace pylon::cli
