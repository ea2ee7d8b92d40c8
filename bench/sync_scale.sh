#!/usr/bin/env bash
# `scimitar sync` at scale (issue 17): a Scimitar source of N users, N/10 groups and 10*N
# memberships synced into an empty Scimitar target: the initial `sync apply`, a re-run with no
# change (which must write nothing), and `sync watch` latency for single membership changes.
#
# Usage: bench/sync_scale.sh [N]          (N: users, default 100000; try 10000 first)
#
# Seeding: a first `scimitar serve` bootstraps a database, one template user and group are
# created over SCIM and the database is exported; bench/sync_scale_seed.py writes an export of
# N users, N/10 groups and 10*N memberships shaped exactly like the templates, and `scimitar
# import` loads it into the source's database (seconds, where N SCIM POSTs take minutes).
# Then the source and an empty target are served (target/release/scimitar, built first unless
# BENCH_NO_BUILD=1), on SQLite, and timed with the job's state in SQLite too:
#   1. `scimitar sync apply` (initial): seconds, writes, failures;
#   2. `scimitar sync apply` again, nothing changed: seconds, and writes (must be 0);
#   3. `scimitar sync watch` (follow_changes) while bench/sync_watch_probe.py makes
#      SCALE_WATCH_CHANGES membership changes at the source and times each until the target
#      shows it: p50, p90, p99, max.
# Prints each number with the load average around it (the machine may be shared).
#
# Settings (environment variables, defaults in brackets); everything stays on 127.0.0.1:
#   SCALE_WATCH_CHANGES [20]  membership changes timed under watch (0 skips the watch step)
#   SCALE_WATCH_DEADLINE [120] seconds one change may take before the benchmark fails
#   SCALE_BULK []             the target's `bulk` setting (auto, off); unset: the default
#   SCALE_MAX_CONCURRENCY []  the target's `max_concurrency`; unset: the default
#   BENCH_NO_BUILD [0]        1 uses target/release/scimitar as it is
#   SCIMITAR_BIN              another binary to run
#   BENCH_KEEP [0]            1 keeps the temporary directory (databases, logs, reports)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
readonly bench_dir="$repo_root/bench"
readonly binary="${SCIMITAR_BIN:-$repo_root/target/release/scimitar}"
readonly users="${1:-100000}"
readonly watch_changes="${SCALE_WATCH_CHANGES:-20}"
readonly watch_deadline="${SCALE_WATCH_DEADLINE:-120}"

log() { echo "sync_scale: $*" >&2; }
die() { log "$*"; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }
seconds_since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

[[ "$users" =~ ^[1-9][0-9]*$ && "$users" -ge 10 ]] || die "N must be a number of at least 10"
[[ "$watch_changes" =~ ^[0-9]+$ ]] || die "SCALE_WATCH_CHANGES must be a number"
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    log "building Scimitar (release)"
    (cd "$repo_root" && cargo build --release -q -p scimitar)
fi
[[ -x "$binary" ]] || die "no $binary"

mkdir -p "$bench_dir/.work"
work_dir="$(mktemp -d "$bench_dir/.work/sync_scale.XXXXXX")"
pids=()
stop_all() {
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    pids=()
}
cleanup() {
    stop_all
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        log "kept $work_dir"
    else
        rm -rf "$work_dir"
        rmdir "$bench_dir/.work" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts `scimitar serve` on the database named $1; sets server_root to its SCIM root. Not
# called in a subshell, so that its process id reaches `pids` and is stopped.
start_server() {
    local name="$1" port
    port="$(free_port)"
    SCIMITAR_LOG=warn "$binary" serve --listen "127.0.0.1:$port" \
        --database "sqlite://$work_dir/$name.db" \
        >"$work_dir/$name.stdout" 2>"$work_dir/$name.stderr" &
    pids+=($!)
    # A large database takes a while to load into the access engine.
    python3 "$bench_dir/seed.py" wait "http://127.0.0.1:$port/scim/v2" 600 \
        || { cat "$work_dir/$name.stderr" >&2; die "the $name server did not start"; }
    server_root="http://127.0.0.1:$port/scim/v2"
}

# One SCIM call with the token in $token (never on a command line); prints the answer.
scim() {
    local method="$1" url="$2" body="$3"
    BENCH_TOKEN="$token" python3 - "$method" "$url" "$body" <<'PY'
import json, os, sys, urllib.request
method, url, body = sys.argv[1:4]
request = urllib.request.Request(url, data=body.encode(), method=method, headers={
    "Authorization": "Bearer " + os.environ["BENCH_TOKEN"],
    "Content-Type": "application/scim+json"})
print(urllib.request.urlopen(request, timeout=60).read().decode())
PY
}

log "seeding a source of $users users, $((users / 10)) groups, $((users * 10)) memberships"
seed_started="$(now)"
start_server base
base_root="$server_root"
token="$("$binary" token create --database "sqlite://$work_dir/base.db")"
template_user="$(scim POST "$base_root/Users" \
    '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"seed-template-user","active":true}' \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
scim POST "$base_root/Groups" \
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"displayName\":\"seed-template-group\",\"members\":[{\"value\":\"$template_user\"}]}" \
    >/dev/null
stop_all
"$binary" export --database "sqlite://$work_dir/base.db" --output "$work_dir/base.jsonl" 2>/dev/null
python3 "$bench_dir/sync_scale_seed.py" "$work_dir/base.jsonl" "$users" "$work_dir/source.jsonl"
"$binary" import --database "sqlite://$work_dir/source.db" --input "$work_dir/source.jsonl" \
    2>"$work_dir/import.stderr" || { tail -5 "$work_dir/import.stderr" >&2; die "the import failed"; }
log "seeded in $(seconds_since "$seed_started") s"

# The base database's admin token came across with the import: it is the source's token.
source_token="$token"
start_server source
source_root="$server_root"
start_server target
target_root="$server_root"
target_token="$("$binary" token create --database "sqlite://$work_dir/target.db")"
[[ -n "$source_token" && -n "$target_token" ]] || die "scimitar token create printed nothing"
printf '%s\n' "$source_token" >"$work_dir/source.token"
printf '%s\n' "$target_token" >"$work_dir/target.token"
cat >"$work_dir/job.toml" <<TOML
job = "scale-bench"
state_database = "sqlite://$work_dir/state.db"

[source]
type = "scim"
url = "$source_root"
token_file = "$work_dir/source.token"
follow_changes = true

[target]
url = "$target_root"
token_file = "$work_dir/target.token"
${SCALE_BULK:+bulk = \"$SCALE_BULK\"}
${SCALE_MAX_CONCURRENCY:+max_concurrency = $SCALE_MAX_CONCURRENCY}

[watch]
interval_seconds = 3600
TOML

# Runs `scimitar sync apply` once; sets took, writes and failed.
apply_once() {
    local name="$1" started status=0 line
    started="$(now)"
    SCIMITAR_LOG=warn "$binary" sync apply --config "$work_dir/job.toml" \
        >"$work_dir/$name.out" 2>"$work_dir/$name.err" || status=$?
    took="$(seconds_since "$started")"
    [[ "$status" == 0 ]] || { tail -5 "$work_dir/$name.err" "$work_dir/$name.out" >&2; die "$name exited $status"; }
    line="$(grep -E '^[0-9]+ writes, [0-9]+ failed$' "$work_dir/$name.out" | tail -1)"
    [[ -n "$line" ]] || die "$name printed no count of writes"
    writes="$(echo "$line" | cut -d' ' -f1)"
    failed="$(echo "$line" | cut -d' ' -f3)"
}

log "load average before the initial sync: $(load)"
apply_once initial
initial_seconds="$took" initial_writes="$writes" initial_failed="$failed"
log "initial sync: ${initial_seconds} s, $initial_writes writes, $initial_failed failed (load $(load))"
apply_once rerun
rerun_seconds="$took" rerun_writes="$writes"
log "re-run with no change: ${rerun_seconds} s, $rerun_writes writes, $failed failed (load $(load))"
[[ "$rerun_writes" == 0 ]] || die "the re-run wrote $rerun_writes times"

echo "sync at scale: $users users, $((users / 10)) groups, $((users * 10)) memberships (SQLite, one machine; bulk ${SCALE_BULK:-default}, max_concurrency ${SCALE_MAX_CONCURRENCY:-default})"
echo "  initial sync:          ${initial_seconds} s ($initial_writes writes, $initial_failed failed)"
echo "  re-run with no change: ${rerun_seconds} s ($rerun_writes writes)"

if [[ "$watch_changes" -gt 0 ]]; then
    SCIMITAR_LOG=warn "$binary" sync watch --config "$work_dir/job.toml" \
        >"$work_dir/watch.stdout" 2>"$work_dir/watch.stderr" &
    pids+=($!)
    log "load average before watch: $(load)"
    BENCH_SOURCE_TOKEN="$source_token" BENCH_TARGET_TOKEN="$target_token" \
        python3 "$bench_dir/sync_watch_probe.py" "$source_root" "$target_root" \
        "$watch_changes" "$watch_deadline" \
        || { tail -20 "$work_dir/watch.stderr" >&2; die "the watch probe failed"; }
    log "load average after watch: $(load); watch runs: $(wc -l <"$work_dir/watch.stdout")"
fi
