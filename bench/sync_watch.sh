#!/usr/bin/env bash
# Latency of `scimitar sync watch`: how long one membership change at a Scimitar source takes to
# show at a Scimitar target, the source followed through its change feed (follow_changes).
#
# Usage: bench/sync_watch.sh
#
# Starts two Scimitar servers (target/release/scimitar, built first unless BENCH_NO_BUILD=1) on
# fresh SQLite databases in a temporary directory, and `scimitar sync watch` between them with a
# `scim`-scoped source token and an hour's interval (so only the feed triggers runs), then runs
# bench/sync_watch_probe.py: WATCH_CHANGES membership changes (a user added to a group, then
# removed, ...), each timed from the source's answer to the first target read that shows it.
# Prints p50, p90, p99 and max in milliseconds, and the load average before and after, since the
# machine may be shared. Each run re-reads both sides whole, so the numbers are for a small
# directory (two users, one group); they grow with its size (docs/design/sync.md).
#
# Settings (environment variables, defaults in brackets); everything stays on 127.0.0.1:
#   WATCH_CHANGES [100]   membership changes timed
#   WATCH_DEADLINE [30]   seconds a change may take before the benchmark fails
#   BENCH_NO_BUILD [0]    1 uses target/release/scimitar as it is
#   SCIMITAR_BIN          another binary to run (implies nothing about building; with
#                         BENCH_NO_BUILD=1, a debug build checks the script quickly)
#   BENCH_KEEP [0]        1 keeps the temporary directory (databases, logs, job file)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
readonly bench_dir="$repo_root/bench"
readonly binary="${SCIMITAR_BIN:-$repo_root/target/release/scimitar}"
readonly changes="${WATCH_CHANGES:-100}"
readonly deadline="${WATCH_DEADLINE:-30}"

log() { echo "sync_watch: $*" >&2; }
die() { log "$*"; exit 1; }

[[ "$changes" =~ ^[1-9][0-9]*$ ]] || die "WATCH_CHANGES must be a positive number"
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    log "building Scimitar (release)"
    (cd "$repo_root" && cargo build --release -q -p scimitar)
fi
[[ -x "$binary" ]] || die "no $binary"

mkdir -p "$bench_dir/.work"
work_dir="$(mktemp -d "$bench_dir/.work/sync_watch.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
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

# Starts `scimitar serve` on a fresh database named $1; sets server_root to its SCIM root. Not
# called in a subshell (`$(start_server ...)` would record the server's process id in the
# subshell's `pids`, and the cleanup would never stop it).
start_server() {
    local name="$1" port
    port="$(free_port)"
    SCIMITAR_LOG=warn "$binary" serve --listen "127.0.0.1:$port" \
        --database "sqlite://$work_dir/$name.db" \
        >"$work_dir/$name.stdout" 2>"$work_dir/$name.stderr" &
    pids+=($!)
    python3 "$bench_dir/seed.py" wait "http://127.0.0.1:$port/scim/v2" 30 \
        || { cat "$work_dir/$name.stderr" >&2; die "the $name server did not start"; }
    server_root="http://127.0.0.1:$port/scim/v2"
}

start_server source
source_root="$server_root"
start_server target
target_root="$server_root"
source_token="$("$binary" token create --database "sqlite://$work_dir/source.db" --scope scim)"
target_token="$("$binary" token create --database "sqlite://$work_dir/target.db")"
[[ -n "$source_token" && -n "$target_token" ]] || die "scimitar token create printed nothing"
printf '%s\n' "$source_token" >"$work_dir/source.token"
printf '%s\n' "$target_token" >"$work_dir/target.token"
cat >"$work_dir/job.toml" <<TOML
job = "watch-bench"
state_database = "sqlite://$work_dir/state.db"

[source]
type = "scim"
url = "$source_root"
token_file = "$work_dir/source.token"
follow_changes = true

[target]
url = "$target_root"
token_file = "$work_dir/target.token"

[watch]
interval_seconds = 3600
TOML
SCIMITAR_LOG=warn "$binary" sync watch --config "$work_dir/job.toml" \
    >"$work_dir/watch.stdout" 2>"$work_dir/watch.stderr" &
pids+=($!)

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
BENCH_SOURCE_TOKEN="$source_token" BENCH_TARGET_TOKEN="$target_token" \
    python3 "$bench_dir/sync_watch_probe.py" "$source_root" "$target_root" "$changes" "$deadline" \
    || { tail -20 "$work_dir/watch.stderr" >&2; die "the probe failed"; }
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
log "watch runs: $(wc -l <"$work_dir/watch.stdout")"
