#!/usr/bin/env python3
"""Hostile clients: thousands of idle and slow connections do not stop the server answering,
each kind is closed by its timeout, and SIGTERM ends the server within its shutdown deadline.

Usage: hostile_clients.py BINARY [--database URL] [--results FILE] [--label L]

Starts `BINARY serve` on a fresh database (a new SQLite file unless --database names an empty
one) with a connection limit well below the number of sockets the attack opens, and short
timeouts. Then:

  1. opens thousands of idle sockets, hundreds stalled in their headers, tens stalled in the
     body of an authenticated POST, and about two thousand keep-alive connections that make
     one request each and then sit idle;
  2. while all of those are open, `/healthz` and an authenticated SCIM GET must each be
     answered within a second (best of three tries, so one scheduling hiccup on a busy
     machine is not a failure; each try gives up after one second);
  3. after the header, body and idle timeouts (plus a margin), every one of those sockets
     must have been closed by the server (stalled bodies with a 408 first);
  4. with new slow clients connected (stalled headers, and bodies of requests in flight),
     SIGTERM must end the process within the shutdown deadline plus a margin;
  5. a server started with far fewer open files than its (default) connection limit, under
     more idle sockets than it can hold, must still answer as in step 2.

Only the standard library is used. Exits non-zero on failure, saying what failed.
"""

import argparse
import errno
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from serving import free_port, wait_until_healthy

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"

CONNECTION_LIMIT = 1000
HEADER_TIMEOUT = 4
# Longer than the shutdown deadline and its margin, so that the stalled bodies of step 4 are
# still waiting when the deadline passes: it is the deadline that must end them.
BODY_TIMEOUT = 8
IDLE_TIMEOUT = 6
SHUTDOWN_DEADLINE = 2
# What the process may take beyond the deadline to exit: closing sockets, the runtime's end.
SHUTDOWN_MARGIN = 3

# The whole check takes about 20 s; past this it fails rather than hang.
TIME_BUDGET = 90

# The server's open-file limit in step 5, far below the default connection limit.
FEW_OPEN_FILES = 256

IDLE_SOCKETS = 3000
SLOW_HEADER_SOCKETS = 300
SLOW_BODY_SOCKETS = 50
KEEP_ALIVE_SOCKETS = 2000


def raise_open_file_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, needed))
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        sys.exit(f"FAIL: this test needs {needed} open files; the limit is {soft}")


class OutOfTime(Exception):
    pass


def out_of_time(_signal, _frame):
    raise OutOfTime()


class Server:
    def __init__(self, binary, database, work_dir, open_file_limit=None):
        self.binary, self.database, self.work_dir = binary, database, work_dir
        self.open_file_limit = open_file_limit
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        log = open(os.path.join(self.work_dir, "server.log"), "ab")
        command = [
            self.binary, "serve",
            "--listen", f"127.0.0.1:{self.port}",
            "--database", self.database,
            "--header-timeout", f"{HEADER_TIMEOUT}s",
            "--body-timeout", f"{BODY_TIMEOUT}s",
            "--idle-timeout", f"{IDLE_TIMEOUT}s",
            "--shutdown-deadline", f"{SHUTDOWN_DEADLINE}s",
        ]
        limit_open_files = None
        if self.open_file_limit is None:
            command += ["--connection-limit", str(CONNECTION_LIMIT)]
        else:
            # The default connection limit, above what the process may open: the descriptors
            # run out before the cap is reached.
            def limit_open_files():
                _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_file_limit, hard))
        self.process = subprocess.Popen(
            command, stdout=log, stderr=log, preexec_fn=limit_open_files
        )
        wait_until_healthy(self.process, self.origin)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def connect(port):
    """A connected socket, or None when the server's queue was full (attackers may fail)."""
    sock = socket.socket()
    sock.settimeout(1)
    try:
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


def open_sockets(port, count, first_bytes=b""):
    """Up to `count` sockets, each sent `first_bytes`. Stops early once connections keep
    failing: the server's queue is full, and the attack has done what it can."""
    opened = []
    failed_in_a_row = 0
    for _ in range(count):
        sock = connect(port)
        if sock is None:
            failed_in_a_row += 1
            if failed_in_a_row >= 5:
                break
            continue
        failed_in_a_row = 0
        if first_bytes:
            try:
                sock.sendall(first_bytes)
            except OSError:
                sock.close()
                continue
        opened.append(sock)
    return opened


def slow_header_bytes():
    return b"GET /healthz HTTP/1.1\r\nHost: scimitar\r\nX-Slow: "


def slow_body_bytes(token):
    return (
        "POST /scim/v2/Users HTTP/1.1\r\nHost: scimitar\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/scim+json\r\n"
        'Content-Length: 1000\r\n\r\n{"userName": '
    ).encode()


def open_keep_alive(port, count):
    """Sockets that made one keep-alive request; returns (sockets, how many were answered)."""
    opened = open_sockets(port, count, b"GET /healthz HTTP/1.1\r\nHost: scimitar\r\n\r\n")
    answered = 0
    # One budget for all the answers, so that a server which answers none does not cost a
    # timeout per socket.
    give_up = time.monotonic() + 10
    for sock in opened:
        try:
            sock.settimeout(max(0.01, give_up - time.monotonic()))
            if sock.recv(4096).startswith(b"HTTP/1.1 200"):
                answered += 1
        except OSError:
            pass
    return opened, answered


def timed_probe(description, request):
    """The fastest of three tries at `request`, each given one second; None if none answered."""
    timings = []
    for _ in range(3):
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=1) as reply:
                reply.read()
                if reply.status == 200:
                    timings.append(time.monotonic() - started)
        except (OSError, urllib.error.URLError) as error:
            print(f"  {description}: no answer within 1 s ({error})")
    if timings:
        print(f"  {description}: answered in {min(timings) * 1000:.0f} ms (best of 3)")
        return min(timings)
    return None


def closed_by_server(sock):
    """True when the server has closed the socket: end of file or reset, after any data."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError as error:
        return error.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED)


def first_reply(sock):
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--database")
    parser.add_argument("--results")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    suite = "hostile clients" + (f" [{args.label}]" if args.label else "")
    label = args.label or "sqlite"
    attack_size = IDLE_SOCKETS + SLOW_HEADER_SOCKETS + SLOW_BODY_SOCKETS + KEEP_ALIVE_SOCKETS
    raise_open_file_limit(attack_size + 1000)

    work_dir = tempfile.mkdtemp(prefix="scimitar-hostile.")
    database = args.database or f"sqlite://{work_dir}/scimitar.db"
    token = subprocess.run(
        [args.binary, "token", "create", "--database", database, "--scope", "admin"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    server = Server(args.binary, database, work_dir)
    failures = []
    sockets = {}
    # A server that stops answering must fail this check, not hang it.
    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(TIME_BUDGET)
    try:
        server.start()
        started = time.monotonic()
        sockets["idle"] = open_sockets(server.port, IDLE_SOCKETS)
        sockets["slow header"] = open_sockets(server.port, SLOW_HEADER_SOCKETS, slow_header_bytes())
        sockets["slow body"] = open_sockets(server.port, SLOW_BODY_SOCKETS, slow_body_bytes(token))
        sockets["keep-alive"], answered = open_keep_alive(server.port, KEEP_ALIVE_SOCKETS)
        opened = {kind: len(group) for kind, group in sockets.items()}
        print(
            f"  [{label}] opened {sum(opened.values())} sockets in "
            f"{time.monotonic() - started:.1f} s: {opened}; {answered} keep-alive requests "
            f"answered (connection limit {CONNECTION_LIMIT})"
        )

        # 2. Real clients are still served while all of that is connected.
        health = timed_probe("/healthz", server.origin + "/healthz")
        scim = timed_probe(
            "authenticated GET /scim/v2/Users",
            urllib.request.Request(
                server.origin + "/scim/v2/Users?count=1",
                headers={"Authorization": f"Bearer {token}"},
            ),
        )
        if health is None:
            failures.append("/healthz was not answered within 1 s under the attack")
        if scim is None:
            failures.append("an authenticated SCIM GET was not answered within 1 s under the attack")

        # 3. Every attacking socket is closed, by its timeout or to make room for others.
        time.sleep(max(HEADER_TIMEOUT, BODY_TIMEOUT, IDLE_TIMEOUT) + 3)
        for kind, group in sockets.items():
            if kind == "slow body":
                replies = [first_reply(sock) for sock in group]
                timed_out = sum(reply.startswith(b"HTTP/1.1 408") for reply in replies)
                print(f"  [{label}] slow bodies answered 408: {timed_out} of {len(group)}")
            still_open = sum(not closed_by_server(sock) for sock in group)
            if still_open:
                failures.append(f"{still_open} {kind} sockets were still open after their timeout")
        for group in sockets.values():
            for sock in group:
                sock.close()
        sockets.clear()

        # 4. SIGTERM with slow clients connected: the process ends within the deadline.
        sockets["slow header"] = open_sockets(server.port, 50, slow_header_bytes())
        sockets["slow body"] = open_sockets(server.port, 10, slow_body_bytes(token))
        time.sleep(0.5)  # the server reads the slow bodies' headers: those requests are in flight
        terminated = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            code = server.process.wait(timeout=SHUTDOWN_DEADLINE + SHUTDOWN_MARGIN)
            took = time.monotonic() - terminated
            print(f"  [{label}] SIGTERM to exit: {took:.1f} s (deadline {SHUTDOWN_DEADLINE} s)")
            if code != 0:
                failures.append(f"the server exited with {code} after SIGTERM")
        except subprocess.TimeoutExpired:
            failures.append(
                f"the server was still running {SHUTDOWN_DEADLINE + SHUTDOWN_MARGIN} s after "
                f"SIGTERM (shutdown deadline {SHUTDOWN_DEADLINE} s)"
            )
        server.stop()

        # 5. Out of file descriptors before the connection limit: still answering.
        server = Server(args.binary, database, work_dir, open_file_limit=FEW_OPEN_FILES)
        server.start()
        sockets["idle"] = open_sockets(server.port, 3 * FEW_OPEN_FILES)
        print(
            f"  [{label}] opened {len(sockets['idle'])} idle sockets against a server allowed "
            f"{FEW_OPEN_FILES} open files"
        )
        health = timed_probe("/healthz", server.origin + "/healthz")
        scim = timed_probe(
            "authenticated GET /scim/v2/Users",
            urllib.request.Request(
                server.origin + "/scim/v2/Users?count=1",
                headers={"Authorization": f"Bearer {token}"},
            ),
        )
        if health is None:
            failures.append("/healthz was not answered within 1 s with the descriptors exhausted")
        if scim is None:
            failures.append(
                "an authenticated SCIM GET was not answered within 1 s with the descriptors "
                "exhausted"
            )
    except OutOfTime:
        failures.append(f"the check did not finish within {TIME_BUDGET} s")
    finally:
        signal.alarm(0)
        for group in sockets.values():
            for sock in group:
                sock.close()
        server.stop()
    ok = not failures
    for failure in failures:
        print(f"  failure [{label}]: {failure}")
    if args.results:
        with open(args.results, "a") as results:
            results.write(f"{'PASS' if ok else 'FAIL'} {suite}\n")
    if ok:
        shutil.rmtree(work_dir, ignore_errors=True)
        print(f"PASS {suite}")
    else:
        print(f"FAIL {suite} (server log kept: {work_dir}/server.log)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
