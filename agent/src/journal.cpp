// The journalled update state machine and the A/B slots (journal.h).
#include "pylon/agent/journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <system_error>

#include "pylon/common/file_io.h"

namespace pylon::agent {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxJournal = 1024 * 1024;
constexpr std::size_t kMaxSlotFile = 1024 * 1024;

constexpr std::array<std::pair<UpdateState, std::string_view>, 8> kStates{{
    {UpdateState::idle, "idle"},
    {UpdateState::downloading, "downloading"},
    {UpdateState::verifying, "verifying"},
    {UpdateState::staged, "staged"},
    {UpdateState::activating, "activating"},
    {UpdateState::healthy, "healthy"},
    {UpdateState::failed, "failed"},
    {UpdateState::rolled_back, "rolled_back"},
}};

Error bad(std::string what) {
    return Error(Errc::parse_error, std::move(what));
}

bool valid_slot(std::string_view s) {
    return s == "a" || s == "b";
}

bool is_hex64(const std::string& s) {
    if (s.size() != 64) return false;
    for (const char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

}  // namespace

std::string_view to_string(UpdateState s) {
    for (const auto& [state, name] : kStates) {
        if (state == s) return name;
    }
    return "unknown";
}

Result<UpdateState> parse_update_state(std::string_view text) {
    for (const auto& [state, name] : kStates) {
        if (name == text) return state;
    }
    return bad("unknown update state \"" + std::string(text.substr(0, 40)) + "\"");
}

bool transition_allowed(UpdateState from, UpdateState to) {
    using S = UpdateState;
    const bool at_rest = from == S::idle || from == S::healthy || from == S::rolled_back;
    switch (to) {
        case S::downloading:
            return at_rest || from == S::downloading;
        case S::verifying:
            return from == S::downloading;
        case S::staged:
            return from == S::verifying;
        case S::activating:
            return from == S::staged || from == S::activating;
        case S::healthy:
            return from == S::activating;
        case S::failed:
            return !at_rest;
        case S::rolled_back:
            return from == S::failed;
        case S::idle:
            return at_rest;
    }
    return false;
}

Json TargetRef::to_json() const {
    return {{"path", path},
            {"length", length},
            {"sha256", sha256},
            {"custom", custom},
            {"director_version", director_version}};
}

Result<TargetRef> TargetRef::from_json(const Json& j) {
    if (!j.is_object()) return bad("target: expected an object");
    TargetRef t;
    const auto path = j.find("path");
    if (path == j.end() || !path->is_string() || path->get<std::string>().empty() ||
        path->get<std::string>().size() > 1024) {
        return bad("target.path: expected a non-empty string");
    }
    t.path = path->get<std::string>();
    const auto length = j.find("length");
    if (length == j.end() || !length->is_number_unsigned()) {
        return bad("target.length: expected a whole number of bytes");
    }
    t.length = length->get<std::uint64_t>();
    const auto sha = j.find("sha256");
    if (sha == j.end() || !sha->is_string() || !is_hex64(sha->get<std::string>())) {
        return bad("target.sha256: expected 64 lower-case hex digits");
    }
    t.sha256 = sha->get<std::string>();
    if (const auto c = j.find("custom"); c != j.end()) {
        if (!c->is_object()) return bad("target.custom: expected an object");
        t.custom = *c;
    }
    const auto dv = j.find("director_version");
    if (dv == j.end() || !dv->is_number_integer() || dv->get<std::int64_t>() < 0) {
        return bad("target.director_version: expected a version number");
    }
    t.director_version = dv->get<std::int64_t>();
    return t;
}

Json Journal::to_json() const {
    Json j = {{"state", to_string(state)},
              {"slot", slot},
              {"activation_attempts", activation_attempts},
              {"error", error},
              {"director_version", director_version},
              {"sequence", sequence}};
    j["target"] = target ? target->to_json() : Json();
    return j;
}

Result<Journal> Journal::from_json(const Json& j) {
    if (!j.is_object()) return bad("journal: expected an object");
    Journal out;
    try {
        PYLON_TRY_ASSIGN(out.state, parse_update_state(j.at("state").get<std::string>()));
        out.slot = j.at("slot").get<std::string>();
        if (!out.slot.empty() && !valid_slot(out.slot)) {
            return bad("journal.slot: \"" + out.slot.substr(0, 8) + "\" is not a slot");
        }
        out.activation_attempts = j.at("activation_attempts").get<int>();
        out.error = j.at("error").get<std::string>();
        out.director_version = j.at("director_version").get<std::int64_t>();
        out.sequence = j.at("sequence").get<std::int64_t>();
    } catch (const Json::exception& e) {
        return bad(std::string("journal: ") + e.what());
    }
    if (out.activation_attempts < 0 || out.director_version < 0 || out.sequence < 0) {
        return bad("journal: negative counter");
    }
    if (const auto t = j.find("target"); t != j.end() && !t->is_null()) {
        PYLON_TRY_ASSIGN(auto ref, TargetRef::from_json(*t));
        out.target = std::move(ref);
    }
    const bool in_update = out.state != UpdateState::idle;
    if (in_update && !out.target) {
        return bad("journal: state " + std::string(to_string(out.state)) + " without a target");
    }
    return out;
}

JournalStore::JournalStore(fs::path state_dir) : path_(std::move(state_dir) / "journal.json") {}

Result<Journal> JournalStore::load() const {
    auto text = read_file(path_, kMaxJournal);
    if (!text) {
        if (text.error().code() == make_error_code(Errc::not_found)) return Journal{};
        return std::move(text).error();
    }
    Json j = Json::parse(*text, nullptr, false);
    if (j.is_discarded()) return bad(path_.string() + " is not JSON");
    auto out = Journal::from_json(j);
    if (!out) return std::move(out).error().with_context(path_.string());
    return out;
}

Result<void> JournalStore::save(Journal& j) const {
    ++j.sequence;
    auto r = write_file_atomic(path_, j.to_json().dump(2) + "\n", 0600);
    if (!r) --j.sequence;
    return r;
}

Result<void> JournalStore::transition(Journal& j, UpdateState to) const {
    if (!transition_allowed(j.state, to)) {
        return Error(Errc::invalid_argument, "update state " + std::string(to_string(j.state)) +
                                                 " cannot go to " + std::string(to_string(to)));
    }
    const UpdateState before = j.state;
    j.state = to;
    auto r = save(j);
    if (!r) {
        j.state = before;
        return r;
    }
    fault_point("after:" + std::string(to_string(to)));
    return r;
}

void fault_point(std::string_view name) {
    static const char* const wanted = std::getenv("PYLON_AGENT_FAULT");
    if (wanted != nullptr && name == wanted) {
        std::fprintf(stderr, "pylon-agent: fault injected at %s\n", wanted);
        std::raise(SIGKILL);
    }
}

Slots::Slots(fs::path state_dir) : root_(std::move(state_dir)) {}

Result<void> Slots::init() const {
    for (const char* s : {"a", "b"}) {
        const fs::path d = dir(s);
        std::error_code ec;
        fs::create_directories(d, ec);
        if (ec) return Error(Errc::io_error, "create " + d.string() + ": " + ec.message());
        if (::chmod(d.c_str(), 0700) != 0) return Error::from_errno(errno, "chmod " + d.string());
    }
    return fsync_directory(root_ / "slots");
}

Result<std::optional<std::string>> Slots::active() const {
    std::error_code ec;
    const fs::path target = fs::read_symlink(root_ / "current", ec);
    if (ec) {
        if (ec == std::errc::no_such_file_or_directory) return std::optional<std::string>{};
        return Error(Errc::io_error, "read " + (root_ / "current").string() + ": " + ec.message());
    }
    const std::string t = target.string();
    if (t == "slots/a") return std::optional<std::string>{"a"};
    if (t == "slots/b") return std::optional<std::string>{"b"};
    return Error(Errc::invalid_argument,
                 (root_ / "current").string() + " points at " + t + ", not at a slot");
}

Result<std::string> Slots::inactive() const {
    PYLON_TRY_ASSIGN(auto a, active());
    return std::string(a && *a == "a" ? "b" : "a");
}

fs::path Slots::dir(std::string_view slot) const {
    return root_ / "slots" / std::string(slot);
}

fs::path Slots::model_file(std::string_view slot) const {
    return dir(slot) / "model.gguf";
}

Result<std::optional<TargetRef>> Slots::installed(std::string_view slot) const {
    auto text = read_file(dir(slot) / "slot.json", kMaxSlotFile);
    if (!text) {
        if (text.error().code() == make_error_code(Errc::not_found)) {
            return std::optional<TargetRef>{};
        }
        return std::move(text).error();
    }
    Json j = Json::parse(*text, nullptr, false);
    if (j.is_discarded()) return bad((dir(slot) / "slot.json").string() + " is not JSON");
    PYLON_TRY_ASSIGN(auto t, TargetRef::from_json(j));
    return std::optional<TargetRef>(std::move(t));
}

Result<void> Slots::mark_installed(std::string_view slot, const TargetRef& t) const {
    return write_file_atomic(dir(slot) / "slot.json", t.to_json().dump(2) + "\n", 0600);
}

Result<void> Slots::clear(std::string_view slot) const {
    const fs::path d = dir(slot);
    std::error_code ec;
    // slot.json first (durably), so that a slot half emptied never claims to hold a build.
    fs::remove(d / "slot.json", ec);
    if (ec)
        return Error(Errc::io_error, "remove " + (d / "slot.json").string() + ": " + ec.message());
    PYLON_TRY(fsync_directory(d));
    for (const auto& entry : fs::directory_iterator(d, ec)) {
        fs::remove_all(entry.path(), ec);
        if (ec)
            return Error(Errc::io_error, "remove " + entry.path().string() + ": " + ec.message());
    }
    if (ec) return Error(Errc::io_error, "list " + d.string() + ": " + ec.message());
    return fsync_directory(d);
}

Result<void> Slots::activate(std::string_view slot) const {
    if (!valid_slot(slot)) return Error(Errc::invalid_argument, "no slot " + std::string(slot));
    const fs::path link = root_ / "current", tmp = root_ / "current.new";
    ::unlink(tmp.c_str());  // a leftover of an interrupted switch
    const std::string target = "slots/" + std::string(slot);
    if (::symlink(target.c_str(), tmp.c_str()) != 0) {
        return Error::from_errno(errno, "symlink " + tmp.string());
    }
    if (::rename(tmp.c_str(), link.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        return Error::from_errno(err, "rename " + tmp.string());
    }
    return fsync_directory(root_);
}

std::string_view to_string(Recovery::Action a) {
    using A = Recovery::Action;
    switch (a) {
        case A::none:
            return "none";
        case A::resume_download:
            return "resume_download";
        case A::verify:
            return "verify";
        case A::activate:
            return "activate";
        case A::commit:
            return "commit";
        case A::roll_back:
            return "roll_back";
    }
    return "unknown";
}

Recovery recover(const Journal& j, const std::optional<std::string>& active_slot,
                 int max_activation_attempts) {
    using A = Recovery::Action;
    using S = UpdateState;
    switch (j.state) {
        case S::idle:
        case S::healthy:
        case S::rolled_back:
            return {A::none, "no update in progress"};
        case S::downloading:
            return {A::resume_download, "the download was interrupted"};
        case S::verifying:
            return {A::verify, "verification was interrupted"};
        case S::staged:
            return {A::activate, "a staged build awaits activation"};
        case S::activating:
            // `current` is switched only after the health check passed.
            if (active_slot && *active_slot == j.slot) {
                return {A::commit, "the staged build passed its health check and is active"};
            }
            if (j.activation_attempts >= max_activation_attempts) {
                return {A::roll_back, "activation was interrupted " +
                                          std::to_string(j.activation_attempts) +
                                          " times (the build may crash the runtime)"};
            }
            return {A::activate, "activation was interrupted"};
        case S::failed:
            return {A::roll_back, "the update failed: " + j.error};
    }
    return {A::none, ""};
}

}  // namespace pylon::agent
