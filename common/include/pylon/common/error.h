// Error: what went wrong (a std::error_code: a value in a module's category), a message for
// people, and the chain of contexts it passed through on its way up.
//
// Each module defines its own error enum and category (as std::errc does), so callers and
// tests compare codes, never message text:
//     if (err.code() == pylon::signing::Errc::bad_signature) ...
// Messages may name files, keys and fields, but never secret material.
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pylon {

// Codes of the common library; other modules add their own categories.
enum class Errc {
    ok = 0,
    invalid_argument = 1,   // a caller passed something malformed
    not_found = 2,          // a file, key or entry does not exist
    io_error = 3,           // the operating system refused a read or write
    parse_error = 4,        // input is not well-formed (JSON, TOML, PEM, ...)
    limit_exceeded = 5,     // input is larger than the limit we accept
    permission_denied = 6,  // file modes or ownership forbid the operation
    unsupported = 7,        // a valid request for something we do not implement
    internal = 8,           // a library we call failed in a way that should not happen
};

const std::error_category& common_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

class Error {
public:
    Error(std::error_code code, std::string message) : code_(code), message_(std::move(message)) {}
    template <typename E>
    requires std::is_error_code_enum_v<E> Error(E code, std::string message)
        : Error(make_error_code(code), std::move(message)) {}

    // An error from errno, naming the operation and the path (e.g. "open /x/y").
    static Error from_errno(int err, std::string_view what);

    const std::error_code& code() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }
    // Outermost context first.
    const std::vector<std::string>& context() const noexcept { return context_; }

    // Adds a layer of context ("loading key /etc/pylon/k.key"); returns the error for chaining:
    //     return std::move(err).with_context("reading config");
    Error&& with_context(std::string ctx) &&;
    Error& with_context(std::string ctx) &;

    // "ctx1: ctx2: message [category:value]".
    std::string to_string() const;
    // "ctx1: ctx2: message" — the one line a CLI prints.
    std::string what() const;

private:
    std::error_code code_;
    std::string message_;
    std::vector<std::string> context_;
};

}  // namespace pylon

template <>
struct std::is_error_code_enum<pylon::Errc> : std::true_type {};
