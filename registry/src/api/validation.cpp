#include "api/validation.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <unordered_set>

#include "api/errors.h"
#include "pylon/signing/json.h"

namespace pylon::registry::api {

namespace spdx_data {
extern const char* const kLicenseIds;
extern const char* const kDeprecatedIds;
extern const char* const kExceptionIds;
}  // namespace spdx_data

namespace {

Error field_error(std::string_view field, std::string message) {
    return Error(Errc::invalid_field, std::string(field) + ": " + std::move(message));
}

// Shows a value in a message: at most 64 bytes, control characters escaped.
std::string shown(std::string_view value) {
    std::string out;
    for (char c : value.substr(0, 64)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            out += c;
        }
    }
    if (value.size() > 64) out += "…";
    return "\"" + out + "\"";
}

bool lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool alnum(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

struct SpdxLists {
    std::unordered_set<std::string> licenses;  // lower case
    std::unordered_set<std::string> exceptions;
};

const SpdxLists& spdx_lists() {
    static const SpdxLists lists = [] {
        SpdxLists l;
        for (const char* text : {spdx_data::kLicenseIds, spdx_data::kDeprecatedIds}) {
            for (const auto& id : Json::parse(text))
                l.licenses.insert(lower(id.get<std::string>()));
        }
        for (const auto& id : Json::parse(spdx_data::kExceptionIds)) {
            l.exceptions.insert(lower(id.get<std::string>()));
        }
        return l;
    }();
    return lists;
}

bool idstring(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return alnum(c) || c == '.' || c == '-'; });
}

// Recursive-descent parser over the SPDX expression grammar (SPDX 2.3 annex D).
class SpdxParser {
public:
    SpdxParser(std::string_view field, std::string_view text) : field_(field) {
        std::size_t i = 0;
        while (i < text.size()) {
            const char c = text[i];
            if (c == ' ' || c == '\t') {
                ++i;
            } else if (c == '(' || c == ')') {
                tokens_.emplace_back(1, c);
                ++i;
            } else {
                std::size_t j = i;
                while (j < text.size() && text[j] != ' ' && text[j] != '\t' && text[j] != '(' &&
                       text[j] != ')') {
                    ++j;
                }
                tokens_.emplace_back(text.substr(i, j - i));
                i = j;
            }
        }
    }

    Result<void> parse() {
        if (tokens_.empty()) return field_error(field_, "is empty");
        PYLON_TRY(expression(0));
        if (pos_ != tokens_.size()) {
            return field_error(field_, "unexpected " + shown(tokens_[pos_]) + " in expression");
        }
        return {};
    }

private:
    Result<void> expression(int depth) {
        if (depth > 16) return field_error(field_, "nests parentheses too deeply");
        PYLON_TRY(and_expression(depth));
        while (peek() == "OR") {
            ++pos_;
            PYLON_TRY(and_expression(depth));
        }
        return {};
    }
    Result<void> and_expression(int depth) {
        PYLON_TRY(with_expression(depth));
        while (peek() == "AND") {
            ++pos_;
            PYLON_TRY(with_expression(depth));
        }
        return {};
    }
    Result<void> with_expression(int depth) {
        PYLON_TRY(primary(depth));
        if (peek() == "WITH") {
            ++pos_;
            if (pos_ >= tokens_.size()) return field_error(field_, "WITH needs an exception");
            const std::string& ex = tokens_[pos_++];
            if (!spdx_lists().exceptions.count(lower(ex))) {
                return field_error(field_, shown(ex) + " is not an SPDX licence exception");
            }
        }
        return {};
    }
    Result<void> primary(int depth) {
        if (pos_ >= tokens_.size()) return field_error(field_, "ends where a licence is expected");
        const std::string tok = tokens_[pos_++];
        if (tok == "(") {
            PYLON_TRY(expression(depth + 1));
            if (peek() != ")") return field_error(field_, "has an unclosed '('");
            ++pos_;
            return {};
        }
        if (tok == ")" || tok == "AND" || tok == "OR" || tok == "WITH") {
            return field_error(field_, "unexpected " + shown(tok) + " where a licence is expected");
        }
        return licence(tok);
    }
    Result<void> licence(std::string_view tok) {
        if (tok.rfind("LicenseRef-", 0) == 0) {
            if (idstring(tok.substr(11))) return {};
            return field_error(field_, shown(tok) + " is not a valid LicenseRef- identifier");
        }
        if (tok.rfind("DocumentRef-", 0) == 0) {
            const auto colon = tok.find(':');
            if (colon != std::string_view::npos && idstring(tok.substr(12, colon - 12)) &&
                tok.substr(colon + 1).rfind("LicenseRef-", 0) == 0 &&
                idstring(tok.substr(colon + 12))) {
                return {};
            }
            return field_error(field_, shown(tok) + " is not a valid DocumentRef-…:LicenseRef-…");
        }
        std::string_view id = tok;
        if (!id.empty() && id.back() == '+') id.remove_suffix(1);
        if (spdx_lists().licenses.count(lower(id))) return {};
        if (lower(tok) == "and" || lower(tok) == "or" || lower(tok) == "with") {
            return field_error(field_, "operators must be upper case (" + shown(tok) + ")");
        }
        return field_error(field_, shown(tok) +
                                       " is not an SPDX licence identifier (use LicenseRef-<name> "
                                       "for a licence outside the SPDX list)");
    }
    std::string_view peek() const {
        return pos_ < tokens_.size() ? std::string_view(tokens_[pos_]) : std::string_view();
    }

    std::string_view field_;
    std::vector<std::string> tokens_;
    std::size_t pos_ = 0;
};

bool numeric_identifier_ok(std::string_view s) {
    if (s.empty() ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return false;
    }
    return s.size() == 1 || s[0] != '0';
}

bool dot_identifiers_ok(std::string_view s, bool no_leading_zero_numbers) {
    if (s.empty()) return false;
    std::size_t start = 0;
    while (true) {
        const auto dot = s.find('.', start);
        const auto part = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
        if (part.empty()) return false;
        const bool all_digits =
            std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!std::all_of(part.begin(), part.end(), [](char c) { return alnum(c) || c == '-'; })) {
            return false;
        }
        if (no_leading_zero_numbers && all_digits && !numeric_identifier_ok(part)) return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

}  // namespace

Result<void> check_name(std::string_view field, std::string_view value) {
    const bool ok = !value.empty() && value.size() <= 64 && lower_alnum(value.front()) &&
                    lower_alnum(value.back()) &&
                    std::all_of(value.begin(), value.end(), [](char c) {
                        return lower_alnum(c) || c == '.' || c == '_' || c == '-';
                    });
    if (ok) return {};
    return field_error(field, shown(value) +
                                  " is not a valid name (1-64 of a-z 0-9 . _ -, starting and "
                                  "ending with a letter or digit)");
}

Result<void> check_item_name(std::string_view field, std::string_view value) {
    const bool ok = !value.empty() && value.size() <= 127 && alnum(value.front()) &&
                    std::all_of(value.begin(), value.end(), [](char c) {
                        return alnum(c) || c == '.' || c == '_' || c == '-';
                    });
    if (ok) return {};
    return field_error(field, shown(value) +
                                  " is not a valid name (1-127 of A-Z a-z 0-9 . _ -, starting "
                                  "with a letter or digit)");
}

Result<void> check_semver(std::string_view field, std::string_view value) {
    auto bad = [&] {
        return field_error(field, shown(value) + " is not a semantic version (e.g. 1.2.0)");
    };
    if (value.empty() || value.size() > 64) return bad();
    std::string_view core = value;
    std::string_view pre, build;
    if (const auto plus = core.find('+'); plus != std::string_view::npos) {
        build = core.substr(plus + 1);
        core = core.substr(0, plus);
        if (!dot_identifiers_ok(build, false)) return bad();
    }
    if (const auto dash = core.find('-'); dash != std::string_view::npos) {
        pre = core.substr(dash + 1);
        core = core.substr(0, dash);
        if (!dot_identifiers_ok(pre, true)) return bad();
    }
    int parts = 0;
    std::size_t start = 0;
    while (true) {
        const auto dot = core.find('.', start);
        const auto part =
            core.substr(start, dot == std::string_view::npos ? core.npos : dot - start);
        if (!numeric_identifier_ok(part) || part.size() > 9) return bad();
        ++parts;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    if (parts != 3) return bad();
    return {};
}

Result<void> check_spdx_expression(std::string_view field, std::string_view value) {
    if (value.size() > 512) return field_error(field, "is longer than 512 characters");
    if (!std::all_of(value.begin(), value.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u >= 0x20 && u < 0x7f;
        })) {
        return field_error(field, "has characters outside printable ASCII");
    }
    return SpdxParser(field, value).parse();
}

Result<void> check_region(std::string_view field, std::string_view value) {
    if (value.size() == 2 && std::isupper(static_cast<unsigned char>(value[0])) &&
        std::isupper(static_cast<unsigned char>(value[1]))) {
        return {};
    }
    return field_error(field, shown(value) + " is not an ISO 3166-1 alpha-2 code (e.g. DE)");
}

Result<Json> parse_object(std::string_view body) {
    if (body.empty()) return Error(Errc::invalid_json, "the request needs a JSON object body");
    auto parsed = signing::parse_json(body, {.max_bytes = 4u << 20, .max_depth = 32});
    if (!parsed) {
        return Error(Errc::invalid_json, "the body is not valid JSON: " + parsed.error().message());
    }
    if (!parsed->is_object()) return Error(Errc::invalid_json, "the body must be a JSON object");
    return std::move(parsed).value();
}

ObjectReader::ObjectReader(const Json& object, std::string path)
    : object_(object), path_(std::move(path)) {}

std::string ObjectReader::path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

Result<const Json*> ObjectReader::get(std::string_view key, bool required) {
    read_.insert(std::string(key));
    auto it = object_.find(std::string(key));
    if (it == object_.end() || it->is_null()) {
        if (required) return field_error(path(key), "is required");
        return static_cast<const Json*>(nullptr);
    }
    return &*it;
}

Result<std::string> ObjectReader::string(std::string_view key, std::size_t max_len) {
    PYLON_TRY_ASSIGN(auto opt, optional_string(key, max_len));
    if (!opt) return field_error(path(key), "is required");
    return std::move(*opt);
}

Result<std::optional<std::string>> ObjectReader::optional_string(std::string_view key,
                                                                 std::size_t max_len) {
    PYLON_TRY_ASSIGN(const Json* v, get(key, false));
    if (!v) return std::optional<std::string>();
    if (!v->is_string()) return field_error(path(key), "must be a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_len) {
        return field_error(path(key), "is longer than " + std::to_string(max_len) + " bytes");
    }
    return std::optional<std::string>(s);
}

Result<std::optional<bool>> ObjectReader::optional_bool(std::string_view key) {
    PYLON_TRY_ASSIGN(const Json* v, get(key, false));
    if (!v) return std::optional<bool>();
    if (!v->is_boolean()) return field_error(path(key), "must be true or false");
    return std::optional<bool>(v->get<bool>());
}

Result<std::optional<std::int64_t>> ObjectReader::optional_int(std::string_view key,
                                                               std::int64_t min, std::int64_t max) {
    PYLON_TRY_ASSIGN(const Json* v, get(key, false));
    if (!v) return std::optional<std::int64_t>();
    if (!v->is_number_integer()) return field_error(path(key), "must be an integer");
    if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
        return field_error(path(key), "must be at most " + std::to_string(max));
    }
    const auto n = v->get<std::int64_t>();
    if (n < min || n > max) {
        return field_error(
            path(key), "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    return std::optional<std::int64_t>(n);
}

Result<std::vector<std::string>> ObjectReader::string_list(std::string_view key,
                                                           std::size_t max_items,
                                                           std::size_t max_len) {
    PYLON_TRY_ASSIGN(const Json* v, array(key, max_items));
    std::vector<std::string> out;
    if (!v) return out;
    for (std::size_t i = 0; i < v->size(); ++i) {
        const Json& item = (*v)[i];
        const std::string where = path(key) + "[" + std::to_string(i) + "]";
        if (!item.is_string()) return field_error(where, "must be a string");
        if (item.get_ref<const std::string&>().size() > max_len) {
            return field_error(where, "is longer than " + std::to_string(max_len) + " bytes");
        }
        out.push_back(item.get<std::string>());
    }
    return out;
}

Result<const Json*> ObjectReader::object(std::string_view key, bool required) {
    PYLON_TRY_ASSIGN(const Json* v, get(key, required));
    if (v && !v->is_object()) return field_error(path(key), "must be an object");
    return v;
}

Result<const Json*> ObjectReader::array(std::string_view key, std::size_t max_items) {
    PYLON_TRY_ASSIGN(const Json* v, get(key, false));
    if (!v) return v;
    if (!v->is_array()) return field_error(path(key), "must be an array");
    if (v->size() > max_items) {
        return field_error(path(key), "has more than " + std::to_string(max_items) + " items");
    }
    return v;
}

Result<const Json*> ObjectReader::value(std::string_view key) {
    return get(key, true);
}

Result<void> ObjectReader::finish() const {
    for (const auto& [key, unused] : object_.items()) {
        if (!read_.count(key)) return field_error(path(key), "is not a known field");
    }
    return {};
}

Result<std::int64_t> parse_id(const std::string& text, std::string_view what) {
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || id <= 0) {
        return Error(Errc::not_found, std::string(what) + " " + text.substr(0, 32) + " not found");
    }
    return id;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool none_match(std::string_view header, std::string_view etag) {
    std::size_t start = 0;
    while (start <= header.size()) {
        const auto comma = header.find(',', start);
        std::string_view item = trim(
            header.substr(start, comma == std::string_view::npos ? header.npos : comma - start));
        if (item == "*") return true;
        if (item.rfind("W/", 0) == 0) item.remove_prefix(2);
        if (item == etag) return true;
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return false;
}

std::optional<std::uint32_t> prefer_wait(std::string_view header) {
    std::size_t start = 0;
    while (start < header.size()) {
        const auto comma = header.find(',', start);
        std::string_view item = trim(
            header.substr(start, comma == std::string_view::npos ? header.npos : comma - start));
        // A preference's own parameters (after ';') do not matter for wait.
        item = trim(item.substr(0, item.find(';')));
        if (item.size() > 5 && (item.substr(0, 5) == "wait=" || item.substr(0, 5) == "WAIT=")) {
            const auto value = item.substr(5);
            std::uint32_t seconds = 0;
            const auto [end, ec] =
                std::from_chars(value.data(), value.data() + value.size(), seconds);
            if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
            return seconds;
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return std::nullopt;
}

Result<std::pair<std::string, std::string>> split_model(const std::string& model) {
    const auto slash = model.find('/');
    if (slash == std::string::npos) {
        return Error(Errc::invalid_field, "model: expected namespace/name");
    }
    std::pair<std::string, std::string> out{model.substr(0, slash), model.substr(slash + 1)};
    PYLON_TRY(check_name("model", out.first));
    PYLON_TRY(check_name("model", out.second));
    return out;
}

}  // namespace pylon::registry::api
