#include "pylon/signing/json.h"

#include <set>
#include <vector>

#include "pylon/signing/errors.h"

namespace pylon::signing {
namespace {

void append_canonical_string(std::string& out, const std::string& s) {
    out += '"';
    for (char c : s) {
        if (c == '\\' || c == '"') out += '\\';
        out += c;
    }
    out += '"';
}

Result<void> append_canonical(std::string& out, const nlohmann::json& v, int depth) {
    if (depth > 512) return Error(Errc::non_canonical, "JSON nested too deeply");
    switch (v.type()) {
        case nlohmann::json::value_t::null:
            out += "null";
            return {};
        case nlohmann::json::value_t::boolean:
            out += v.get<bool>() ? "true" : "false";
            return {};
        case nlohmann::json::value_t::number_integer:
            out += std::to_string(v.get<std::int64_t>());
            return {};
        case nlohmann::json::value_t::number_unsigned:
            out += std::to_string(v.get<std::uint64_t>());
            return {};
        case nlohmann::json::value_t::number_float:
            return Error(Errc::non_canonical, "canonical JSON has no floating-point numbers");
        case nlohmann::json::value_t::string:
            append_canonical_string(out, v.get_ref<const std::string&>());
            return {};
        case nlohmann::json::value_t::array: {
            out += '[';
            bool first = true;
            for (const auto& el : v) {
                if (!first) out += ',';
                first = false;
                PYLON_TRY(append_canonical(out, el, depth + 1));
            }
            out += ']';
            return {};
        }
        case nlohmann::json::value_t::object: {
            // nlohmann::json keeps object members in a std::map ordered by std::string's
            // byte comparison, which for UTF-8 is code point order, as canonical JSON needs.
            out += '{';
            bool first = true;
            for (const auto& [key, el] : v.items()) {
                if (!first) out += ',';
                first = false;
                append_canonical_string(out, key);
                out += ':';
                PYLON_TRY(append_canonical(out, el, depth + 1));
            }
            out += '}';
            return {};
        }
        case nlohmann::json::value_t::binary:
        case nlohmann::json::value_t::discarded:
            break;
    }
    return Error(Errc::non_canonical, "value has no JSON representation");
}

}  // namespace

Result<std::string> canonical_json(const nlohmann::json& value) {
    std::string out;
    PYLON_TRY(append_canonical(out, value, 0));
    return out;
}

Result<nlohmann::json> parse_json(std::string_view text, JsonLimits limits) {
    if (text.size() > limits.max_bytes) {
        return pylon::Error(pylon::Errc::limit_exceeded, "JSON document is " +
                                                             std::to_string(text.size()) +
                                                             " bytes, more than the limit of " +
                                                             std::to_string(limits.max_bytes));
    }
    std::vector<std::set<std::string>> keys_seen;
    std::string problem;
    auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (!problem.empty()) return false;
        if (depth > limits.max_depth) {
            problem = "JSON nested deeper than " + std::to_string(limits.max_depth) + " levels";
            return false;
        }
        if (event == E::object_start) {
            keys_seen.emplace_back();
        } else if (event == E::object_end) {
            if (!keys_seen.empty()) keys_seen.pop_back();
        } else if (event == E::key) {
            const auto& key = parsed.get_ref<const std::string&>();
            if (!keys_seen.empty() && !keys_seen.back().insert(key).second) {
                problem = "duplicate object key \"" + key.substr(0, 64) + "\"";
                return false;
            }
        }
        return true;
    };
    nlohmann::json out;
    try {
        out = nlohmann::json::parse(text.begin(), text.end(), callback);
    } catch (const nlohmann::json::exception& e) {
        // Keep the position, drop nlohmann's echo of the input ("; last read: '...'"): it is
        // untrusted text and can be long.
        std::string what = e.what();
        if (auto cut = what.find("; last read:"); cut != std::string::npos) what.resize(cut);
        if (what.rfind("[json.exception.", 0) == 0) what.erase(0, what.find(']') + 2);
        return pylon::Error(pylon::Errc::parse_error, "invalid JSON: " + what);
    }
    if (!problem.empty()) return pylon::Error(pylon::Errc::parse_error, "invalid JSON: " + problem);
    if (out.is_discarded()) return pylon::Error(pylon::Errc::parse_error, "invalid JSON");
    return out;
}

}  // namespace pylon::signing
