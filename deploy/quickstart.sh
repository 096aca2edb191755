#!/usr/bin/env bash
# Pylon quickstart, from a fresh Debian 12 machine: installs the packages, builds, and runs the
# main job on its embedded default (deploy/quickstart_demo.sh): pylon-registry on its own
# PostgreSQL cluster inside its data directory, keys and an admin token, the sample model
# published as a signed release with two hardware builds, a local pylon-agent enrolled, the
# release rolled out and answering a completion, a second release rolled out and rolled back.
#
# Usage: deploy/quickstart.sh            run it (again: stops the previous run and starts over)
#        deploy/quickstart.sh --stop     stop the registry, agent and PostgreSQL it left running
# The sandbox is build/quickstart/ ($PYLON_QUICKSTART_DIR overrides). As root, the embedded
# PostgreSQL runs as the postgres user, which must be able to reach it: when it cannot (a clone
# under /root), the sandbox is /var/lib/pylon-quickstart instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

sandbox() {
    local d=${PYLON_QUICKSTART_DIR:-$root/build/quickstart}
    if [ -z "${PYLON_QUICKSTART_DIR:-}" ] && [ "$(id -u)" -eq 0 ] &&
        ! runuser -u postgres -- test -x "$(dirname "$d")" 2>/dev/null; then
        d=/var/lib/pylon-quickstart
    fi
    echo "$d"
}

if [ "${1:-}" = --stop ]; then
    exec bash deploy/quickstart_demo.sh --stop "$(sandbox)"
fi
bash deploy/install-deps.sh
echo "quickstart: building (the first build takes several minutes)"
mkdir -p build
bash deploy/build.sh >build/quickstart-build.log 2>&1 || {
    tail -n 40 build/quickstart-build.log
    echo "quickstart: the build failed (whole log: build/quickstart-build.log)" >&2
    exit 1
}
dir=$(sandbox)
[ "$dir" = "$root/build/quickstart" ] || echo "quickstart: working in $dir"
exec bash deploy/quickstart_demo.sh "${PYLON_BUILD_DIR:-build}/bin" "$dir"
