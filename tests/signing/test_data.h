// Loading of the published test vectors in tests/data/.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "temp_dir.h"

namespace pylon::test {

inline nlohmann::json load_test_json(const std::string& name) {
    return nlohmann::json::parse(read_all(std::string(PYLON_TEST_DATA) + "/" + name));
}

}  // namespace pylon::test
