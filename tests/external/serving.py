"""What the external checks that start the server themselves share: a free loopback port, and
waiting until a freshly started process answers /healthz (or fails loudly)."""

import socket
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(process, origin, seconds=30):
    """Returns once `origin` answers /healthz with 200; exits the check with FAIL if the process
    ends first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"FAIL: the server exited with {process.returncode} on start")
        try:
            with urllib.request.urlopen(origin + "/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"FAIL: the server did not answer /healthz within {seconds} s")
