#!/bin/bash
# Trigger -> RSS drop benchmark of the PSI controller (docs/BENCHMARKS.md "PSI").
#
#   bench/runtime/run_psi_bench.sh BUILD_DIR [REPS]
#
# 1. Real triggers: psi_probe --reps REPS inside a fresh memory-limited cgroup (128 MiB, v1
#    memory controller, or v2 memory.max on a pure v2 system; a v2 child for memory.pressure
#    where cgroup2 is mounted) while it thrashes the page cache with a sparse 384 MiB file; each
#    repetition arms a new trigger ("some 150000 2000000" + "full 100000 2000000") on a freshly
#    filled KV cache and times trigger firing -> RSS drop. Needs root.
# 2. On-demand events (psi_bench): the same path after the kernel, through a FIFO, many times.
set -euo pipefail
build=${1:?usage: run_psi_bench.sh BUILD_DIR [REPS]}
reps=${2:-20}
work=$(mktemp -d /tmp/pylon-psi-bench.XXXXXX)
name=pylon-psi-bench-$$
v1= v2=
cleanup() {
    for d in "$v1" "$v2"; do [ -n "$d" ] && rmdir "$d" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
mem=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
own2=$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)
if [ -n "$mem" ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    v1=/sys/fs/cgroup/memory${mem%/}/$name
    mkdir "$v1" && echo $((128 << 20)) > "$v1/memory.limit_in_bytes"
fi
for root in /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [ "$(stat -f -c %T "$root" 2>/dev/null)" = cgroup2fs ]; then
        v2=$root${own2%/}/$name
        mkdir "$v2"
        [ -z "$v1" ] && echo $((128 << 20)) > "$v2/memory.max"
        break
    fi
done
pressure=/proc/pressure/memory
[ -n "$v2" ] && pressure=$v2/memory.pressure
truncate -s 384M "$work/big.bin"
echo "== real PSI triggers in a 128 MiB cgroup ($pressure), $reps repetitions"
sh -c "for d in $v1 $v2; do echo \$\$ > \$d/cgroup.procs; done; \
    exec $build/bin/psi_probe --file $work/big.bin --pressure $pressure --threads 2 \
    --reps $reps --seconds 20" | tail -1
[ -n "$v1" ] && grep -E '^oom_kill ' "$v1/memory.oom_control"
echo "== on-demand events (FIFO), 100 repetitions"
"$build/bin/psi_bench" --reps 100 --threads 2
