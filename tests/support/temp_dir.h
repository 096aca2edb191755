// A unique temporary directory for one test, removed with everything in it at scope exit.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace pylon::test {

class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(std::string_view name) const { return path_ / name; }
    // Writes a file (creating parent directories) and returns its path.
    std::filesystem::path write(std::string_view name, std::string_view content) const;

private:
    std::filesystem::path path_;
};

std::string read_all(const std::filesystem::path& path);

}  // namespace pylon::test
