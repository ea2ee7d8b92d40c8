#!/usr/bin/env bash
# Run the external SCIM conformance tools against a freshly started Scimitar.
#
# Usage: tests/external/run.sh BINARY
#
# Starts BINARY on a free loopback port with a new SQLite database (or the
# database SCIMITAR_EXTERNAL_DATABASE_URL names, which must be empty), then runs
# these suites, each of which passes or fails as a whole:
#   - scim2-tester and scim-sanity against the generic mount (/scim/v2) and
#     the Databricks workspace mount (/api/2.0/preview/scim/v2);
#   - the Databricks SDK scenario with the workspace client and with the
#     account client;
#   - the Databricks SDK's Permissions API calls on a job and a directory.
#   - the Databricks SDK's Unity Catalog and Statement Execution calls (catalogs,
#     schemas, GRANT in SQL, grants.update/get/get_effective across SCIM
#     membership changes; catalogs.update, schemas.update, tables.create/update/
#     exists/list_summaries, a view granted as a TABLE, w.metastores).
#   - the SDK's token, token management and workspace-conf calls: a user's
#     personal access token made, listed, revoked by an admin and refused;
#     rotation; a lifetime capped by maxTokenLifetimeDays; an on-behalf-of token.
#   - OAuth for a service principal: a secret from a.service_principal_secrets,
#     listed through the workspace proxy, then WorkspaceClient and AccountClient
#     with auth_type="oauth-m2m" (current_user.me(), users.list()); the secret
#     deleted stops both; no secret or access token in the server log.
#   - workload identity federation: oidc-provider from npm on loopback (installed
#     with npm into a cache directory the first time), a federation policy made
#     with a.service_principal_federation_policy, its client-credentials JWT
#     exchanged by WorkspaceClient(auth_type="env-oidc"), a replay refused, the
#     policy deleted stops the token. The server allows loopback http issuers
#     for it (SCIMITAR_FEDERATION_ALLOW_LOOPBACK_HTTP).
#   - two workspaces of one account with the SDK's account client: assignment
#     of a group, what its member and an unassigned user see through
#     HOST/w/{workspace_id}, unassignment, and a catalog isolated from one
#     workspace and bound read-only to the other with w.workspace_bindings.
#
# The Python tools come from the virtualenv in $SCIMITAR_VENV (default: .venv
# at the repository root, which scripts/test creates). If SCIMITAR_RESULTS is
# set, one line "PASS <suite>" or "FAIL <suite>" per suite is appended to that
# file (with " [LABEL]" after the suite when SCIMITAR_EXTERNAL_LABEL is set),
# so that scripts/test can count them. Exits non-zero if any suite
# failed or the server could not be started.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BINARY" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
binary="$(realpath "$1")"
venv="${SCIMITAR_VENV:-$repo_root/.venv}"
results_file="${SCIMITAR_RESULTS:-}"

# Bounds, so that a hung server or tool ends the run instead of eating CI's
# time budget.
readonly health_timeout_seconds=30
readonly suite_timeout_seconds=600

readonly suites=(
    "scim2-tester /scim/v2"
    "scim-sanity /scim/v2"
    "scim2-tester /api/2.0/preview/scim/v2"
    "scim-sanity /api/2.0/preview/scim/v2"
    "databricks-sdk workspace"
    "databricks-sdk account"
    "databricks-sdk permissions"
    "databricks-sdk governance"
    "databricks-sdk details"
    "databricks-sdk tokens"
    "databricks-sdk oauth"
    "databricks-sdk federation"
    "databricks-sdk workspaces"
)

if [[ ! -x "$binary" ]]; then
    echo "error: $binary is not an executable file" >&2
    exit 2
fi
if [[ ! -x "$venv/bin/python" ]]; then
    echo "error: no virtualenv at $venv (scripts/test creates it; or set SCIMITAR_VENV)" >&2
    exit 2
fi
python="$venv/bin/python"

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/scimitar-external.XXXXXX")"
server_log="$work_dir/server.log"
database_url="${SCIMITAR_EXTERNAL_DATABASE_URL:-sqlite://$work_dir/scimitar.db}"
label="${SCIMITAR_EXTERNAL_LABEL:-}"
server_pid=""
declare -A outcome=()

record() { # record PASS|FAIL SUITE
    outcome["$2"]="$1"
    if [[ -n "$results_file" ]]; then
        echo "$1 $2${label:+ [$label]}" >>"$results_file"
    fi
}

cleanup() {
    local status=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    # A suite that never ran (the server did not start, or this script died
    # part-way) still counts, as a failure, so a broken run cannot look green.
    local suite
    for suite in "${suites[@]}"; do
        if [[ -z "${outcome[$suite]:-}" ]]; then
            record FAIL "$suite"
            status=1
        fi
    done
    if [[ $status -ne 0 ]]; then
        echo
        echo "---- last 60 lines of the server log ($server_log) ----"
        tail -n 60 "$server_log" 2>/dev/null || echo "(no server log)"
        echo "---- the work directory $work_dir is kept for inspection ----"
    else
        rm -rf "$work_dir"
    fi
    exit "$status"
}
trap cleanup EXIT

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
origin="http://127.0.0.1:$port"

# The token is made before the server first starts, so the path where
# `token create` initialises an empty database is covered too.
echo "creating an admin token in $database_url"
token="$("$binary" token create --database "$database_url" --scope admin)" || {
    echo "error: '$binary token create' failed" >&2
    exit 1
}
if [[ -z "$token" ]]; then
    echo "error: 'token create' printed no token" >&2
    exit 1
fi
account_id="$("$binary" account list --database "$database_url" | head -n 1 | cut -f 1)" || {
    echo "error: '$binary account list' failed" >&2
    exit 1
}
if [[ -z "$account_id" ]]; then
    echo "error: 'account list' printed no account" >&2
    exit 1
fi
echo "account id: $account_id"

echo "starting $binary serve on $origin"
SCIMITAR_FEDERATION_ALLOW_LOOPBACK_HTTP=true "$binary" serve --listen "127.0.0.1:$port" --database "$database_url" \
    >"$work_dir/server.stdout" 2>"$server_log" &
server_pid=$!

"$python" - "$origin/healthz" "$health_timeout_seconds" "$server_pid" <<'PY'
import os, sys, time, urllib.request

url, timeout, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"error: the server exited before answering {url}")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(f"error: {url} did not answer 200 within {timeout:.0f} s")
PY
echo "server is up (pid $server_pid)"

export SCIMITAR_TOKEN="$token"

run_suite() { # run_suite SUITE COMMAND...
    local suite="$1"
    shift
    echo
    echo "==== suite: $suite ===="
    if timeout "$suite_timeout_seconds" "$@"; then
        record PASS "$suite"
        echo "==== PASS: $suite ===="
    else
        record FAIL "$suite"
        echo "==== FAIL: $suite ===="
    fi
}

for mount in /scim/v2 /api/2.0/preview/scim/v2; do
    run_suite "scim2-tester $mount" "$python" "$here/scim2_tester_check.py" "$origin$mount"
    # Strict mode (no --compat). Failures other than the deliberate deviations
    # listed in scim_sanity_check.py (and the README) fail the suite.
    run_suite "scim-sanity $mount" "$python" "$here/scim_sanity_check.py" "$origin$mount" \
        "$venv/bin/scim-sanity"
done
run_suite "databricks-sdk workspace" "$python" "$here/databricks_sdk_scenario.py" workspace "$origin"
run_suite "databricks-sdk account" "$python" "$here/databricks_sdk_scenario.py" account "$origin" "$account_id"
run_suite "databricks-sdk permissions" "$python" "$here/databricks_sdk_permissions.py" "$origin"
run_suite "databricks-sdk governance" "$python" "$here/databricks_sdk_governance.py" "$origin"
run_suite "databricks-sdk details" "$python" "$here/databricks_sdk_details.py" "$origin" "$account_id"
run_suite "databricks-sdk tokens" "$python" "$here/databricks_sdk_tokens.py" \
    "$origin" "$account_id" "$binary" "$database_url"
run_suite "databricks-sdk oauth" "$python" "$here/databricks_sdk_oauth.py" \
    "$origin" "$account_id" "$server_log"
run_suite "databricks-sdk federation" "$python" "$here/databricks_sdk_federation.py" \
    "$origin" "$account_id" "$server_log"
# Last: it adds (and removes) workspaces, which the suites above do not expect.
run_suite "databricks-sdk workspaces" "$python" "$here/databricks_sdk_workspaces.py" \
    "$origin" "$account_id" "$binary" "$database_url"

failed=0
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: the server died during the run" >&2
    failed=1
fi

echo
echo "==== external suites ===="
for suite in "${suites[@]}"; do
    echo "${outcome[$suite]:-FAIL}  $suite"
    if [[ "${outcome[$suite]:-FAIL}" != PASS ]]; then
        failed=1
    fi
done
exit "$failed"
