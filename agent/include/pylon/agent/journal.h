// The agent's update state machine, journalled (DESIGN.md, "Agent update state machine"):
//
//   IDLE → DOWNLOADING → VERIFYING → STAGED → ACTIVATING → HEALTHY (commit)
//                                                 └──────→ FAILED → ROLLED_BACK
//
// The journal (state_dir/journal.json) is written before every transition — temp file, fsync,
// rename, fsync of the directory — so after a power cut at any instant the agent finds the last
// state it entered and recover() says what to do: resume a download, verify again, activate the
// staged slot, commit an activation whose health check had passed (the `current` pointer is
// switched only after it), or roll back.
//
// Two slots hold builds on disk (state_dir/slots/a, state_dir/slots/b); `current` is a symbolic
// link to the active one, switched by renaming a new link over it (an atomic replace), so the
// device always has exactly one active model once it had one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "pylon/common/result.h"

namespace pylon::agent {

using Json = nlohmann::json;

enum class UpdateState {
    idle,
    downloading,
    verifying,
    staged,
    activating,
    healthy,
    failed,
    rolled_back,
};
std::string_view to_string(UpdateState s);
[[nodiscard]] Result<UpdateState> parse_update_state(std::string_view text);
// Whether the machine may go from `from` to `to` (every state may go to FAILED except IDLE,
// HEALTHY and ROLLED_BACK; a new update starts from IDLE, HEALTHY or ROLLED_BACK).
bool transition_allowed(UpdateState from, UpdateState to);

// The build an update installs: a TUF target the director named and the image repository
// confirmed (path, length, SHA-256, the "pylon" custom fields), and the director document
// version that named it.
struct TargetRef {
    std::string path;
    std::uint64_t length = 0;
    std::string sha256;  // lower-case hex
    Json custom = Json::object();
    std::int64_t director_version = 0;

    Json to_json() const;
    [[nodiscard]] static Result<TargetRef> from_json(const Json& j);
    bool operator==(const TargetRef&) const = default;
};

struct Journal {
    UpdateState state = UpdateState::idle;
    std::optional<TargetRef> target;  // the update in progress, or the last one
    std::string slot;                 // the slot it is staged into ("a" or "b"; "" before)
    int activation_attempts = 0;      // activations started for this target
    std::string error;                // why the last update failed ("" when none)
    // The newest director document accepted (replays of older ones are refused).
    std::int64_t director_version = 0;
    std::int64_t sequence = 0;  // incremented by every save

    Json to_json() const;
    [[nodiscard]] static Result<Journal> from_json(const Json& j);
};

// journal.json in a state directory.
class JournalStore {
public:
    explicit JournalStore(std::filesystem::path state_dir);
    // The saved journal; a fresh IDLE one when none was ever saved. Errc::parse_error for a
    // file that does not parse (never silently reset: the operator must look).
    [[nodiscard]] Result<Journal> load() const;
    // Saves `j` (its sequence incremented) durably; the previous file stays until the rename.
    [[nodiscard]] Result<void> save(Journal& j) const;
    // Moves `j` to `to` and saves it; refuses (Errc::invalid_argument, nothing saved) a
    // transition that transition_allowed() forbids.
    [[nodiscard]] Result<void> transition(Journal& j, UpdateState to) const;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// The two slots and the `current` link.
class Slots {
public:
    explicit Slots(std::filesystem::path state_dir);
    // Creates slots/a and slots/b (0700) when missing.
    [[nodiscard]] Result<void> init() const;
    // "a" or "b" when `current` points at a slot; nullopt before the first activation.
    // Errc::invalid_argument when `current` exists but points elsewhere.
    [[nodiscard]] Result<std::optional<std::string>> active() const;
    // The slot an update stages into: the one not active ("a" when none is).
    [[nodiscard]] Result<std::string> inactive() const;
    std::filesystem::path dir(std::string_view slot) const;
    // The model file in a slot, and the target it holds (slot.json, written last when staging).
    std::filesystem::path model_file(std::string_view slot) const;
    [[nodiscard]] Result<std::optional<TargetRef>> installed(std::string_view slot) const;
    // Records that `slot` holds `target` (after its model file is complete and verified).
    [[nodiscard]] Result<void> mark_installed(std::string_view slot, const TargetRef& t) const;
    // Empties a slot (its slot.json first, so a half-emptied slot never looks installed).
    [[nodiscard]] Result<void> clear(std::string_view slot) const;
    // Points `current` at `slot`: a new link beside it, renamed over it, the directory fsynced.
    [[nodiscard]] Result<void> activate(std::string_view slot) const;

private:
    std::filesystem::path root_;
};

// Fault injection for crash tests: when $PYLON_AGENT_FAULT equals `name` the process kills
// itself with SIGKILL, as a power cut would stop it. Points: "after:<state>" once that state is
// journalled, and "after:switch" once `current` points at a new slot but before HEALTHY is
// journalled. Unset (always, outside tests): nothing happens.
void fault_point(std::string_view name);

// What to do after a restart, from the journal and where `current` points.
struct Recovery {
    enum class Action {
        none,             // nothing in progress
        resume_download,  // DOWNLOADING: continue from the partial file
        verify,           // VERIFYING: check the downloaded file again
        activate,         // STAGED, or ACTIVATING with attempts left: activate the staged slot
        commit,           // ACTIVATING, `current` already on the staged slot: the check passed
        roll_back,        // FAILED, or ACTIVATING out of attempts: keep/put back the previous slot
    };
    Action action = Action::none;
    std::string reason;
};
std::string_view to_string(Recovery::Action a);
Recovery recover(const Journal& j, const std::optional<std::string>& active_slot,
                 int max_activation_attempts);

}  // namespace pylon::agent
