#!/usr/bin/env bash
# Runtime speed against llama.cpp on this machine kind: prefill pp512 and decode tg128 with 1
# and 2 threads for stories260K (F32, F16, Q8_0, Q4_0: tests/data/runtime) and the synth110M
# shape (Q4_0 with a Q8_0 output like ../shared/models/synth110M-q4_0.gguf, plus Q8_0 and F32,
# all written by `pylon model synth` with the real Llama-2 vocabulary), next to llama.cpp's
# llama-bench figures for the same files and shape (bench/runtime/reference/, copied from
# ../shared/models/bench: llama.cpp c392e509, same machine kind, same day).
#
# The machine is shared and noisy: every model is measured in ROUNDS rounds that alternate the
# models, and the summary reports medians over rounds. llama.cpp cannot be built here (no
# network), so its side is the mean of its two recorded runs. Also reports the weight bandwidth
# achieved by decode (bytes of weights read per token x tok/s) next to the machine's memory
# bandwidth (membw_bench).
#
# With LLAMA_BENCH=path/to/llama-bench (llama.cpp b4753 built for this CPU by
# bench/runtime/llama_ref/build_native.sh), every round also runs llama-bench on each model
# right after Pylon, and the summary adds those same-run figures and ratios.
#
# Usage: bench/runtime/run_runtime_bench.sh          (ROUNDS=3 REPS=3 by default)
# Output: build/bench-runtime/{results.jsonl,membw.txt,summary.md}
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${PYLON_BIN:-$ROOT/build/bin}"
OUT="${OUT:-$ROOT/build/bench-runtime}"
ROUNDS="${ROUNDS:-3}"
REPS="${REPS:-3}"
mkdir -p "$OUT/models"
DATA="$ROOT/tests/data/runtime"

for t in q4_0 q8_0 f32; do
    f="$OUT/models/synth110M-$t.gguf"
    [ -f "$f" ] && continue
    extra=()
    [ "$t" = q4_0 ] && extra=(--output-type q8_0)
    "$BIN/pylon" model synth --shape synth110M --type "$t" "${extra[@]}" \
        --vocab-from "$DATA/ggml-vocab-llama-spm.gguf" -o "$f"
done

MODELS=("$DATA"/stories260K-{f32,f16,q8_0,q4_0}.gguf "$OUT"/models/synth110M-{q4_0,q8_0,f32}.gguf)
: > "$OUT/results.jsonl"
: > "$OUT/llama.jsonl"
for round in $(seq 1 "$ROUNDS"); do
    for m in "${MODELS[@]}"; do
        echo "round $round: $(basename "$m")" >&2
        "$BIN/pylon" bench -m "$m" -t 1,2 -p 512 -n 128 -r "$REPS" --json |
            sed "s/^{/{\"round\":$round,/" >> "$OUT/results.jsonl"
        if [ -n "${LLAMA_BENCH:-}" ]; then
            "$LLAMA_BENCH" -m "$m" -t 1,2 -p 512 -n 128 -r "$REPS" -o jsonl 2>/dev/null |
                sed "s/^{/{\"round\":$round,/" >> "$OUT/llama.jsonl"
        fi
    done
done
"$BIN/membw_bench" -t 1,2 > "$OUT/membw.txt"

python3 - "$OUT" "$ROOT/bench/runtime/reference" <<'EOF'
import glob, json, statistics, sys
out, refdir = sys.argv[1], sys.argv[2]
ref = {}
for path in glob.glob(refdir + "/*.json"):
    for r in json.load(open(path)):
        test = "pp" if r["n_prompt"] > 0 else "tg"
        ref.setdefault((r["model_filename"], r["n_threads"], test), []).append(r["avg_ts"])
rows = {}
for line in open(out + "/results.jsonl"):
    r = json.loads(line)
    key = (r["model"], r["threads"])
    e = rows.setdefault(key, {"pp": [], "tg": [], "bytes": r["weight_bytes_per_token"]})
    e["pp"].append(r["pp_tok_s"])
    e["tg"].append(r["tg_tok_s"])
here = {}  # llama.cpp measured in this run (LLAMA_BENCH): medians over rounds
for line in open(out + "/llama.jsonl"):
    r = json.loads(line)
    test = "pp" if r["n_prompt"] > 0 else "tg"
    model = r["model_filename"].rsplit("/", 1)[-1]
    here.setdefault((model, r["n_threads"], test), []).append(r["avg_ts"])
membw = {}
for line in open(out + "/membw.txt"):
    f = line.split()
    if len(f) >= 4 and f[0] == "read":
        membw[int(f[1])] = float(f[3])
lines = ["| model | threads | pp512 t/s | llama.cpp | ratio | llama.cpp here | ratio here | tg128 t/s | llama.cpp | ratio | llama.cpp here | ratio here | decode weight GB/s | read GB/s (membw) |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for (model, th), e in rows.items():
    pp, tg = statistics.median(e["pp"]), statistics.median(e["tg"])
    rpp = ref.get((model, th, "pp")); rtg = ref.get((model, th, "tg"))
    rpp = statistics.mean(rpp) if rpp else None
    rtg = statistics.mean(rtg) if rtg else None
    fmt = lambda v: f"{v:.0f}" if v is not None else "–"
    ratio = lambda a, b: f"{a / b:.2f}x" if b else "–"
    hpp = here.get((model, th, "pp")); htg = here.get((model, th, "tg"))
    hpp = statistics.median(hpp) if hpp else None
    htg = statistics.median(htg) if htg else None
    gbs = e["bytes"] * tg / 1e9
    lines.append(f"| {model} | {th} | {pp:.0f} | {fmt(rpp)} | {ratio(pp, rpp)} | {fmt(hpp)} | {ratio(pp, hpp)} | "
                 f"{tg:.0f} | {fmt(rtg)} | {ratio(tg, rtg)} | {fmt(htg)} | {ratio(tg, htg)} | "
                 f"{gbs:.2f} | {membw.get(th, float('nan')):.2f} |")
open(out + "/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
