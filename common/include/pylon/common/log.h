// Logging: a thin layer over spdlog so that every binary logs the same way.
//
// Text lines for people by default, or one JSON object per line for log collectors.
// Never pass secret material (keys, passphrases, tokens) to a log call; wrap such values in
// pylon::Secret, which always formats as "<redacted>".
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "pylon/common/result.h"

namespace pylon {

enum class LogFormat { text, json };

struct LogOptions {
    std::string level = "info";  // trace, debug, info, warn, error, critical, off
    LogFormat format = LogFormat::text;
    std::string name = "pylon";  // the program's name, in every line
};

// Configures the default logger (to stderr). Errc::invalid_argument for an unknown level.
[[nodiscard]] Result<void> init_logging(const LogOptions& options);

// A value that must not be logged. Holds the secret; formats as "<redacted>".
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}
    ~Secret();
    Secret(const Secret&) = default;
    Secret& operator=(const Secret&) = default;
    Secret(Secret&&) noexcept = default;
    Secret& operator=(Secret&&) noexcept = default;

    const std::string& reveal() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }

private:
    std::string value_;
};

namespace log {
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    spdlog::debug(f, std::forward<Args>(args)...);
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    spdlog::info(f, std::forward<Args>(args)...);
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
    spdlog::warn(f, std::forward<Args>(args)...);
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    spdlog::error(f, std::forward<Args>(args)...);
}
}  // namespace log

}  // namespace pylon

template <>
struct fmt::formatter<pylon::Secret> : fmt::formatter<std::string_view> {
    template <typename Ctx>
    auto format(const pylon::Secret&, Ctx& ctx) const {
        return fmt::formatter<std::string_view>::format("<redacted>", ctx);
    }
};
