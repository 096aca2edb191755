// pylon-fleet-sim: N virtual devices in one process (C++20 coroutines on Asio), each speaking the
// real device protocol against a real registry: enrolment with an Ed25519 key and a DSSE proof,
// the director document (verified: key, device binding, version, expiry), long polls or plain
// polls, and DSSE-signed status reports. Installs are simulated (no model download); failures
// are injected per device and target, deterministically from --seed.
//
//   pylon-fleet-sim --registry http://127.0.0.1:8080 --token-file enrol.token --devices 1000
//       [--hardware-mix x86_64-avx2:70,aarch64-neon:30] [--failure-rate 0.2 --fail-only 1.1.0]
//       [--poll-interval 5] [--long-poll 25] [--install-ms 200] [--status-file status.json]
//       [--duration 0] [--concurrency 64] [--name-prefix sim] [--seed 1]
//
// The status file (JSON, rewritten atomically every second) counts devices by the release they
// run, failed updates, errors, requests, and the latency of director requests that
// did not wait (p50/p99).
#include <sys/resource.h>

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "profiles.h"
#include "pylon/common/bytes.h"
#include "pylon/common/file_io.h"
#include "pylon/common/log.h"
#include "pylon/net/url.h"
#include "pylon/signing/dsse.h"
#include "pylon/signing/json.h"
#include "pylon/signing/keys.h"
#include "pylon/signing/tuf/director.h"
#include "pylon/signing/tuf/metadata.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

using pylon::fleet_sim::hash_text;
using pylon::fleet_sim::mix;
using pylon::fleet_sim::profiles;

struct Options {
    std::string registry;
    std::string token;
    int devices = 100;
    std::string hardware_mix = "x86_64-avx2:100";
    double failure_rate = 0;
    std::string fail_only;
    int poll_interval_s = 5;
    int long_poll_s = 25;
    int install_ms = 200;
    std::string status_file;
    int duration_s = 0;
    int concurrency = 64;
    std::string name_prefix = "sim";
    std::uint64_t seed = 1;
};

// Shared counters (one thread runs every coroutine; the status writer reads under the mutex).
struct Stats {
    std::mutex mutex;
    int enrolled = 0;
    std::map<std::string, int> running;  // release -> devices running it
    // profile -> enrolled devices, and target -> devices of the profile running it
    std::map<std::string, int> profile_devices;
    std::map<std::string, std::map<std::string, int>> profile_targets;
    std::int64_t installs = 0, failed_updates = 0, errors = 0;
    std::int64_t director_requests = 0, not_modified = 0, reports = 0, report_retries = 0;
    std::map<std::string, std::int64_t> error_kinds;
    std::vector<double> latencies_ms;  // director requests that did not wait
    std::string last_error;

    void error(const std::string& kind, const std::string& what) {
        std::lock_guard lock(mutex);
        ++errors;
        ++error_kinds[kind];
        last_error = what.substr(0, 300);
    }
};

struct Reply {
    unsigned status = 0;
    std::string body;
    std::string etag;
};

class Connection {
public:
    Connection(asio::io_context& ioc, const pylon::net::Url& url) : ioc_(ioc), url_(url) {}

    // One request; reconnects once when a kept-alive connection turns out closed.
    awaitable<std::optional<Reply>> request(
        http::verb verb, const std::string& target,
        std::vector<std::pair<std::string, std::string>> headers, std::string body,
        std::chrono::seconds timeout) {
        for (int attempt = 0; attempt < 2; ++attempt) {
            const bool reused = stream_.has_value();
            try {
                if (!stream_) {
                    stream_.emplace(ioc_);
                    asio::ip::tcp::resolver resolver(ioc_);
                    auto endpoints = co_await resolver.async_resolve(
                        url_.host, std::to_string(url_.port), use_awaitable);
                    stream_->expires_after(std::chrono::seconds(10));
                    co_await stream_->async_connect(endpoints, use_awaitable);
                }
                http::request<http::string_body> req{verb, prefix() + target, 11};
                req.set(http::field::host, url_.authority());
                req.set(http::field::user_agent, "pylon-fleet-sim");
                for (auto& [k, v] : headers) req.set(k, v);
                if (!body.empty() || verb == http::verb::post || verb == http::verb::put) {
                    req.set(http::field::content_type, "application/json");
                    req.body() = body;
                    req.prepare_payload();
                }
                stream_->expires_after(timeout);
                co_await http::async_write(*stream_, req, use_awaitable);
                http::response<http::string_body> res;
                co_await http::async_read(*stream_, buffer_, res, use_awaitable);
                Reply out{res.result_int(), std::move(res.body()),
                          std::string(res[http::field::etag])};
                if (!res.keep_alive()) close();
                co_return out;
            } catch (const std::exception&) {
                close();
                if (!reused || attempt == 1) co_return std::nullopt;
            }
        }
        co_return std::nullopt;
    }

    void close() {
        if (stream_) {
            beast::error_code ignored;
            stream_->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
            stream_.reset();
        }
        buffer_.clear();
    }

private:
    std::string prefix() const {
        std::string p = url_.target;
        if (auto q = p.find('?'); q != std::string::npos) p.resize(q);
        while (!p.empty() && p.back() == '/') p.pop_back();
        return p;
    }
    asio::io_context& ioc_;
    pylon::net::Url url_;
    std::optional<beast::tcp_stream> stream_;
    beast::flat_buffer buffer_;
};

struct Sim {
    asio::io_context& ioc;
    Options o;
    pylon::net::Url url;
    Stats stats;
    std::vector<std::pair<std::string, int>> mix_table;  // profile, cumulative weight
    int mix_total = 0;
    int enrolling = 0;
    std::atomic<bool> stopping{false};

    std::string profile_for(int index) const {
        const int pick = static_cast<int>(mix(o.seed * 7919 + static_cast<std::uint64_t>(index)) %
                                          static_cast<std::uint64_t>(mix_total));
        for (const auto& [name, upto] : mix_table) {
            if (pick < upto) return name;
        }
        return mix_table.back().first;
    }
    bool fails(int index, const std::string& target) const {
        if (o.failure_rate <= 0) return false;
        if (!o.fail_only.empty() && target.find(o.fail_only) == std::string::npos) return false;
        const double u =
            static_cast<double>(
                mix(o.seed ^ hash_text(target) ^ (static_cast<std::uint64_t>(index) << 20)) >> 11) /
            static_cast<double>(1ull << 53);
        return u < o.failure_rate;
    }
};

awaitable<void> sleep_for(asio::io_context& ioc, std::chrono::milliseconds d) {
    asio::steady_timer t(ioc);
    t.expires_after(d);
    co_await t.async_wait(use_awaitable);
}

using Headers = std::vector<std::pair<std::string, std::string>>;

// (Plain functions: GCC 12 miscompiles brace-initialised lists inside coroutines.)
Headers bearer(const std::string& token) {
    Headers h;
    h.emplace_back("Authorization", "Bearer " + token);
    return h;
}

std::string enrol_body(const std::string& name, const Json& pub, const Json& hardware,
                       const pylon::signing::PrivateKey& key) {
    const Json claims = {{"name", name}, {"public_key", pub}, {"hardware", hardware}};
    const auto payload = pylon::signing::canonical_json(claims);
    auto proof = pylon::signing::dsse_sign("application/vnd.pylon.enrollment+json",
                                           pylon::as_bytes(*payload), {&key});
    Json body = claims;
    body["proof"] = proof->to_json();
    return body.dump();
}

std::string report_body(const std::string& state, const Json& current, std::int64_t version,
                        const std::string& error, const std::string& target,
                        const pylon::signing::PrivateKey& key) {
    Json p = {
        {"state", state}, {"current", current}, {"director_version", version}, {"error", error}};
    if (!target.empty()) p["target"] = target;
    const std::string text = p.dump();
    auto env = pylon::signing::dsse_sign("application/vnd.pylon.device-report+json",
                                         pylon::as_bytes(text), {&key});
    return env->to_json_text();
}

// The release a target belongs to: {"namespace", "model", "version"} from its custom fields.
Json release_of(const pylon::signing::tuf::DirectorDocument& doc) {
    const Json c = doc.target.custom.value_or(Json::object());
    const Json p = c.contains("pylon") ? c["pylon"] : Json::object();
    return {{"namespace", p.value("namespace", "")},
            {"model", p.value("model", "")},
            {"version", p.value("version", "")}};
}

// A report the registry could not take now (503: its connections are busy; no answer) is sent
// again after 0.5, 1, 2, 4 s, as a device would at its next attempt; only a report refused
// otherwise, or still not taken after that, counts as an error.
awaitable<void> send_report(Sim& sim, Connection& conn, const Headers& auth, std::string body) {
    auto& st = sim.stats;
    std::optional<Reply> r;
    for (int attempt = 0;; ++attempt) {
        r = co_await conn.request(http::verb::post, "/v1/device/reports", auth, body,
                                  std::chrono::seconds(30));
        const bool transient = !r || r->status == 503;
        if (!transient || attempt == 4) break;
        {
            std::lock_guard lock(st.mutex);
            ++st.report_retries;
        }
        co_await sleep_for(sim.ioc, std::chrono::milliseconds(500 << attempt));
    }
    std::lock_guard lock(st.mutex);
    ++st.reports;
    if (!r || r->status != 202) {
        ++st.errors;
        ++st.error_kinds["report"];
        st.last_error =
            r ? "report: HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 200)
              : "report: no answer";
    }
}

awaitable<void> device(Sim& sim, int index) {
    auto& st = sim.stats;
    const std::string name = fmt::format("{}-{:05}", sim.o.name_prefix, index);
    const std::string profile = sim.profile_for(index);
    Json hardware = profiles().at(profile);
    auto key = pylon::signing::PrivateKey::generate(pylon::signing::KeyType::ed25519);
    if (!key) {
        st.error("key", key.error().what());
        co_return;
    }
    Connection conn(sim.ioc, sim.url);

    // Enrolment, at most `concurrency` at a time.
    while (sim.enrolling >= sim.o.concurrency)
        co_await sleep_for(sim.ioc, std::chrono::milliseconds(5));
    ++sim.enrolling;
    const Json pub = pylon::signing::tuf::Key::from_public_key(key->public_key()).to_json();
    const std::string enrol = enrol_body(name, pub, hardware, *key);
    std::optional<Reply> enrolled;
    for (int attempt = 0; attempt < 5 && !sim.stopping; ++attempt) {
        enrolled = co_await conn.request(http::verb::post, "/v1/device/enroll", bearer(sim.o.token),
                                         enrol, std::chrono::seconds(30));
        if (enrolled && enrolled->status == 201) break;
        co_await sleep_for(sim.ioc, std::chrono::milliseconds(200 * (attempt + 1)));
    }
    --sim.enrolling;
    if (!enrolled || enrolled->status != 201) {
        st.error("enroll", enrolled
                               ? "HTTP " + std::to_string(enrolled->status) + ": " + enrolled->body
                               : "no answer");
        co_return;
    }
    const Json answer = Json::parse(enrolled->body, nullptr, false);
    const std::string credential = answer.value("credential", "");
    const std::string device_id = answer["device"].value("id", "0");
    auto director = pylon::signing::PublicKey::from_tuf(answer["director_key"]);
    if (!director || credential.empty()) {
        st.error("enroll", "malformed enrolment answer");
        co_return;
    }
    const pylon::signing::tuf::DeviceBinding binding{std::stoll(device_id),
                                                     answer["device"].value("fleet", ""), name};
    {
        std::lock_guard lock(st.mutex);
        ++st.enrolled;
        ++st.running["(none)"];
        ++st.profile_devices[profile];
        st.profile_targets[profile];
    }
    const Headers auth = bearer(credential);
    std::int64_t version = 0;
    std::string running = "(none)";
    Json current = nullptr;
    std::string active_target, failed_target;
    bool settled = false;
    while (!sim.stopping) {
        const bool wait = settled && sim.o.long_poll_s > 0;
        auto headers = auth;
        if (wait) {
            headers.emplace_back("If-None-Match", "\"" + std::to_string(version) + "\"");
            headers.emplace_back("Prefer", "wait=" + std::to_string(sim.o.long_poll_s));
        }
        const auto t0 = Clock::now();
        auto r = co_await conn.request(http::verb::get, "/v1/device/director", headers, {},
                                       std::chrono::seconds(sim.o.long_poll_s + 30));
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        {
            std::lock_guard lock(st.mutex);
            ++st.director_requests;
            if (!wait && r) st.latencies_ms.push_back(ms);
            if (r && r->status == 304) ++st.not_modified;
        }
        if (!r || (r->status != 200 && r->status != 304)) {
            st.error("director", r ? "HTTP " + std::to_string(r->status) : "no answer");
            settled = false;
            co_await sleep_for(sim.ioc, std::chrono::seconds(sim.o.poll_interval_s));
            continue;
        }
        if (r->status == 304) continue;  // waited: nothing changed
        const auto now =
            std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
        auto doc = pylon::signing::tuf::verify_director_document(
            r->body, *director, binding, version > 0 ? version - 1 : 0, now);
        if (!doc || doc->version < version) {
            st.error("verify", doc ? "older document" : doc.error().what());
            settled = false;
            co_await sleep_for(sim.ioc, std::chrono::seconds(sim.o.poll_interval_s));
            continue;
        }
        version = doc->version;
        settled = true;
        if (doc->target_path && *doc->target_path != active_target &&
            *doc->target_path != failed_target) {
            const std::string target = *doc->target_path;
            co_await send_report(sim, conn, auth,
                                 report_body("downloading", current, version, "", target, *key));
            co_await sleep_for(sim.ioc, std::chrono::milliseconds(sim.o.install_ms));
            if (sim.fails(index, target)) {
                failed_target = target;
                {
                    std::lock_guard lock(st.mutex);
                    ++st.failed_updates;
                }
                co_await send_report(
                    sim, conn, auth,
                    report_body("rolled_back", current, version,
                                "health check: simulated failure of " + target, target, *key));
            } else {
                current = release_of(*doc);
                const std::string now_running = current.value("namespace", "") + "/" +
                                                current.value("model", "") + "@" +
                                                current.value("version", "");
                failed_target.clear();
                {
                    std::lock_guard lock(st.mutex);
                    ++st.installs;
                    --st.running[running];
                    if (st.running[running] == 0) st.running.erase(running);
                    ++st.running[now_running];
                    auto& targets = st.profile_targets[profile];
                    if (!active_target.empty() && --targets[active_target] == 0) {
                        targets.erase(active_target);
                    }
                    ++targets[target];
                }
                running = now_running;
                active_target = target;
                co_await send_report(sim, conn, auth,
                                     report_body("healthy", current, version, "", target, *key));
            }
        }
        if (sim.o.long_poll_s == 0) {
            // Plain polls, spread by a little jitter.
            const auto jitter =
                static_cast<int>(mix(static_cast<std::uint64_t>(index) + version) % 500);
            co_await sleep_for(sim.ioc,
                               std::chrono::milliseconds(sim.o.poll_interval_s * 1000 + jitter));
        }
    }
    conn.close();
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    return v[i];
}

void write_status(Sim& sim, bool final) {
    Json j;
    {
        std::lock_guard lock(sim.stats.mutex);
        auto& st = sim.stats;
        j = {{"devices", sim.o.devices},
             {"enrolled", st.enrolled},
             {"running", st.running},
             {"installs", st.installs},
             {"failed_updates", st.failed_updates},
             {"errors", st.errors},
             {"error_kinds", st.error_kinds},
             {"last_error", st.last_error},
             {"director_requests", st.director_requests},
             {"not_modified", st.not_modified},
             {"reports", st.reports},
             {"report_retries", st.report_retries},
             {"director_latency_ms",
              {{"samples", st.latencies_ms.size()},
               {"p50", percentile(st.latencies_ms, 0.5)},
               {"p99", percentile(st.latencies_ms, 0.99)}}},
             {"final", final}};
        Json prof = Json::object();
        for (const auto& [name, n] : st.profile_devices) {
            prof[name] = {{"devices", n}, {"targets", st.profile_targets[name]}};
        }
        j["profiles"] = prof;
    }
    if (!sim.o.status_file.empty()) {
        (void)pylon::write_file_atomic(sim.o.status_file, j.dump() + "\n", 0644);
    } else if (final) {
        std::printf("%s\n", j.dump().c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Pylon fleet simulator: virtual devices speaking the device protocol"};
    Options o;
    std::string token_file;
    app.add_option("--registry", o.registry, "registry URL (http://)")->required();
    app.add_option("--token-file", token_file, "file holding a fleet enrolment token (pye_…)")
        ->required();
    app.add_option("--devices", o.devices, "number of virtual devices")
        ->check(CLI::Range(1, 200000));
    app.add_option("--hardware-mix", o.hardware_mix,
                   "PROFILE:WEIGHT,… of x86_64-sse, x86_64-avx2, x86_64-avx512, aarch64-neon, "
                   "aarch64-small, jetson-orin");
    app.add_option("--failure-rate", o.failure_rate,
                   "share of installs that fail their health check")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--fail-only", o.fail_only, "inject failures only into targets containing this");
    app.add_option("--poll-interval", o.poll_interval_s,
                   "seconds between plain polls / after errors")
        ->check(CLI::Range(1, 86400));
    app.add_option("--long-poll", o.long_poll_s, "long-poll wait in seconds (0: plain polls)")
        ->check(CLI::Range(0, 55));
    app.add_option("--install-ms", o.install_ms, "simulated install time")
        ->check(CLI::Range(0, 600000));
    app.add_option("--status-file", o.status_file, "JSON status, rewritten every second");
    app.add_option("--duration", o.duration_s, "stop after this many seconds (0: at SIGTERM)");
    app.add_option("--concurrency", o.concurrency, "enrolments in flight at once")
        ->check(CLI::Range(1, 10000));
    app.add_option("--name-prefix", o.name_prefix, "device names: PREFIX-00001, …");
    app.add_option("--seed", o.seed, "failure injection and hardware assignment seed");
    CLI11_PARSE(app, argc, argv);

    pylon::LogOptions log_options;
    log_options.name = "pylon-fleet-sim";
    (void)pylon::init_logging(log_options);
    auto token = pylon::read_file(token_file, 4096);
    if (!token) {
        std::fprintf(stderr, "pylon-fleet-sim: %s\n", token.error().what().c_str());
        return 2;
    }
    o.token = *token;
    while (!o.token.empty() && (o.token.back() == '\n' || o.token.back() == ' '))
        o.token.pop_back();
    auto url = pylon::net::parse_url(o.registry);
    if (!url || url->scheme != "http") {
        std::fprintf(stderr, "pylon-fleet-sim: --registry must be an http:// URL\n");
        return 2;
    }
    // Every device holds a connection.
    if (rlimit nofile{};
        ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &nofile);
    }

    asio::io_context ioc(1);
    Sim sim{ioc, o, *url, {}, {}, 0, 0, {}};
    for (std::size_t start = 0; start < o.hardware_mix.size();) {
        auto comma = o.hardware_mix.find(',', start);
        if (comma == std::string::npos) comma = o.hardware_mix.size();
        const std::string item = o.hardware_mix.substr(start, comma - start);
        start = comma + 1;
        const auto colon = item.find(':');
        const std::string name = item.substr(0, colon);
        const int weight = colon == std::string::npos ? 1 : std::atoi(item.c_str() + colon + 1);
        if (!profiles().contains(name) || weight <= 0) {
            std::fprintf(stderr,
                         "pylon-fleet-sim: --hardware-mix: unknown profile or weight in '%s'\n",
                         item.c_str());
            return 2;
        }
        sim.mix_total += weight;
        sim.mix_table.emplace_back(name, sim.mix_total);
    }
    for (int i = 1; i <= o.devices; ++i) asio::co_spawn(ioc, device(sim, i), asio::detached);

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) {
        sim.stopping = true;
        ioc.stop();
    });
    std::atomic<bool> done{false};
    std::thread status([&] {
        const auto started = Clock::now();
        while (!done) {
            std::this_thread::sleep_for(std::chrono::seconds(1));
            write_status(sim, false);
            if (o.duration_s > 0 && Clock::now() - started >= std::chrono::seconds(o.duration_s)) {
                sim.stopping = true;
                ioc.stop();
            }
        }
    });
    ioc.run();
    done = true;
    status.join();
    write_status(sim, true);
    return 0;
}
