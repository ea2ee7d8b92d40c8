#!/usr/bin/env python3
"""Measures how long one membership change at a Scimitar source takes to show at a Scimitar
target under `scimitar sync watch` (bench/sync_watch.sh starts the three processes). Standard
library only.

Usage: sync_watch_probe.py SOURCE TARGET CHANGES DEADLINE_SECONDS
    SOURCE, TARGET: SCIM roots (http://127.0.0.1:PORT/scim/v2); the bearer tokens come from
    BENCH_SOURCE_TOKEN and BENCH_TARGET_TOKEN.

It waits for the first run to bring the group `watch-bench-PID` (member `probe-0-PID`) to the target,
then CHANGES times adds the user `probe-1` to the source group or removes it (alternately),
and polls the target group (2 ms apart, one connection) until its member count matches. The delay is
from the source's answer to the first target answer that matches. Prints p50, p90, p99 and max
in milliseconds; exits non-zero when a change did not show within DEADLINE_SECONDS.
"""

import http.client
import json
import os
import sys
import time
import urllib.parse

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# Names of this probe's own (the process id), so that a probe can run again against databases
# an earlier one left behind.
SUFFIX = f"-{os.getpid()}"
GROUP = "watch-bench" + SUFFIX


class Scim:
    def __init__(self, base, token):
        url = urllib.parse.urlsplit(base)
        self.path = url.path.rstrip("/")
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/scim+json",
        }

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body)
        try:
            self.connection.request(method, self.path + path, body=data, headers=self.headers)
            response = self.connection.getresponse()
        except (ConnectionError, http.client.HTTPException):
            # A connection left idle while the other side was polled (minutes, at 100,000
            # users, during watch's first full run) may have been closed by the server: open
            # another and send the request once more.
            self.connection.close()
            self.connection.request(method, self.path + path, body=data, headers=self.headers)
            response = self.connection.getresponse()
        text = response.read()
        return response.status, (json.loads(text) if text else None)

    def find(self, kind, attribute, value):
        query = urllib.parse.quote(f'{attribute} eq "{value}"')
        status, page = self.call("GET", f"/{kind}?filter={query}")
        return page.get("Resources", []) if status == 200 else []


def member_count(target, group):
    """The target group's member count (probe-0 alone, or with probe-1), None before it exists."""
    groups = target.find("Groups", "displayName", group)
    if len(groups) != 1:
        return None
    status, group = target.call("GET", f"/Groups/{groups[0]['id']}")
    if status != 200:
        return None
    return len(group.get("members", []))


def wait_for(target, count, deadline, group=GROUP):
    """Whether the target's `group` shows `count` members before the deadline. The group is
    this probe's own unless named (the LDAP probe's comes from the directory's seed)."""
    while time.monotonic() < deadline:
        if member_count(target, group) == count:
            return True
        time.sleep(0.002)
    return False


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main(argv):
    source_url, target_url, changes, deadline = argv[1], argv[2], int(argv[3]), float(argv[4])
    source = Scim(source_url, os.environ["BENCH_SOURCE_TOKEN"])
    target = Scim(target_url, os.environ["BENCH_TARGET_TOKEN"])
    ids = {}
    for name in ("probe-0", "probe-1"):
        status, user = source.call("POST", "/Users", {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name + SUFFIX, "displayName": name + SUFFIX})
        if status != 201:
            sys.exit(f"sync_watch_probe: creating {name}: {status} {user}")
        ids[name] = user["id"]
    status, group = source.call("POST", "/Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": GROUP, "members": [{"value": ids["probe-0"]}]})
    if status != 201:
        sys.exit(f"sync_watch_probe: creating the group: {status} {group}")
    # The first run reads both sides whole: at a large directory that takes longer than a change.
    if not wait_for(target, 1, time.monotonic() + max(120, deadline)):
        sys.exit("sync_watch_probe: the first run did not bring the group to the target")
    delays = []
    inside = False
    for _ in range(changes):
        if inside:
            operation = {"op": "remove", "path": f'members[value eq "{ids["probe-1"]}"]'}
            expected = 1
        else:
            operation = {"op": "add", "path": "members", "value": [{"value": ids["probe-1"]}]}
            expected = 2
        status, answer = source.call("PATCH", f"/Groups/{group['id']}",
                                     {"schemas": [PATCH_SCHEMA], "Operations": [operation]})
        if status not in (200, 204):
            sys.exit(f"sync_watch_probe: PATCH: {status} {answer}")
        changed = time.monotonic()
        if not wait_for(target, expected, changed + deadline):
            sys.exit(f"sync_watch_probe: a change did not show within {deadline} s")
        delays.append((time.monotonic() - changed) * 1000)
        inside = not inside
    print(f"sync watch: {len(delays)} membership changes, source answer to target showing it (ms):")
    print(f"  p50 {percentile(delays, 0.50):.0f}  p90 {percentile(delays, 0.90):.0f}  "
          f"p99 {percentile(delays, 0.99):.0f}  max {max(delays):.0f}")


if __name__ == "__main__":
    main(sys.argv)
