// Value helpers of types.h: RFC 3339 timestamps, the licence's JSON form, enum names.
#include "pylon/catalog/types.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "pylon/catalog/errors.h"

namespace pylon::catalog {

std::string format_rfc3339(Timestamp t) {
    using namespace std::chrono;
    const auto us = floor<microseconds>(t);
    const auto day = floor<days>(us);
    const year_month_day ymd{day};
    const hh_mm_ss hms{us - day};
    std::string out =
        fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                    static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                    hms.hours().count(), hms.minutes().count(), hms.seconds().count());
    if (hms.subseconds().count() != 0) out += fmt::format(".{:06}", hms.subseconds().count());
    out += 'Z';
    return out;
}

namespace {

bool read_digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const char c = s[pos + i];
        if (c < '0' || c > '9') return false;
        out = out * 10 + (c - '0');
    }
    pos += n;
    return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
    if (pos >= s.size() || (s[pos] != c && !(c == 'T' && s[pos] == 't'))) return false;
    ++pos;
    return true;
}

}  // namespace

Result<Timestamp> parse_rfc3339(std::string_view s) {
    using namespace std::chrono;
    const auto bad = [&] {
        return Error(Errc::invalid_argument, fmt::format("not an RFC 3339 timestamp: '{}'", s));
    };
    if (s.size() > 64) return bad();
    std::size_t pos = 0;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (!read_digits(s, pos, 4, y) || !expect(s, pos, '-') || !read_digits(s, pos, 2, mo) ||
        !expect(s, pos, '-') || !read_digits(s, pos, 2, d) || !expect(s, pos, 'T') ||
        !read_digits(s, pos, 2, h) || !expect(s, pos, ':') || !read_digits(s, pos, 2, mi) ||
        !expect(s, pos, ':') || !read_digits(s, pos, 2, sec)) {
        return bad();
    }
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                             day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return bad();
    nanoseconds frac{0};
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        std::int64_t v = 0;
        int n = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (n == 9) return bad();
            v = v * 10 + (s[pos++] - '0');
            ++n;
        }
        if (n == 0) return bad();
        for (; n < 9; ++n) v *= 10;
        frac = nanoseconds(v);
    }
    minutes offset{0};
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        const int sign = s[pos++] == '-' ? -1 : 1;
        int oh = 0, om = 0;
        if (!read_digits(s, pos, 2, oh) || !expect(s, pos, ':') || !read_digits(s, pos, 2, om) ||
            oh > 23 || om > 59) {
            return bad();
        }
        offset = minutes(sign * (oh * 60 + om));
    } else {
        return bad();
    }
    if (pos != s.size()) return bad();
    const auto local = sys_days(ymd) + hours(h) + minutes(mi) + seconds(sec) + frac;
    return Timestamp(duration_cast<Timestamp::duration>((local - offset).time_since_epoch()));
}

nlohmann::json to_json(const License& license) {
    nlohmann::json j = {
        {"spdx", license.spdx},
        {"regions_allowed", license.regions_allowed},
        {"regions_denied", license.regions_denied},
        {"acceptance_required", license.acceptance_required},
        {"attribution", license.attribution},
    };
    if (license.commercial_use) j["commercial_use"] = *license.commercial_use;
    return j;
}

Result<License> license_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return Error(Errc::invalid_argument, "licence: expected a JSON object");
    License license;
    for (const auto& [key, value] : j.items()) {
        const auto wrong = [&key](const char* type) {
            return Error(Errc::invalid_argument,
                         fmt::format("licence: '{}' must be {}", key, type));
        };
        if (key == "spdx" || key == "attribution") {
            if (!value.is_string()) return wrong("a string");
            (key == "spdx" ? license.spdx : license.attribution) = value.get<std::string>();
        } else if (key == "commercial_use") {
            if (value.is_null()) continue;
            if (!value.is_boolean()) return wrong("a boolean");
            license.commercial_use = value.get<bool>();
        } else if (key == "acceptance_required") {
            if (!value.is_boolean()) return wrong("a boolean");
            license.acceptance_required = value.get<bool>();
        } else if (key == "regions_allowed" || key == "regions_denied") {
            if (!value.is_array()) return wrong("an array of strings");
            auto& out = key == "regions_allowed" ? license.regions_allowed : license.regions_denied;
            for (const auto& region : value) {
                if (!region.is_string()) return wrong("an array of strings");
                out.push_back(region.get<std::string>());
            }
        } else {
            return Error(Errc::invalid_argument, fmt::format("licence: unknown field '{}'", key));
        }
    }
    return license;
}

std::string_view to_string(ReleaseState state) {
    switch (state) {
        case ReleaseState::draft:
            return "draft";
        case ReleaseState::published:
            return "published";
        case ReleaseState::yanked:
            return "yanked";
    }
    return "unknown";
}

Result<ReleaseState> parse_release_state(std::string_view text) {
    if (text == "draft") return ReleaseState::draft;
    if (text == "published") return ReleaseState::published;
    if (text == "yanked") return ReleaseState::yanked;
    return Error(Errc::invalid_argument, fmt::format("unknown release state '{}'", text));
}

std::string_view to_string(AttestationKind kind) {
    switch (kind) {
        case AttestationKind::provenance:
            return "provenance";
        case AttestationKind::model_signature:
            return "model_signature";
    }
    return "unknown";
}

Result<AttestationKind> parse_attestation_kind(std::string_view text) {
    if (text == "provenance") return AttestationKind::provenance;
    if (text == "model_signature") return AttestationKind::model_signature;
    return Error(Errc::invalid_argument, fmt::format("unknown attestation kind '{}'", text));
}

}  // namespace pylon::catalog
