#!/usr/bin/env bash
# `scimitar sync` at scale from an LDAP source (issue 17): a throwaway OpenLDAP (`slapd`)
# holding N users, N/10 groups and 10*N memberships synced into an empty Scimitar target: the
# initial `sync apply`, a re-run with no change (which must write nothing), and `sync watch`
# latency for single membership changes with the directory polled for what changed.
#
# Usage: bench/sync_scale_ldap.sh [N]     (N: users, default 100000; try 10000 first)
#
# Seeding: bench/sync_scale_ldap_seed.py writes the LDIF and `slapadd -q` loads it offline
# (seconds, where N adds over the wire take minutes); slapd then serves it on loopback with the
# memberof overlay, as a directory usually runs. The target is `scimitar serve` on SQLite
# (target/release/scimitar, built first unless BENCH_NO_BUILD=1; CARGO_TARGET_DIR is honoured),
# the job's state in SQLite too:
#   1. `scimitar sync apply` (initial): seconds, writes, failures;
#   2. `scimitar sync apply` again, nothing changed: seconds, and writes (must be 0);
#   3. `scimitar sync watch` (poll_seconds = 1, an hour between full reads) while
#      bench/sync_ldap_probe.py makes SCALE_WATCH_CHANGES membership changes with ldapmodify
#      and times each until the target shows it: p50, p90, p99, max.
# Prints each number with the load average around it (the machine may be shared).
#
# Settings (environment variables, defaults in brackets); everything stays on 127.0.0.1:
#   SCALE_WATCH_CHANGES [20]   membership changes timed under watch (0 skips the watch step)
#   SCALE_WATCH_DEADLINE [120] seconds one change may take before the benchmark fails
#   SCALE_WATCH_LOG [info]     the watch's SCIMITAR_LOG (e.g. info,scimitar_sync=debug: each poll's phases)
#   SCALE_PAGE_SIZE [1000]     entries per page of the directory's paged searches
#   SCALE_RERUN [1]            0 skips the no-change re-run
#   SCALE_PLAN_ONLY [0]        1 stops after timing the directory's searches and a `sync plan`
#                              (the reading side alone: both sides read whole, no writes)
#   BENCH_NO_BUILD [0]         1 uses the release binary as it is
#   SCIMITAR_BIN               another binary to run
#   SCIMITAR_SLAPD [/usr/sbin/slapd], SCIMITAR_SLAPADD [/usr/sbin/slapadd]
#   BENCH_KEEP [0]             1 keeps the temporary directory (databases, logs, reports)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
readonly bench_dir="$repo_root/bench"
readonly binary="${SCIMITAR_BIN:-${CARGO_TARGET_DIR:-$repo_root/target}/release/scimitar}"
readonly users="${1:-100000}"
readonly watch_changes="${SCALE_WATCH_CHANGES:-20}"
readonly watch_deadline="${SCALE_WATCH_DEADLINE:-120}"
readonly page_size="${SCALE_PAGE_SIZE:-1000}"
readonly slapd="${SCIMITAR_SLAPD:-/usr/sbin/slapd}"
readonly slapadd="${SCIMITAR_SLAPADD:-/usr/sbin/slapadd}"
readonly suffix="dc=example,dc=test"
readonly root_dn="cn=admin,$suffix"

log() { echo "sync_scale_ldap: $*" >&2; }
die() { log "$*"; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }
seconds_since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

[[ "$users" =~ ^[1-9][0-9]*$ && "$users" -ge 100 ]] || die "N must be a number of at least 100"
[[ "$watch_changes" =~ ^[0-9]+$ ]] || die "SCALE_WATCH_CHANGES must be a number"
[[ -x "$slapd" && -x "$slapadd" ]] || die "no slapd or slapadd (apt-get install slapd ldap-utils)"
command -v ldapmodify >/dev/null && command -v ldapsearch >/dev/null || die "no ldapmodify (apt-get install ldap-utils)"
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    log "building Scimitar (release)"
    (cd "$repo_root" && cargo build --release -q -p scimitar)
fi
[[ -x "$binary" ]] || die "no $binary"

mkdir -p "$bench_dir/.work"
work_dir="$(mktemp -d "$bench_dir/.work/sync_scale_ldap.XXXXXX")"
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

# A throwaway password for the directory's root DN, kept in a file (never on a command line).
python3 -c 'import secrets; print(secrets.token_hex(16), end="")' >"$work_dir/ldap.password"
chmod 600 "$work_dir/ldap.password"
mkdir -p "$work_dir/slapd-db"
cat >"$work_dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile $work_dir/slapd.pid
database mdb
suffix "$suffix"
rootdn "$root_dn"
rootpw $(cat "$work_dir/ldap.password")
directory $work_dir/slapd-db
maxsize 4294967296
index objectClass eq
index entryUUID eq
index uid eq
index member eq
overlay memberof
CONF

log "seeding a directory of $users users, $((users / 10)) groups, $((users * 10)) memberships"
seed_started="$(now)"
python3 "$bench_dir/sync_scale_ldap_seed.py" "$users" "$suffix" "$work_dir/seed.ldif"
"$slapadd" -q -f "$work_dir/slapd.conf" -l "$work_dir/seed.ldif" 2>"$work_dir/slapadd.stderr" \
    || { tail -5 "$work_dir/slapadd.stderr" >&2; die "slapadd failed"; }
rm -f "$work_dir/seed.ldif"
log "seeded in $(seconds_since "$seed_started") s"

ldap_port="$(free_port)"
ldap_url="ldap://127.0.0.1:$ldap_port"
"$slapd" -f "$work_dir/slapd.conf" -h "$ldap_url/" -d 0 >"$work_dir/slapd.log" 2>&1 &
pids+=($!)
python3 - "$ldap_port" <<'PY' || die "slapd did not start"
import socket, sys, time
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY

port="$(free_port)"
SCIMITAR_LOG=warn "$binary" serve --listen "127.0.0.1:$port" \
    --database "sqlite://$work_dir/target.db" \
    >"$work_dir/target.stdout" 2>"$work_dir/target.stderr" &
pids+=($!)
python3 "$bench_dir/seed.py" wait "http://127.0.0.1:$port/scim/v2" 600 \
    || { cat "$work_dir/target.stderr" >&2; die "the target did not start"; }
target_root="http://127.0.0.1:$port/scim/v2"
target_token="$("$binary" token create --database "sqlite://$work_dir/target.db")"
[[ -n "$target_token" ]] || die "scimitar token create printed nothing"
printf '%s\n' "$target_token" >"$work_dir/target.token"
cat >"$work_dir/job.toml" <<TOML
job = "scale-bench-ldap"
state_database = "sqlite://$work_dir/state.db"

[source]
type = "ldap"
password_file = "$work_dir/ldap.password"

[source.directory]
url = "$ldap_url"
bind_dn = "$root_dn"
base_dn = "$suffix"
user_base_dn = "ou=people,$suffix"
group_base_dn = "ou=groups,$suffix"
page_size = $page_size
timeout_seconds = 600

[target]
url = "$target_root"
token_file = "$work_dir/target.token"

[watch]
interval_seconds = 3600
poll_seconds = 1
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

# The directory's side alone, with ldapsearch (paged like the job's reads, output discarded):
# a full read (what a full run asks for), the id pass of an incremental read (id and stamp of
# every entry), and the changed-since search when nothing changed. What an incremental poll
# costs at the directory, before choosing to make the id pass on every poll.
time_search() {
    local name="$1" base="$2" filter="$3" started
    shift 3
    started="$(now)"
    ldapsearch -x -LLL -H "$ldap_url" -D "$root_dn" -y "$work_dir/ldap.password" \
        -E "pr=$page_size/noprompt" -b "$base" "$filter" "$@" >"$work_dir/$name.ldif" \
        || die "ldapsearch $name failed"
    log "ldapsearch $name: $(seconds_since "$started") s, $(grep -c '^dn:' "$work_dir/$name.ldif") entries (load $(load))"
    rm -f "$work_dir/$name.ldif"
}
time_search users-whole "ou=people,$suffix" '(objectClass=inetOrgPerson)' \
    entryUUID modifyTimestamp uid displayName cn givenName sn mail
time_search groups-whole "ou=groups,$suffix" '(objectClass=groupOfNames)' \
    entryUUID modifyTimestamp cn member uniqueMember
time_search users-ids "ou=people,$suffix" '(objectClass=inetOrgPerson)' entryUUID modifyTimestamp
time_search groups-ids "ou=groups,$suffix" '(objectClass=groupOfNames)' entryUUID modifyTimestamp
time_search users-changed "ou=people,$suffix" '(&(objectClass=inetOrgPerson)(modifyTimestamp>=29990101000000Z))' \
    entryUUID modifyTimestamp uid displayName cn givenName sn mail
time_search groups-changed "ou=groups,$suffix" '(&(objectClass=groupOfNames)(modifyTimestamp>=29990101000000Z))' \
    entryUUID modifyTimestamp cn member uniqueMember

if [[ "${SCALE_PLAN_ONLY:-0}" == 1 ]]; then
    # The reading side alone: `sync plan` reads the directory and the (empty) target whole and
    # plans every create, writing nothing.
    started="$(now)"
    status=0
    SCIMITAR_LOG=warn "$binary" sync plan --config "$work_dir/job.toml" --json \
        >"$work_dir/plan.json" 2>"$work_dir/plan.err" || status=$?
    [[ "$status" == 0 || "$status" == 2 ]] || { tail -5 "$work_dir/plan.err" >&2; die "plan exited $status"; }
    log "sync plan (read both sides whole, plan, no writes): $(seconds_since "$started") s (load $(load))"
    exit 0
fi

log "load average before the initial sync: $(load)"
apply_once initial
initial_seconds="$took" initial_writes="$writes" initial_failed="$failed"
log "initial sync: ${initial_seconds} s, $initial_writes writes, $initial_failed failed (load $(load))"
if [[ "${SCALE_RERUN:-1}" == 1 ]]; then
    apply_once rerun
    rerun_seconds="$took" rerun_writes="$writes"
    log "re-run with no change: ${rerun_seconds} s, $rerun_writes writes, $failed failed (load $(load))"
    [[ "$rerun_writes" == 0 ]] || die "the re-run wrote $rerun_writes times"
else
    rerun_seconds="(skipped)" rerun_writes="-"
fi

echo "sync at scale from LDAP: $users users, $((users / 10)) groups, $((users * 10)) memberships (slapd, SQLite, one machine)"
echo "  initial sync:          ${initial_seconds} s ($initial_writes writes, $initial_failed failed)"
echo "  re-run with no change: ${rerun_seconds} s ($rerun_writes writes)"

if [[ "$watch_changes" -gt 0 ]]; then
    SCIMITAR_LOG="${SCALE_WATCH_LOG:-info}" "$binary" sync watch --config "$work_dir/job.toml" \
        >"$work_dir/watch.stdout" 2>"$work_dir/watch.stderr" &
    pids+=($!)
    # The watch's first run is full (both sides read whole); the probe's changes are timed
    # once it is done, so that they measure the polled, incremental runs.
    watch_started="$(now)"
    until [[ -s "$work_dir/watch.stdout" ]]; do
        kill -0 "${pids[-1]}" 2>/dev/null || { tail -20 "$work_dir/watch.stderr" >&2; die "the watch stopped"; }
        sleep 0.5
    done
    log "watch's first (full) run: $(seconds_since "$watch_started") s"
    log "load average before watch: $(load)"
    BENCH_TARGET_TOKEN="$target_token" BENCH_LDAP_PASSWORD="$(cat "$work_dir/ldap.password")" \
        python3 "$bench_dir/sync_ldap_probe.py" "$ldap_url" "$root_dn" "$target_root" \
        "$watch_changes" "$watch_deadline" \
        || { tail -20 "$work_dir/watch.stderr" >&2; die "the watch probe failed"; }
    log "load average after watch: $(load); incremental reads: $(grep -c 'read what changed in the directory' "$work_dir/watch.stderr" || true)"
fi
