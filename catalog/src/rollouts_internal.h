// Steps shared by the rollout sources (pg_rollouts.cpp: creation, listing, manual transitions,
// licences; pg_rollout_orchestrator.cpp: the orchestrator's step, device reports, fleet
// rollbacks), each run inside the caller's transaction.
#pragma once

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "pg_catalog.h"

namespace pylon::catalog::rollouts {

bool active_state(const std::string& s);
// Appends a rollout event and the matching audit entry ("rollout.<kind>"; actor "" is the
// orchestrator).
void rollout_event(pqxx::work& tx, std::int64_t rollout, const std::string& kind,
                   const std::string& actor, const nlohmann::json& details);
Result<void> require_rollout(pqxx::work& tx, std::int64_t id);
// The rollout with its waves and their counts (the row locked when `lock`).
Result<Rollout> load_rollout(pqxx::work& tx, std::int64_t id, bool lock = false);
// The id of a published release; invalid_state for another state.
Result<std::int64_t> release_id_of(pqxx::work& tx, const std::string& ns, const std::string& model,
                                   const std::string& version);
// Returns every device the rollout assigned (and that still has its release as desired) to its
// previous release; members end rolled_back (failed ones stay failed). How many moved.
std::int64_t roll_back_members(pqxx::work& tx, std::int64_t rollout, std::int64_t release,
                               const std::string& actor);
// Ends an active rollout: aborted, or (rollback) rolled_back with its members returned (how
// many devices were reassigned).
std::int64_t end_rollout(pqxx::work& tx, const Rollout& r, const std::string& actor,
                         const std::string& reason, bool rollback);

}  // namespace pylon::catalog::rollouts
