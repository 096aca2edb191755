#include "pylon/registry/http/message.h"

#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace pylon::registry::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

}  // namespace

std::optional<std::string_view> Headers::get(std::string_view name) const {
    for (const auto& [n, v] : fields_) {
        if (iequals(n, name)) return std::string_view(v);
    }
    return std::nullopt;
}

void Headers::set(std::string_view name, std::string value) {
    erase(name);
    fields_.emplace_back(std::string(name), std::move(value));
}

void Headers::add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::erase(std::string_view name) {
    std::erase_if(fields_, [&](const Field& f) { return iequals(f.first, name); });
}

std::optional<std::string> Request::query_param(std::string_view name) const {
    for (const auto& [n, v] : query) {
        if (n == name) return v;
    }
    return std::nullopt;
}

const std::string& Request::param(std::string_view name) const {
    static const std::string kNone;
    for (const auto& [n, v] : params) {
        if (n == name) return v;
    }
    return kNone;
}


Response Response::json(int status, const nlohmann::json& value) {
    Response r;
    r.status = status;
    r.headers.set("Content-Type", "application/json");
    // Replace invalid UTF-8 rather than throw: a response must always be produced.
    r.body = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
}

Response Response::error(int status, std::string_view code, std::string_view message) {
    return json(status, {{"error", {{"code", code}, {"message", message}}}});
}

Response Response::text(int status, std::string body, std::string_view content_type) {
    Response r;
    r.status = status;
    r.headers.set("Content-Type", std::string(content_type));
    r.body = std::move(body);
    return r;
}

Response Response::empty(int status) {
    Response r;
    r.status = status;
    return r;
}

BodySink::~BodySink() = default;

}  // namespace pylon::registry::http
