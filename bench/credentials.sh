#!/usr/bin/env bash
# Credentials at speed, on one build: how many access tokens the token endpoint mints per
# second, and what each credential kind costs a GET /Users/{id}, side by side in one run.
#
# Usage: bench/credentials.sh [BINARY]    (default: target/release/scimitar, built if missing)
#
# It starts BINARY on a fresh database of BENCH_BACKEND (sqlite, the default, under
# bench/.work; or postgres, a scratch database scimitar_credentials_<pid> on
# BENCH_POSTGRES_URL), seeds BENCH_USERS users, and makes one credential of each kind with
# bench/credential.py: the admin token the CLI prints, a personal access token, and a service
# principal's OAuth secret with an access token minted from it. Then, in BENCH_ROUNDS rounds,
# with the order of the kinds rotated each round:
#   - wrk POSTs the client-credentials grant to /oidc/v1/token (bench/wrk/token_mint.lua):
#     tokens minted per second (issue #15's target: at least 5,000 on this machine);
#   - wrk GETs /Users/{id} presenting each kind (bench/wrk/get_user.lua), with the server's CPU
#     per request; the PAT and the OAuth JWT are compared with the admin token pair by pair.
# What authenticating costs against the build before issue #15 is bench/builds.sh's to say
# (BENCH_CREDENTIAL_A=pat or oauth against an older binary's admin token).
#
# Settings: BENCH_CONNECTIONS [8], BENCH_DURATION [10s], BENCH_WARMUP [2s], BENCH_ROUNDS [3],
# BENCH_USERS [1000], BENCH_BACKEND [sqlite], BENCH_POSTGRES_URL
# [postgres://postgres@127.0.0.1:5432/test].
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_dir="$repo_root/bench"
binary="${1:-$repo_root/target/release/scimitar}"
connections="${BENCH_CONNECTIONS:-8}"
duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-2s}"
rounds="${BENCH_ROUNDS:-3}"
users="${BENCH_USERS:-1000}"
backend="${BENCH_BACKEND:-sqlite}"
postgres_url="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install -y wrk)" >&2; exit 1; }
if [[ ! -x "$binary" ]]; then
    (cd "$repo_root" && cargo build --release -p scimitar)
fi
binary="$(realpath "$binary")"

mkdir -p "$bench_dir/.work"
work_dir="$(mktemp -d "$bench_dir/.work/credentials.XXXXXX")"
scratch_db="scimitar_credentials_$$"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    if [[ "$backend" == postgres ]]; then
        psql "$postgres_url" -qc "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$work_dir"
}
trap cleanup EXIT

if [[ "$backend" == postgres ]]; then
    psql "$postgres_url" -qc "CREATE DATABASE $scratch_db" >/dev/null
    database="${postgres_url%/*}/$scratch_db"
else
    database="sqlite://$work_dir/scimitar.db"
fi
admin="$("$binary" token create --database "$database")"
# Made before the server's shell redirects into it, or the first poll below may find no file
# and end the script (set -e).
: >"$work_dir/server.log"
SCIMITAR_LOG=warn "$binary" serve --listen 127.0.0.1:0 --database "$database" \
    2>"$work_dir/server.log" >/dev/null &
server_pid=$!
address=""
for _ in $(seq 1 100); do
    address="$(sed -n 's/^scimitar listening on http:\/\///p' "$work_dir/server.log")"
    [[ -n "$address" ]] && break
    sleep 0.1
done
[[ -n "$address" ]] || { cat "$work_dir/server.log" >&2; exit 1; }
origin="http://$address"
BENCH_TOKEN="$admin" python3 "$bench_dir/seed.py" users "$origin/scim/v2" seed "$users" "$work_dir/ids" >/dev/null
declare -A tokens
tokens[admin]="$admin"
tokens[pat]="$(BENCH_TOKEN="$admin" python3 "$bench_dir/credential.py" pat "$origin")"
tokens[oauth]="$(BENCH_TOKEN="$admin" python3 "$bench_dir/credential.py" oauth "$origin")"
read -r client_id client_secret < <(BENCH_TOKEN="$admin" python3 "$bench_dir/credential.py" oauth-client "$origin")

server_cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

# run_wrk URL SCRIPT HEADER ARGS...: "rate cpu_us_per_request" of one measured run.
run_wrk() {
    local url="$1" script="$2" header="$3"
    shift 3
    local argv=(wrk -t1 -c"$connections" -s "$bench_dir/wrk/$script")
    [[ -n "$header" ]] && argv+=(-H "$header")
    BENCH_WRK_DIR="$bench_dir/wrk" "${argv[@]}" -d"$warmup" "$url" -- "$@" >/dev/null 2>&1 || true
    local before after output
    before="$(server_cpu_ticks)"
    output="$(BENCH_WRK_DIR="$bench_dir/wrk" "${argv[@]}" -d"$duration" "$url" -- "$@")"
    after="$(server_cpu_ticks)"
    awk -v ticks="$((after - before))" -v hz="$(getconf CLK_TCK)" '
        /Requests\/sec/ {rate = $2}
        /requests in/ {requests = $1}
        /Non-2xx/ {print "non-2xx responses: " $0 > "/dev/stderr"; bad = 1}
        END {printf "%s %.2f\n", rate, ticks * 1e6 / hz / requests; exit bad}' <<<"$output"
}

results="$work_dir/results"
kinds=(admin pat oauth)
for round in $(seq 1 "$rounds"); do
    read -r rate cpu < <(run_wrk "$origin/oidc/v1/token" token_mint.lua "" "$client_id" "$client_secret")
    echo "$round mint $rate $cpu" >>"$results"
    echo "round $round: token endpoint $rate tokens/s ($cpu us CPU each)" >&2
    for offset in 0 1 2; do
        kind="${kinds[$(((round - 1 + offset) % 3))]}"
        read -r rate cpu < <(run_wrk "$origin/scim/v2" get_user.lua "Authorization: Bearer ${tokens[$kind]}" "$work_dir/ids")
        echo "$round $kind $rate $cpu" >>"$results"
        echo "round $round: GET by id with $kind: $rate/s ($cpu us CPU each)" >&2
    done
done

python3 - "$results" "$backend" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    round_, kind, rate, cpu = line.split()
    rows.setdefault(kind, {})[int(round_)] = (float(rate), float(cpu))
print(f"backend: {sys.argv[2]}\n")
mint = [rows["mint"][r][0] for r in sorted(rows["mint"])]
print(f"token endpoint: {', '.join(f'{m:,.0f}' for m in mint)} tokens/s, median {statistics.median(mint):,.0f}")
print()
print("| round | admin req/s | PAT req/s | OAuth req/s | admin CPU µs | PAT CPU µs | OAuth CPU µs |")
print("|---|---|---|---|---|---|---|")
for r in sorted(rows["admin"]):
    a, p, o = rows["admin"][r], rows["pat"][r], rows["oauth"][r]
    print(f"| {r} | {a[0]:,.0f} | {p[0]:,.0f} | {o[0]:,.0f} | {a[1]:.1f} | {p[1]:.1f} | {o[1]:.1f} |")
for kind in ("pat", "oauth"):
    rate = [rows[kind][r][0] / rows["admin"][r][0] for r in sorted(rows["admin"])]
    cpu = [rows[kind][r][1] / rows["admin"][r][1] for r in sorted(rows["admin"])]
    print(f"{kind} / admin: throughput median {statistics.median(rate):.3f} "
          f"(pairs {', '.join(f'{x:.3f}' for x in rate)}); CPU per request median "
          f"{statistics.median(cpu):.3f} (pairs {', '.join(f'{x:.3f}' for x in cpu)})")
PY
