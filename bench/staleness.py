#!/usr/bin/env python3
"""Measures cross-node staleness: how long a change made on one Scimitar node takes to show on
another node of the same database. bench/run runs it while both nodes are under the two-node
mixed load. Standard library only.

Usage: staleness.py NODE_A NODE_B PROBES DEADLINE_SECONDS OUT_JSON
    NODE_A, NODE_B: SCIM roots (http://127.0.0.1:PORT/scim/v2); the bearer token comes from the
    BENCH_TOKEN environment variable.

It creates a probe user on node A, then alternates two kinds of probe until it has PROBES of
each or DEADLINE_SECONDS have passed:

- "follow": PATCH the probe user's displayName to a new value on node A; once A has answered,
  GET /Users/{id} on node B again and again (1 ms apart, one connection) until B answers with
  the new value. The delay is from A's answer to the arrival of B's first answer holding the new
  value, so it includes one request to B. Without a token, B shows other nodes' writes when its
  follower next reads the access log (every 100 ms), so this is bounded by about 100 ms plus
  the follower's catch-up and one request.
- "token": the same PATCH, then one GET on node B carrying `Scimitar-Read-After: N`, N being
  the `Scimitar-Change-Token` of A's answer. B must answer with the new value; the delay is that
  one request. An answer without the new value is counted as a violation.

Before each probe without a token it pauses for a random 0-100 ms (one follower interval), so
that the change lands at a random point of node B's follower cycle: a probe that began right
after B's last catch-up would otherwise lock into step with it and always wait almost a whole
interval. The write's own latency on A is recorded too. Results (every delay, in ms) go to
OUT_JSON; a summary goes to stderr. The exit status is non-zero only when the probe could not
start (no probe user); errors during the run are counted in the JSON and flagged by report.py.
"""

import http.client
import json
import os
import random
import sys
import time
import urllib.parse

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CHANGE_TOKEN = "Scimitar-Change-Token"
READ_AFTER = "Scimitar-Read-After"
# A change that has not reached node B after this long counts as lost for the probe.
GIVE_UP_SECONDS = 5.0
# Between two stale reads on node B: enough to keep the poll from taking a core, small against
# the delays measured (the resolution is one request plus this).
POLL_PAUSE_SECONDS = 0.001
# Scimitar's follower interval (README.md, "Several nodes"); see the pause before each probe.
FOLLOWER_INTERVAL_SECONDS = 0.1


class Node:
    """One keep-alive connection to a node's SCIM root."""

    def __init__(self, base_url, token):
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port = parsed.hostname, parsed.port
        self.base_path = parsed.path.rstrip("/")
        self.headers = {
            "Content-Type": "application/scim+json",
            "Accept": "application/scim+json",
            "Authorization": f"Bearer {token}",
        }
        self.connection = None

    def request(self, method, path, body=None, headers=None):
        """Returns (status, response headers, parsed JSON body or None)."""
        encoded = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        all_headers = dict(self.headers, **(headers or {}))
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.connection.request(method, self.base_path + path, body=encoded, headers=all_headers)
                response = self.connection.getresponse()
                raw = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        parsed = json.loads(raw) if raw.strip() else None
        return response.status, response, parsed


def percentile(values, fraction):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least 1
    return ordered[int(min(rank, len(ordered))) - 1]


def summary(values):
    if not values:
        return "no samples"
    return (
        f"{len(values)} probes, p50 {percentile(values, 0.5):.1f} ms, "
        f"p99 {percentile(values, 0.99):.1f} ms, max {max(values):.1f} ms"
    )


def main(argv):
    if len(argv) != 6:
        raise SystemExit(__doc__)
    base_a, base_b, probes, deadline_seconds, out_path = argv[1], argv[2], int(argv[3]), float(argv[4]), argv[5]
    token = os.environ.get("BENCH_TOKEN", "")
    started = time.monotonic()
    deadline = started + deadline_seconds
    node_a, node_b = Node(base_a, token), Node(base_b, token)
    nonce = f"{random.getrandbits(48):012x}"

    status, response, created = node_a.request(
        "POST",
        "/Users",
        {"schemas": [USER_SCHEMA], "userName": f"staleness-probe-{nonce}@example.com", "displayName": "probe start"},
    )
    if status != 201:
        raise SystemExit(f"creating the probe user on node A answered {status}: {json.dumps(created)[:300]}")
    user_id = created["id"]
    user_path = f"/Users/{user_id}"
    change_token = response.getheader(CHANGE_TOKEN)

    results = {
        "probes_requested": probes,
        "deadline_seconds": deadline_seconds,
        "change_token_header": change_token is not None,
        "follow": {"delays_ms": [], "stale_reads": [], "lost": 0},
        "token": {"delays_ms": [], "violations": 0},
        "write_ms": [],
        "errors": [],
        "error_count": 0,
    }

    def record_error(text):
        if len(results["errors"]) < 20:
            results["errors"].append(text)
        results["error_count"] += 1

    # Node B must know the probe user before the probes start (read-after the creation).
    headers = {READ_AFTER: change_token} if change_token else None
    wait_until = time.monotonic() + GIVE_UP_SECONDS
    while True:
        status, _, _ = node_b.request("GET", user_path, headers=headers)
        if status == 200:
            break
        if time.monotonic() > wait_until:
            raise SystemExit(f"node B never showed the probe user (last status {status})")
        time.sleep(0.01)

    counter = 0
    while time.monotonic() < deadline:
        follow, tokened = results["follow"], results["token"]
        if len(follow["delays_ms"]) + follow["lost"] >= probes and len(tokened["delays_ms"]) >= probes:
            break
        kind = "follow" if len(follow["delays_ms"]) + follow["lost"] <= len(tokened["delays_ms"]) else "token"
        if kind == "follow":
            time.sleep(random.uniform(0, FOLLOWER_INTERVAL_SECONDS))
        counter += 1
        value = f"probe {counter} {nonce}"
        patch = {
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "replace", "path": "displayName", "value": value}],
        }
        sent = time.perf_counter()
        try:
            status, response, _ = node_a.request("PATCH", user_path, patch)
        except (OSError, http.client.HTTPException) as error:
            record_error(f"PATCH on node A: {error}")
            continue
        acknowledged = time.perf_counter()
        if status not in (200, 204):
            record_error(f"PATCH on node A answered {status}")
            continue
        results["write_ms"].append((acknowledged - sent) * 1000)
        token_value = response.getheader(CHANGE_TOKEN)

        if kind == "token":
            if token_value is None:
                record_error("node A's PATCH answer carried no Scimitar-Change-Token")
                kind = "follow"  # measure it the other way rather than not at all
            else:
                try:
                    status, _, user = node_b.request("GET", user_path, headers={READ_AFTER: token_value})
                except (OSError, http.client.HTTPException) as error:
                    record_error(f"GET on node B: {error}")
                    continue
                answered = time.perf_counter()
                if status != 200:
                    record_error(f"GET with {READ_AFTER} on node B answered {status}")
                    continue
                if (user or {}).get("displayName") != value:
                    tokened["violations"] += 1
                tokened["delays_ms"].append((answered - acknowledged) * 1000)
        if kind == "follow":
            stale = 0
            give_up = acknowledged + GIVE_UP_SECONDS
            while True:
                try:
                    status, _, user = node_b.request("GET", user_path)
                except (OSError, http.client.HTTPException) as error:
                    record_error(f"GET on node B: {error}")
                    break
                answered = time.perf_counter()
                if status == 200 and (user or {}).get("displayName") == value:
                    follow["delays_ms"].append((answered - acknowledged) * 1000)
                    follow["stale_reads"].append(stale)
                    break
                if status != 200:
                    record_error(f"GET on node B answered {status}")
                stale += 1
                if answered > give_up:
                    follow["lost"] += 1
                    break
                time.sleep(POLL_PAUSE_SECONDS)

    results["elapsed_seconds"] = time.monotonic() - started
    with open(out_path, "w") as out_file:
        json.dump(results, out_file)
    print(f"staleness, no token (B follows the log): {summary(results['follow']['delays_ms'])}"
          + (f", {results['follow']['lost']} never seen within {GIVE_UP_SECONDS:.0f} s" if results["follow"]["lost"] else ""),
          file=sys.stderr)
    print(f"staleness, with {READ_AFTER}: {summary(results['token']['delays_ms'])}"
          + (f", {results['token']['violations']} reads without the change" if results["token"]["violations"] else ""),
          file=sys.stderr)
    if results.get("error_count"):
        print(f"staleness probe errors: {results['error_count']} ({'; '.join(results['errors'][:3])})", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
