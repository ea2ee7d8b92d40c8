#!/usr/bin/env python3
"""Drive Scimitar's Unity Catalog and Statement Execution APIs with the official
Databricks SDK, unchanged.

Usage:
    SCIMITAR_TOKEN=<secret> databricks_sdk_governance.py HOST

HOST is the server root, for example http://127.0.0.1:8080. The token must be a
workspace admin's (run.sh uses the bootstrap admin's).

The scenario creates a catalog and a schema with w.catalogs / w.schemas, a table
and grants with w.statement_execution.execute_statement, changes grants with
w.grants.update, and reads them back with w.grants.get and w.grants.get_effective
before and after SCIM membership changes made with w.groups.patch. It transfers
ownership with w.catalogs.update and w.tables.update, renames a schema with
w.schemas.update (its table's grants follow), makes a view with w.tables.create
and grants on it through securable_type TABLE (the SDK has no VIEW), asks
w.tables.exists and w.tables.list_summaries a page at a time, and reads the one
metastore with w.metastores.current, summary, list and get. It checks that
the SDK raises its typed errors (NotFound, ResourceAlreadyExists) and that a
failed statement comes back FAILED with the offending token named. It stops with
exit status 1 at the first step that fails. Names carry a per-run suffix.
"""

import os
import sys
import tempfile
import uuid

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError, NotFound, ResourceAlreadyExists
from scenario_checks import ScenarioFailure, expect, expect_raises
from databricks.sdk.service import catalog, iam, sql

PATCH_SCHEMAS = [iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP]

# Any id is accepted: Scimitar runs governance statements without compute.
WAREHOUSE_ID = "scimitar"


class Scenario:
    def __init__(self, client: WorkspaceClient) -> None:
        self.w = client
        self.run = uuid.uuid4().hex[:8]
        self.catalog = f"governance_{self.run}"
        self.group = f"analysts-{self.run}"
        self.user = f"ana-{self.run}@example.com"
        self.state: dict = {}

    def steps(self):
        return [
            ("a user and a group via SCIM", self.principals),
            ("w.catalogs.create, owned by the caller", self.catalog_create),
            ("w.schemas.create", self.schema_create),
            ("CREATE TABLE via execute_statement with session catalog and schema", self.table_create),
            ("GRANT via execute_statement", self.sql_grant),
            ("w.grants.update and w.grants.get", self.grants_update),
            ("get_effective is empty before the user joins the group", self.effective_before),
            ("w.groups.patch adds the user: get_effective shows the group's grants", self.effective_after_join),
            ("w.groups.patch removes the user: get_effective is empty again", self.effective_after_leave),
            ("SHOW GRANTS via execute_statement", self.show_grants),
            ("w.catalogs.update moves ownership, w.schemas.update renames", self.updates),
            ("w.tables.create makes a view, granted with grants.update as a TABLE", self.view_as_table),
            ("w.tables.exists and w.tables.list_summaries", self.exists_and_summaries),
            ("w.metastores.current and summary name one metastore", self.metastore),
            ("typed errors: NotFound, ResourceAlreadyExists", self.typed_errors),
            ("a statement that does not parse comes back FAILED naming the token", self.failed_statement),
            ("w.catalogs.delete(force=True) drops everything in it", self.catalog_delete),
            ("clean up the user and the group", self.cleanup),
        ]

    def execute(self, statement: str, **session) -> sql.StatementResponse:
        return self.w.statement_execution.execute_statement(
            statement=statement, warehouse_id=WAREHOUSE_ID, **session
        )

    def succeeded(self, statement: str, **session) -> sql.StatementResponse:
        response = self.execute(statement, **session)
        expect(
            response.status is not None and response.status.state == sql.StatementState.SUCCEEDED,
            f"{statement}: expected SUCCEEDED, got {response.status}",
        )
        return response

    def effective(self, securable_type: str, full_name: str) -> set:
        result = self.w.grants.get_effective(securable_type, full_name, principal=self.user)
        return {
            (privilege.privilege, privilege.inherited_from_type, privilege.inherited_from_name)
            for assignment in result.privilege_assignments or []
            for privilege in assignment.privileges or []
        }

    def principals(self) -> None:
        user = self.w.users.create(user_name=self.user)
        group = self.w.groups.create(display_name=self.group)
        self.state["user_id"] = user.id
        self.state["group_id"] = group.id

    def catalog_create(self) -> None:
        created = self.w.catalogs.create(name=self.catalog, comment="made by the SDK scenario")
        me = self.w.current_user.me()
        expect(created.name == self.catalog, f"catalog name: {created.name!r}")
        expect(created.owner == me.user_name, f"catalog owner {created.owner!r}, caller {me.user_name!r}")
        fetched = self.w.catalogs.get(self.catalog)
        expect(fetched.comment == "made by the SDK scenario", f"comment: {fetched.comment!r}")
        names = [info.name for info in self.w.catalogs.list()]
        expect(self.catalog in names, f"{self.catalog} not in {names}")

    def schema_create(self) -> None:
        schema = self.w.schemas.create(name="sales", catalog_name=self.catalog)
        expect(schema.full_name == f"{self.catalog}.sales", f"schema full_name: {schema.full_name!r}")
        names = [info.full_name for info in self.w.schemas.list(catalog_name=self.catalog)]
        expect(names == [f"{self.catalog}.sales"], f"schemas: {names}")

    def table_create(self) -> None:
        self.succeeded("CREATE TABLE orders (id INT, total DOUBLE)", catalog=self.catalog, schema="sales")
        table = self.w.tables.get(f"{self.catalog}.sales.orders")
        expect(table.name == "orders", f"table: {table}")
        names = [info.name for info in self.w.tables.list(catalog_name=self.catalog, schema_name="sales")]
        expect(names == ["orders"], f"tables: {names}")

    def sql_grant(self) -> None:
        self.succeeded(f"GRANT SELECT ON TABLE {self.catalog}.sales.orders TO `{self.group}`")

    def grants_update(self) -> None:
        self.w.grants.update(
            "catalog",
            self.catalog,
            changes=[
                catalog.PermissionsChange(
                    principal=self.group,
                    add=[catalog.Privilege.USE_CATALOG, catalog.Privilege.USE_SCHEMA],
                )
            ],
        )
        got = self.w.grants.get("catalog", self.catalog)
        held = {
            (assignment.principal, privilege)
            for assignment in got.privilege_assignments or []
            for privilege in assignment.privileges or []
        }
        expect((self.group, catalog.Privilege.USE_CATALOG) in held, f"grants on the catalog: {held}")

    def effective_before(self) -> None:
        held = self.effective("table", f"{self.catalog}.sales.orders")
        expect(held == set(), f"before joining: {held}")

    def effective_after_join(self) -> None:
        self.w.groups.patch(
            self.state["group_id"],
            operations=[
                iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": self.state["user_id"]}])
            ],
            schemas=PATCH_SCHEMAS,
        )
        held = self.effective("table", f"{self.catalog}.sales.orders")
        expect((catalog.Privilege.SELECT, None, None) in held, f"on the table after joining: {held}")
        on_schema = self.effective("schema", f"{self.catalog}.sales")
        expect(
            (catalog.Privilege.USE_SCHEMA, catalog.SecurableType.CATALOG, self.catalog) in on_schema,
            f"on the schema after joining (USE_SCHEMA inherited from the catalog): {on_schema}",
        )

    def effective_after_leave(self) -> None:
        self.w.groups.patch(
            self.state["group_id"],
            operations=[
                iam.Patch(op=iam.PatchOp.REMOVE, path=f'members[value eq "{self.state["user_id"]}"]')
            ],
            schemas=PATCH_SCHEMAS,
        )
        held = self.effective("table", f"{self.catalog}.sales.orders")
        expect(held == set(), f"after leaving: {held}")

    def show_grants(self) -> None:
        response = self.succeeded(f"SHOW GRANTS ON TABLE {self.catalog}.sales.orders")
        columns = [column.name for column in response.manifest.schema.columns]
        expect(columns == ["principal", "actionType", "objectType", "objectKey"], f"columns: {columns}")
        rows = response.result.data_array or []
        expect(
            [self.group, "SELECT", "TABLE", f"{self.catalog}.sales.orders"] in rows,
            f"SHOW GRANTS rows: {rows}",
        )
        expect(
            [self.group, "USE CATALOG", "CATALOG", self.catalog] in rows,
            f"SHOW GRANTS lists the catalog's grants too: {rows}",
        )

    def updates(self) -> None:
        me = self.w.current_user.me().user_name
        moved = self.w.catalogs.update(self.catalog, owner=self.group, comment="owned by the group")
        expect(moved.owner == self.group, f"owner after update: {moved.owner!r}")
        fetched = self.w.catalogs.get(self.catalog)
        expect(fetched.owner == self.group, f"owner read back: {fetched.owner!r}")
        expect(fetched.comment == "owned by the group", f"comment read back: {fetched.comment!r}")
        # An admin takes it back.
        back = self.w.catalogs.update(self.catalog, owner=me)
        expect(back.owner == me, f"owner back: {back.owner!r}")
        renamed = self.w.schemas.update(f"{self.catalog}.sales", new_name="revenue")
        expect(renamed.full_name == f"{self.catalog}.revenue", f"renamed schema: {renamed.full_name!r}")
        grants = self.w.grants.get("table", f"{self.catalog}.revenue.orders")
        held = {
            (assignment.principal, privilege)
            for assignment in grants.privilege_assignments or []
            for privilege in assignment.privileges or []
        }
        expect((self.group, catalog.Privilege.SELECT) in held, f"the table's grant moved with it: {held}")
        self.w.schemas.update(f"{self.catalog}.revenue", new_name="sales")
        self.w.tables.update(f"{self.catalog}.sales.orders", owner=self.group)
        table = self.w.tables.get(f"{self.catalog}.sales.orders")
        expect(table.owner == self.group, f"table owner: {table.owner!r}")

    def view_as_table(self) -> None:
        view = self.w.tables.create(
            name="recent",
            catalog_name=self.catalog,
            schema_name="sales",
            table_type=catalog.TableType.VIEW,
            data_source_format=catalog.DataSourceFormat.DELTA,
            storage_location="s3://scimitar/none",
        )
        expect(view.table_type == catalog.TableType.VIEW, f"created: {view}")
        full_name = f"{self.catalog}.sales.recent"
        # The SDK's SecurableType has no VIEW: a view's grants are asked for as a table's.
        self.w.grants.update(
            catalog.SecurableType.TABLE.value,
            full_name,
            changes=[catalog.PermissionsChange(principal=self.group, add=[catalog.Privilege.SELECT])],
        )
        got = self.w.grants.get(catalog.SecurableType.TABLE.value, full_name)
        held = {
            (assignment.principal, privilege)
            for assignment in got.privilege_assignments or []
            for privilege in assignment.privileges or []
        }
        expect(held == {(self.group, catalog.Privilege.SELECT)}, f"grants on the view: {held}")
        response = self.succeeded(f"SHOW GRANTS `{self.group}` ON TABLE {full_name}")
        rows = response.result.data_array or []
        expect(any(row[1] == "SELECT" and row[3] == full_name for row in rows), f"SHOW GRANTS: {rows}")

    def exists_and_summaries(self) -> None:
        expect(self.w.tables.exists(f"{self.catalog}.sales.orders").table_exists is True, "orders exists")
        expect(self.w.tables.exists(f"{self.catalog}.sales.nothing").table_exists is False, "nothing does not")
        summaries = [
            (summary.full_name, summary.table_type)
            for summary in self.w.tables.list_summaries(self.catalog, max_results=1)
        ]
        expect(
            sorted(summaries)
            == [
                (f"{self.catalog}.sales.orders", catalog.TableType.MANAGED),
                (f"{self.catalog}.sales.recent", catalog.TableType.VIEW),
            ],
            f"summaries, a page at a time: {summaries}",
        )
        matched = [s.full_name for s in self.w.tables.list_summaries(self.catalog, table_name_pattern="rec%")]
        expect(matched == [f"{self.catalog}.sales.recent"], f"LIKE pattern: {matched}")

    def metastore(self) -> None:
        current = self.w.metastores.current()
        summary = self.w.metastores.summary()
        expect(
            current.metastore_id and current.metastore_id == summary.metastore_id,
            f"current {current}, summary {summary}",
        )
        listed = [info.metastore_id for info in self.w.metastores.list()]
        expect(listed == [summary.metastore_id], f"metastores: {listed}")
        expect(self.w.metastores.get(summary.metastore_id).name == summary.name, "get by id")

    def typed_errors(self) -> None:
        expect_raises(NotFound, lambda: self.w.catalogs.get(f"missing_{self.run}"), "GET of a missing catalog")
        expect_raises(
            ResourceAlreadyExists,
            lambda: self.w.catalogs.create(name=self.catalog),
            "creating a catalog twice",
        )
        expect_raises(
            NotFound,
            lambda: self.w.grants.update(
                "catalog",
                self.catalog,
                changes=[catalog.PermissionsChange(principal=f"ghost-{self.run}", add=[catalog.Privilege.BROWSE])],
            ),
            "granting to an unknown principal",
        )

    def failed_statement(self) -> None:
        response = self.execute("GRANT TO `nobody`")
        expect(response.status.state == sql.StatementState.FAILED, f"state: {response.status}")
        message = response.status.error.message or ""
        expect("'TO'" in message and "offset 6" in message, f"error message: {message!r}")

    def catalog_delete(self) -> None:
        self.w.catalogs.delete(self.catalog, force=True)
        expect_raises(NotFound, lambda: self.w.catalogs.get(self.catalog), "GET of a dropped catalog")
        expect_raises(
            NotFound,
            lambda: self.w.tables.get(f"{self.catalog}.sales.orders"),
            "GET of a table in a dropped catalog",
        )

    def cleanup(self) -> None:
        self.w.users.delete(self.state["user_id"])
        self.w.groups.delete(self.state["group_id"])


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    host = sys.argv[1]
    token = os.environ.get("SCIMITAR_TOKEN")
    if not token:
        print("SCIMITAR_TOKEN is not set", file=sys.stderr)
        return 2
    # Only the arguments describe the server under test.
    for variable in [v for v in os.environ if v.startswith("DATABRICKS_")]:
        del os.environ[variable]
    with tempfile.TemporaryDirectory() as scratch:
        client = WorkspaceClient(
            config=Config(
                host=host,
                token=token,
                auth_type="pat",
                config_file=os.path.join(scratch, "no-databrickscfg"),
                retry_timeout_seconds=30,
                http_timeout_seconds=30,
            )
        )
        scenario = Scenario(client)
        print(f"Databricks SDK governance scenario, host {host}, run {scenario.run}")
        for number, (title, step) in enumerate(scenario.steps(), start=1):
            try:
                step()
            except (ScenarioFailure, DatabricksError) as error:
                print(f"FAIL  {number:2d}. {title}")
                print(f"      {type(error).__name__}: {error}")
                return 1
            print(f"ok    {number:2d}. {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
