// The update loop (updater.h).
#include "pylon/agent/updater.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "pylon/agent/director_client.h"
#include "pylon/agent/enroll.h"
#include "pylon/agent/hardware.h"
#include "pylon/common/file_io.h"
#include "pylon/common/unique_fd.h"
#include "pylon/net/http_fetcher.h"
#include "pylon/runtime/context.h"
#include "pylon/runtime/generate.h"
#include "pylon/runtime/model.h"
#include "pylon/runtime/tokenizer.h"
#include "pylon/signing/dsse.h"
#include "pylon/signing/sha256.h"
#include "pylon/signing/tuf/director.h"
#include "pylon/signing/tuf/updater.h"
#include "registry_http.h"

namespace pylon::agent {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Kind = CycleOutcome::Kind;

namespace {

constexpr std::string_view kReportType = "application/vnd.pylon.device-report+json";

bool at_rest(UpdateState s) {
    return s == UpdateState::idle || s == UpdateState::healthy || s == UpdateState::rolled_back;
}

std::string basename_of(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// /tuf/targets/<dir>/<sha256>.<basename>: the consistent-snapshot name of a target.
std::string consistent_target(const TargetRef& t) {
    const auto slash = t.path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : t.path.substr(0, slash + 1);
    return "/tuf/targets/" + dir + t.sha256 + "." + basename_of(t.path);
}

// The licence terms of a target against where and how the device is used.
std::optional<std::string> licence_refusal(const Json& custom, const UpdaterOptions& o) {
    const Json* lic = nullptr;
    if (custom.contains("pylon") && custom["pylon"].is_object() &&
        custom["pylon"].contains("license") && custom["pylon"]["license"].is_object()) {
        lic = &custom["pylon"]["license"];
    }
    if (lic == nullptr) return "the target carries no licence terms";
    const auto list = [&](const char* k) {
        std::vector<std::string> v;
        if (lic->contains(k) && (*lic)[k].is_array()) {
            for (const auto& e : (*lic)[k]) {
                if (e.is_string()) v.push_back(e.get<std::string>());
            }
        }
        return v;
    };
    const auto allowed = list("regions_allowed"), denied = list("regions_denied");
    if (!o.region.empty() && std::find(denied.begin(), denied.end(), o.region) != denied.end()) {
        return "the licence excludes region " + o.region;
    }
    if (!allowed.empty()) {
        if (o.region.empty())
            return "the licence is limited to some regions and this device's is not set";
        if (std::find(allowed.begin(), allowed.end(), o.region) == allowed.end()) {
            return "the licence does not cover region " + o.region;
        }
    }
    if (o.commercial_use.value_or(false) && lic->contains("commercial_use") &&
        (*lic)["commercial_use"].is_boolean() && !(*lic)["commercial_use"].get<bool>()) {
        return "the licence forbids commercial use";
    }
    return std::nullopt;
}

Json release_of(const std::optional<TargetRef>& t) {
    if (!t || !t->custom.contains("pylon")) return nullptr;
    const Json& p = t->custom["pylon"];
    return {{"namespace", p.value("namespace", "")},
            {"model", p.value("model", "")},
            {"version", p.value("version", "")}};
}

}  // namespace

Result<Updater::Lock> Updater::lock() {
    PYLON_TRY(slots_.init());
    const fs::path f = o_.state_dir / "agent.lock";
    UniqueFd fd(::open(f.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return Error::from_errno(errno, "open " + f.string());
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            return Error(Errc::invalid_argument,
                         "another pylon-agent is using " + o_.state_dir.string());
        }
        return Error::from_errno(errno, "flock " + f.string());
    }
    PYLON_TRY(remove_interrupted_writes(o_.state_dir));
    return Lock{std::move(fd)};
}

std::string_view to_string(CycleOutcome::Kind k) {
    switch (k) {
        case Kind::nothing:
            return "nothing";
        case Kind::installed:
            return "installed";
        case Kind::refused:
            return "refused";
        case Kind::rolled_back:
            return "rolled_back";
    }
    return "unknown";
}

Result<void> RuntimeHealthCheck::check(const fs::path& model_file) {
    const auto t0 = std::chrono::steady_clock::now();
    PYLON_TRY_ASSIGN(auto model, runtime::Model::load(model_file.string()));
    PYLON_TRY_ASSIGN(auto tok, runtime::Tokenizer::from_gguf(model->gguf()));
    runtime::ContextParams cp;
    cp.n_ctx = 128;
    cp.n_threads = threads_;
    PYLON_TRY_ASSIGN(auto ctx, runtime::Context::create(model, cp));
    runtime::GenerateOptions g;
    g.n_predict = 8;
    g.sampling.temperature = 0.0f;
    g.stop_at_eos = false;
    PYLON_TRY_ASSIGN(auto r, runtime::generate(*ctx, tok, "Once upon a time", g));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    if (r.generated_ids.empty()) {
        return Error(Errc::internal, "health check: the model generated nothing");
    }
    if (took > bound_) {
        return Error(Errc::limit_exceeded, "health check: " + std::to_string(took.count()) +
                                               " ms, over the bound of " +
                                               std::to_string(bound_.count()) + " ms");
    }
    return {};
}

struct Updater::Ctx {
    Identity id;
    Secret credential;
    signing::PrivateKey key;
    signing::PublicKey director;
    RegistryHttp* http;  // Updater::http_
};

Updater::Updater(UpdaterOptions options, HealthCheck& health)
    : o_(std::move(options)), health_(health), journal_(o_.state_dir), slots_(o_.state_dir) {}

Updater::~Updater() = default;

signing::tuf::Time Updater::now() const {
    return o_.clock ? o_.clock() : signing::tuf::libc_now();
}

Result<std::optional<fs::path>> Updater::active_model() const {
    PYLON_TRY_ASSIGN(auto a, slots_.active());
    if (!a) return std::optional<fs::path>{};
    return std::optional<fs::path>(slots_.model_file(*a));
}

Result<void> Updater::report(Ctx& c, const Journal& j, const std::string& error) {
    std::optional<TargetRef> current;
    if (auto a = slots_.active(); a && *a) {
        if (auto t = slots_.installed(**a); t) current = *t;
    }
    Json payload = {{"state", to_string(j.state)},
                    {"current", release_of(current)},
                    {"director_version", j.director_version},
                    {"error", error}};
    if (j.target) payload["target"] = j.target->path;
    const std::string text = payload.dump();
    PYLON_TRY_ASSIGN(auto env, signing::dsse_sign(kReportType, as_bytes(text), {&c.key}));
    PYLON_TRY_ASSIGN(auto r,
                     c.http->post_json("/v1/device/reports", &c.credential, env.to_json_text()));
    if (r.status != 202) return registry_refusal("reporting", r);
    return {};
}

Result<CycleOutcome> Updater::fail(Ctx& c, Journal& j, const std::string& why) {
    j.error = why;
    if (j.state != UpdateState::failed) PYLON_TRY(journal_.transition(j, UpdateState::failed));
    // `current` is switched only after a passed health check: the previous slot is still active.
    PYLON_TRY(journal_.transition(j, UpdateState::rolled_back));
    (void)report(c, j, why);
    return CycleOutcome{Kind::rolled_back, why};
}

Result<void> Updater::download(Ctx& c, const TargetRef& t, const fs::path& part) {
    std::error_code ec;
    std::uint64_t offset = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
    if (ec || offset > t.length) {
        fs::remove(part, ec);
        offset = 0;
    }
    UniqueFd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd) return Error::from_errno(errno, "open " + part.string());
    const std::string url = consistent_target(t);
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t fetched = 0;
    // Under a cap, requests of about a quarter second's worth, so the link is not saturated in
    // long bursts between pauses.
    std::uint64_t chunk = o_.download_chunk;
    if (o_.bandwidth_bytes_per_s > 0) {
        chunk = std::clamp<std::uint64_t>(o_.bandwidth_bytes_per_s / 4, 16 * 1024, chunk);
    }
    while (offset < t.length) {
        const std::uint64_t end = std::min<std::uint64_t>(offset + chunk, t.length) - 1;
        PYLON_TRY_ASSIGN(auto r, c.http->get_range(url, offset, end));
        if (r.status != 206 && !(r.status == 200 && offset == 0)) {
            return registry_refusal("downloading " + t.path, r);
        }
        const std::uint64_t want = end - offset + 1;
        if (r.body.size() != want && !(r.status == 200 && r.body.size() == t.length)) {
            return Error(Errc::io_error, "downloading " + t.path + ": " +
                                             std::to_string(r.body.size()) +
                                             " bytes for a range of " + std::to_string(want));
        }
        const std::string_view data(r.body.data(),
                                    std::min<std::size_t>(r.body.size(), t.length - offset));
        for (std::size_t done = 0; done < data.size();) {
            const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
            if (n < 0) {
                if (errno == EINTR) continue;
                return Error::from_errno(errno, "write " + part.string());
            }
            done += static_cast<std::size_t>(n);
        }
        if (::fsync(fd.get()) != 0) return Error::from_errno(errno, "fsync " + part.string());
        offset += data.size();
        fetched += data.size();
        if (o_.bandwidth_bytes_per_s > 0) {
            const auto due = start + std::chrono::duration<double>(
                                         static_cast<double>(fetched) /
                                         static_cast<double>(o_.bandwidth_bytes_per_s));
            std::this_thread::sleep_until(due);
        }
    }
    return {};
}

Result<CycleOutcome> Updater::install(Ctx& c, Journal& j) {
    const TargetRef t = *j.target;
    std::vector<std::pair<std::string, double>> timings;
    auto phase_start = std::chrono::steady_clock::now();
    const auto lap = [&](const char* name) {
        const auto now_t = std::chrono::steady_clock::now();
        timings.emplace_back(name, std::chrono::duration<double>(now_t - phase_start).count());
        phase_start = now_t;
    };
    const fs::path downloads = o_.state_dir / "downloads";
    const fs::path part = downloads / (t.sha256 + ".part");
    const auto reuse = [&]() -> Result<bool> {
        PYLON_TRY_ASSIGN(auto held, slots_.installed(j.slot));
        return held && held->path == t.path && held->sha256 == t.sha256;
    };
    if (j.state == UpdateState::downloading) {
        PYLON_TRY_ASSIGN(const bool held, reuse());
        if (!held) {
            std::error_code ec;
            fs::create_directories(downloads, ec);
            // Partial downloads of other targets are of no further use.
            for (const auto& e : fs::directory_iterator(downloads, ec)) {
                if (e.path() != part) fs::remove(e.path(), ec);
            }
            if (auto d = download(c, t, part); !d) {
                // A transport failure keeps the partial file for the next cycle to resume.
                return std::move(d).error().with_context("downloading " + t.path);
            }
        }
        PYLON_TRY(journal_.transition(j, UpdateState::verifying));
        (void)report(c, j, "");
        lap("download");
    }
    if (j.state == UpdateState::verifying) {
        PYLON_TRY_ASSIGN(const bool held, reuse());
        std::error_code ec;
        // Renamed into the slot before a crash, not yet marked installed: verify it there.
        const bool in_slot =
            held || (!fs::exists(part, ec) && fs::exists(slots_.model_file(j.slot), ec));
        const fs::path file = in_slot ? slots_.model_file(j.slot) : part;
        const auto size = fs::file_size(file, ec);
        auto digest = signing::sha256_file(file);
        if (ec || size != t.length || !digest || signing::to_hex(*digest) != t.sha256) {
            fs::remove(part, ec);
            if (in_slot) (void)slots_.clear(j.slot);
            return fail(c, j, "the downloaded file does not match the signed length and sha256");
        }
        if (!in_slot) {
            PYLON_TRY(slots_.clear(j.slot));
            const fs::path dest = slots_.model_file(j.slot);
            if (::rename(part.c_str(), dest.c_str()) != 0) {
                return Error::from_errno(errno, "rename " + part.string());
            }
            PYLON_TRY(fsync_directory(slots_.dir(j.slot)));
            PYLON_TRY(fsync_directory(downloads));
        }
        if (!held) PYLON_TRY(slots_.mark_installed(j.slot, t));
        PYLON_TRY(journal_.transition(j, UpdateState::staged));
        (void)report(c, j, "");
        lap("verify_stage");
    }
    if (j.state == UpdateState::staged || j.state == UpdateState::activating) {
        ++j.activation_attempts;
        PYLON_TRY(journal_.transition(j, UpdateState::activating));
        (void)report(c, j, "");
        if (auto h = health_.check(slots_.model_file(j.slot)); !h) {
            return fail(c, j, "health check: " + h.error().message());
        }
        lap("health");
        PYLON_TRY(slots_.activate(j.slot));
        fault_point("after:switch");
        j.error.clear();
        PYLON_TRY(journal_.transition(j, UpdateState::healthy));
        lap("activate");
        (void)report(c, j, "");
        return CycleOutcome{Kind::installed, t.path + " in slot " + j.slot, std::move(timings)};
    }
    return CycleOutcome{Kind::nothing, "nothing in progress"};
}

Result<CycleOutcome> Updater::recover() {
    PYLON_TRY_ASSIGN(const Lock state_lock, lock());
    return recover_locked();
}

Result<CycleOutcome> Updater::recover_locked() {
    PYLON_TRY_ASSIGN(Journal j, journal_.load());
    PYLON_TRY_ASSIGN(auto active, slots_.active());
    const Recovery r = agent::recover(j, active, o_.max_activation_attempts);
    if (r.action == Recovery::Action::none) return CycleOutcome{Kind::nothing, r.reason};
    PYLON_TRY_ASSIGN(auto c, open());
    switch (r.action) {
        case Recovery::Action::commit:
            j.error.clear();
            PYLON_TRY(journal_.transition(j, UpdateState::healthy));
            (void)report(*c, j, "");
            return CycleOutcome{Kind::installed, r.reason};
        case Recovery::Action::roll_back:
            return fail(*c, j, j.state == UpdateState::failed ? j.error : r.reason);
        default:
            return install(*c, j);
    }
}

void Updater::stop() {
    std::lock_guard lock(http_mutex_);
    stopped_ = true;
    if (http_) http_->cancel();
}

Result<std::unique_ptr<Updater::Ctx>> Updater::open() {
    IdentityStore store(o_.state_dir);
    PYLON_TRY_ASSIGN(auto id, store.load());
    if (!id) return Error(Errc::not_found, "this device is not enrolled (pylon-agent enroll)");
    PYLON_TRY_ASSIGN(Secret credential, store.credential());
    PYLON_TRY_ASSIGN(signing::PrivateKey key, store.device_key());
    PYLON_TRY_ASSIGN(signing::PublicKey director, store.director_key());
    RegistryHttp* http = nullptr;
    {
        std::lock_guard lock(http_mutex_);
        if (stopped_) return Error(net::Errc::cancelled, "the agent is stopping");
        if (!http_ || http_url_ != id->registry) {
            PYLON_TRY_ASSIGN(http_, RegistryHttp::open(id->registry, o_.ca_file));
            http_url_ = id->registry;
        }
        http = http_.get();
    }
    auto c = std::unique_ptr<Ctx>(
        new Ctx{*id, std::move(credential), std::move(key), std::move(director), http});
    return c;
}

Result<CycleOutcome> Updater::run_once() {
    PYLON_TRY_ASSIGN(const Lock state_lock, lock());
    long_polled_ = false;
    auto r = cycle();
    if (r) r->long_polled = long_polled_;
    // What `pylon-agent status` shows as the last check (best effort: a cycle's outcome stands).
    const Json last = {{"at", signing::tuf::format_time(now())},
                       {"outcome", r ? std::string(to_string(r->kind)) : std::string("error")},
                       {"message", r ? r->message : r.error().message()}};
    (void)write_file_atomic(o_.state_dir / "last_check.json", last.dump() + "\n", 0600);
    return r;
}

Result<CycleOutcome> Updater::cycle() {
    PYLON_TRY_ASSIGN(Journal j, journal_.load());
    if (!at_rest(j.state)) return recover_locked();
    PYLON_TRY_ASSIGN(auto c, open());

    // The hardware probe goes to the registry whenever it changed (its director picks builds
    // by it); hardware.json holds the last one sent.
    PYLON_TRY_ASSIGN(auto probe, probe_hardware(o_.accelerators));
    const fs::path sent = o_.state_dir / "hardware.json";
    const std::string probe_text = probe.to_json().dump();
    if (const auto last = read_file(sent, 64 * 1024); !last || *last != probe_text) {
        PYLON_TRY_ASSIGN(auto put,
                         c->http->put_json("/v1/device/hardware", &c->credential, probe_text));
        if (put.status != 200) return registry_refusal("sending the hardware probe", put);
        PYLON_TRY(write_file_atomic(sent, probe_text, 0600));
    }

    // Nothing to do last time: wait at the registry for a change of that document.
    const bool conditional =
        settled_ && *settled_ == j.director_version && o_.long_poll.count() > 0;
    settled_.reset();
    long_polled_ = conditional;
    PYLON_TRY_ASSIGN(auto r, conditional ? c->http->get_director_change(
                                               &c->credential, j.director_version, o_.long_poll)
                                         : c->http->get("/v1/device/director", &c->credential));
    if (conditional && r.status == 304) {
        settled_ = j.director_version;
        return CycleOutcome{Kind::nothing, "no change"};
    }
    if (r.status != 200) return registry_refusal("fetching the director document", r);
    bool same = false;
    auto doc = check_director(o_.state_dir, r.body, c->director, c->id.binding(),
                              j.director_version, now(), &same);
    if (!doc) {
        const std::string why = "director document refused: " + doc.error().message();
        (void)report(*c, j, why);
        return CycleOutcome{Kind::refused, why};
    }
    if (!same) {
        PYLON_TRY(save_accepted_director(o_.state_dir, r.body));
        j.director_version = doc->version;
        PYLON_TRY(journal_.save(j));
    }
    if (!doc->target_path) {
        settled_ = doc->version;
        return CycleOutcome{Kind::nothing, doc->note};
    }

    TargetRef t;
    t.path = *doc->target_path;
    t.length = doc->target.length;
    t.sha256 = doc->target.hashes.count("sha256") ? doc->target.hashes.at("sha256") : "";
    t.custom = doc->target.custom.value_or(Json::object());
    t.director_version = doc->version;
    PYLON_TRY_ASSIGN(auto active, slots_.active());
    if (active) {
        PYLON_TRY_ASSIGN(auto held, slots_.installed(*active));
        if (held && held->path == t.path && held->sha256 == t.sha256) {
            settled_ = doc->version;
            return CycleOutcome{Kind::nothing, t.path + " is active"};
        }
    }
    // A build that failed here is not tried again until the director names another one.
    if (j.state == UpdateState::rolled_back && j.target && j.target->path == t.path &&
        j.target->sha256 == t.sha256) {
        settled_ = doc->version;
        return CycleOutcome{Kind::nothing,
                            t.path + " failed here before (" + j.error + "); not retried"};
    }
    const auto refuse = [&](const std::string& why) -> Result<CycleOutcome> {
        (void)report(*c, j, why);
        return CycleOutcome{Kind::refused, why};
    };
    if (t.sha256.size() != 64) return refuse("the director's target has no sha256");

    // The image repository must list the same target: identical length, hashes, custom fields.
    IdentityStore store(o_.state_dir);
    net::HttpFetcherConfig fc;
    fc.ca_file = o_.ca_file;
    PYLON_TRY_ASSIGN(auto fetcher, net::HttpFetcher::create(fc));
    signing::tuf::UpdaterConfig uc;
    if (o_.clock) uc.clock = o_.clock;
    signing::tuf::Updater tuf(store.tuf_dir(), c->id.registry + "/tuf/metadata/",
                              c->id.registry + "/tuf/targets/", *fetcher, uc);
    if (auto ok = tuf.refresh(); !ok) return refuse("TUF: " + ok.error().message());
    auto info = tuf.get_targetinfo(t.path);
    if (!info) return refuse("TUF: " + info.error().message());
    if (info->file.length != doc->target.length || info->file.hashes != doc->target.hashes ||
        info->file.custom != doc->target.custom) {
        return refuse("the director's target differs from the image repository's " + t.path);
    }
    // Hardware and licence.
    const Hardware& hw = probe;
    const Json* target_json = t.custom.contains("pylon") && t.custom["pylon"].contains("target")
                                  ? &t.custom["pylon"]["target"]
                                  : nullptr;
    if (target_json == nullptr) return refuse("the target names no hardware target");
    auto bt = BuildTarget::from_json(*target_json);
    if (!bt) return refuse("the target's hardware target: " + bt.error().message());
    if (auto m = mismatch(hw, *bt)) return refuse("the build does not fit this device: " + *m);
    if (auto l = licence_refusal(t.custom, o_)) return refuse(*l);

    PYLON_TRY_ASSIGN(j.slot, slots_.inactive());
    j.target = t;
    j.activation_attempts = 0;
    j.error.clear();
    PYLON_TRY(journal_.transition(j, UpdateState::downloading));
    (void)report(*c, j, "");
    return install(*c, j);
}

}  // namespace pylon::agent
