// Metrics families and their Prometheus text rendering. Example output:
//
//   # HELP pylon_http_requests_total HTTP requests answered.
//   # TYPE pylon_http_requests_total counter
//   pylon_http_requests_total{method="GET",route="/v1/models",status="200"} 3
//   # TYPE pylon_http_request_duration_seconds histogram
//   pylon_http_request_duration_seconds_bucket{route="/x",le="0.005"} 1
//   ...
//   pylon_http_request_duration_seconds_bucket{route="/x",le="+Inf"} 1
//   pylon_http_request_duration_seconds_sum{route="/x"} 0.0012
//   pylon_http_request_duration_seconds_count{route="/x"} 1
//
// One mutex guards everything: an update is a map lookup and an addition, far below the cost of
// the HTTP request it accounts for.
#include "pylon/registry/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace pylon::registry {

namespace {

enum Kind { kCounter = 0, kGauge = 1, kHistogram = 2 };

std::string escape(std::string_view s, bool quotes) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '"' && quotes) {
            out += "\\\"";
        } else {
            out += c;
        }
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15)
        return fmt::format("{}", static_cast<long long>(v));
    return fmt::format("{}", v);
}

// {a="x",b="y"} with an optional extra label (le for buckets); "" when there are none.
std::string render_labels(const Labels& labels, std::string_view extra_name = {},
                          std::string_view extra_value = {}) {
    if (labels.empty() && extra_name.empty()) return {};
    std::string out = "{";
    bool first = true;
    for (const auto& [n, v] : labels) {
        if (!first) out += ',';
        first = false;
        out += n + "=\"" + escape(v, true) + "\"";
    }
    if (!extra_name.empty()) {
        if (!first) out += ',';
        out += std::string(extra_name) + "=\"" + std::string(extra_value) + "\"";
    }
    return out + "}";
}

struct Series {
    double value = 0;                   // counter, gauge
    std::vector<std::uint64_t> counts;  // histogram: per bucket (not cumulative), then +Inf
    double sum = 0;
    std::uint64_t count = 0;
};

}  // namespace

struct Metrics::Family {
    int kind = kCounter;
    std::string help;
    std::vector<double> buckets;
    std::map<Labels, Series> series;
};

const std::vector<double>& Metrics::default_latency_buckets() {
    static const std::vector<double> kBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                              0.5,   1,      2.5,   5,    10,    30,   60};
    return kBuckets;
}

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

Metrics::Family& Metrics::family(std::string_view name, int kind) {
    auto it = families_.find(name);
    if (it == families_.end()) {
        auto f = std::make_unique<Family>();
        f->kind = kind;
        if (kind == kHistogram) f->buckets = default_latency_buckets();
        it = families_.emplace(std::string(name), std::move(f)).first;
    }
    return *it->second;
}

void Metrics::declare_counter(std::string name, std::string help) {
    std::lock_guard lock(mutex_);
    auto& f = family(name, kCounter);
    f.help = std::move(help);
}

void Metrics::declare_gauge(std::string name, std::string help) {
    std::lock_guard lock(mutex_);
    auto& f = family(name, kGauge);
    f.help = std::move(help);
}

void Metrics::declare_histogram(std::string name, std::string help, std::vector<double> buckets) {
    std::sort(buckets.begin(), buckets.end());
    buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
    std::lock_guard lock(mutex_);
    auto& f = family(name, kHistogram);
    f.help = std::move(help);
    if (f.kind == kHistogram && f.series.empty()) f.buckets = std::move(buckets);
}

void Metrics::increment(std::string_view name, const Labels& labels, double by) {
    if (!(by >= 0)) return;
    std::lock_guard lock(mutex_);
    auto& f = family(name, kCounter);
    if (f.kind == kCounter) f.series[labels].value += by;
}

void Metrics::set(std::string_view name, const Labels& labels, double value) {
    std::lock_guard lock(mutex_);
    auto& f = family(name, kGauge);
    if (f.kind == kGauge) f.series[labels].value = value;
}

void Metrics::add(std::string_view name, const Labels& labels, double delta) {
    std::lock_guard lock(mutex_);
    auto& f = family(name, kGauge);
    if (f.kind == kGauge) f.series[labels].value += delta;
}

void Metrics::observe(std::string_view name, const Labels& labels, double value) {
    std::lock_guard lock(mutex_);
    auto& f = family(name, kHistogram);
    if (f.kind != kHistogram) return;
    auto& s = f.series[labels];
    if (s.counts.empty()) s.counts.assign(f.buckets.size() + 1, 0);
    const auto bucket = std::lower_bound(f.buckets.begin(), f.buckets.end(), value);
    ++s.counts[static_cast<std::size_t>(bucket - f.buckets.begin())];
    s.sum += value;
    ++s.count;
}

double Metrics::value(std::string_view name, const Labels& labels) const {
    std::lock_guard lock(mutex_);
    const auto it = families_.find(name);
    if (it == families_.end() || it->second->kind == kHistogram) return 0;
    const auto s = it->second->series.find(labels);
    return s == it->second->series.end() ? 0 : s->second.value;
}

std::string Metrics::render() const {
    static constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& [name, f] : families_) {
        if (!f->help.empty()) out += "# HELP " + name + " " + escape(f->help, false) + "\n";
        out += "# TYPE " + name + " " + kTypeNames[f->kind] + "\n";
        for (const auto& [labels, s] : f->series) {
            if (f->kind != kHistogram) {
                out += name + render_labels(labels) + " " + format_value(s.value) + "\n";
                continue;
            }
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i <= f->buckets.size(); ++i) {
                cumulative += s.counts[i];
                const auto le = i < f->buckets.size() ? format_value(f->buckets[i]) : "+Inf";
                out += name + "_bucket" + render_labels(labels, "le", le) + " " +
                       std::to_string(cumulative) + "\n";
            }
            out += name + "_sum" + render_labels(labels) + " " + format_value(s.sum) + "\n";
            out += name + "_count" + render_labels(labels) + " " + std::to_string(s.count) + "\n";
        }
    }
    return out;
}

}  // namespace pylon::registry
