// Config: TOML configuration with environment-variable overrides.
//
// Keys are dotted paths into the TOML document ("registry.listen"). A value is looked up, in
// order, in the environment, then in the file, then in the caller's default. The environment
// name of a key is the prefix followed by the key upper-cased with '.' and '-' turned into '_':
// with prefix "PYLON_", "registry.listen" is overridden by PYLON_REGISTRY_LISTEN.
// Environment values are parsed as the type the caller asks for; a malformed one is an error
// naming the variable, never silently ignored.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "pylon/common/result.h"

namespace pylon {

class Config {
public:
    // The largest config file we read.
    static constexpr std::size_t kMaxFileSize = 1 << 20;

    using Value = std::variant<std::string, std::int64_t, double, bool, std::vector<std::string>>;
    using Environment = std::map<std::string, std::string, std::less<>>;

    // Reads and parses a TOML file; the environment is taken from the process.
    [[nodiscard]] static Result<Config> load_file(const std::filesystem::path& path,
                                                  std::string prefix = "PYLON_");
    // Parses TOML text; `origin` names it in errors.
    [[nodiscard]] static Result<Config> parse(std::string_view toml, std::string_view origin,
                                              std::string prefix = "PYLON_");
    // A config with no file: only the environment and defaults apply.
    static Config empty(std::string prefix = "PYLON_");

    // Replaces the environment snapshot (tests; programs use the process environment).
    void set_environment(Environment env) { env_ = std::move(env); }
    static Environment process_environment(std::string_view prefix);

    // The environment variable that overrides `key`.
    std::string env_name(std::string_view key) const;

    // Errc::not_found when neither the environment nor the file sets the key; Errc::parse_error
    // when the value has another type or an environment value does not parse.
    [[nodiscard]] Result<std::string> get_string(std::string_view key) const;
    [[nodiscard]] Result<std::int64_t> get_int(std::string_view key) const;
    [[nodiscard]] Result<bool> get_bool(std::string_view key) const;
    [[nodiscard]] Result<double> get_double(std::string_view key) const;
    // From the environment: comma-separated.
    [[nodiscard]] Result<std::vector<std::string>> get_string_list(std::string_view key) const;

    // As above, but the default when the key is set nowhere (errors other than not_found remain).
    [[nodiscard]] Result<std::string> get_string(std::string_view key, std::string fallback) const;
    [[nodiscard]] Result<std::int64_t> get_int(std::string_view key, std::int64_t fallback) const;
    [[nodiscard]] Result<bool> get_bool(std::string_view key, bool fallback) const;

    bool has(std::string_view key) const;
    // Every key set by the file (flattened), sorted.
    std::vector<std::string> file_keys() const;

private:
    Config(std::string prefix) : prefix_(std::move(prefix)) {}
    const Value* file_value(std::string_view key) const;
    std::optional<std::string> env_value(std::string_view key) const;
    Error type_error(std::string_view key, std::string_view want) const;

    std::string prefix_;
    std::string origin_;
    std::map<std::string, Value, std::less<>> values_;
    Environment env_;
};

}  // namespace pylon
