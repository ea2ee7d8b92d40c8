#!/usr/bin/env bash
# Checks per second over HTTP on loopback: GET /api/2.0/access/check against one Scimitar node.
#
# Usage: bench/access_http.sh
#
# Starts Scimitar (target/release/scimitar, built first unless BENCH_NO_BUILD=1) on a fresh
# SQLite database in a temporary directory, seeds through the public APIs a small nested
# directory and one table (bench/access_seed.py: ACCESS_USERS users, half of them in teams
# inside divisions inside `org`; `org` holds USE CATALOG, USE SCHEMA and SELECT on
# bench.sales.orders), then runs wrk with bench/wrk/access_check.lua, which asks
# `SELECT on TABLE bench.sales.orders` for each seeded user in turn (allowed and denied mixed),
# after an uncounted warm-up. Prints wrk's report and the load average before and after, since
# the machine may be shared.
#
# Settings (environment variables, defaults in brackets); everything stays on 127.0.0.1:
#   BENCH_THREADS [1]  BENCH_CONNECTIONS [8]  BENCH_DURATION [10s]  BENCH_WARMUP [2s]
#   ACCESS_USERS [200]          users seeded
#   BENCH_NO_BUILD [0]          1 uses target/release/scimitar as it is
#   BENCH_SERVER_THREADS [one per core]
#                               the server's worker threads (its SCIMITAR_WORKER_THREADS); 1
#                               leaves wrk a core of its own on a 2-core machine instead of
#                               three busy threads sharing two
#   BENCH_KEEP [0]              1 keeps the temporary directory (database, server log)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
readonly bench_dir="$repo_root/bench"
readonly binary="$repo_root/target/release/scimitar"
readonly threads="${BENCH_THREADS:-1}"
readonly connections="${BENCH_CONNECTIONS:-8}"
readonly duration="${BENCH_DURATION:-10s}"
readonly warmup="${BENCH_WARMUP:-2s}"
readonly users="${ACCESS_USERS:-200}"
readonly table="bench.sales.orders"

log() { echo "access_http: $*" >&2; }
die() { log "$*"; exit 1; }

command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    log "building Scimitar (release)"
    (cd "$repo_root" && cargo build --release -q -p scimitar)
fi
[[ -x "$binary" ]] || die "no $binary"

mkdir -p "$bench_dir/.work"
work_dir="$(mktemp -d "$bench_dir/.work/access.XXXXXX")"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        log "kept $work_dir"
    else
        rm -rf "$work_dir"
        rmdir "$bench_dir/.work" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
database="sqlite://$work_dir/scimitar.db"
server_env=(SCIMITAR_LOG=warn)
if [[ -n "${BENCH_SERVER_THREADS:-}" ]]; then
    [[ "$BENCH_SERVER_THREADS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SERVER_THREADS must be a positive number"
    server_env+=(SCIMITAR_WORKER_THREADS="$BENCH_SERVER_THREADS")
fi
env "${server_env[@]}" "$binary" serve --listen "127.0.0.1:$port" --database "$database" \
    >"$work_dir/server.stdout" 2>"$work_dir/server.stderr" &
server_pid=$!
root="http://127.0.0.1:$port"
python3 "$bench_dir/seed.py" wait "$root/scim/v2" 30 \
    || { cat "$work_dir/server.stderr" >&2; die "Scimitar did not start"; }
token="$("$binary" token create --database "$database" --scope admin)"
[[ -n "$token" ]] || die "scimitar token create printed nothing"

log "seeding $users users, nested groups and $table"
BENCH_TOKEN="$token" python3 "$bench_dir/access_seed.py" "$root" "$users" "$table" "$work_dir/ids"

export BENCH_WRK_DIR="$bench_dir/wrk"
wrk_argv=(wrk -t"$threads" -c"$connections" --latency -H "Authorization: Bearer $token"
    -s "$bench_dir/wrk/access_check.lua" "$root")
if [[ "$warmup" != 0 ]]; then
    "${wrk_argv[@]}" -d"$warmup" -- "$work_dir/ids" "$table" >/dev/null
fi
log "server runtime worker threads: ${BENCH_SERVER_THREADS:-one per core ($(nproc))}"
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"${wrk_argv[@]}" -d"$duration" -- "$work_dir/ids" "$table" | tee "$work_dir/wrk.out"
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -q "Non-2xx" "$work_dir/wrk.out" && die "some checks did not answer 2xx"
exit 0
