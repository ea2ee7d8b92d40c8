#!/usr/bin/env python3
"""Writes the LDIF of a directory for bench/sync_scale_ldap.sh: the suffix, ou=people and
ou=groups, N users (inetOrgPerson: uid, cn, sn, givenName, displayName, mail), N/10 groups
(groupOfNames) of 100 members each (10*N memberships, every user in ten groups: group g holds
users g*100 .. g*100+99, wrapping), and for the watch probe the users probe-0 and probe-1 and
the group watch-bench holding probe-0. Standard library only; `slapadd` loads it offline.

Usage: sync_scale_ldap_seed.py N SUFFIX OUTPUT
"""

import sys


def main(argv):
    users, suffix, output = int(argv[1]), argv[2], argv[3]
    groups = users // 10
    people, group_base = f"ou=people,{suffix}", f"ou=groups,{suffix}"
    first = suffix.split(",")[0].split("=")[1]
    with open(output, "w") as out:
        out.write(f"dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\n"
                  f"o: {first}\ndc: {first}\n\n")
        for ou in ("people", "groups"):
            out.write(f"dn: ou={ou},{suffix}\nobjectClass: organizationalUnit\nou: {ou}\n\n")
        names = [f"user{index:07d}" for index in range(users)] + ["probe-0", "probe-1"]
        for name in names:
            out.write(f"dn: uid={name},{people}\nobjectClass: inetOrgPerson\nuid: {name}\n"
                      f"cn: {name}\nsn: Bench\ngivenName: {name}\ndisplayName: {name}\n"
                      f"mail: {name}@example.test\n\n")
        for group in range(groups):
            out.write(f"dn: cn=group{group:06d},{group_base}\nobjectClass: groupOfNames\n"
                      f"cn: group{group:06d}\n")
            for offset in range(100):
                member = (group * 100 + offset) % users
                out.write(f"member: uid=user{member:07d},{people}\n")
            out.write("\n")
        out.write(f"dn: cn=watch-bench,{group_base}\nobjectClass: groupOfNames\n"
                  f"cn: watch-bench\nmember: uid=probe-0,{people}\n\n")


if __name__ == "__main__":
    main(sys.argv)
