#!/usr/bin/env bash
# A no-change `scimitar sync` re-run at scale, two builds side by side (issue 17: a re-run with
# no change at 100,000 users writes nothing in under 10 s).
#
# Usage: bench/sync_rerun.sh KEPT_DIR A B [ROUNDS]
#
# KEPT_DIR is a directory `BENCH_KEEP=1 bench/sync_scale.sh N` kept (source.db, target.db, the
# job's state.db, job.toml and the tokens), after its initial sync. For each round (default 2),
# A then B: serves source.db and target.db with that build on the ports job.toml names, runs
# `scimitar sync apply` with it, and prints the seconds, the writes (must be 0) and the CPU
# seconds each of the three processes spent, then stops the servers. Last: the ratio A/B of the
# seconds, round by round. The databases are the same for every run: nothing is written.
set -euo pipefail

[[ $# -ge 3 ]] || { echo "usage: $0 KEPT_DIR A B [ROUNDS]" >&2; exit 2; }
kept="$(cd "$1" && pwd)"
builds=("$2" "$3")
rounds="${4:-2}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for file in source.db target.db state.db job.toml; do
    [[ -e "$kept/$file" ]] || { echo "no $kept/$file" >&2; exit 1; }
done
port_of() { grep -A3 "^\[$1\]" "$kept/job.toml" | sed -n 's|^url = "http://127.0.0.1:\([0-9]*\)/.*|\1|p'; }
source_port="$(port_of source)"
target_port="$(port_of target)"
cpu_seconds() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
pids=()
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; pids=(); }
trap stop_all EXIT

# Runs one build once; prints its line and sets took.
run_once() {
    local binary="$1" name
    for name in source target; do
        local port="$source_port"
        [[ "$name" == target ]] && port="$target_port"
        SCIMITAR_LOG=warn "$binary" serve --listen "127.0.0.1:$port" \
            --database "sqlite://$kept/$name.db" >/dev/null 2>"$kept/rerun-$name.stderr" &
        pids+=($!)
        python3 "$repo_root/bench/seed.py" wait "http://127.0.0.1:$port/scim/v2" 600
    done
    local source_before target_before started status=0
    source_before="$(cpu_seconds "${pids[0]}")"
    target_before="$(cpu_seconds "${pids[1]}")"
    started="$(date +%s.%N)"
    SCIMITAR_LOG=warn /usr/bin/time -f "%U %S" -o "$kept/rerun.time" \
        "$binary" sync apply --config "$kept/job.toml" >"$kept/rerun.out" 2>"$kept/rerun.err" \
        || status=$?
    took="$(python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$started")"
    [[ "$status" == 0 ]] || { tail -5 "$kept/rerun.err" >&2; exit 1; }
    local source_cpu target_cpu client_cpu
    source_cpu="$(python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.1f}')" "$(cpu_seconds "${pids[0]}")" "$source_before")"
    target_cpu="$(python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.1f}')" "$(cpu_seconds "${pids[1]}")" "$target_before")"
    client_cpu="$(awk '{printf "%.1f", $1 + $2}' "$kept/rerun.time")"
    echo "$binary: ${took} s, $(grep -E '^[0-9]+ writes' "$kept/rerun.out" | tail -1); CPU s: source $source_cpu, target $target_cpu, client $client_cpu (load $(cut -d' ' -f1 /proc/loadavg))"
    stop_all
}

ratios=()
for round in $(seq 1 "$rounds"); do
    run_once "${builds[0]}"; a="$took"
    run_once "${builds[1]}"; b="$took"
    ratios+=("$(python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$a" "$b")")
done
echo "A/B by round: ${ratios[*]}"
