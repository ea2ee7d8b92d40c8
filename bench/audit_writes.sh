#!/usr/bin/env bash
# What the audit trail costs a write (issue #16: with the trail on, POST /Users and a group
# PATCH keep at least 90 % of their throughput, GET unchanged): the same build with and without
# the trail, side by side, A B A B, through bench/builds.sh, on each backend.
#
# Usage: bench/audit_writes.sh
#
# Builds the release binary twice: as it ships (trail on), and with the store's
# `unaudited-for-benchmarks` feature (no audit event written; that build says so at start and
# exists for this comparison only), each copied under bench/.work. Then, for each backend of
# BENCH_BACKENDS [sqlite postgres], runs bench/builds.sh with A = trail on and B = trail off
# for BENCH_OPERATIONS [get post patch_group]; its last lines give the median ratio A/B per
# operation: the share of throughput the trail keeps. Every other setting of bench/builds.sh
# applies (BENCH_ROUNDS, BENCH_DURATION, BENCH_CONNECTIONS, ...). BENCH_NO_BUILD=1 reuses the
# two binaries already under bench/.work.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$repo_root/bench/.work"
mkdir -p "$work"
on="$work/scimitar-trail-on"
off="$work/scimitar-trail-off"
# Cargo's own rule: CARGO_TARGET_DIR when set (an engineer's worktree has its own), else target/.
target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    (cd "$repo_root" && cargo build --release -p scimitar \
        --features scimitar-store/unaudited-for-benchmarks)
    cp "$target_dir/release/scimitar" "$off"
    (cd "$repo_root" && cargo build --release -p scimitar)
    cp "$target_dir/release/scimitar" "$on"
fi
export BENCH_OPERATIONS="${BENCH_OPERATIONS:-get post patch_group}"
for backend in ${BENCH_BACKENDS:-sqlite postgres}; do
    echo "== $backend: A = trail on, B = trail off"
    BENCH_BACKEND="$backend" "$repo_root/bench/builds.sh" "$on" "$off"
done
