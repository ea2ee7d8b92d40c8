#!/usr/bin/env python3
"""Peak memory of concurrent maximum-size requests against a release build of Scimitar.

Usage: bench/memory.py [BINARY]      (default target/release/scimitar; build it first with
                                       cargo build --release -p scimitar)

Standard library only. For each kind of request below, starts BINARY afresh on a new SQLite
database in a temporary directory under bench/.work (or on a scratch PostgreSQL database
scimitar_memory_<pid>_<n> when BENCH_BACKEND is postgres, on the server of BENCH_POSTGRES_URL,
default postgres://postgres@127.0.0.1:5432/test), on a free loopback port; for the list kinds,
seeds it through /Bulk with 1,025 users of the largest size the attribute limits allow
(about 15.5 KiB each) and 5 groups of BENCH_GROUP_MEMBERS members (default 6,000); then sends
BENCH_CONCURRENCY requests of the kind at once (default 8), each from its own thread,
BENCH_REPEAT times (default 3). Before each round it resets the process's peak resident size
(writing 5 to /proc/PID/clear_refs) and reads VmRSS; after it, VmHWM. The rise is VmHWM minus
that VmRSS, the most memory the round added at once; the table gives the largest of the
rounds. A fresh server per kind keeps memory one kind freed (and the allocator kept) from
hiding what the next needs. The kinds:

  small-values   POST /Users whose body is just under the 1 MiB limit and holds as many JSON
                 values as the server accepts (`[0,0,...]`): the largest parse tree allowed.
  value-flood    POST /Users of 1 MiB of `[0,0,...]`: more values than allowed, refused (413).
  oversized      POST /Users of 64 MiB (a 64 MiB displayName): refused by the body limit (413)
                 after reading at most 1 MiB of it.
  long-string    POST /Users just under 1 MiB with one long displayName: refused (400) by the
                 attribute limit.
  bulk           POST /Bulk of 1 MiB: users created, each of the largest size allowed.
  user-page      GET /Users?count=1000: a list page at its byte budget (8 MiB).
  group-page     GET /Groups?count=1000: a list page of groups at its member budget.

BENCH_KINDS (a comma-separated list of the names above) runs only those kinds. BENCH_VALUES
sets the number of values of the small-values body (default just under the
server's bound), to compare with builds that have no such bound.

Prints a table, and the same table as Markdown on stdout's last lines for BENCHMARKS.md. The
server is stopped and the scratch database removed on exit, whatever happens. Exits non-zero
when a request answered something other than what its kind expects.
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEBIBYTE = 1024 * 1024
# routes::MAX_BODY_JSON_VALUES; the body below stays just under it.
MAX_BODY_JSON_VALUES = 128 * 1024

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
GROUP_MEMBERS = int(os.environ.get("BENCH_GROUP_MEMBERS", "6000"))
BACKEND = os.environ.get("BENCH_BACKEND", "sqlite")
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid):
    # Linux: writing 5 to clear_refs resets VmHWM to the current resident size.
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")


class Client:
    def __init__(self, host, port, token):
        self.host, self.port, self.token = host, port, token

    def request(self, method, path, body=None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=300)
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/scim+json"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, data
        except (BrokenPipeError, ConnectionResetError) as error:
            # A server that refuses a body before reading all of it may close the connection
            # while the client is still sending: the refusal itself, for the oversized kind.
            return 0, str(error).encode()
        finally:
            connection.close()


def big_user(name):
    """A user near the largest size the attribute limits allow (about 15.5 of its 16 KiB)."""
    emails = [{"value": f"{name}-{n}-{'x' * 200}@example.com", "type": "work"} for n in range(50)]
    addresses = [{"formatted": "a" * 1000, "type": "work"} for _ in range(2)]
    return {"userName": f"{name}@example.com", "displayName": "d" * 256, "title": "t" * 256,
            "nickName": "n" * 256, "emails": emails, "addresses": addresses}


def seed(client):
    created = 0
    ids = []
    # 25 users of ~15.5 KiB per request keeps each /Bulk well under its 1 MiB limit; 1,025 users
    # make the first page a full thousand of the largest users the server stores.
    for batch in range(41):
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"u{batch}-{n}",
             "data": big_user(f"seed{batch:02d}{n:02d}")}
            for n in range(25)
        ]
        status, data = client.request(
            "POST", "/scim/v2/Bulk",
            json.dumps({"schemas": [BULK_REQUEST], "Operations": operations}))
        if status != 200:
            raise RuntimeError(f"seeding users: {status} {data[:300]!r}")
        for operation in json.loads(data)["Operations"]:
            if operation["status"] != "201":
                raise RuntimeError(f"seeding a user: {operation}")
            ids.append(operation["location"].rsplit("/", 1)[1])
            created += 1
    # Small users to be members.
    for batch in range((GROUP_MEMBERS + 999) // 1000):
        count = min(1000, GROUP_MEMBERS - batch * 1000)
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"m{batch}-{n}",
             "data": {"userName": f"member{batch:03d}{n:04d}@example.com"}}
            for n in range(count)
        ]
        status, data = client.request(
            "POST", "/scim/v2/Bulk",
            json.dumps({"schemas": [BULK_REQUEST], "Operations": operations}))
        if status != 200:
            raise RuntimeError(f"seeding members: {status} {data[:300]!r}")
        members = [op["location"].rsplit("/", 1)[1] for op in json.loads(data)["Operations"]]
        ids.extend(members)
    member_ids = ids[-GROUP_MEMBERS:]
    for name in ("big-a", "big-b", "big-c", "big-d", "big-e"):
        status, data = client.request(
            "POST", "/scim/v2/Groups", json.dumps({"displayName": name}))
        if status != 201:
            raise RuntimeError(f"creating a group: {status} {data[:300]!r}")
        group = json.loads(data)["id"]
        for start in range(0, len(member_ids), 5000):
            chunk = member_ids[start:start + 5000]
            patch = {"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": m} for m in chunk]}]}
            status, data = client.request(
                "PATCH", f"/scim/v2/Groups/{group}?excludedAttributes=members", json.dumps(patch))
            if status not in (200, 204):
                raise RuntimeError(f"adding members: {status} {data[:300]!r}")
    return created


def kinds():
    values = int(os.environ.get("BENCH_VALUES", MAX_BODY_JSON_VALUES - 64))
    small_values = '{"userName": "v@example.com", "x": [' + ",".join(["0"] * values) + "]}"
    flood = '{"userName": "f@example.com", "x": [' + ",".join(["0"] * (MEBIBYTE // 2 - 32)) + "]}"
    oversized = json.dumps({"userName": "o@example.com", "displayName": "x" * (64 * MEBIBYTE)})
    long_string = json.dumps({"userName": "l@example.com", "displayName": "x" * (MEBIBYTE - 64)})
    counter = iter(range(10**9))

    def bulk_body():
        n = next(counter)
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"b{n}-{i}",
             "data": big_user(f"bulk{n:05d}{i:02d}")}
            for i in range(60)
        ]
        return json.dumps({"schemas": [BULK_REQUEST], "Operations": operations})

    return [
        ("small-values", "POST", "/scim/v2/Users", lambda: small_values, {201, 409}),
        ("value-flood", "POST", "/scim/v2/Users", lambda: flood, {413}),
        ("oversized", "POST", "/scim/v2/Users", lambda: oversized, {413, 0}),
        ("long-string", "POST", "/scim/v2/Users", lambda: long_string, {400}),
        ("bulk", "POST", "/scim/v2/Bulk", bulk_body, {200}),
        ("user-page", "GET", "/scim/v2/Users?count=1000", lambda: None, {200}),
        ("group-page", "GET", "/scim/v2/Groups?count=1000", lambda: None, {200}),
    ]


def run_kind(client, pid, method, path, body_of, expected):
    bodies = [body_of() for _ in range(CONCURRENCY)]
    rises, sizes, statuses = [], [], set()
    for _ in range(REPEAT):
        time.sleep(0.5)
        reset_peak(pid)
        baseline = status_kib(pid, "VmRSS")
        results = [None] * CONCURRENCY

        def send(index):
            results[index] = client.request(method, path, bodies[index])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(CONCURRENCY)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peak = status_kib(pid, "VmHWM")
        rises.append(peak - baseline)
        for status, data in results:
            statuses.add(status)
            sizes.append(len(data))
    unexpected = statuses - expected
    return max(rises), max(sizes), sorted(statuses), unexpected


def start_server(binary, work, index):
    """A fresh server on a fresh database; returns (process, client, scratch database or None)."""
    scratch = None
    if BACKEND == "postgres":
        scratch = f"scimitar_memory_{os.getpid()}_{index}"
        subprocess.run(["psql", POSTGRES_URL, "-qc", f"CREATE DATABASE {scratch}"], check=True,
                       stdout=subprocess.DEVNULL)
        database = POSTGRES_URL.rsplit("/", 1)[0] + "/" + scratch
    else:
        database = f"sqlite://{work}/scimitar{index}.db"
    token = subprocess.run([binary, "token", "create", "--database", database],
                           check=True, capture_output=True, text=True).stdout.strip()
    log = open(os.path.join(work, f"server{index}.log"), "w+")
    server = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--database", database],
        stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(100):
        log.seek(0)
        match = re.search(r"scimitar listening on http://([0-9.]+):([0-9]+)", log.read())
        if match:
            return server, Client(match.group(1), int(match.group(2)), token), scratch
        time.sleep(0.1)
    log.seek(0)
    server.kill()
    sys.exit("the server did not start:\n" + log.read())


def stop_server(server, scratch):
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    if scratch:
        subprocess.run(["psql", POSTGRES_URL, "-qc",
                        f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                             os.path.join(REPO, "target/release/scimitar"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} is missing: cargo build --release -p scimitar")
    os.makedirs(os.path.join(REPO, "bench/.work"), exist_ok=True)
    work = tempfile.mkdtemp(prefix="memory.", dir=os.path.join(REPO, "bench/.work"))
    running = None
    try:
        rows = []
        failed = False
        # Each kind on a fresh server, so that memory one kind freed (and the allocator kept)
        # cannot hide what the next one needs; the list kinds on a seeded one.
        wanted = os.environ.get("BENCH_KINDS", "")
        selected = [kind for kind in kinds() if not wanted or kind[0] in wanted.split(",")]
        for index, (name, method, path, body_of, expected) in enumerate(selected):
            server, client, scratch = start_server(binary, work, index)
            running = (server, scratch)
            if name.endswith("-page"):
                started = time.time()
                users = seed(client)
                print(f"seeded {users} users of ~15.5 KiB and 5 groups of {GROUP_MEMBERS} "
                      f"members in {time.time() - started:.0f} s", file=sys.stderr)
            idle = status_kib(server.pid, "VmRSS")
            rise, size, statuses, unexpected = run_kind(
                client, server.pid, method, path, body_of, expected)
            peak = status_kib(server.pid, "VmHWM")
            stop_server(server, scratch)
            running = None
            failed |= bool(unexpected)
            rows.append((name, idle, rise, peak, size, statuses))
            print(f"{name:13} idle {idle / 1024:6.0f} MiB  rise {rise / 1024:8.1f} MiB  "
                  f"largest answer {size / MEBIBYTE:6.2f} MiB  statuses {statuses}"
                  f"{'  UNEXPECTED' if unexpected else ''}", file=sys.stderr)
        print(f"\nbackend {BACKEND}, {CONCURRENCY} concurrent requests of each kind, "
              f"{REPEAT} times, each kind on a fresh server\n")
        print("| kind | resident before | largest rise | largest answer | statuses |")
        print("|---|---:|---:|---:|---|")
        for name, idle, rise, peak, size, statuses in rows:
            print(f"| {name} | {idle / 1024:.0f} MiB | {rise / 1024:.1f} MiB | "
                  f"{size / MEBIBYTE:.2f} MiB | {', '.join(map(str, statuses))} |")
        sys.exit(1 if failed else 0)
    finally:
        if running is not None:
            stop_server(*running)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
