// Metrics: thread-safe counters, gauges and histograms with labels, rendered in the Prometheus
// text exposition format (version 0.0.4) for a /metrics endpoint.
//
// A metric is a name, a help text, a type and, for histograms, fixed bucket bounds; it has one
// series per distinct label set. Families are declared once (declare_*) or on first use with an
// empty help text. Using a name with the wrong kind of call (observe() on a counter) is ignored,
// so that a metric never takes a request down.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pylon::registry {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
public:
    Metrics();
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // Latency buckets in seconds: 1 ms … 60 s.
    static const std::vector<double>& default_latency_buckets();

    void declare_counter(std::string name, std::string help);
    void declare_gauge(std::string name, std::string help);
    // `buckets`: upper bounds, ascending (+Inf is implied).
    void declare_histogram(std::string name, std::string help,
                           std::vector<double> buckets = default_latency_buckets());

    // Counters only go up: a negative `by` is ignored.
    void increment(std::string_view name, const Labels& labels = {}, double by = 1);
    void set(std::string_view name, const Labels& labels, double value);
    void add(std::string_view name, const Labels& labels, double delta);  // gauges
    void observe(std::string_view name, const Labels& labels, double value);

    // The current value of a counter or gauge series (0 when absent), for tests and health pages.
    double value(std::string_view name, const Labels& labels = {}) const;

    // Prometheus text format: families sorted by name, each with # HELP and # TYPE, label values
    // escaped (\\, \", \n).
    std::string render() const;
    static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

private:
    struct Family;
    Family& family(std::string_view name, int kind);
    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
};

}  // namespace pylon::registry
