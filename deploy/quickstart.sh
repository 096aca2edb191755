#!/usr/bin/env bash
# Pylon quickstart: installs dependencies, builds, and runs the main job on its embedded
# default. First the signing demo: generate a publisher key, sign the sample model (OpenSSF
# model-signing bundle), verify it, attach signed SLSA provenance, and watch a tampered copy be
# refused. Then the registry: a pylon-registry on a throwaway PostgreSQL (pg_virtualenv), a
# namespace delegated to a publisher key, the sample published with provenance and signature,
# listed, and pulled back through TUF with its signature verified (deploy/quickstart_registry.sh).
# Then the runtime: the model run on this CPU, plainly and with speculative decoding, and served
# over the OpenAI-compatible API. Work files go to build/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh >/dev/null
pylon=build/bin/pylon
work=build/quickstart
model_src=deploy/samples/stories260K-q8_0.gguf
rm -rf "$work"
mkdir -p "$work"
model=$work/stories260K-q8_0.gguf
cp "$model_src" "$model"

step() { printf '\n== %s\n' "$*"; }

step "1. Generate an ECDSA P-256 publisher key (the OpenSSF model-signing key type)"
$pylon key generate --type ecdsa-p256 --out "$work/publisher"

step "2. Sign the sample model (stories260K, Q8_0 GGUF)"
$pylon sign model "$model" --key "$work/publisher.key"

step "3. Verify the signature"
$pylon verify model "$model" --key "$work/publisher.pub"

step "4. Attest how the build was made (SLSA v1 provenance in a DSSE envelope) and verify it"
$pylon attest provenance "$model" --key "$work/publisher.key" \
    --base-model stories260K-f32.gguf \
    --base-model-digest sha256:5a9d168bd9d9e29302e0d604e9a4c97184057ad87661cd7e7cc4318fdeba6d9c \
    --quantizer llama.cpp@b4747 --quantization Q8_0 --target x86_64-avx2 \
    --out "$work/provenance.intoto.json"
$pylon verify attestation "$work/provenance.intoto.json" --key "$work/publisher.pub" --subject "$model"

step "5. Tamper with a copy (flip one bit) and verify again: it must be refused"
tampered=$work/tampered.gguf
cp "$model" "$tampered"
cp "$model.sig" "$tampered.sig"
byte=$(od -An -tu1 -j 4096 -N1 "$tampered" | tr -d ' ')
printf "$(printf '\\%03o' $(( byte ^ 1 )))" | dd of="$tampered" bs=1 seek=4096 conv=notrunc status=none
if $pylon verify model "$tampered" --key "$work/publisher.pub"; then
    echo "quickstart: FAILED — the tampered model was accepted" >&2
    exit 1
fi
echo "refused, as it should be"

step "6. The registry: publish the sample, list it, pull it back verified through TUF"
pg_virtualenv -t -v 15 bash deploy/quickstart_registry.sh build/bin "$work/registry" "$model_src"

step "7. Run the verified model on this CPU (greedy, 48 tokens)"
$pylon run -m "$model" -p "Once upon a time" -n 48 --temp 0

step "8. Again with speculative decoding (prompt lookup): the same tokens, acceptance in the timing line"
$pylon run -m "$model" -p "Once upon a time" -n 48 --temp 0 --lookup

step "9. Serve it: the OpenAI-compatible API on localhost, one chat completion with curl"
"$pylon" serve -m "$model" --port 0 --lookup 2> "$work/serve.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 1 100); do
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/serve.log" | head -n 1)
    if [ -n "$url" ] && curl -fs "$url/health" >/dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fsS "$url/health"; echo
curl -fsS "$url/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":32,"temperature":0}'
echo
kill "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
trap - EXIT

step "Done. Files are in $work/"
