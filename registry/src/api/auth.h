// API tokens and scopes.
//
// A token is "pyl_" followed by 32 random bytes in unpadded base64url (256 bits). It is shown
// once, when created; the catalog stores only the lower-case hex SHA-256 of the whole string, so a
// database leak does not leak usable tokens (the tokens are random, so a slow hash adds nothing).
//
// Scopes: "admin" (everything), "read" (every GET under /v1), "publish:<namespace>" (write to
// that namespace, and read). Clients send "Authorization: Bearer <token>".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/common/result.h"

namespace pylon::registry::api {

// Who is calling: the token's catalog id and name, and its scopes.
struct Principal {
    std::string token_id;
    std::string name;
    std::vector<std::string> scopes;

    bool is_admin() const;
    bool can_read() const;
    bool can_publish(std::string_view ns) const;
    // "token <id> (<name>)" for the audit log.
    std::string actor() const;
};

// A fresh token (from the operating system's CSPRNG through libsodium).
std::string generate_token();
// The stored form of a token: hex SHA-256.
std::string hash_token(std::string_view token);
// Errc::invalid_field for a scope that is not admin, read or publish:<valid namespace>.
[[nodiscard]] Result<void> check_scope(std::string_view scope);
// The token of an "Authorization: Bearer <token>" header value; Errc::unauthorized when the
// header is missing (nullopt), not of that form, or the token lacks `prefix` ("pyl_" API
// tokens, "pye_" enrolment tokens, "pyd_" device credentials; `what` names it in messages).
[[nodiscard]] Result<std::string> bearer_token(std::optional<std::string_view> header,
                                               std::string_view prefix = "pyl_",
                                               std::string_view what = "a Pylon API token");

}  // namespace pylon::registry::api
