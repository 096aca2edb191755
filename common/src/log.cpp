#include "pylon/common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <memory>

namespace pylon {
namespace {

// %Q in a pattern: the message text, escaped for a JSON string.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        static constexpr char kHex[] = "0123456789abcdef";
        for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
            const auto u = static_cast<unsigned char>(c);
            if (c == '"' || c == '\\') {
                dest.push_back('\\');
                dest.push_back(c);
            } else if (u < 0x20) {
                const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
                dest.append(esc, esc + sizeof(esc));
            } else {
                dest.push_back(c);
            }
        }
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonMessageFlag>();
    }
};

}  // namespace

Result<void> init_logging(const LogOptions& options, spdlog::sink_ptr sink) {
    static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                   "error", "critical", "off"};
    if (std::find(std::begin(kLevels), std::end(kLevels), options.level) == std::end(kLevels)) {
        return Error(Errc::invalid_argument,
                     "unknown log level '" + options.level +
                         "' (expected trace, debug, info, warn, error, critical or off)");
    }
    if (!sink) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>(options.name, std::move(sink));
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    if (options.format == LogFormat::json) {
        formatter->add_flag<JsonMessageFlag>('Q').set_pattern(
            R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","program":")" + options.name +
            R"(","msg":"%Q"})");
    } else {
        formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l " + options.name + ": %v");
    }
    logger->set_formatter(std::move(formatter));
    logger->set_level(spdlog::level::from_str(options.level));
    spdlog::set_default_logger(std::move(logger));
    return {};
}

}  // namespace pylon
