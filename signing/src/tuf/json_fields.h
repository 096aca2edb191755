// Strict reading of a JSON object's fields for TUF metadata: each known field is taken with its
// type checked, and what is left is kept as the object's unrecognized fields.
#pragma once

#include <nlohmann/json.hpp>

#include <set>
#include <string>

#include "pylon/common/result.h"
#include "pylon/signing/tuf/errors.h"

namespace pylon::signing::tuf::detail {

class Fields {
public:
    using Json = nlohmann::json;

    static Result<Fields> of(const Json& j, std::string where) {
        if (!j.is_object()) return malformed(where + " is not a JSON object");
        return Fields(j, std::move(where));
    }

    // A required field of the given kind ("string", "object", "array", "integer", "boolean").
    Result<const Json*> required(const std::string& name, std::string_view kind) {
        auto it = obj_->find(name);
        if (it == obj_->end()) return malformed(where_ + " lacks \"" + name + "\"");
        return check(name, *it, kind);
    }
    // nullptr when absent.
    Result<const Json*> optional(const std::string& name, std::string_view kind) {
        auto it = obj_->find(name);
        if (it == obj_->end()) return static_cast<const Json*>(nullptr);
        return check(name, *it, kind);
    }
    Result<std::string> string(const std::string& name) {
        PYLON_TRY_ASSIGN(const Json* v, required(name, "string"));
        return v->get<std::string>();
    }
    Result<std::int64_t> integer(const std::string& name) {
        PYLON_TRY_ASSIGN(const Json* v, required(name, "integer"));
        if (v->is_number_unsigned() && v->get<std::uint64_t>() > INT64_MAX) {
            return malformed(where_ + "." + name + " is out of range");
        }
        return v->get<std::int64_t>();
    }
    // The fields not taken.
    Json rest() const {
        Json out = Json::object();
        for (const auto& [k, v] : obj_->items()) {
            if (!used_.count(k)) out[k] = v;
        }
        return out;
    }
    const std::string& where() const { return where_; }

    static Error malformed(std::string what) {
        return Error(Errc::malformed_metadata, std::move(what));
    }

private:
    Fields(const Json& j, std::string where) : obj_(&j), where_(std::move(where)) {}

    Result<const Json*> check(const std::string& name, const Json& v, std::string_view kind) {
        used_.insert(name);
        const bool ok = (kind == "string" && v.is_string()) ||
                        (kind == "object" && v.is_object()) || (kind == "array" && v.is_array()) ||
                        (kind == "boolean" && v.is_boolean()) ||
                        (kind == "integer" && v.is_number_integer()) || kind == "any";
        if (!ok)
            return malformed(where_ + "." + name + " is not " +
                             std::string(kind == "integer" ? "an " : "a ") + std::string(kind));
        return &v;
    }

    const Json* obj_;
    std::string where_;
    std::set<std::string> used_;
};

// Merges unrecognized fields back into an object being written (known fields win).
inline void merge_unrecognized(nlohmann::json& out, const nlohmann::json& unrecognized) {
    if (!unrecognized.is_object()) return;
    for (const auto& [k, v] : unrecognized.items()) {
        if (!out.contains(k)) out[k] = v;
    }
}

}  // namespace pylon::signing::tuf::detail
