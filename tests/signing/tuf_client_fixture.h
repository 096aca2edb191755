// A TUF client (Updater) over a TufRepositorySimulator, with a fake clock, for the client tests.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "pylon/signing/tuf/updater.h"
#include "temp_dir.h"
#include "tuf_repository_simulator.h"

namespace pylon::test {

struct TufClientFixture {
    TufRepositorySimulator repo;
    TempDir dir;
    signing::tuf::Time clock;
    signing::tuf::UpdaterConfig config;

    // The client trusts root v1, as shipped.
    TufClientFixture() : clock(repo.now) {
        dir.write("root.json", repo.metadata_bytes("1.root.json"));
    }

    std::unique_ptr<signing::tuf::Updater> updater() {
        signing::tuf::UpdaterConfig c = config;
        c.clock = [this] { return clock; };
        return std::make_unique<signing::tuf::Updater>(
            dir.path(), TufRepositorySimulator::kMetadataUrl, TufRepositorySimulator::kTargetsUrl,
            repo, c);
    }

    Result<void> refresh() { return updater()->refresh(); }

    // The client's trusted state: every file in the metadata directory, by name.
    std::map<std::string, std::string> state() const {
        std::map<std::string, std::string> out;
        for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
            out[e.path().filename().string()] = read_all(e.path());
        }
        return out;
    }

    // The trusted version of a role's file in the metadata directory.
    std::int64_t trusted_version(const std::string& file) const {
        auto j = nlohmann::json::parse(read_all(dir / file));
        return j["signed"]["version"].get<std::int64_t>();
    }
};

// Refreshes, requires the refusal to carry `expected_code`, and the trusted state to be unchanged.
#define REQUIRE_REFRESH_REFUSED(fixture, expected_code)   \
    do {                                                  \
        const auto before_ = (fixture).state();           \
        auto result_ = (fixture).refresh();               \
        REQUIRE_FALSE(result_.ok());                      \
        INFO(result_.error().to_string());                \
        CHECK(result_.error().code() == (expected_code)); \
        CHECK((fixture).state() == before_);              \
    } while (false)

}  // namespace pylon::test
