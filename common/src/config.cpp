#include "pylon/common/config.h"

#include <toml++/toml.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>

#include "pylon/common/file_io.h"

extern char** environ;

namespace pylon {
namespace {

Result<void> flatten(const toml::table& table, const std::string& prefix,
                     std::map<std::string, Config::Value, std::less<>>& out,
                     std::string_view origin) {
    for (const auto& [k, node] : table) {
        const std::string key =
            prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
        if (const auto* sub = node.as_table()) {
            PYLON_TRY(flatten(*sub, key, out, origin));
        } else if (const auto* s = node.as_string()) {
            out[key] = s->get();
        } else if (const auto* i = node.as_integer()) {
            out[key] = i->get();
        } else if (const auto* d = node.as_floating_point()) {
            out[key] = d->get();
        } else if (const auto* b = node.as_boolean()) {
            out[key] = b->get();
        } else if (const auto* arr = node.as_array()) {
            std::vector<std::string> items;
            for (const auto& el : *arr) {
                const auto* str = el.as_string();
                if (!str) {
                    return Error(Errc::parse_error, std::string(origin) + ": " + key +
                                                        ": only arrays of strings are supported");
                }
                items.push_back(str->get());
            }
            out[key] = std::move(items);
        } else {
            return Error(Errc::parse_error,
                         std::string(origin) + ": " + key + ": unsupported value type");
        }
    }
    return {};
}

}  // namespace

Config Config::empty(std::string prefix) {
    Config c(std::move(prefix));
    c.origin_ = "(no config file)";
    c.env_ = process_environment(c.prefix_);
    return c;
}

Result<Config> Config::parse(std::string_view text, std::string_view origin, std::string prefix) {
    Config c(std::move(prefix));
    c.origin_ = std::string(origin);
    toml::table table;
    try {
        table = toml::parse(text, origin);
    } catch (const toml::parse_error& e) {
        const auto& where = e.source().begin;
        return Error(Errc::parse_error, std::string(origin) + ":" + std::to_string(where.line) +
                                            ":" + std::to_string(where.column) + ": " +
                                            std::string(e.description()));
    }
    PYLON_TRY(flatten(table, "", c.values_, origin));
    c.env_ = process_environment(c.prefix_);
    return c;
}

Result<Config> Config::load_file(const std::filesystem::path& path, std::string prefix) {
    auto text = read_file(path, kMaxFileSize);
    if (!text) return std::move(text).error().with_context("reading config");
    return parse(*text, path.string(), std::move(prefix));
}

Config::Environment Config::process_environment(std::string_view prefix) {
    Environment env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        if (entry.substr(0, prefix.size()) != prefix) continue;
        auto eq = entry.find('=');
        if (eq == std::string_view::npos) continue;
        env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return env;
}

std::string Config::env_name(std::string_view key) const {
    std::string name = prefix_;
    for (char c : key) {
        name += (c == '.' || c == '-')
                    ? '_'
                    : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return name;
}

const Config::Value* Config::file_value(std::string_view key) const {
    auto it = values_.find(key);
    return it == values_.end() ? nullptr : &it->second;
}

std::optional<std::string> Config::env_value(std::string_view key) const {
    auto it = env_.find(env_name(key));
    if (it == env_.end()) return std::nullopt;
    return it->second;
}

bool Config::has(std::string_view key) const {
    return env_value(key).has_value() || file_value(key) != nullptr;
}

std::vector<std::string> Config::file_keys() const {
    std::vector<std::string> keys;
    for (const auto& [k, v] : values_) keys.push_back(k);
    return keys;
}

Error Config::type_error(std::string_view key, std::string_view want) const {
    return Error(Errc::parse_error,
                 origin_ + ": " + std::string(key) + ": expected " + std::string(want));
}

Result<std::string> Config::get_string(std::string_view key) const {
    if (auto env = env_value(key)) return *env;
    const Value* v = file_value(key);
    if (!v) return Error(Errc::not_found, "config key " + std::string(key) + " is not set");
    if (const auto* s = std::get_if<std::string>(v)) return *s;
    return type_error(key, "a string");
}

Result<std::int64_t> Config::get_int(std::string_view key) const {
    if (auto env = env_value(key)) {
        std::int64_t out = 0;
        const char* end = env->data() + env->size();
        auto [p, ec] = std::from_chars(env->data(), end, out);
        if (ec != std::errc() || p != end || env->empty()) {
            return Error(Errc::parse_error, env_name(key) + "='" + *env + "' is not an integer");
        }
        return out;
    }
    const Value* v = file_value(key);
    if (!v) return Error(Errc::not_found, "config key " + std::string(key) + " is not set");
    if (const auto* i = std::get_if<std::int64_t>(v)) return *i;
    return type_error(key, "an integer");
}

Result<double> Config::get_double(std::string_view key) const {
    if (auto env = env_value(key)) {
        errno = 0;
        char* end = nullptr;
        double d = std::strtod(env->c_str(), &end);
        if (env->empty() || end != env->c_str() + env->size() || errno != 0) {
            return Error(Errc::parse_error, env_name(key) + "='" + *env + "' is not a number");
        }
        return d;
    }
    const Value* v = file_value(key);
    if (!v) return Error(Errc::not_found, "config key " + std::string(key) + " is not set");
    if (const auto* d = std::get_if<double>(v)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(v)) return static_cast<double>(*i);
    return type_error(key, "a number");
}

Result<bool> Config::get_bool(std::string_view key) const {
    if (auto env = env_value(key)) {
        if (*env == "true" || *env == "1" || *env == "yes" || *env == "on") return true;
        if (*env == "false" || *env == "0" || *env == "no" || *env == "off") return false;
        return Error(Errc::parse_error, env_name(key) + "='" + *env +
                                            "' is not a boolean (true/false, 1/0, yes/no, on/off)");
    }
    const Value* v = file_value(key);
    if (!v) return Error(Errc::not_found, "config key " + std::string(key) + " is not set");
    if (const auto* b = std::get_if<bool>(v)) return *b;
    return type_error(key, "true or false");
}

Result<std::vector<std::string>> Config::get_string_list(std::string_view key) const {
    if (auto env = env_value(key)) {
        std::vector<std::string> out;
        std::string_view rest(*env);
        while (!rest.empty()) {
            auto comma = rest.find(',');
            std::string_view item = rest.substr(0, comma);
            if (!item.empty()) out.emplace_back(item);
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
        return out;
    }
    const Value* v = file_value(key);
    if (!v) return Error(Errc::not_found, "config key " + std::string(key) + " is not set");
    if (const auto* l = std::get_if<std::vector<std::string>>(v)) return *l;
    return type_error(key, "an array of strings");
}

namespace {
template <typename T>
Result<T> or_default(Result<T> r, T fallback) {
    if (!r && r.error().code() == Errc::not_found) return fallback;
    return r;
}
}  // namespace

Result<std::string> Config::get_string(std::string_view key, std::string fallback) const {
    return or_default(get_string(key), std::move(fallback));
}
Result<std::int64_t> Config::get_int(std::string_view key, std::int64_t fallback) const {
    return or_default(get_int(key), fallback);
}
Result<bool> Config::get_bool(std::string_view key, bool fallback) const {
    return or_default(get_bool(key), fallback);
}

}  // namespace pylon
