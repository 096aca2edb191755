#!/usr/bin/env bash
# End to end: a real pylon-registry (PostgreSQL from the PG* variables, as pg_virtualenv sets
# them) and the pylon CLI: login, delegate a namespace, publish the stories260K sample with
# provenance and model signature, list, show, pull (TUF-verified download + OMS signature check),
# and compare the bytes; a fleet, an enrolment token, pylon-agent enrolling and checking its
# director document before and after an assignment. Then the refusals: a forged device
# credential, a publish signed with a key the namespace was not delegated to, and a pull of a
# file tampered with in the blob store.
#
# Usage: roundtrip_test.sh BIN_DIR WORK_DIR SAMPLE_MODEL      (exit 77: skipped, no PostgreSQL)
set -euo pipefail
bin=$1 sample=$3
source "$(dirname "$0")/lib.sh"
start_registry "$1" "$2"
"$pylon" key generate --out "$work/acme"
"$pylon" key generate --out "$work/mallory"
"$pylon" namespace create acme --publisher-key "$work/acme.pub" \
    --targets-key "$data/tuf/offline-keys/targets.key"
"$pylon" models create acme/tiny --license MIT --description "stories260K sample"
mkdir -p "$work/model" && cp "$sample" "$work/model/model.gguf"
digest=$(sha256sum "$work/model/model.gguf" | cut -d' ' -f1)
publish() {  # VERSION KEY
    "$pylon" publish "acme/tiny@$1" --build x86_64-q8_0 --arch x86_64 --isa avx2 \
        --min-ram-mb 64 --format gguf --quantization Q8_0 --file "$work/model/model.gguf" \
        --key "$2" --base-model-digest "sha256:$digest" --quantizer llama.cpp \
        --quantizer-version b4747
}
publish 1.0.0 "$work/acme.key"
"$pylon" models list | grep -q "acme/tiny" || fail "models list does not show acme/tiny"
"$pylon" models show acme/tiny --version 1.0.0 | grep -q "published" || fail "not published"
"$pylon" pull acme/tiny@1.0.0 --target x86_64-q8_0 --out "$work/pulled"
cmp "$work/pulled/model.gguf" "$sample" || fail "pulled bytes differ"

# Fleets and enrolment tokens through the CLI (devices enrol with pylon-agent).
"$pylon" fleet create edge --description "e2e fleet"
"$pylon" fleet list | grep -q "^edge " || fail "fleet list does not show edge"
"$pylon" fleet enrollment-token edge --max-uses 3 --out "$work/enrol.token"
grep -q '^pye_' "$work/enrol.token" || fail "no enrolment token written"
[[ $(stat -c %a "$work/enrol.token") == 600 ]] || fail "enrolment token file is not 0600"
"$pylon" devices list --fleet edge | grep -q "^ID" || fail "devices list failed"
if "$pylon" devices assign edge/nosuch acme/tiny@1.0.0 2>"$work/assign.err"; then
    fail "assigning to a missing device succeeded"
fi
grep -q "no device edge/nosuch" "$work/assign.err" || { cat "$work/assign.err"; fail "no error"; }

# A device enrols with pylon-agent, is assigned the release, and its verified director
# document names the build for its hardware.
agent=$bin/pylon-agent
state=$work/agent-state
# The director key pinned out of band: a wrong one refuses the enrolment, the right one passes.
"$pylon" key generate --out "$work/not-director" >/dev/null
if "$agent" enroll --registry "$url" --token-file "$work/enrol.token" --name dev-0 \
    --state-dir "$work/agent-wrong" --director-key "$work/not-director.pub" 2>"$work/pin.err"; then
    fail "an enrolment with the wrong director key succeeded"
fi
grep -q "is not the one given with --director-key" "$work/pin.err" || { cat "$work/pin.err"; fail "no pin error"; }
[[ ! -e "$work/agent-wrong/identity/credential" ]] || fail "a credential was stored despite the pin"
"$pylon" key public "$data/tuf/keys/director.key" > "$work/director.pub"
"$agent" enroll --registry "$url" --token-file "$work/enrol.token" --name dev-1 --state-dir "$state" \
    --director-key "$work/director.pub"
[[ $(stat -c %a "$state") == 700 ]] || fail "state directory is not 0700"
for f in identity/device.key identity/credential identity/identity.json; do
    [[ $(stat -c %a "$state/$f") == 600 ]] || fail "$f is not 0600"
done
grep -q '^pyd_' "$state/identity/credential" || fail "no device credential stored"
if grep -rqF "$(cat "$work/enrol.token")" "$state"; then fail "the enrolment token was stored"; fi
"$agent" status --state-dir "$state" | grep -q "edge/dev-1" || fail "status shows no identity"
if "$agent" enroll --registry "$url" --token-file "$work/enrol.token" --state-dir "$state" \
    2>"$work/enrol2.err"; then fail "a second enrolment succeeded"; fi
grep -q "already enrolled" "$work/enrol2.err" || fail "no 'already enrolled' error"
"$agent" check --state-dir "$state" | grep -q "install: nothing (no release is assigned" ||
    fail "unassigned device: unexpected director document"
"$pylon" devices assign edge/dev-1 acme/tiny@1.0.0
"$agent" check --state-dir "$state" | grep -q "install: acme/tiny/1.0.0/x86_64-q8_0/model.gguf" ||
    fail "the director document does not name the build"
"$pylon" devices list --fleet edge | grep -q "dev-1 .*acme/tiny@1.0.0" || fail "devices list"
"$agent" update-once --state-dir "$state" | tee "$work/update.out"
grep -q "^installed: acme/tiny/1.0.0/x86_64-q8_0/model.gguf in slot a" "$work/update.out" ||
    fail "the agent did not install 1.0.0"
cmp "$state/current/model.gguf" "$sample" || fail "the active model differs from the published one"
"$agent" status --state-dir "$state" | grep -q "state: *healthy" || fail "agent not healthy"
"$pylon" devices list --fleet edge | grep -q "dev-1 .*healthy .*acme/tiny@1.0.0" ||
    fail "the registry does not show the device running 1.0.0"
"$agent" update-once --state-dir "$state" | grep -q "^nothing: .* is active" ||
    fail "a second cycle did something"
cp "$state/identity/credential" "$work/credential.bak"
echo "pyd_forged" > "$state/identity/credential"
if "$agent" check --state-dir "$state" 2>"$work/check.err"; then fail "a forged credential worked"; fi
grep -q "HTTP 401" "$work/check.err" || { cat "$work/check.err"; fail "no 401 for a forged credential"; }
cp "$work/credential.bak" "$state/identity/credential"

# A key the namespace was not delegated to: the attestation is refused, nothing is published.
if publish 1.0.1 "$work/mallory.key" 2>"$work/mallory.err"; then fail "publish with a foreign key succeeded"; fi
grep -q "bad_signature\|HTTP 422" "$work/mallory.err" || { cat "$work/mallory.err"; fail "no signature error"; }
"$pylon" models show acme/tiny --version 1.0.1 | grep -q "draft" || fail "1.0.1 is not left a draft"

# Tampered storage: flip a byte of the stored blob; the TUF-verified pull must refuse it and leave
# nothing that looks complete.
blob=$(find "$data/blobs" -path "*sha256*" -name "$digest" -type f | head -1)
[[ -n "$blob" ]] || fail "blob file not found"
printf 'X' | dd of="$blob" bs=1 seek=1000 conv=notrunc status=none
if "$pylon" pull acme/tiny@1.0.0 --target x86_64-q8_0 --out "$work/pulled2" 2>"$work/pull.err"; then
    fail "pull of a tampered blob succeeded"
fi
cat "$work/pull.err"
[[ ! -e "$work/pulled2/model.gguf" ]] || fail "a tampered file was left in the output directory"
echo "registry round trip: OK"
