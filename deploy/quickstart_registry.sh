#!/usr/bin/env bash
# The registry part of the quickstart (run by deploy/quickstart.sh under pg_virtualenv, which
# provides a throwaway PostgreSQL through the PG* variables): publish, list, pull; then a device
# enrolled with pylon-agent installs the release its operator assigns.
# Usage: quickstart_registry.sh BIN_DIR WORK_DIR MODEL_FILE
set -euo pipefail
bin=$1 work=$2 model_src=$3
rm -rf "$work" && mkdir -p "$work"
data=$work/data
export PYLON_CONFIG_DIR=$work/config
step() { printf '\n-- %s\n' "$*"; }

step "start pylon-registry (migrations, TUF bootstrap, admin token in $data/admin.token)"
"$bin/pylon-registry" --listen 127.0.0.1:0 --data-dir "$data" >"$work/registry.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
port=
for _ in $(seq 300); do
    port=$(sed -n 's/.*registry listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/registry.log")
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/registry.log"; exit 1; }
    sleep 0.1
done
[[ -n "$port" ]] || { cat "$work/registry.log"; exit 1; }
url=http://127.0.0.1:$port
echo "registry at $url"
pylon=$bin/pylon

step "log in with the bootstrap admin token (trusts the registry's TUF root on first use)"
"$pylon" login --registry "$url" --token-file "$data/admin.token"

step "create namespace acme, delegated in TUF to a new publisher key (signed with the offline targets key)"
"$pylon" key generate --out "$work/acme"
"$pylon" namespace create acme --publisher-key "$work/acme.pub" \
    --targets-key "$data/tuf/offline-keys/targets.key"
"$pylon" models create acme/stories260k --license MIT --description "TinyStories 260K, Q8_0"

step "publish acme/stories260k@1.0.0: upload, provenance, model signature, signed TUF targets"
mkdir -p "$work/model" && cp "$model_src" "$work/model/model.gguf"
"$pylon" publish acme/stories260k@1.0.0 --build x86_64-q8_0 --arch x86_64 --isa sse2 \
    --min-ram-mb 64 --format gguf --quantization Q8_0 --file "$work/model/model.gguf" \
    --key "$work/acme.key" --quantizer llama.cpp --quantizer-version b4747 \
    --base-model-digest sha256:5a9d168bd9d9e29302e0d604e9a4c97184057ad87661cd7e7cc4318fdeba6d9c

step "list and show"
"$pylon" models list
"$pylon" models show acme/stories260k --version 1.0.0

step "pull it back: TUF-verified download, then the OMS signature with the delegated key"
"$pylon" pull acme/stories260k@1.0.0 --target x86_64-q8_0 --out "$work/pulled"
cmp "$work/pulled/model.gguf" "$model_src"
echo "pulled bytes are identical to the published file"

step "a device: enrol pylon-agent with a fleet enrolment token (Ed25519 identity, proof of possession)"
"$pylon" fleet create demo
"$pylon" fleet enrollment-token demo --max-uses 1 --out "$work/enrol.token"
"$bin/pylon-agent" enroll --registry "$url" --token-file "$work/enrol.token" --name device-1 \
    --state-dir "$work/agent"

step "assign the release; the agent verifies its director document and the target through TUF, downloads, verifies, stages, health-checks and activates it"
"$pylon" devices assign demo/device-1 acme/stories260k@1.0.0
"$bin/pylon-agent" update-once --state-dir "$work/agent"
"$bin/pylon-agent" status --state-dir "$work/agent"
cmp "$work/agent/current/model.gguf" "$model_src"
"$pylon" devices list --fleet demo
