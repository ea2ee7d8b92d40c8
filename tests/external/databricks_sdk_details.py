#!/usr/bin/env python3
"""Drive the details real Databricks clients trip on (issue #14) with the official SDK.

Usage:
    SCIMITAR_TOKEN=<secret> databricks_sdk_details.py HOST ACCOUNT_ID

HOST is the server root, for example http://127.0.0.1:8080. The script checks
that the built-in `users` group carries workspace-access and
databricks-sql-access; uploads a notebook and a file with
`w.workspace.upload` (multipart/form-data); finds a running warehouse with
`w.warehouses.list` and runs a statement on it, as databricks-labs-lsql does;
sees an unknown endpoint raise NotFound with ENDPOINT_NOT_FOUND; and reads and
replaces a group's access-control rule set through the account client and the
workspace proxy, with a stale etag raising ResourceConflict. It exits with
status 1 at the first check that fails. Names carry a per-run suffix so the
script can run twice against one server.
"""

import os
import sys
import tempfile
import uuid

from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError, NotFound, ResourceConflict
from databricks.sdk.service import iam, sql
from databricks.sdk.service.workspace import ImportFormat, ObjectType


class Failure(Exception):
    """A check did not hold."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Failure(what)


def run(w: WorkspaceClient, a: AccountClient, account_id: str) -> None:
    suffix = uuid.uuid4().hex[:8]

    users = next(iter(w.groups.list(filter='displayName eq "users"')))
    users = w.groups.get(users.id)
    held = {entitlement.value for entitlement in users.entitlements or []}
    expect(
        {"workspace-access", "databricks-sql-access"} <= held,
        f"the users group carries workspace-access and databricks-sql-access: {held}",
    )

    folder = f"/Shared/details-{suffix}"
    w.workspace.mkdirs(folder)
    w.workspace.upload(f"{folder}/report.py", b"print(1)")
    w.workspace.upload(f"{folder}/data.csv", b"a,b\n1,2\n", format=ImportFormat.AUTO)
    w.workspace.upload(f"{folder}/data.csv", b"a,b\n", format=ImportFormat.AUTO, overwrite=True)
    listed = {info.path: info.object_type for info in w.workspace.list(folder)}
    expect(
        listed == {f"{folder}/report.py": ObjectType.NOTEBOOK, f"{folder}/data.csv": ObjectType.FILE},
        f"upload made a notebook and a file: {listed}",
    )

    running = [warehouse for warehouse in w.warehouses.list() if warehouse.state == sql.State.RUNNING]
    expect(len(running) >= 1, "a running warehouse is listed")
    expect(w.warehouses.get(running[0].id).id == running[0].id, "the warehouse is found by id")
    answer = w.statement_execution.execute_statement(
        statement=f"CREATE CATALOG details_{suffix}", warehouse_id=running[0].id
    )
    expect(
        answer.status.state == sql.StatementState.SUCCEEDED,
        f"a statement runs on the listed warehouse: {answer.status}",
    )

    try:
        w.api_client.do("GET", "/api/2.0/clusters/list")
        raise Failure("an unknown endpoint answered")
    except NotFound as error:
        expect(error.error_code == "ENDPOINT_NOT_FOUND", f"ENDPOINT_NOT_FOUND: {error.error_code}")

    group = w.groups.create(display_name=f"details-team-{suffix}")
    user = w.users.create(user_name=f"details-{suffix}@example.com")
    try:
        resource = f"accounts/{account_id}/groups/{group.id}"
        roles = a.access_control.get_assignable_roles_for_resource(resource=resource).roles
        expect([role.name for role in roles] == ["roles/group.manager"], f"a group's roles: {roles}")
        name = f"{resource}/ruleSets/default"
        empty = a.access_control.get_rule_set(name=name, etag="")
        expect(not empty.grant_rules, f"a new rule set is empty: {empty}")
        rules = [iam.GrantRule(role="roles/group.manager", principals=[f"users/{user.user_name}"])]
        written = a.access_control.update_rule_set(
            name=name, rule_set=iam.RuleSetUpdateRequest(name=name, etag=empty.etag, grant_rules=rules)
        )
        expect(written.etag != empty.etag, "the etag moves on")
        try:
            a.access_control.update_rule_set(
                name=name, rule_set=iam.RuleSetUpdateRequest(name=name, etag=empty.etag, grant_rules=[])
            )
            raise Failure("a stale etag was taken")
        except ResourceConflict:
            pass
        proxied = w.account_access_control_proxy.get_rule_set(name=name, etag=written.etag)
        expect(
            [(rule.role, rule.principals) for rule in proxied.grant_rules or []]
            == [("roles/group.manager", [f"users/{user.user_name}"])],
            f"the workspace proxy reads the same rule set: {proxied}",
        )
    finally:
        w.users.delete(user.id)
        w.groups.delete(group.id)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    token = os.environ.get("SCIMITAR_TOKEN")
    if not token:
        print("error: SCIMITAR_TOKEN is not set", file=sys.stderr)
        return 2
    host, account_id = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as directory:
        # A missing file, so that no ~/.databrickscfg on the machine is read.
        absent = os.path.join(directory, "absent.cfg")
        common = dict(token=token, auth_type="pat", config_file=absent, retry_timeout_seconds=30)
        w = WorkspaceClient(config=Config(host=host, **common))
        a = AccountClient(config=Config(host=host, account_id=account_id, **common))
        try:
            run(w, a, account_id)
        except (Failure, DatabricksError) as error:
            print(f"FAIL: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    print(
        "PASS: users entitlements; multipart upload; a running warehouse and a statement on it; "
        "ENDPOINT_NOT_FOUND; a rule set read and replaced with its etag on both hosts"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
