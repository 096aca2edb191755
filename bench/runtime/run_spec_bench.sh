#!/usr/bin/env bash
# Speculative decoding against plain decoding, measured alternately in one run (the machine is
# shared and noisy: each round runs plain and speculative back to back for every case, plain
# first in odd rounds and speculative first in even ones; the summary reports medians over
# rounds, the ratio of the medians, and the median of each round's own ratio). Greedy
# decoding, so every speculative run's tokens are also checked to equal the plain run's.
#
# Cases:
#   pair-q4_0, pair-q8_0  the synthetic draft/target pair (`pylon model synth-pair`, defaults:
#                         target 22 layers = ~11x the draft's bytes, ~80% greedy agreement),
#                         --draft; target >= 8x draft, bandwidth-bound
#   pair-low              the same pair written with divergence 0.1 (low acceptance): worst case
#   pair-big              a Q4_0 pair whose target (64 extra layers, 478 MB, ~32x the draft,
#                         divergence 0.007: ~75% acceptance) outgrows a large L3 cache (300 MiB
#                         on some Xeons, where pair-q4_0's 160 MB target stays cache-resident
#                         and its decode is not bandwidth-bound)
#   lookup-kjv            prompt lookup on an extraction-style prompt (a held-out KJV passage,
#                         then its opening again) with the trained kjv10M Q8_0 model
#   lookup-kjv-q4_0       the same with kjv10M Q4_0
#   lookup-kjv-f32        the same with kjv10M F32 (42 MiB: the one trained model here whose
#                         decode is bandwidth-bound, as a device's models are)
#   draft-kjv             the trained kjv10M / kjv640K pair (~40% agreement): real worst case
# The kjv cases need ../shared/models/trained (SHARED_MODELS=...); they are skipped without it.
#
# Usage: bench/runtime/run_spec_bench.sh   (ROUNDS=5 THREADS="1 2" N=256 by default)
# Output: build/bench-spec/{results.jsonl,summary.md}
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${PYLON_BIN:-$ROOT/build/bin}"
OUT="${OUT:-$ROOT/build/bench-spec}"
ROUNDS="${ROUNDS:-5}"
THREADS="${THREADS:-1 2}"
N="${N:-256}"
SHARED_MODELS="${SHARED_MODELS:-$ROOT/../shared/models}"
CASES="${CASES:-pair-q4_0 pair-q8_0 pair-low pair-big lookup-kjv lookup-kjv-q4_0 lookup-kjv-f32 draft-kjv}"
DATA="$ROOT/tests/data/runtime"
mkdir -p "$OUT/models"

pair() {  # pair NAME TYPE DIVERGENCE [EXTRA_LAYERS]
    local t="$OUT/models/$1-target.gguf" d="$OUT/models/$1-draft.gguf"
    [ -f "$t" ] && [ -f "$d" ] && return 0
    "$BIN/pylon" model synth-pair --type "$2" --divergence "$3" --extra-layers "${4:-20}" \
        --vocab-from "$DATA/stories260K-f32.gguf" --target "$t" --draft "$d" --force >&2
}

KJV="$SHARED_MODELS/trained"
declare -A MODEL SPEC PROMPT
for c in $CASES; do
    case "$c" in
        pair-q4_0) pair pair-q4_0 q4_0 0.025 ;;
        pair-q8_0) pair pair-q8_0 q8_0 0.025 ;;
        pair-low) pair pair-low q8_0 0.1 ;;
        pair-big) pair pair-big q4_0 0.007 64 ;;
    esac
    case "$c" in
        pair-*)
            MODEL[$c]="$OUT/models/$c-target.gguf"
            SPEC[$c]="--draft $OUT/models/$c-draft.gguf"
            PROMPT[$c]="-p Once upon a time, there was a little robot who"
            ;;
        lookup-kjv | lookup-kjv-q4_0 | lookup-kjv-f32 | draft-kjv)
            if [ ! -f "$KJV/kjv10M-q8_0.gguf" ]; then
                echo "skipping $c: no $KJV/kjv10M-q8_0.gguf" >&2
                continue
            fi
            MODEL[$c]="$KJV/kjv10M-q8_0.gguf"
            [ "$c" = lookup-kjv-q4_0 ] && MODEL[$c]="$KJV/kjv10M-q4_0.gguf"
            [ "$c" = lookup-kjv-f32 ] && MODEL[$c]="$KJV/kjv10M-f32.gguf"
            if [ "$c" != draft-kjv ]; then
                SPEC[$c]="--lookup"
                # An extraction-style prompt: a passage, then its opening again ("repeat it").
                head -c 600 "$KJV/src/kjv-heldout.txt" > "$OUT/passage.txt"
                { cat "$OUT/passage.txt"; printf ' '; head -c 100 "$OUT/passage.txt"; } \
                    > "$OUT/extract_prompt.txt"
                PROMPT[$c]="-f $OUT/extract_prompt.txt"
            else
                SPEC[$c]="--draft $KJV/kjv640K-q8_0.gguf"
                PROMPT[$c]="-p And the whole earth was of one language,"
            fi
            ;;
        *) echo "unknown case $c" >&2; exit 2 ;;
    esac
done

: > "$OUT/results.jsonl"
for round in $(seq 1 "$ROUNDS"); do
    for c in $CASES; do
        [ -n "${MODEL[$c]:-}" ] || continue
        for t in $THREADS; do
            # Alternate which mode goes first, so drift within a round favours neither.
            modes="plain spec"
            [ $((round % 2)) -eq 0 ] && modes="spec plain"
            for mode in $modes; do
                extra=()
                [ "$mode" = spec ] && read -r -a extra <<< "${SPEC[$c]}"
                read -r -a prompt <<< "${PROMPT[$c]}"
                if [ "${prompt[0]}" = -p ]; then prompt=(-p "${prompt[*]:1}"); fi
                echo "round $round: $c t=$t $mode" >&2
                "$BIN/pylon" run -m "${MODEL[$c]}" "${prompt[@]}" -n "$N" --temp 0 -t "$t" \
                    --ignore-eos --json "${extra[@]}" 2>/dev/null |
                    python3 -c "import json,sys; j=json.load(sys.stdin); j.update(round=$round, case='$c', threads=$t, mode='$mode'); print(json.dumps(j))" \
                    >> "$OUT/results.jsonl"
            done
        done
    done
done

python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(out + "/results.jsonl")]
groups = {}
for r in rows:
    groups.setdefault((r["case"], r["threads"]), {}).setdefault(r["mode"], []).append(r)
lines = ["| case | threads | plain tok/s (median) | speculative tok/s (median) | speed-up | per-round speed-ups (median) | acceptance | mean accepted length | same tokens |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
for (case, t), g in groups.items():
    plain = statistics.median(r["decode_tok_s"] for r in g["plain"])
    spec = statistics.median(r["decode_tok_s"] for r in g["spec"])
    # Each round's speculative run against the plain run next to it in time.
    by_round = {}
    for r in g["plain"] + g["spec"]:
        by_round.setdefault(r["round"], {})[r["mode"]] = r["decode_tok_s"]
    per_round = sorted(v["spec"] / v["plain"] for v in by_round.values() if len(v) == 2)
    per_round_s = " ".join(f"{x:.2f}" for x in per_round)
    s = [r["speculative"] for r in g["spec"]]
    acc = sum(x["accepted"] for x in s) / max(1, sum(x["drafted"] for x in s))
    mal = statistics.median(x["mean_accepted_length"] for x in s)
    same = all(p["generated_token_ids"] == q["generated_token_ids"] for p in g["plain"] for q in g["spec"])
    lines.append(f"| {case} | {t} | {plain:.1f} | {spec:.1f} | {spec / plain:.2f}x | {statistics.median(per_round):.2f}x ({per_round_s}) | {100 * acc:.1f}% | {mal:.2f} | {'yes' if same else 'NO'} |")
text = "\n".join(lines) + "\n"
open(out + "/summary.md", "w").write(text)
print(text)
PY
