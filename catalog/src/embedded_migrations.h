// The table of migrations generated at build time from migrations/*.sql
// (see migrations/embed_migrations.cmake).
#pragma once

#include <vector>

#include "pylon/catalog/migrations.h"

namespace pylon::catalog::detail {

const std::vector<Migration>& embedded_migration_table();

}  // namespace pylon::catalog::detail
