#!/usr/bin/env python3
"""Measures how long one membership change in an LDAP directory takes to show at a Scimitar
target under `scimitar sync watch` polling the directory (bench/sync_scale_ldap.sh starts the
processes). Standard library and `ldapmodify` (ldap-utils) only.

Usage: sync_ldap_probe.py LDAP_URL BIND_DN TARGET CHANGES DEADLINE_SECONDS
    The bind password comes from BENCH_LDAP_PASSWORD, the target's token from
    BENCH_TARGET_TOKEN; the directory holds the group watch-bench (member probe-0) and the user
    probe-1, under ou=groups and ou=people of the bind DN's suffix.

It waits for the target to show watch-bench with one member, then CHANGES times adds probe-1
to it or removes it (alternately, with `ldapmodify`), and polls the target group (2 ms apart)
until its member count matches. The delay is from ldapmodify's return to the first target
answer that matches. Prints p50, p90, p99 and max in milliseconds; exits non-zero when a change
did not show within DEADLINE_SECONDS.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_watch_probe import Scim, percentile, wait_for  # noqa: E402

# The group bench/sync_scale_ldap_seed.py seeds (with member probe-0), by its cn.
GROUP = "watch-bench"


def main(argv):
    ldap_url, bind_dn, target_url = argv[1], argv[2], argv[3]
    changes, deadline = int(argv[4]), float(argv[5])
    suffix = bind_dn.split(",", 1)[1]
    group, probe = f"cn={GROUP},ou=groups,{suffix}", f"uid=probe-1,ou=people,{suffix}"
    target = Scim(target_url, os.environ["BENCH_TARGET_TOKEN"])
    if not wait_for(target, 1, time.monotonic() + max(600, deadline), GROUP):
        sys.exit("sync_ldap_probe: the first run did not bring the group to the target")
    password = os.environ["BENCH_LDAP_PASSWORD"]
    delays = []
    inside = False
    for _ in range(changes):
        operation, expected = ("delete", 1) if inside else ("add", 2)
        change = f"dn: {group}\nchangetype: modify\n{operation}: member\nmember: {probe}\n"
        result = modify(ldap_url, bind_dn, password, change)
        if result.returncode != 0:
            sys.exit(f"sync_ldap_probe: ldapmodify: {result.stderr.decode()}")
        changed = time.monotonic()
        if not wait_for(target, expected, changed + deadline, GROUP):
            sys.exit(f"sync_ldap_probe: a change did not show within {deadline} s")
        delays.append((time.monotonic() - changed) * 1000)
        inside = not inside
    print(f"sync watch (LDAP): {len(delays)} membership changes, ldapmodify's return to the "
          f"target showing it (ms):")
    print(f"  p50 {percentile(delays, 0.50):.0f}  p90 {percentile(delays, 0.90):.0f}  "
          f"p99 {percentile(delays, 0.99):.0f}  max {max(delays):.0f}")


def modify(ldap_url, bind_dn, password, change):
    """Runs ldapmodify with the change as a file and the password in a file of its own."""
    read_end, write_end = os.pipe()
    os.write(write_end, password.encode())
    os.close(write_end)
    try:
        return subprocess.run(
            ["ldapmodify", "-x", "-H", ldap_url, "-D", bind_dn, "-y", f"/dev/fd/{read_end}"],
            input=change.encode(), capture_output=True, pass_fds=(read_end,))
    finally:
        os.close(read_end)


if __name__ == "__main__":
    main(sys.argv)
