#!/usr/bin/env bash
# Sets up and runs Pylon's whole test suite on a Debian 12 machine:
# installs the build dependencies, builds, starts a throwaway PostgreSQL 15 cluster with
# pg_virtualenv (which sets the PG* variables for the tests) and runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh
build_dir=${PYLON_BUILD_DIR:-build}
cd "$build_dir"
exec pg_virtualenv -t -v 15 ctest --output-on-failure -j "$(nproc)" "$@"
