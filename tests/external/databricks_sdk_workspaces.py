#!/usr/bin/env python3
"""Two workspaces of one account, driven with the official Databricks SDK, unchanged.

Usage:
    SCIMITAR_TOKEN=<secret> databricks_sdk_workspaces.py HOST ACCOUNT_ID BINARY DATABASE_URL

HOST is the server root (http://127.0.0.1:8080), ACCOUNT_ID the account the admin token
belongs to. BINARY and DATABASE_URL are used only to mint tokens for the scenario's users
(`scimitar token create --user`), as an operator holding the database does: account-level
tokens, valid in every workspace the user is assigned to (a personal access token made through
a workspace's token API is valid in that workspace alone).

With the account client, the scenario creates two workspaces (a.workspaces.create, waited on
until RUNNING), an account group with a member and a user outside it, and assigns the group
to the first workspace (a.workspace_assignment.update). With workspace clients whose host is
`HOST/w/{workspace_id}`: the member sees the first workspace and is refused in the second; the
unassigned user is invisible in the first workspace's directory; after the account admin
unassigns the group, the member is refused there too. In the first workspace, the account
admin moves a catalog's ownership to the group with catalogs.update and grants SELECT on a
view through securable_type TABLE. A catalog isolated from the first workspace
(w.catalogs.update) is missing from the second until w.workspace_bindings binds it there
read-only; then the second reads it and may not write to it. It stops with exit status 1 at
the first
step that fails. Names carry a per-run suffix.
"""

import os
import subprocess
import sys
import tempfile
import uuid

from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError, NotFound, PermissionDenied
from scenario_checks import ScenarioFailure, expect, expect_raises
from databricks.sdk.service import catalog, iam


class Scenario:
    def __init__(self, host, account_id, token, binary, database, scratch) -> None:
        self.host = host
        self.account_id = account_id
        self.token = token
        self.binary = binary
        self.database = database
        self.scratch = scratch
        self.run = uuid.uuid4().hex[:8]
        self.a = AccountClient(config=self.config(host, account_id=account_id))
        self.state: dict = {}

    def config(self, host: str, token: str = None, **extra) -> Config:
        return Config(
            host=host,
            token=token or self.token,
            auth_type="pat",
            config_file=os.path.join(self.scratch, "no-databrickscfg"),
            retry_timeout_seconds=30,
            http_timeout_seconds=30,
            **extra,
        )

    def workspace_client(self, workspace_id: int, token: str = None) -> WorkspaceClient:
        return WorkspaceClient(config=self.config(f"{self.host}/w/{workspace_id}", token))

    def token_for(self, user_name: str) -> str:
        made = subprocess.run(
            [self.binary, "token", "create", "--database", self.database,
             "--account", self.account_id, "--user", user_name],
            check=True, capture_output=True, text=True,
        )
        return made.stdout.strip()

    def steps(self):
        return [
            ("a.workspaces.create twice, waited on until RUNNING", self.create_workspaces),
            ("a.workspaces.list and get", self.list_workspaces),
            ("an account group with a member, and a user outside it", self.principals),
            ("a.workspace_assignment.update assigns the group to the first", self.assign),
            ("the member works in the first workspace through HOST/w/{id}", self.member_in_first),
            ("the member is refused in the second workspace", self.member_not_in_second),
            ("the unassigned user is invisible in the first workspace", self.outsider_invisible),
            ("a.workspace_assignment.list shows the group", self.list_assignments),
            ("entitlements set through one workspace are that workspace's alone",
             self.entitlements_per_workspace),
            ("in the first workspace: catalogs.update moves ownership to the group, "
             "a view is granted as a TABLE", self.governance_in_first),
            ("a.workspace_assignment.delete: the member is refused at once", self.unassign),
            ("an isolated catalog, bound read-only with w.workspace_bindings", self.bindings),
            ("a.workspaces.delete", self.delete_workspaces),
        ]

    def create_workspaces(self):
        made = []
        for name in ("one", "two"):
            workspace = self.a.workspaces.create(
                workspace_name=f"{name}-{self.run}", deployment_name=f"{name}-{self.run}"
            ).result()
            expect(workspace.workspace_status.value == "RUNNING", f"{workspace}")
            made.append(workspace.workspace_id)
        self.state["workspaces"] = made

    def list_workspaces(self):
        listed = [w.workspace_id for w in self.a.workspaces.list()]
        for workspace_id in self.state["workspaces"]:
            expect(workspace_id in listed, f"{workspace_id} not in {listed}")
            got = self.a.workspaces.get(workspace_id)
            expect(got.workspace_id == workspace_id, f"{got}")

    def principals(self):
        member = self.a.users.create(user_name=f"member-{self.run}@example.com")
        outsider = self.a.users.create(user_name=f"outsider-{self.run}@example.com")
        group = self.a.groups.create(
            display_name=f"analysts-{self.run}", members=[iam.ComplexValue(value=member.id)]
        )
        self.state.update(member=member, outsider=outsider, group=group)

    def assign(self):
        first = self.state["workspaces"][0]
        self.a.workspace_assignment.update(
            workspace_id=first,
            principal_id=int(self.state["group"].id),
            permissions=[iam.WorkspacePermission.USER],
        )
        self.state["member_token"] = self.token_for(self.state["member"].user_name)

    def member_in_first(self):
        w = self.workspace_client(self.state["workspaces"][0], self.state["member_token"])
        me = w.current_user.me()
        expect(me.user_name == self.state["member"].user_name, f"{me}")
        names = [g.display for g in me.groups or []]
        expect(f"analysts-{self.run}" in names, f"groups {names}")

    def member_not_in_second(self):
        w = self.workspace_client(self.state["workspaces"][1], self.state["member_token"])
        expect_raises(PermissionDenied, w.current_user.me, "me in the second workspace")

    def outsider_invisible(self):
        w = self.workspace_client(self.state["workspaces"][0])
        outsider = self.state["outsider"]
        found = list(w.users.list(filter=f'userName eq "{outsider.user_name}"'))
        expect(found == [], f"the unassigned user is listed: {found}")
        expect_raises(NotFound, lambda: w.users.get(outsider.id), "get the unassigned user")
        member = self.state["member"]
        found = list(w.users.list(filter=f'userName eq "{member.user_name}"'))
        expect([u.id for u in found] == [member.id], f"the member is listed: {found}")

    def list_assignments(self):
        first = self.state["workspaces"][0]
        listed = list(self.a.workspace_assignment.list(workspace_id=first))
        groups = [
            (a.principal.group_name, [p.value for p in a.permissions or []])
            for a in listed
            if a.principal and a.principal.group_name
        ]
        expect((f"analysts-{self.run}", ["USER"]) in groups, f"{listed}")

    def entitlements_per_workspace(self):
        first, second = self.state["workspaces"]
        member = self.state["member"]
        self.a.workspace_assignment.update(
            workspace_id=second, principal_id=int(member.id),
            permissions=[iam.WorkspacePermission.USER],
        )
        w1, w2 = self.workspace_client(first), self.workspace_client(second)
        w1.users.patch(
            member.id,
            operations=[iam.Patch(
                op=iam.PatchOp.ADD, path="entitlements",
                value=[{"value": "allow-cluster-create"}],
            )],
            schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
        )
        held = lambda w: {e.value for e in w.users.get(member.id).entitlements or []}
        expect("allow-cluster-create" in held(w1), f"in the first: {held(w1)}")
        expect("allow-cluster-create" not in held(w2), f"in the second: {held(w2)}")
        self.a.workspace_assignment.delete(workspace_id=second, principal_id=int(member.id))

    def governance_in_first(self):
        w = self.workspace_client(self.state["workspaces"][0])
        name, group = f"ws_{self.run}", self.state["group"].display_name
        w.catalogs.create(name=name)
        w.schemas.create(name="sales", catalog_name=name)
        moved = w.catalogs.update(name, owner=group)
        expect(moved.owner == group, f"owner after catalogs.update: {moved.owner!r}")
        expect(w.catalogs.get(name).owner == group, "the owner reads back")
        w.tables.create(
            name="recent",
            catalog_name=name,
            schema_name="sales",
            table_type=catalog.TableType.VIEW,
            data_source_format=catalog.DataSourceFormat.DELTA,
            storage_location="s3://scimitar/none",
        )
        view = f"{name}.sales.recent"
        w.grants.update(
            catalog.SecurableType.TABLE.value,
            view,
            changes=[catalog.PermissionsChange(principal=group, add=[catalog.Privilege.SELECT])],
        )
        got = w.grants.get(catalog.SecurableType.TABLE.value, view)
        held = {
            (assignment.principal, privilege)
            for assignment in got.privilege_assignments or []
            for privilege in assignment.privileges or []
        }
        expect(held == {(group, catalog.Privilege.SELECT)}, f"grants on the view: {held}")

    def unassign(self):
        first = self.state["workspaces"][0]
        self.a.workspace_assignment.delete(
            workspace_id=first, principal_id=int(self.state["group"].id)
        )
        w = self.workspace_client(first, self.state["member_token"])
        expect_raises(PermissionDenied, w.current_user.me, "me after the unassignment")

    def bindings(self):
        first, second = self.state["workspaces"]
        w1, w2 = self.workspace_client(first), self.workspace_client(second)
        name = f"isolated_{self.run}"
        w1.catalogs.create(name=name)
        isolated = w1.catalogs.update(name, isolation_mode=catalog.CatalogIsolationMode.ISOLATED)
        expect(isolated.isolation_mode == catalog.CatalogIsolationMode.ISOLATED, f"{isolated}")
        # Isolating it from the first workspace bound the first.
        bound = list(w1.workspace_bindings.get_bindings("catalog", name))
        expect([b.workspace_id for b in bound] == [first], f"{bound}")
        expect_raises(NotFound, lambda: w2.catalogs.get(name), "the isolated catalog, unbound")
        listed = [c.name for c in w2.catalogs.list()]
        expect(name not in listed, f"listed in the unbound workspace: {listed}")
        read_only = catalog.WorkspaceBindingBindingType.BINDING_TYPE_READ_ONLY
        w1.workspace_bindings.update_bindings(
            "catalog", name, add=[catalog.WorkspaceBinding(workspace_id=second, binding_type=read_only)]
        )
        got = w2.catalogs.get(name)
        expect(got.name == name, f"{got}")
        expect_raises(
            PermissionDenied,
            lambda: w2.schemas.create(name="more", catalog_name=name),
            "a schema made through a read-only binding",
        )
        legacy = w1.workspace_bindings.get(name)
        expect(sorted(legacy.workspaces or []) == sorted([first, second]), f"{legacy}")
        w1.workspace_bindings.update(name, unassign_workspaces=[second])
        expect_raises(NotFound, lambda: w2.catalogs.get(name), "the catalog once unbound")
        w1.catalogs.delete(name, force=True)

    def delete_workspaces(self):
        for workspace_id in self.state["workspaces"]:
            self.a.workspaces.delete(workspace_id)
            expect_raises(NotFound, lambda: self.a.workspaces.get(workspace_id), "a deleted workspace")


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    host, account_id, binary, database = sys.argv[1:]
    token = os.environ.get("SCIMITAR_TOKEN")
    if not token:
        print("SCIMITAR_TOKEN is not set", file=sys.stderr)
        return 2
    # Only the arguments describe the server under test.
    for variable in [v for v in os.environ if v.startswith("DATABRICKS_")]:
        del os.environ[variable]
    with tempfile.TemporaryDirectory() as scratch:
        scenario = Scenario(host, account_id, token, binary, database, scratch)
        print(f"Databricks SDK two-workspace scenario, host {host}, run {scenario.run}")
        for number, (title, step) in enumerate(scenario.steps(), start=1):
            try:
                step()
            except (ScenarioFailure, DatabricksError, subprocess.CalledProcessError) as error:
                print(f"FAIL  {number:2d}. {title}")
                print(f"      {type(error).__name__}: {error}")
                return 1
            print(f"ok    {number:2d}. {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
