#!/usr/bin/env python3
"""Seeds a SCIM server for bench/run and asks it the few questions the harness needs.

Standard library only, so it runs under any Python 3 without the benchmark's venv. It talks
plain SCIM, so the same calls seed Scimitar and scim2-server identically: users go in through
/Bulk in the largest chunks the server's ServiceProviderConfig announces (one POST per user
when the server does not support /Bulk), and every created id is written, in creation order,
one per line, to a file the wrk Lua scripts read.

Subcommands (BASE is the SCIM root, for example http://127.0.0.1:8080/scim/v2; the bearer
token comes from the BENCH_TOKEN environment variable so it never shows in `ps`):

    seed.py users BASE PREFIX COUNT IDS_FILE
        Create COUNT users named PREFIX-000000@example.com ... and write their ids.
    seed.py group BASE NAME IDS_FILE FIRST COUNT [BATCH]
        Create a group, add the ids on lines FIRST .. FIRST+COUNT-1 of IDS_FILE as members in
        PATCH requests of BATCH members each, check the member count, print the group id.
    seed.py group-size BASE GROUP_ID
        Print how many members the server lists for the group.
    seed.py remove-members BASE GROUP_ID IDS_FILE
        Remove every id of IDS_FILE from the group in one PATCH (absent ones are no-ops), to
        undo any drift a membership benchmark left behind.
    seed.py count-users BASE FILTER
        Print totalResults of GET /Users?filter=FILTER&count=0.
    seed.py wait BASE SECONDS
        Wait until BASE/ServiceProviderConfig answers (any HTTP status), or fail.
"""

import http.client
import json
import os
import sys
import time
import urllib.parse

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# Stay under the announced payload limit with room for the envelope.
PAYLOAD_HEADROOM_BYTES = 4096


class ScimClient:
    """One keep-alive connection to a SCIM root; reconnects when the server closes it."""

    def __init__(self, base_url, token, timeout_seconds=300):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "http":
            raise SystemExit(f"only http:// loopback servers are benchmarked, not {base_url}")
        self.base_path = parsed.path.rstrip("/")
        self.connection = http.client.HTTPConnection(
            parsed.hostname, parsed.port, timeout=timeout_seconds
        )
        self.headers = {"Content-Type": "application/scim+json", "Accept": "application/scim+json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, path, body=None):
        """Returns (status, parsed JSON body or None)."""
        encoded = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            self.connection.request(method, self.base_path + path, body=encoded, headers=self.headers)
            response = self.connection.getresponse()
            raw = response.read()
        except (http.client.HTTPException, ConnectionError):
            # The peer (wsgiref, HTTP/1.0) closes every connection; retry once on a fresh one.
            self.connection.close()
            self.connection.request(method, self.base_path + path, body=encoded, headers=self.headers)
            response = self.connection.getresponse()
            raw = response.read()
        if response.getheader("Connection", "").lower() == "close" or response.version == 10:
            self.connection.close()
        parsed = json.loads(raw) if raw.strip() else None
        return response.status, parsed

    def expect(self, method, path, body, *statuses):
        status, parsed = self.request(method, path, body)
        if status not in statuses:
            raise SystemExit(f"{method} {path} answered {status}: {json.dumps(parsed)[:500]}")
        return parsed


def token():
    return os.environ.get("BENCH_TOKEN", "")


def user_document(prefix, index):
    """The same user, field for field, on both servers."""
    name = f"{prefix}-{index:06d}"
    return {
        "schemas": [USER_SCHEMA],
        "userName": f"{name}@example.com",
        "displayName": f"Bench User {index}",
        "name": {"givenName": "Bench", "familyName": f"User{index}"},
        "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
        "active": True,
    }


def id_from_location(location):
    return location.rstrip("/").rsplit("/", 1)[-1]


def bulk_limits(client):
    config = client.expect("GET", "/ServiceProviderConfig", None, 200)
    bulk = config.get("bulk") or {}
    if not bulk.get("supported"):
        return None
    return int(bulk.get("maxOperations") or 1), int(bulk.get("maxPayloadSize") or 1 << 20)


def chunks_within_limits(operations, max_operations, max_payload_bytes):
    """Yields lists of operations that each fit one bulk request."""
    chunk, size = [], 0
    for operation in operations:
        operation_size = len(json.dumps(operation, separators=(",", ":"))) + 1
        if chunk and (
            len(chunk) >= max_operations
            or size + operation_size > max_payload_bytes - PAYLOAD_HEADROOM_BYTES
        ):
            yield chunk
            chunk, size = [], 0
        chunk.append(operation)
        size += operation_size
    if chunk:
        yield chunk


def create_users(base, prefix, count, ids_path):
    client = ScimClient(base, token())
    started = time.monotonic()
    limits = bulk_limits(client)
    ids = []
    if limits is None:
        for index in range(count):
            created = client.expect("POST", "/Users", user_document(prefix, index), 201)
            ids.append(created["id"])
    else:
        max_operations, max_payload_bytes = limits
        operations = (
            {"method": "POST", "path": "/Users", "bulkId": f"u{index}", "data": user_document(prefix, index)}
            for index in range(count)
        )
        for chunk in chunks_within_limits(operations, max_operations, max_payload_bytes):
            response = client.expect(
                "POST", "/Bulk", {"schemas": [BULK_REQUEST_SCHEMA], "Operations": chunk}, 200
            )
            by_bulk_id = {}
            for outcome in response.get("Operations", []):
                if str(outcome.get("status")) != "201":
                    raise SystemExit(f"bulk user creation failed: {json.dumps(outcome)[:500]}")
                by_bulk_id[outcome["bulkId"]] = id_from_location(outcome["location"])
            for operation in chunk:
                if operation["bulkId"] not in by_bulk_id:
                    raise SystemExit(f"bulk response lacks {operation['bulkId']}")
                ids.append(by_bulk_id[operation["bulkId"]])
    with open(ids_path, "w") as ids_file:
        ids_file.write("".join(f"{user_id}\n" for user_id in ids))
    print(f"created {len(ids)} users in {time.monotonic() - started:.1f}s", file=sys.stderr)


def create_group(base, name, ids_path, first, count, batch):
    client = ScimClient(base, token())
    with open(ids_path) as ids_file:
        ids = [line.strip() for line in ids_file if line.strip()]
    members = ids[first : first + count]
    if len(members) != count:
        raise SystemExit(f"{ids_path} holds {len(ids)} ids, fewer than {first + count}")
    started = time.monotonic()
    group = client.expect("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": name}, 201)
    group_id = group["id"]
    for start in range(0, count, batch):
        value = [{"value": member} for member in members[start : start + batch]]
        patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": value}]}
        # Ask for nothing back: the echo of a large group is not what is being built here.
        client.expect("PATCH", f"/Groups/{group_id}?attributes=id", patch, 200, 204)
    held = member_count(client, group_id)
    if held != count:
        raise SystemExit(f"group {name} holds {held} members, expected {count}")
    print(f"built group {name} with {count} members in {time.monotonic() - started:.1f}s", file=sys.stderr)
    print(group_id)


def member_count(client, group_id):
    """The number of members the server lists for a group (-1 when it lists no such group)."""
    listed = client.expect(
        "GET",
        "/Groups?" + urllib.parse.urlencode({"filter": f'id eq "{group_id}"', "attributes": "members"}),
        None,
        200,
    )
    resources = listed.get("Resources") or []
    return len(resources[0].get("members") or []) if resources else -1


def remove_members(base, group_id, ids_path):
    client = ScimClient(base, token())
    with open(ids_path) as ids_file:
        value = [{"value": line.strip()} for line in ids_file if line.strip()]
    patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "remove", "path": "members", "value": value}]}
    client.expect("PATCH", f"/Groups/{group_id}?attributes=id", patch, 200, 204)


def count_users(base, filter_expression):
    client = ScimClient(base, token())
    query = urllib.parse.urlencode({"filter": filter_expression, "count": "0"})
    listed = client.expect("GET", f"/Users?{query}", None, 200)
    print(listed["totalResults"])


def wait_until_serving(base, seconds):
    deadline = time.monotonic() + float(seconds)
    while True:
        try:
            ScimClient(base, token(), timeout_seconds=2).request("GET", "/ServiceProviderConfig")
            return
        except (OSError, http.client.HTTPException, ValueError):
            if time.monotonic() > deadline:
                raise SystemExit(f"{base} did not answer within {seconds}s")
            time.sleep(0.1)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    command, arguments = argv[1], argv[2:]
    if command == "users" and len(arguments) == 4:
        create_users(arguments[0], arguments[1], int(arguments[2]), arguments[3])
    elif command == "group" and len(arguments) in (5, 6):
        batch = int(arguments[5]) if len(arguments) == 6 else 1000
        create_group(arguments[0], arguments[1], arguments[2], int(arguments[3]), int(arguments[4]), batch)
    elif command == "group-size" and len(arguments) == 2:
        print(member_count(ScimClient(arguments[0], token()), arguments[1]))
    elif command == "remove-members" and len(arguments) == 3:
        remove_members(arguments[0], arguments[1], arguments[2])
    elif command == "count-users" and len(arguments) == 2:
        count_users(arguments[0], arguments[1])
    elif command == "wait" and len(arguments) == 2:
        wait_until_serving(arguments[0], arguments[1])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
