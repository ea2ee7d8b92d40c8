#!/usr/bin/env bash
# Reading a whole large directory page by page, as a sync job reads a Scimitar source or
# target: two builds side by side on one SQLite database, A B A B.
#
# Usage: bench/list_reads.sh BINARY_A BINARY_B [N]     (N users, default 100000)
#
# Seeds a directory of N users, N/10 groups and 10*N memberships once (as bench/sync_scale.sh
# does: an export written by bench/sync_scale_seed.py, loaded by `scimitar import`, with
# BINARY_A), then for each of LIST_ROUNDS [3] rounds serves that database with each binary in
# turn (A first in odd rounds) and times reading every user and every group in pages of 1,000
# (`startIndex`, `excludedAttributes=groups`, one request at a time, as a sync job's window
# does). Prints each read's seconds and the median ratio B/A (above 1: B is faster).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly bench_dir="$repo_root/bench"
readonly binary_a="${1:?binary A}" binary_b="${2:?binary B}" users="${3:-100000}"
readonly rounds="${LIST_ROUNDS:-3}"

log() { echo "list_reads: $*" >&2; }
[[ "$users" =~ ^[1-9][0-9]*$ && "$users" -ge 10 ]] || { log "N must be at least 10"; exit 1; }

mkdir -p "$bench_dir/.work"
work_dir="$(mktemp -d "$bench_dir/.work/list_reads.XXXXXX")"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work_dir"
    rmdir "$bench_dir/.work" 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# serve BINARY DATABASE: starts it in the background; sets server_pid and root.
serve() {
    local port
    port="$(free_port)"
    SCIMITAR_LOG=warn "$1" serve --listen "127.0.0.1:$port" --database "sqlite://$2" \
        >/dev/null 2>"$work_dir/server.stderr" &
    server_pid=$!
    python3 "$bench_dir/seed.py" wait "http://127.0.0.1:$port/scim/v2" 600 \
        || { cat "$work_dir/server.stderr" >&2; exit 1; }
    root="http://127.0.0.1:$port/scim/v2"
}

stop() {
    kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

log "seeding $users users, $((users / 10)) groups, $((users * 10)) memberships"
serve "$binary_a" "$work_dir/base.db"
token="$("$binary_a" token create --database "sqlite://$work_dir/base.db")"
BENCH_TOKEN="$token" python3 - "$root" <<'PY'
import json, os, sys, urllib.request
root = sys.argv[1]
def post(path, body):
    request = urllib.request.Request(root + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + os.environ["BENCH_TOKEN"],
                 "Content-Type": "application/scim+json"})
    return json.load(urllib.request.urlopen(request, timeout=60))
user = post("/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                       "userName": "seed-template-user", "active": True})
post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                 "displayName": "seed-template-group", "members": [{"value": user["id"]}]})
PY
stop
"$binary_a" export --database "sqlite://$work_dir/base.db" --output "$work_dir/base.jsonl" 2>/dev/null
python3 "$bench_dir/sync_scale_seed.py" "$work_dir/base.jsonl" "$users" "$work_dir/source.jsonl"
"$binary_a" import --database "sqlite://$work_dir/source.db" --input "$work_dir/source.jsonl" \
    2>"$work_dir/import.stderr" || { tail -5 "$work_dir/import.stderr" >&2; exit 1; }

# Reads every page of one resource type; prints the seconds it took.
read_all() {
    BENCH_TOKEN="$token" python3 - "$root/$1" <<'PY'
import json, os, sys, time, urllib.request
url = sys.argv[1]
headers = {"Authorization": "Bearer " + os.environ["BENCH_TOKEN"]}
started, index, total = time.monotonic(), 1, None
while total is None or index <= total:
    request = urllib.request.Request(
        f"{url}?startIndex={index}&count=1000&excludedAttributes=groups", headers=headers)
    page = json.load(urllib.request.urlopen(request, timeout=600))
    total = page["totalResults"]
    if not page["Resources"]:
        break
    index += len(page["Resources"])
print(f"{time.monotonic() - started:.2f}")
PY
}

results="$work_dir/results"
for round in $(seq 1 "$rounds"); do
    order=(a b)
    ((round % 2 == 0)) && order=(b a)
    for which in "${order[@]}"; do
        binary="$binary_a"
        [[ "$which" == b ]] && binary="$binary_b"
        serve "$binary" "$work_dir/source.db"
        users_seconds="$(read_all Users)"
        groups_seconds="$(read_all Groups)"
        stop
        log "round $round, $which: Users $users_seconds s, Groups $groups_seconds s (load $(cut -d' ' -f1-3 /proc/loadavg))"
        echo "$round $which $users_seconds $groups_seconds" >>"$results"
    done
done
python3 - "$results" "$binary_a" "$binary_b" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print(f"A = {sys.argv[2]}\nB = {sys.argv[3]}\n")
print("| read | round | A s | B s | A/B |\n|---|---|---|---|---|")
for column, name in ((2, "Users"), (3, "Groups")):
    ratios = []
    for number in sorted({row[0] for row in rows}, key=int):
        a = next(float(r[column]) for r in rows if r[0] == number and r[1] == "a")
        b = next(float(r[column]) for r in rows if r[0] == number and r[1] == "b")
        ratios.append(a / b)
        print(f"| {name} | {number} | {a:.2f} | {b:.2f} | {a / b:.3f} |")
    print(f"\n{name}: median A/B {statistics.median(ratios):.3f} (above 1: B is faster)\n")
PY
