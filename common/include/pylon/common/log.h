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
#include "pylon/common/secret.h"

namespace pylon {

enum class LogFormat { text, json };

struct LogOptions {
    std::string level = "info";  // trace, debug, info, warn, error, critical, off
    LogFormat format = LogFormat::text;
    std::string name = "pylon";  // the program's name, in every line
};

// Configures the default logger, writing to `sink` (stderr when null).
// Errc::invalid_argument for an unknown level.
[[nodiscard]] Result<void> init_logging(const LogOptions& options, spdlog::sink_ptr sink = nullptr);

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
