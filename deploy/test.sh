#!/usr/bin/env bash
# Sets up and runs Pylon's whole test suite on a Debian 12 machine:
# installs the build dependencies, builds, starts a throwaway PostgreSQL 15 cluster with
# pg_virtualenv (which sets the PG* variables for the tests) and runs every test with ctest.
# Extra arguments go to ctest (e.g. -L unit, -R signing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh
build_dir=${PYLON_BUILD_DIR:-build}
cd "$build_dir"
log=ctest.log
status=0
pg_virtualenv -t -v 15 bash -c 'set -o pipefail; ctest --output-on-failure -j "$(nproc)" "$@" 2>&1 | tee "'"$log"'"' \
    ctest "$@" || status=$?
# pg_virtualenv prints its own lines after ctest's; repeat ctest's summary so that it closes the run.
echo
sed -n '/tests passed\|tests failed out of/,$p' "$log"
exit "$status"
