// Secret: a value that must never be logged or printed (passphrases, tokens, key material).
// It formats as "<redacted>" with fmt/spdlog, and is wiped when destroyed.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace pylon {

class Secret {
public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}
    ~Secret() { wipe(); }
    Secret(const Secret&) = default;
    Secret& operator=(const Secret& other) {
        if (this != &other) {
            wipe();
            value_ = other.value_;
        }
        return *this;
    }
    Secret(Secret&&) noexcept = default;
    Secret& operator=(Secret&& other) noexcept {
        wipe();
        value_ = std::move(other.value_);
        return *this;
    }

    const std::string& reveal() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }

private:
    void wipe() noexcept {
        volatile char* p = value_.data();
        for (std::size_t i = 0; i < value_.size(); ++i) p[i] = 0;
    }
    std::string value_;
};

}  // namespace pylon

template <>
struct fmt::formatter<pylon::Secret> : fmt::formatter<std::string_view> {
    template <typename Ctx>
    auto format(const pylon::Secret&, Ctx& ctx) const {
        return fmt::formatter<std::string_view>::format("<redacted>", ctx);
    }
};
