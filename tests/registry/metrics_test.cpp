// Metrics: counters, gauges, histograms and the Prometheus text format.
#include "pylon/registry/metrics.h"

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

using pylon::registry::Metrics;

TEST_CASE("Metrics renders counters and gauges with HELP, TYPE and escaped labels") {
    Metrics m;
    m.declare_counter("pylon_requests_total", "Requests.\nSecond line \\ backslash.");
    m.increment("pylon_requests_total", {{"method", "GET"}, {"route", "/a"}});
    m.increment("pylon_requests_total", {{"method", "GET"}, {"route", "/a"}}, 2);
    m.increment("pylon_requests_total", {{"method", "PUT"}, {"route", "say \"hi\"\\\n"}});
    m.increment("pylon_requests_total", {{"method", "PUT"}}, -5);  // ignored
    m.declare_gauge("pylon_open", "Open things.");
    m.set("pylon_open", {}, 7);
    m.add("pylon_open", {}, -2);

    CHECK(m.value("pylon_requests_total", {{"method", "GET"}, {"route", "/a"}}) == 3);
    CHECK(m.value("pylon_open") == 5);
    CHECK(m.value("missing") == 0);

    const auto text = m.render();
    CHECK(text ==
          "# HELP pylon_open Open things.\n"
          "# TYPE pylon_open gauge\n"
          "pylon_open 5\n"
          "# HELP pylon_requests_total Requests.\\nSecond line \\\\ backslash.\n"
          "# TYPE pylon_requests_total counter\n"
          "pylon_requests_total{method=\"GET\",route=\"/a\"} 3\n"
          "pylon_requests_total{method=\"PUT\",route=\"say \\\"hi\\\"\\\\\\n\"} 1\n");
}

TEST_CASE("Metrics histograms have cumulative buckets, +Inf, sum and count") {
    Metrics m;
    m.declare_histogram("lat_seconds", "Latency.", {0.1, 1, 0.5});  // sorted on declaration
    m.observe("lat_seconds", {{"route", "/x"}}, 0.0625);
    m.observe("lat_seconds", {{"route", "/x"}}, 0.5);  // le is inclusive
    m.observe("lat_seconds", {{"route", "/x"}}, 3);
    const auto text = m.render();
    CHECK(text ==
          "# HELP lat_seconds Latency.\n"
          "# TYPE lat_seconds histogram\n"
          "lat_seconds_bucket{route=\"/x\",le=\"0.1\"} 1\n"
          "lat_seconds_bucket{route=\"/x\",le=\"0.5\"} 2\n"
          "lat_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"
          "lat_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"
          "lat_seconds_sum{route=\"/x\"} 3.5625\n"
          "lat_seconds_count{route=\"/x\"} 3\n");
}

TEST_CASE("Metrics ignores a call of the wrong kind and undeclared names get a TYPE line") {
    Metrics m;
    m.declare_counter("c_total", "C.");
    m.observe("c_total", {}, 1);  // not a histogram: ignored
    m.set("c_total", {}, 9);      // not a gauge: ignored
    m.increment("new_total");
    CHECK(m.value("c_total") == 0);
    const auto text = m.render();
    CHECK(text.find("# TYPE new_total counter\nnew_total 1\n") != std::string::npos);
    CHECK(text.find("c_total_bucket") == std::string::npos);
    CHECK(Metrics::default_latency_buckets().front() == 0.001);
}

TEST_CASE("Metrics counts correctly from many threads") {
    Metrics m;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&m] {
            for (int i = 0; i < 10000; ++i) {
                m.increment("hits_total", {{"k", "v"}});
                m.observe("dur_seconds", {}, 0.002);
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(m.value("hits_total", {{"k", "v"}}) == 80000);
    CHECK(m.render().find("dur_seconds_count 80000\n") != std::string::npos);
}
