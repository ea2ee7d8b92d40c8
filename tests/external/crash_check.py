#!/usr/bin/env python3
"""Crash test: no acknowledged write is ever lost, and a crash leaves consistent data.

Usage: crash_check.py BINARY [--database URL] [--rounds N] [--results FILE] [--label L]

Starts `BINARY serve` on a fresh database (a new SQLite file unless --database names an
empty one), then, several times over: drives concurrent writers (user creations, user
PATCHes, group member additions and, where the Unity Catalog API answers, grants) for a
random fraction of a second, kills the server with SIGKILL in the middle of that traffic,
restarts it on the same database and checks that

  - every write that was answered 2xx is there (users, memberships, grants, and for each
    renamed user a displayName that no acknowledged rename sent later can have replaced);
  - the data is consistent: every member of every group exists, each userName is held by
    exactly one user, and the server serves normally after restart;
  - every acknowledged write has its audit event (issue #16: an event is written in the
    change's transaction, so a change that survived the kill has one): a creation event for
    each user, an update carrying each acknowledged displayName, a membership event naming
    group and member, a permissions event for each grant;
and, at the end, that `BINARY audit verify` accepts the trail the kills left.

Only the standard library is used. Exits non-zero on the first violation, printing it.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from serving import free_port, wait_until_healthy

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Server:
    def __init__(self, binary, database, work_dir):
        self.binary, self.database, self.work_dir = binary, database, work_dir
        self.process = None
        self.origin = None

    def start(self):
        port = free_port()
        self.origin = f"http://127.0.0.1:{port}"
        log = open(os.path.join(self.work_dir, "server.log"), "ab")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--listen", f"127.0.0.1:{port}", "--database", self.database],
            stdout=log,
            stderr=log,
        )
        wait_until_healthy(self.process, self.origin)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class Client:
    def __init__(self, server, token):
        self.server, self.token = server, token

    def call(self, method, path, body=None, timeout=10):
        """Returns (status, json or None); status 0 when the connection failed."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.server.origin + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                raw = reply.read()
                return reply.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw) if raw else None
            except ValueError:
                return error.code, None
        except (OSError, ValueError):
            return 0, None


class Ledger:
    """What the server acknowledged, and what was in flight when it died."""

    def __init__(self):
        self.lock = threading.Lock()
        self.users = {}  # id -> userName (acknowledged creations)
        # id -> [Rename], in the order they were sent. Two writers may rename one user at
        # once, and the server may commit them in either order, so the order of sending
        # alone does not say which value must win; `tick` orders sends and answers.
        self.renames = {}
        self.clock = 0
        self.members = {}  # group id -> set of member ids acknowledged as added
        self.grants = set()  # (catalog, group displayName) acknowledged
        self.groups = {}  # id -> displayName

    def tick(self):
        """The next point in the ledger's order of events; call with the lock held."""
        self.clock += 1
        return self.clock


class Rename:
    """One displayName PATCH: when it was sent, and when and how it was answered."""

    def __init__(self, value, sent):
        self.value = value
        self.sent = sent
        # Set when the server answered with a status (not when the connection failed,
        # since a request cut off by the kill may still have committed).
        self.answered = None
        self.acked = False


def writer(client, ledger, stop, seed):
    rng = random.Random(seed)
    counter = 0
    while not stop.is_set():
        counter += 1
        choice = rng.random()
        with ledger.lock:
            user_ids = list(ledger.users)
            group_ids = list(ledger.groups)
        if choice < 0.45 or not user_ids:
            name = f"crash-{seed}-{counter}-{rng.randrange(1 << 30)}@example.com"
            status, body = client.call(
                "POST", "/scim/v2/Users", {"schemas": [USER_SCHEMA], "userName": name}
            )
            if status == 201:
                with ledger.lock:
                    ledger.users[body["id"]] = name
        elif choice < 0.75:
            user = rng.choice(user_ids)
            with ledger.lock:
                value = f"name-{seed}-{counter}"
                rename = Rename(value, ledger.tick())
                ledger.renames.setdefault(user, []).append(rename)
            status, _ = client.call(
                "PATCH",
                f"/scim/v2/Users/{user}",
                {
                    "schemas": [PATCH_SCHEMA],
                    "Operations": [{"op": "replace", "path": "displayName", "value": value}],
                },
            )
            if status != 0:
                with ledger.lock:
                    rename.answered = ledger.tick()
                    rename.acked = 200 <= status < 300
        elif group_ids:
            group, user = rng.choice(group_ids), rng.choice(user_ids)
            status, _ = client.call(
                "PATCH",
                f"/scim/v2/Groups/{group}",
                {
                    "schemas": [PATCH_SCHEMA],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}],
                },
            )
            if 200 <= status < 300:
                with ledger.lock:
                    ledger.members.setdefault(group, set()).add(user)


def granter(client, ledger, stop, catalog):
    """Grants USE_CATALOG on the catalog to the groups, one after another, if the API exists."""
    with ledger.lock:
        groups = list(ledger.groups.items())
    for _, name in groups:
        if stop.is_set():
            return
        status, _ = client.call(
            "PATCH",
            f"/api/2.1/unity-catalog/permissions/catalog/{catalog}",
            {"changes": [{"principal": name, "add": ["USE_CATALOG"]}]},
        )
        if 200 <= status < 300:
            with ledger.lock:
                ledger.grants.add((catalog, name))


def rename_problem(user, sent, shown):
    """What is wrong with `shown` as the user's displayName after `sent`, or None.

    Once a rename is acknowledged, the value shown must be one that can have been committed
    last: a value sent (acknowledged, refused, or cut off by the kill), and not one whose
    request was answered before an acknowledged rename was sent, since that rename then
    committed after it. Concurrent renames may end in either order.
    """
    acked = [rename for rename in sent if rename.acked]
    if not acked:
        return None
    latest_send = max(rename.sent for rename in acked)
    possible = [
        rename
        for rename in sent
        # Unanswered: cut off by the kill, it may have committed at any time before it.
        if rename.answered is None or (rename.acked and rename.answered > latest_send)
    ]
    if shown in {rename.value for rename in possible}:
        return None
    last = max(acked, key=lambda rename: rename.sent)
    return (
        f"user {user} has displayName {shown!r}; the last acknowledged rename sent was "
        f"{last.value!r}, and {shown!r} cannot have been committed after it"
    )


def check_rename_rule():
    """The rule above on made-up histories, so that a rule which cannot fail is caught
    before it judges a server: (value, sent, answered, acknowledged)."""

    def history(*renames):
        made = []
        for value, sent, answered, acked in renames:
            rename = Rename(value, sent)
            rename.answered, rename.acked = answered, acked
            made.append(rename)
        return made

    concurrent = history(("a", 1, 4, True), ("b", 2, 3, True))
    assert rename_problem("u", concurrent, "a") is None, "either concurrent rename may win"
    assert rename_problem("u", concurrent, "b") is None, "either concurrent rename may win"
    in_turn = history(("a", 1, 2, True), ("b", 3, 4, True))
    assert rename_problem("u", in_turn, "a"), "an acknowledged later rename was lost"
    assert rename_problem("u", in_turn, None), "every acknowledged rename was lost"
    assert rename_problem("u", in_turn, "b") is None
    cut_off = in_turn + history(("c", 5, None, False))
    assert rename_problem("u", cut_off, "c") is None, "cut off by the kill, it may commit"
    refused = in_turn + history(("d", 5, 6, False))
    assert rename_problem("u", refused, "d"), "a refused rename was committed"


def audit_events(client):
    """Every event of the trail, oldest first, through GET /api/2.0/audit/events."""
    events, token = [], None
    while True:
        path = "/api/2.0/audit/events?limit=1000"
        if token:
            path += "&page_token=" + urllib.request.quote(token)
        status, page = client.call("GET", path, timeout=60)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {page}")
        events += page.get("events", [])
        token = page.get("next_page_token")
        if not token:
            return events


def audit_problems(client, ledger, users, renames, members, grants):
    """What acknowledged writes have no audit event."""
    try:
        events = audit_events(client)
    except RuntimeError as error:
        return [f"the audit trail cannot be read: {error}"]
    created, named, joined, granted = set(), set(), set(), set()
    for event in events:
        action, targets = event.get("action_name"), event.get("targets") or []
        ids = [target.get("id") for target in targets]
        if action == "add":
            created.update(ids)
        for target in targets:
            for changed in target.get("modified_properties") or []:
                if changed.get("display_name") == "displayName":
                    named.add((target.get("id"), changed.get("new_value")))
        params = event.get("request_params") or {}
        group = params.get("targetGroupId")
        if group:
            joined.update((group, member) for member in ids if member != group)
        if action == "updatePermissions":
            for change in params.get("changes") or []:
                for privilege in change.get("add") or []:
                    granted.update((target, change.get("principal"), privilege) for target in ids)
    problems = [f"acknowledged user {user} has no creation event" for user in users if user not in created]
    for user, sent in renames.items():
        for rename in sent:
            if rename.acked and (user, rename.value) not in named:
                problems.append(f"acknowledged rename of {user} to {rename.value!r} has no event")
    for group, expected in members.items():
        for member in expected:
            if (group, member) not in joined:
                problems.append(f"acknowledged membership of {member} in {group} has no event")
    with ledger.lock:
        group_ids = {name: id_ for id_, name in ledger.groups.items()}
    for catalog, name in grants:
        if (catalog, group_ids.get(name), "USE_CATALOG") not in granted:
            problems.append(f"acknowledged grant on {catalog} to {name} has no event")
    return problems


def verify(client, ledger, label):
    problems = []
    with ledger.lock:
        users = dict(ledger.users)
        renames = {user: list(sent) for user, sent in ledger.renames.items()}
        members = {group: set(ids) for group, ids in ledger.members.items()}
        grants = set(ledger.grants)
    for user, name in users.items():
        status, body = client.call("GET", f"/scim/v2/Users/{user}")
        if status != 200:
            problems.append(f"acknowledged user {user} ({name}) is gone: {status}")
            continue
        if body.get("userName") != name:
            problems.append(f"user {user} has userName {body.get('userName')!r}, not {name!r}")
        problem = rename_problem(user, renames.get(user, []), body.get("displayName"))
        if problem:
            problems.append(problem)
        status, listed = client.call(
            "GET", "/scim/v2/Users?filter=" + urllib.request.quote(f'userName eq "{name}"')
        )
        if status != 200 or listed.get("totalResults") != 1:
            problems.append(f"userName {name} is held by {listed and listed.get('totalResults')} users")
    for group, expected in members.items():
        status, body = client.call("GET", f"/scim/v2/Groups/{group}")
        if status != 200:
            problems.append(f"group {group} is gone: {status}")
            continue
        present = {member["value"] for member in body.get("members", [])}
        missing = expected - present
        if missing:
            problems.append(f"group {group} lost acknowledged members {sorted(missing)[:5]}")
        for member in present:
            status, _ = client.call("GET", f"/scim/v2/Users/{member}")
            if status != 200:
                problems.append(f"group {group} has member {member}, which does not exist")
    for catalog, name in grants:
        status, body = client.call("GET", f"/api/2.1/unity-catalog/permissions/catalog/{catalog}")
        holders = {
            assignment.get("principal"): assignment.get("privileges", [])
            for assignment in (body or {}).get("privilege_assignments", [])
        }
        if "USE_CATALOG" not in holders.get(name, []):
            problems.append(f"acknowledged grant of USE_CATALOG on {catalog} to {name} is gone")
    problems += audit_problems(client, ledger, users, renames, members, grants)
    if problems:
        for problem in problems[:20]:
            print(f"  violation [{label}]: {problem}")
        return False
    print(
        f"  [{label}] verified {len(users)} users (and their audit events), "
        f"{sum(rename.acked for sent in renames.values() for rename in sent)} renames, "
        f"{sum(len(ids) for ids in members.values())} memberships, {len(grants)} grants"
    )
    return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--database")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--results")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    suite = "crash test" + (f" [{args.label}]" if args.label else "")
    check_rename_rule()

    work_dir = tempfile.mkdtemp(prefix="scimitar-crash.")
    database = args.database or f"sqlite://{work_dir}/scimitar.db"
    token = subprocess.run(
        [args.binary, "token", "create", "--database", database, "--scope", "admin"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    server = Server(args.binary, database, work_dir)
    client = Client(server, token)
    ledger = Ledger()
    rng = random.Random(7)
    ok = True
    try:
        server.start()
        for index in range(4):
            name = f"crash-group-{index}"
            status, body = client.call(
                "POST", "/scim/v2/Groups", {"schemas": [GROUP_SCHEMA], "displayName": name}
            )
            if status != 201:
                sys.exit(f"FAIL: cannot create a group: {status} {body}")
            ledger.groups[body["id"]] = name
        catalog = "crash_catalog"
        status, _ = client.call("POST", "/api/2.1/unity-catalog/catalogs", {"name": catalog})
        has_catalog = status in (200, 201)
        print(f"  [{args.label or 'sqlite'}] grants {'included' if has_catalog else 'skipped (no Unity Catalog API)'}")
        for round_number in range(args.rounds):
            stop = threading.Event()
            threads = [
                threading.Thread(target=writer, args=(client, ledger, stop, round_number * 100 + n))
                for n in range(args.writers)
            ]
            if has_catalog:
                threads.append(threading.Thread(target=granter, args=(client, ledger, stop, catalog)))
            for thread in threads:
                thread.start()
            time.sleep(0.3 + rng.random() * 0.7)
            server.kill()
            stop.set()
            for thread in threads:
                thread.join()
            server.start()
            ok = verify(client, ledger, f"{args.label or 'sqlite'} round {round_number + 1}") and ok
            if not ok:
                break
    finally:
        server.stop()
    if ok:
        # The trail the kills left must verify: every leaf, positions without gaps, the head.
        verified = subprocess.run(
            [args.binary, "audit", "verify", "--database", database],
            capture_output=True,
            text=True,
        )
        print(f"  [{args.label or 'sqlite'}] audit verify: {verified.stdout.strip()}")
        if verified.returncode != 0:
            print(f"  violation [{args.label or 'sqlite'}]: audit verify failed: {verified.stderr.strip()}")
            ok = False
    if args.results:
        with open(args.results, "a") as results:
            results.write(f"{'PASS' if ok else 'FAIL'} {suite}\n")
    if ok:
        # The database and log are only worth keeping when something failed.
        shutil.rmtree(work_dir, ignore_errors=True)
        print(f"PASS {suite}")
    else:
        print(f"FAIL {suite} (server log kept: {work_dir}/server.log)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
