#include <catch2/catch.hpp>

#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <sstream>

#include "pylon/common/log.h"
#include "pylon/common/secret.h"

TEST_CASE("Secret never formats its value") {
    pylon::Secret s("hunter2");
    CHECK(fmt::format("passphrase={}", s) == "passphrase=<redacted>");
    CHECK(s.reveal() == "hunter2");
}

TEST_CASE("init_logging refuses unknown levels and accepts known ones") {
    auto bad = pylon::init_logging({"verbose", pylon::LogFormat::text, "t"});
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code() == pylon::Errc::invalid_argument);
    CHECK(pylon::init_logging({"debug", pylon::LogFormat::json, "t"}).ok());
    CHECK(spdlog::default_logger()->level() == spdlog::level::debug);
    CHECK(pylon::init_logging({"warn", pylon::LogFormat::text, "t"}).ok());
    CHECK(spdlog::default_logger()->level() == spdlog::level::warn);
}

TEST_CASE("JSON log lines escape the message") {
    std::ostringstream out;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    REQUIRE(pylon::init_logging({"info", pylon::LogFormat::json, "pylon-test"}, sink).ok());
    pylon::log::info("a \"quoted\" \\ value\nnext {}", pylon::Secret("s3cret"));
    spdlog::default_logger()->flush();
    const std::string line = out.str();
    CHECK(line.find(R"("program":"pylon-test")") != std::string::npos);
    CHECK(line.find(R"("msg":"a \"quoted\" \\ value\u000anext <redacted>")") != std::string::npos);
    CHECK(line.find("s3cret") == std::string::npos);
    CHECK(std::count(line.begin(), line.end(), '\n') == 1);
}
