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
# (bench/seed.py), and measured with wrk for each operation of BENCH_OPERATIONS: `get`, GET
# /Users/{id} (bench/wrk/get_user.lua); `post`, POST /Users (bench/wrk/post_user.lua);
# `patch_group`, a PATCH adding or removing one member of a group of BENCH_GROUP_SIZE members
# (bench/wrk/group_member.lua). Every measured run is preceded by an uncounted warm-up. Each
# build presents the credential BENCH_CREDENTIAL_A or BENCH_CREDENTIAL_B (bench/credential.py:
# `admin`, the default, the token the CLI prints; `pat`, a personal access token; `oauth`, a
# service principal's OAuth JWT), so that what authenticating costs can be compared with the
# build before it. The table gives each round's requests per second for A and B and the ratio
# A/B; the last lines, the median ratio per operation, and the server's CPU time per request
# (user and system, from /proc, over the measured run) with its median ratio: on a machine
# shared with other work, throughput moves with the load but CPU per request much less.
# Everything stays on 127.0.0.1; servers and scratch databases are removed on exit.
#
# Settings: BENCH_CONNECTIONS [8], BENCH_DURATION [10s], BENCH_WARMUP [2s], BENCH_ROUNDS [3],
# BENCH_USERS [1000], BENCH_OPERATIONS ["get post"], BENCH_GROUP_SIZE [100],
# BENCH_CREDENTIAL_A and BENCH_CREDENTIAL_B [admin], BENCH_BACKEND [sqlite], BENCH_POSTGRES_URL
# [postgres://postgres@127.0.0.1:5432/test], BENCH_LOG [warn, as bench/run; info measures the
# one log line per request].
set -euo pipefail

[[ $# -eq 2 ]] || { sed -n '2,31p' "$0"; exit 2; }
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
read -r -a operations <<<"${BENCH_OPERATIONS:-get post}"
group_size="${BENCH_GROUP_SIZE:-100}"
credential_a="${BENCH_CREDENTIAL_A:-admin}"
credential_b="${BENCH_CREDENTIAL_B:-admin}"
for operation in "${operations[@]}"; do
    [[ "$operation" =~ ^(get|post|patch_group)$ ]] || { echo "unknown operation $operation" >&2; exit 2; }
done
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

# start BINARY CREDENTIAL: a fresh database, a server on a free port, the users seeded (and a
# group when patch_group is measured); sets base, token, server_pid and group_id.
start() {
    local binary="$1" credential="$2" database admin_token origin
    if [[ "$backend" == postgres ]]; then
        psql "$postgres_url" -qc "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" >/dev/null
        psql "$postgres_url" -qc "CREATE DATABASE $scratch_db" >/dev/null
        database="${postgres_url%/*}/$scratch_db"
    else
        rm -rf "$work_dir/db" && mkdir -p "$work_dir/db"
        database="sqlite://$work_dir/db/scimitar.db"
    fi
    admin_token="$("$binary" token create --database "$database")"
    # Made before the server's shell redirects into it, or the first poll below may find no
    # file and end the script (set -e).
    : >"$work_dir/server.log"
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
    origin="http://$address"
    base="$origin/scim/v2"
    BENCH_TOKEN="$admin_token" python3 "$bench_dir/seed.py" users "$base" seed "$users" "$work_dir/ids" >/dev/null
    token="$(BENCH_TOKEN="$admin_token" python3 "$bench_dir/credential.py" "$credential" "$origin")"
    group_id=""
    if [[ " ${operations[*]} " == *" patch_group "* ]]; then
        group_id="$(BENCH_TOKEN="$admin_token" python3 "$bench_dir/seed.py" group "$base" bench-group \
            "$work_dir/ids" 1 "$group_size")"
        tail -n +"$((group_size + 1))" "$work_dir/ids" >"$work_dir/outsiders"
    fi
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
        binary="$binary_a" credential="$credential_a"
        [[ "$which" == b ]] && binary="$binary_b" credential="$credential_b"
        start "$binary" "$credential"
        for operation in "${operations[@]}"; do
            case "$operation" in
                get) read -r rate cpu < <(measure get_user.lua "$work_dir/ids") ;;
                post) read -r rate cpu < <(measure post_user.lua "r$round$which$$") ;;
                patch_group) read -r rate cpu < <(measure group_member.lua "$group_id" "$work_dir/outsiders") ;;
            esac
            echo "$round $which $operation $rate $cpu" >>"$results"
            echo "round $round, $which: $operation $rate/s ($cpu us CPU each)" >&2
        done
        stop
    done
done

python3 - "$results" "$binary_a" "$binary_b" "$backend" "$credential_a" "$credential_b" <<'PY'
import statistics, sys
rates, cpu, operations = {}, {}, []
for line in open(sys.argv[1]):
    round_, which, operation, rate, cpu_each = line.split()
    if operation not in operations:
        operations.append(operation)
    rates.setdefault(operation, {}).setdefault(int(round_), {})[which] = float(rate)
    cpu.setdefault(operation, {}).setdefault(int(round_), {})[which] = float(cpu_each)
print(f"A = {sys.argv[2]} (credential {sys.argv[5]})\nB = {sys.argv[3]} (credential {sys.argv[6]})")
print(f"backend: {sys.argv[4]}\n")
print("| operation | round | A req/s | B req/s | A/B | A CPU µs | B CPU µs | CPU A/B |")
print("|---|---|---|---|---|---|---|---|")
summary = []
for operation in operations:
    rate_ratios, cpu_ratios = [], []
    for round_ in sorted(rates[operation]):
        a, b = rates[operation][round_]["a"], rates[operation][round_]["b"]
        ca, cb = cpu[operation][round_]["a"], cpu[operation][round_]["b"]
        rate_ratios.append(a / b)
        cpu_ratios.append(ca / cb)
        print(f"| {operation} | {round_} | {a:,.0f} | {b:,.0f} | {a / b:.3f} | {ca:.1f} | {cb:.1f} | {ca / cb:.3f} |")
    summary.append(
        f"{operation}: throughput median A/B {statistics.median(rate_ratios):.3f} "
        f"(pairs {', '.join(f'{r:.3f}' for r in rate_ratios)}); server CPU per request median A/B "
        f"{statistics.median(cpu_ratios):.3f} (pairs {', '.join(f'{r:.3f}' for r in cpu_ratios)})")
print()
print("\n".join(summary))
PY
