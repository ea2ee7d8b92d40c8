#!/usr/bin/env python3
"""Seeds a Scimitar node for bench/access_http.sh through its public APIs.

Usage: access_seed.py ROOT_URL USERS TABLE IDS_FILE   (token in BENCH_TOKEN)

Creates USERS users; groups `org` > 4 divisions > 16 teams, with the first half of the users in
the teams (one each) and the rest in 10 groups that hold nothing; the catalog, schema and table
of TABLE (catalog.schema.table) through the Statement Execution API; and grants `org` USE
CATALOG, USE SCHEMA and SELECT on them. Writes the users' ids to IDS_FILE, one a line, and
checks one allowed and one denied answer before any load is run.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed import ScimClient, token  # noqa: E402

DIVISIONS = 4
TEAMS_PER_DIVISION = 4
OTHER_GROUPS = 10


def create_group(scim, name, member_ids):
    document = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "members": [{"value": member} for member in member_ids],
    }
    return scim.expect("POST", "/Groups", document, 201)["id"]


def statement(api, text):
    body = {"warehouse_id": "bench", "statement": text}
    answer = api.expect("POST", "/api/2.0/sql/statements", body, 200)
    state = answer.get("status", {}).get("state")
    if state != "SUCCEEDED":
        raise SystemExit(f"{text!r} ended {state}: {answer}")


def main(argv):
    if len(argv) != 5:
        raise SystemExit(__doc__)
    root, users, table, ids_path = argv[1].rstrip("/"), int(argv[2]), argv[3], argv[4]
    catalog, schema, _ = table.split(".")
    scim = ScimClient(root + "/scim/v2", token())
    api = ScimClient(root, token())
    api.headers["Content-Type"] = "application/json"
    api.headers["Accept"] = "application/json"

    ids = []
    for index in range(users):
        document = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"access-{index}@example.com",
        }
        ids.append(scim.expect("POST", "/Users", document, 201)["id"])
    inside, outside = ids[: users // 2], ids[users // 2 :]
    teams = []
    for division in range(DIVISIONS):
        for team in range(TEAMS_PER_DIVISION):
            number = division * TEAMS_PER_DIVISION + team
            members = inside[number :: DIVISIONS * TEAMS_PER_DIVISION]
            teams.append(create_group(scim, f"team{division}-{team}", members))
    divisions = [
        create_group(scim, f"division{division}", teams[division * TEAMS_PER_DIVISION : (division + 1) * TEAMS_PER_DIVISION])
        for division in range(DIVISIONS)
    ]
    create_group(scim, "org", divisions)
    for other in range(OTHER_GROUPS):
        create_group(scim, f"other{other}", outside[other::OTHER_GROUPS])

    statement(api, f"CREATE CATALOG {catalog}")
    statement(api, f"CREATE SCHEMA {catalog}.{schema}")
    statement(api, f"CREATE TABLE {table}")
    statement(api, f"GRANT USE CATALOG ON CATALOG {catalog} TO org")
    statement(api, f"GRANT USE SCHEMA ON SCHEMA {catalog}.{schema} TO org")
    statement(api, f"GRANT SELECT ON TABLE {table} TO org")

    for principal, expected in ((inside[0], True), (outside[0], False)):
        path = (
            f"/api/2.0/access/check?principal={principal}&privilege=SELECT"
            f"&securable_type=TABLE&full_name={table}"
        )
        answer = api.expect("GET", path, None, 200)
        if answer.get("allowed") is not expected:
            raise SystemExit(f"check for {principal} answered {answer}, expected allowed={expected}")
    with open(ids_path, "w") as ids_file:
        ids_file.write("\n".join(ids) + "\n")


if __name__ == "__main__":
    main(sys.argv)
