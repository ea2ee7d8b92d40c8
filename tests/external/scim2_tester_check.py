#!/usr/bin/env python3
"""Run the scim2-tester conformance checks against one SCIM base URL.

Usage: SCIMITAR_TOKEN=<secret> scim2_tester_check.py BASE_URL

Prints one line per check result and exits 1 unless every result is SUCCESS.
We drive `scim2_tester.check_server` ourselves rather than through `scim2 test`
so that a skip the team has agreed to accept can be listed, with its reason,
in ALLOWED_SKIPS below instead of failing the whole run.
"""

import os
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

# Skipped checks that do not fail the run, keyed by (check title, resource
# type or None for server-wide checks). Every entry must say why the skip is
# acceptable. Keep this empty unless a skip is a deliberate product decision.
ALLOWED_SKIPS: dict[tuple[str, str | None], str] = {}

# How much of a failing check's debug data to print. The data usually holds
# the request and response that went wrong, which is what a reader needs.
MAX_DEBUG_CHARS = 3000

REQUEST_TIMEOUT_SECONDS = 30.0


def describe(result) -> str:
    resource_type = result.resource_type or "-"
    line = f"{result.status.name:<10} {result.title}  [{resource_type}]"
    if result.reason:
        line += f"  {result.reason}"
    return line


def render_http_exchange(response) -> str:
    """Show an HTTP response (and the request behind it) the way a bug report wants it."""
    request = response.request
    body = request.content.decode("utf-8", "replace") if request.content else ""
    return (
        f"{request.method} {request.url} {body}\n"
        f"           -> {response.status_code} {response.headers.get('content-type', '')} "
        f"{response.text}"
    )


def debug_data(result) -> str:
    data = result.data
    if hasattr(data, "status_code") and hasattr(data, "request"):
        text = render_http_exchange(data)
    else:
        text = repr(data)
    if len(text) > MAX_DEBUG_CHARS:
        text = text[:MAX_DEBUG_CHARS] + f"... ({len(text) - MAX_DEBUG_CHARS} more chars)"
    return text


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: scim2_tester_check.py BASE_URL (token in SCIMITAR_TOKEN)", file=sys.stderr)
        return 2
    base_url = sys.argv[1]
    token = os.environ.get("SCIMITAR_TOKEN")
    if not token:
        print("SCIMITAR_TOKEN is not set", file=sys.stderr)
        return 2

    http = Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
    scim = SyncSCIMClient(http)
    print(f"scim2-tester against {base_url}")
    results = check_server(scim)

    succeeded = skipped_allowed = 0
    skipped_failing = 0
    failed = 0
    for result in results:
        print(describe(result))
        if result.status is Status.SUCCESS:
            succeeded += 1
            continue
        key = (result.title, result.resource_type)
        if result.status is Status.SKIPPED and key in ALLOWED_SKIPS:
            skipped_allowed += 1
            print(f"           allowed skip: {ALLOWED_SKIPS[key]}")
            continue
        if result.status is Status.SKIPPED:
            skipped_failing += 1
        else:
            failed += 1
        if result.data is not None:
            print(f"           data: {debug_data(result)}")

    print(
        f"scim2-tester: {len(results)} results, {succeeded} succeeded, "
        f"{failed} failed, {skipped_failing} skipped (not allowed), "
        f"{skipped_allowed} skipped (allowed)"
    )
    if not results:
        print("scim2-tester produced no results at all", file=sys.stderr)
        return 1
    return 1 if failed or skipped_failing else 0


if __name__ == "__main__":
    sys.exit(main())
