#!/usr/bin/env python3
"""Writes a Scimitar export (the JSON Lines `scimitar import` reads) holding a directory of a
given size, for bench/sync_scale.sh: generating the file and importing it takes seconds where
100,000 SCIM POSTs take minutes. Standard library only.

Usage: sync_scale_seed.py BASE_EXPORT USERS OUTPUT

    BASE_EXPORT: `scimitar export` of a database that `scimitar serve` bootstrapped and into
    which one user (`seed-template-user`) and one group (`seed-template-group`, holding that
    user) were created over SCIM. Its lines are copied (without the template user and group,
    their memberships and workspace assignments), and the templates' lines show how this
    build stores a user, a group, a membership and an assignment, so that the generated ones
    are stored exactly as SCIM creates would store them.
    USERS: N. The output holds N users (`user-0000000` ...), N/10 groups (`group-00000` ...)
    and 10*N memberships: user i is in the ten groups (i + k*G/10) mod G, k = 0..9 (G the
    number of groups), so every group has about 100 members.

Ids are fixed per position (UUIDs made from the number), so two runs make the same directory.
"""

import copy
import json
import sys
import uuid

USER_TEMPLATE = "seed-template-user"
GROUP_TEMPLATE = "seed-template-group"


def principal_id(kind, number):
    """A stable UUID per kind and position."""
    return str(uuid.UUID(int=((1 if kind == "User" else 2) << 96) | number))


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    base_path, users, output_path = argv[1], int(argv[2]), argv[3]
    if users < 10:
        sys.exit("sync_scale_seed: at least 10 users")
    groups = users // 10
    lines = [json.loads(text) for text in open(base_path, encoding="utf-8") if text.strip()]
    templates = {}
    for line in lines:
        if line.get("type") == "principal":
            attributes = line.get("attributes", {})
            if attributes.get("userName") == USER_TEMPLATE:
                templates["user"] = line
            elif attributes.get("displayName") == GROUP_TEMPLATE:
                templates["group"] = line
    if set(templates) != {"user", "group"}:
        sys.exit("sync_scale_seed: the base export lacks the template user or group")
    template_ids = {templates["user"]["id"], templates["group"]["id"]}
    membership = next(
        (line for line in lines if line.get("type") == "membership"
         and line.get("group") == templates["group"]["id"]), None)
    if membership is None:
        sys.exit("sync_scale_seed: the template group has no membership line")
    assignments = [line for line in lines if line.get("type") == "assignment"
                   and line.get("principal") in template_ids]

    def mentions_template(line):
        return any(line.get(key) in template_ids
                   for key in ("id", "principal", "group", "member"))

    kept = [line for line in lines if not mentions_template(line)]
    # Principals, memberships and assignments go after the last principal or membership the
    # base has, and before its tokens, securables and the rest, as an export orders them.
    split = max(index for index, line in enumerate(kept)
                if line.get("type") in ("principal", "membership")) + 1
    with open(output_path, "w", encoding="utf-8") as output:
        def write(line):
            output.write(json.dumps(line, separators=(",", ":")))
            output.write("\n")

        for line in kept[:split]:
            write(line)
        for number in range(users):
            name = f"user-{number:07d}"
            line = copy.deepcopy(templates["user"])
            line["id"] = principal_id("User", number)
            attributes = line["attributes"]
            attributes["userName"] = name
            attributes["displayName"] = f"User {number}"
            attributes["name"] = {"givenName": "User", "familyName": f"{number:07d}"}
            attributes["emails"] = [{"value": f"{name}@example.com", "primary": True,
                                     "type": "work"}]
            write(line)
        for number in range(groups):
            line = copy.deepcopy(templates["group"])
            line["id"] = principal_id("Group", number)
            line["attributes"]["displayName"] = f"group-{number:05d}"
            write(line)
        stride = max(1, groups // 10)
        for number in range(users):
            member = principal_id("User", number)
            for group in sorted({(number + k * stride) % groups for k in range(10)}):
                line = dict(membership)
                line["group"] = principal_id("Group", group)
                line["member"] = member
                write(line)
        for assignment in assignments:
            kind = "User" if assignment["principal"] == templates["user"]["id"] else "Group"
            for number in range(users if kind == "User" else groups):
                line = dict(assignment)
                line["principal"] = principal_id(kind, number)
                write(line)
        for line in kept[split:]:
            write(line)


if __name__ == "__main__":
    main(sys.argv)
