#!/usr/bin/env bash
# Installs every Debian 12 package Pylon needs to build, test and run.
# Idempotent: packages already present are left alone; `apt-get update` runs once per call,
# and only when something is missing. Works as root or through sudo.
set -euo pipefail

packages=(
    build-essential cmake ninja-build ccache pkg-config git ca-certificates
    libboost1.81-dev libssl-dev openssl libsodium-dev
    libpqxx-dev libpq-dev postgresql-15 postgresql-common
    nlohmann-json3-dev catch2 libcli11-dev libspdlog-dev libfmt-dev libtomlplusplus-dev
)
# curl drives the registry's REST API in the end-to-end tests (tests/registry_e2e,
# tests/interop/tuf-js/registry_run.sh).
packages+=(curl)
# faketime moves the device agent's clock past metadata expiry in its security test
# (tests/agent_e2e/security_test.sh).
packages+=(faketime)
# python3 runs the docs check (tests/docs/) and reads JSON in the end-to-end tests.
packages+=(python3)
# nginx runs the TLS reverse-proxy example in front of a real registry, and systemd's
# systemd-analyze checks the units (tests/deploy/).
packages+=(nginx systemd)
# clang-14 and its libFuzzer runtime (libclang_rt.fuzzer in libclang-rt-14-dev) build and run
# the real libFuzzer targets (fuzz/run_libfuzzer.sh, CTest label `fuzz`).
packages+=(clang-14 libclang-rt-14-dev)
# Node.js and npm run the tuf-js interop test (tests/interop/tuf-js). A Node.js installed some
# other way (e.g. NodeSource's package, which bundles npm) is left alone.
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "install-deps.sh: needs root or sudo to install packages" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps.sh: all ${#packages[@]} packages already installed"
    exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts nginx's default site on port 80 when it is installed: the tests run their own
# nginx, so a freshly installed one is stopped and disabled again.
if [[ " ${missing[*]} " == *" nginx "* ]] && [ -d /run/systemd/system ]; then
    "${sudo[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true
fi
