# shellcheck shell=bash disable=SC2154  # pylon, work, data, url, bin: set by start_registry
# Shared by the device-agent end-to-end tests and benchmark (sourced after
# tests/registry_e2e/lib.sh and start_registry):
#
#   acme_namespace MODEL...          a publisher key ($work/acme.key), namespace acme delegated
#                                    to it, and the models acme/MODEL (MIT)
#   publish_build NAME@VERSION FILE [KEY [ARCH [ISA]]]
#                                    publish acme/NAME@VERSION with one build "cpu" of FILE
#                                    (signed with KEY, default $work/acme.key; x86_64; no ISA)
#   enroll_device STATE_DIR          fleet edge, an enrolment token, pylon-agent enrolled as
#                                    edge/dev-1 into STATE_DIR; sets agent (the binary)

acme_namespace() {
    "$pylon" key generate --out "$work/acme" >/dev/null
    "$pylon" namespace create acme --publisher-key "$work/acme.pub" \
        --targets-key "$data/tuf/offline-keys/targets.key" >/dev/null
    local m
    for m in "$@"; do "$pylon" models create "acme/$m" --license MIT >/dev/null; done
}

publish_build() {
    local rel=$1 file=$2 key=${3:-$work/acme.key} arch=${4:-x86_64} isa=()
    [[ -n "${5:-}" ]] && isa=(--isa "$5")
    mkdir -p "$work/m-$rel" && cp "$file" "$work/m-$rel/model.gguf"
    "$pylon" publish "acme/$rel" --build cpu --arch "$arch" "${isa[@]}" --min-ram-mb 16 \
        --format gguf --quantization Q8_0 --file "$work/m-$rel/model.gguf" --key "$key" >/dev/null
}

enroll_device() {
    agent=$bin/pylon-agent
    "$pylon" fleet create edge >/dev/null
    "$pylon" fleet enrollment-token edge --out "$work/enrol.token" >/dev/null
    "$agent" enroll --registry "$url" --token-file "$work/enrol.token" --name dev-1 \
        --state-dir "$1" >/dev/null
}
