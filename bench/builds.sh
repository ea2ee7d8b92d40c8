#!/usr/bin/env bash
# Two Scimitar builds side by side: the same wrk load against each, alternated A B A B, with
# the ratio of each pair. For a change that must not cost speed ("within noise of today's
# figures"): build the commit before it somewhere else and pass its binary as B.
#
# Usage: bench/builds.sh BINARY_A BINARY_B
#
# For each round (BENCH_ROUNDS, default 3), each binary in turn (A first in odd rounds, B
# first in even ones) is started on a fresh database of the backend BENCH_BACKEND (sqlite, the
# default, in a temporary directory under bench/.work; or postgres, a scratch database
# scimitar_builds_<pid> on BENCH_POSTGRES_URL), seeded with BENCH_USERS users through /Bulk
# (bench/seed.py), and measured with wrk for each operation: GET /Users/{id}
# (bench/wrk/get_user.lua) and POST /Users (bench/wrk/post_user.lua). Every measured run is
# preceded by an uncounted warm-up. The table gives each round's requests per second for A and
# B and the ratio A/B; the last lines, the median ratio per operation, and the server's CPU
# time per request (user and system, from /proc, over the measured run) with its median ratio:
# on a machine shared with other work, throughput moves with the load but CPU per request much
# less. Everything stays on 127.0.0.1; servers and scratch databases are removed on exit.
#
# Settings: BENCH_CONNECTIONS [8], BENCH_DURATION [10s], BENCH_WARMUP [2s], BENCH_ROUNDS [3],
# BENCH_USERS [1000], BENCH_BACKEND [sqlite], BENCH_POSTGRES_URL
# [postgres://postgres@127.0.0.1:5432/test], BENCH_LOG [warn, as bench/run; info measures the
# one log line per request].
set -euo pipefail

[[ $# -eq 2 ]] || { sed -n '2,24p' "$0"; exit 2; }
binary_a="$(realpath "$1")"
binary_b="$(realpath "$2")"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_dir="$repo_root/bench"
connections="${BENCH_CONNECTIONS:-8}"
duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-2s}"
rounds="${BENCH_ROUNDS:-3}"
users="${BENCH_USERS:-1000}"
backend="${BENCH_BACKEND:-sqlite}"
postgres_url="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
log_filter="${BENCH_LOG:-warn}"
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install -y wrk)" >&2; exit 1; }

mkdir -p "$bench_dir/.work"
work_dir="$(mktemp -d "$bench_dir/.work/builds.XXXXXX")"
scratch_db="scimitar_builds_$$"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    if [[ "$backend" == postgres ]]; then
        psql "$postgres_url" -qc "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$work_dir"
}
trap cleanup EXIT

# start BINARY: a fresh database, a server on a free port; sets base, token, server_pid.
start() {
    local binary="$1" database
    if [[ "$backend" == postgres ]]; then
        psql "$postgres_url" -qc "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" >/dev/null
        psql "$postgres_url" -qc "CREATE DATABASE $scratch_db" >/dev/null
        database="${postgres_url%/*}/$scratch_db"
    else
        rm -rf "$work_dir/db" && mkdir -p "$work_dir/db"
        database="sqlite://$work_dir/db/scimitar.db"
    fi
    token="$("$binary" token create --database "$database")"
    SCIMITAR_LOG="$log_filter" "$binary" serve --listen 127.0.0.1:0 --database "$database" \
        2>"$work_dir/server.log" >/dev/null &
    server_pid=$!
    local address=""
    for _ in $(seq 1 100); do
        address="$(sed -n 's/^scimitar listening on http:\/\///p' "$work_dir/server.log")"
        [[ -n "$address" ]] && break
        sleep 0.1
    done
    [[ -n "$address" ]] || { cat "$work_dir/server.log" >&2; exit 1; }
    base="http://$address/scim/v2"
    BENCH_TOKEN="$token" python3 "$bench_dir/seed.py" users "$base" seed "$users" "$work_dir/ids" >/dev/null
}

stop() {
    kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# The server's CPU time so far (user and system), in clock ticks.
server_cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$server_pid/stat"
}

# measure SCRIPT ARGS...: requests per second of one measured wrk run (after a warm-up), and
# the server's CPU microseconds per request during it.
measure() {
    local script="$1"
    shift
    local wrk_argv=(wrk -t1 -c"$connections" -H "Authorization: Bearer $token"
        -H "Content-Type: application/scim+json" -s "$bench_dir/wrk/$script")
    BENCH_WRK_DIR="$bench_dir/wrk" BENCH_WRK_PHASE=warmup "${wrk_argv[@]}" -d"$warmup" "$base" -- "$@" >/dev/null 2>&1 || true
    local before after output
    before="$(server_cpu_ticks)"
    output="$(BENCH_WRK_DIR="$bench_dir/wrk" BENCH_WRK_PHASE=measured "${wrk_argv[@]}" -d"$duration" "$base" -- "$@")"
    after="$(server_cpu_ticks)"
    awk -v ticks="$((after - before))" -v hz="$(getconf CLK_TCK)" '
        /Requests\/sec/ {rate = $2}
        /requests in/ {requests = $1}
        /Non-2xx/ {print "non-2xx responses: " $0 > "/dev/stderr"}
        END {printf "%s %.2f\n", rate, ticks * 1e6 / hz / requests}' <<<"$output"
}

results="$work_dir/results"
for round in $(seq 1 "$rounds"); do
    order=(a b)
    ((round % 2 == 0)) && order=(b a)
    for which in "${order[@]}"; do
        binary="$binary_a"
        [[ "$which" == b ]] && binary="$binary_b"
        start "$binary"
        read -r get get_cpu < <(measure get_user.lua "$work_dir/ids")
        read -r post post_cpu < <(measure post_user.lua "r$round$which$$")
        stop
        echo "$round $which $get $post $get_cpu $post_cpu" >>"$results"
        echo "round $round, $which: GET $get/s ($get_cpu us CPU each), POST $post/s ($post_cpu us CPU each)" >&2
    done
done

python3 - "$results" "$binary_a" "$binary_b" "$backend" <<'PY'
import statistics, sys
rows, cpu = {}, {}
for line in open(sys.argv[1]):
    round_, which, get, post, get_cpu, post_cpu = line.split()
    rows.setdefault(int(round_), {})[which] = (float(get), float(post))
    cpu.setdefault(int(round_), {})[which] = (float(get_cpu), float(post_cpu))
print(f"A = {sys.argv[2]}\nB = {sys.argv[3]}\nbackend: {sys.argv[4]}\n")
print("| round | GET A | GET B | GET A/B | POST A | POST B | POST A/B |")
print("|---|---|---|---|---|---|---|")
ratios = {"GET": [], "POST": []}
for round_, pair in sorted(rows.items()):
    (get_a, post_a), (get_b, post_b) = pair["a"], pair["b"]
    ratios["GET"].append(get_a / get_b)
    ratios["POST"].append(post_a / post_b)
    print(f"| {round_} | {get_a:,.0f} | {get_b:,.0f} | {get_a / get_b:.3f} | "
          f"{post_a:,.0f} | {post_b:,.0f} | {post_a / post_b:.3f} |")
print()
for operation, values in ratios.items():
    print(f"{operation}: median A/B {statistics.median(values):.3f} "
          f"(pairs {', '.join(f'{value:.3f}' for value in values)})")
print()
print("Server CPU microseconds per request (lower is better):")
for index, operation in enumerate(("GET", "POST")):
    a = [cpu[round_]["a"][index] for round_ in sorted(cpu)]
    b = [cpu[round_]["b"][index] for round_ in sorted(cpu)]
    pairs = [x / y for x, y in zip(a, b)]
    print(f"{operation}: A {', '.join(f'{x:.1f}' for x in a)}; B {', '.join(f'{y:.1f}' for y in b)}; "
          f"median A/B {statistics.median(pairs):.3f} "
          f"(pairs {', '.join(f'{pair:.3f}' for pair in pairs)})")
PY
