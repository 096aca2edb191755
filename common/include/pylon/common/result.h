// Result<T>: either a value or an Error. The return type of every fallible library call.
//
// Result is [[nodiscard]]; reading value() of a failed result (or error() of a successful
// one) is a programming error and aborts. Use PYLON_TRY / PYLON_TRY_ASSIGN to propagate:
//     PYLON_TRY(write_file_atomic(path, data));
//     PYLON_TRY_ASSIGN(auto key, PrivateKey::load(path, pass));
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "pylon/common/error.h"

namespace pylon {

namespace detail {
[[noreturn]] inline void result_misuse(const char* what) noexcept {
    std::fprintf(stderr, "pylon: fatal: %s\n", what);
    std::abort();
}
}  // namespace detail

template <typename T>
class [[nodiscard]] Result {
    static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>, "Result<Error> is ambiguous");

public:
    Result(const T& value) : v_(std::in_place_index<0>, value) {}
    Result(T&& value) : v_(std::in_place_index<0>, std::move(value)) {}
    template <typename U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, T> &&
             !std::is_same_v<std::remove_cvref_t<U>, Error> &&
             !std::is_same_v<std::remove_cvref_t<U>, Result>) Result(U&& value)
        : v_(std::in_place_index<0>, std::forward<U>(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & {
        check_value();
        return std::get<0>(v_);
    }
    const T& value() const& {
        check_value();
        return std::get<0>(v_);
    }
    T&& value() && {
        check_value();
        return std::get<0>(std::move(v_));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& {
        check_error();
        return std::get<1>(v_);
    }
    Error&& error() && {
        check_error();
        return std::get<1>(std::move(v_));
    }

    template <typename U>
    T value_or(U&& fallback) const& {
        return ok() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
    }

private:
    void check_value() const {
        if (!ok()) detail::result_misuse("value() of a failed Result");
    }
    void check_error() const {
        if (ok()) detail::result_misuse("error() of a successful Result");
    }
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)) {}

    bool ok() const noexcept { return !error_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    void value() const {
        if (!ok()) detail::result_misuse("value() of a failed Result");
    }
    const Error& error() const& {
        if (ok()) detail::result_misuse("error() of a successful Result");
        return *error_;
    }
    Error&& error() && {
        if (ok()) detail::result_misuse("error() of a successful Result");
        return std::move(*error_);
    }

private:
    std::optional<Error> error_;
};

inline Result<void> ok() {
    return {};
}

}  // namespace pylon

#define PYLON_CONCAT_INNER(a, b) a##b
#define PYLON_CONCAT(a, b) PYLON_CONCAT_INNER(a, b)

// Evaluates a Result<...> expression; on failure returns its Error from the enclosing function.
#define PYLON_TRY(expr)                                                      \
    do {                                                                     \
        auto&& pylon_try_result_ = (expr);                                   \
        if (!pylon_try_result_) return std::move(pylon_try_result_).error(); \
    } while (false)

// Declares or assigns `lhs` from a Result<T> expression, or returns its Error. It expands to
// several statements: never use it as the body of an unbraced if/for.
#define PYLON_TRY_ASSIGN(lhs, expr) \
    PYLON_TRY_ASSIGN_IMPL(PYLON_CONCAT(pylon_try_, __LINE__), lhs, expr)
#define PYLON_TRY_ASSIGN_IMPL(tmp, lhs, expr) \
    auto tmp = (expr);                        \
    if (!tmp) return std::move(tmp).error();  \
    lhs = std::move(tmp).value()
