#!/usr/bin/env python3
"""Drive Scimitar's Databricks-compatible SCIM mounts with the official Databricks SDK.

Usage:
    SCIMITAR_TOKEN=<secret> databricks_sdk_scenario.py workspace HOST
    SCIMITAR_TOKEN=<secret> databricks_sdk_scenario.py account HOST ACCOUNT_ID

HOST is the server root, for example http://127.0.0.1:8080. The workspace
client talks to /api/2.0/preview/scim/v2 and the account client to
/api/2.0/accounts/{account_id}/scim/v2, exactly as the SDK builds those paths.

The scenario runs users, groups and service principals through create, get,
list, replace (PUT), patch and delete, checks what comes back, and stops with
exit status 1 at the first step that fails. Every name carries a per-run
suffix so the scenario can run twice against the same server (once per
client) without the runs seeing each other's identities.
"""

import collections
import logging
import os
import sys
import tempfile
import uuid

from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service import iam

# How many users the paging step creates, and the page size it asks for. The
# page size is small on purpose so that the SDK's pager has to follow several
# pages (25 users in pages of 5 means at least 5 requests).
PAGING_USER_COUNT = 25
PAGE_SIZE = 5

# An entitlement that Databricks workspaces know, used to check that a patch
# adding entitlements round-trips.
ENTITLEMENT = "allow-cluster-create"

PATCH_SCHEMAS = [iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP]

# The last SDK log lines (requests and responses) are kept so that a failing
# step can show the HTTP exchange that went wrong.
RECENT_LOG_LINES = 30


class ScenarioFailure(Exception):
    """A check in the scenario did not hold."""


class RecentLogLines(logging.Handler):
    """Keeps the most recent SDK debug lines in memory, to print on failure."""

    def __init__(self, capacity: int) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: collections.deque[str] = collections.deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailure(message)


def expect_equal(actual, expected, what: str) -> None:
    expect(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def expect_not_found(fetch, what: str) -> None:
    try:
        fetch()
    except NotFound:
        return
    except DatabricksError as error:
        raise ScenarioFailure(
            f"{what}: expected NotFound, got {type(error).__name__}: {error}"
        ) from error
    raise ScenarioFailure(f"{what}: expected NotFound, but the request succeeded")


def values_of(complex_values) -> list[str]:
    return [item.value for item in (complex_values or [])]


class Scenario:
    def __init__(self, client, kind: str, account_id: str | None) -> None:
        self.client = client
        self.kind = kind
        self.is_workspace = kind == "workspace"
        self.run = uuid.uuid4().hex[:10]
        # The raw paging check below needs the same path the SDK uses.
        if self.is_workspace:
            self.scim_path = "/api/2.0/preview/scim/v2"
        else:
            self.scim_path = f"/api/2.0/accounts/{account_id}/scim/v2"
        self.state: dict = {}

    def name(self, label: str) -> str:
        return f"sdk-{self.kind}-{self.run}-{label}"

    def email(self, label: str) -> str:
        return f"{self.name(label)}@example.com"

    # The steps, in the order they run. Each one reads and writes self.state.

    def steps(self):
        steps = []
        if self.is_workspace:
            steps.append(("current_user.me returns the token's user", self.current_user_me))
        steps += [
            ("users.create returns the new user", self.user_create),
            ("users.get returns what was created", self.user_get),
            ('users.list with filter userName eq "..." finds exactly that user', self.user_list_filtered),
            (f"users.create {PAGING_USER_COUNT} more users for paging", self.paging_users_create),
            (f"users.list pages with count={PAGE_SIZE} and sees each user once", self.paging_sdk_pager),
            ("raw GET /Users pages carry no duplicates and a stable totalResults", self.paging_raw_pages),
            ('users.list with filter userName sw "..." finds the paging users', self.paging_filter_starts_with),
            ("users.update (PUT) replaces the user", self.user_update),
            ("users.patch replace active=false", self.user_patch_deactivate),
        ]
        if self.is_workspace:
            steps.append(("users.patch add entitlements", self.user_patch_entitlements))
        steps += [
            ("groups.create returns the new group", self.group_create),
            ("groups.get returns what was created", self.group_get),
            ('groups.list with filter displayName eq "..." finds exactly that group', self.group_list_filtered),
            ("groups.patch add member", self.group_patch_add_member),
            ('groups.patch remove member via members[value eq "id"]', self.group_patch_remove_member),
            ("groups.update (PUT) renames the group", self.group_update),
            ("groups.delete, then get gives NotFound", self.group_delete),
            ("service_principals.create returns the new service principal", self.sp_create),
            ("service_principals.get returns what was created", self.sp_get),
            ('service_principals.list with filter displayName eq "..." finds it', self.sp_list_filtered),
            ("service_principals.patch replace active=false", self.sp_patch),
            ("service_principals.update (PUT) renames it", self.sp_update),
            ("service_principals.delete, then get gives NotFound", self.sp_delete),
            ("users.delete, then get gives NotFound", self.user_delete),
            ("users.delete the paging users", self.paging_users_delete),
        ]
        return steps

    def current_user_me(self) -> None:
        me = self.client.current_user.me()
        expect(bool(me.id), f"/Me returned no id: {me.as_dict()}")
        expect(bool(me.user_name), f"/Me returned no userName: {me.as_dict()}")
        fetched = self.client.users.get(me.id)
        expect_equal(fetched.user_name, me.user_name, "userName of GET /Users/{me.id}")

    def user_create(self) -> None:
        user_name = self.email("alice")
        user = self.client.users.create(
            user_name=user_name,
            display_name="Alice Example",
            name=iam.Name(given_name="Alice", family_name="Example"),
            emails=[iam.ComplexValue(value=user_name, type="work", primary=True)],
            active=True,
        )
        expect(bool(user.id), f"created user has no id: {user.as_dict()}")
        expect_equal(user.user_name, user_name, "userName of created user")
        expect_equal(user.display_name, "Alice Example", "displayName of created user")
        self.state["user"] = user

    def user_get(self) -> None:
        created = self.state["user"]
        user = self.client.users.get(created.id)
        expect_equal(user.id, created.id, "id")
        expect_equal(user.user_name, created.user_name, "userName")
        expect_equal(user.display_name, "Alice Example", "displayName")
        expect(user.name is not None, "name is missing")
        expect_equal(user.name.given_name, "Alice", "name.givenName")
        expect_equal(user.name.family_name, "Example", "name.familyName")
        expect_equal(values_of(user.emails), [created.user_name], "emails[].value")
        expect_equal(user.active, True, "active")

    def user_list_filtered(self) -> None:
        user = self.state["user"]
        found = list(self.client.users.list(filter=f'userName eq "{user.user_name}"'))
        expect_equal([u.id for u in found], [user.id], "ids listed for the userName filter")

    def paging_users_create(self) -> None:
        ids = []
        for index in range(PAGING_USER_COUNT):
            user = self.client.users.create(user_name=self.email(f"page-{index:02d}"))
            expect(bool(user.id), f"paging user {index} has no id")
            ids.append(user.id)
        expect_equal(len(set(ids)), PAGING_USER_COUNT, "distinct ids among the paging users")
        self.state["paging_ids"] = ids

    def paging_sdk_pager(self) -> None:
        wanted = set(self.state["paging_ids"])
        # The SDK's pager advances startIndex by the size of each page and
        # drops ids it has already yielded, so a duplicate would be hidden
        # here; paging_raw_pages checks for duplicates on the wire.
        seen = [u.id for u in self.client.users.list(count=PAGE_SIZE, attributes="id,userName")]
        missing = wanted - set(seen)
        expect(not missing, f"{len(missing)} of {PAGING_USER_COUNT} paging users never listed")

    def paging_raw_pages(self) -> None:
        wanted = set(self.state["paging_ids"])
        seen: list[str] = []
        start_index = 1
        total_results = None
        for _ in range(1000):
            page = self.client.api_client.do(
                "GET",
                f"{self.scim_path}/Users",
                query={"startIndex": start_index, "count": PAGE_SIZE, "attributes": "id"},
                headers={"Accept": "application/json"},
            )
            resources = page.get("Resources") or []
            expect(
                len(resources) <= PAGE_SIZE,
                f"page at startIndex={start_index} has {len(resources)} resources, more than count={PAGE_SIZE}",
            )
            if total_results is None:
                total_results = page.get("totalResults")
            else:
                expect_equal(page.get("totalResults"), total_results, f"totalResults at startIndex={start_index}")
            if not resources:
                break
            seen.extend(resource["id"] for resource in resources)
            start_index += len(resources)
        else:
            raise ScenarioFailure("paging did not end after 1000 pages")
        duplicates = [i for i, n in collections.Counter(seen).items() if n > 1]
        expect(not duplicates, f"ids listed more than once across pages: {duplicates}")
        missing = wanted - set(seen)
        expect(not missing, f"{len(missing)} of {PAGING_USER_COUNT} paging users never listed")
        expect_equal(total_results, len(seen), "totalResults against the number of users listed")

    def paging_filter_starts_with(self) -> None:
        prefix = self.name("page-")
        found = [u.id for u in self.client.users.list(filter=f'userName sw "{prefix}"', count=PAGE_SIZE)]
        expect_equal(sorted(found), sorted(self.state["paging_ids"]), "ids listed for the sw filter")

    def user_update(self) -> None:
        user = self.state["user"]
        new_email = self.email("alice-new")
        self.client.users.update(
            user.id,
            user_name=user.user_name,
            display_name="Alice Renamed",
            name=iam.Name(given_name="Alicia", family_name="Example"),
            emails=[iam.ComplexValue(value=new_email, type="work", primary=True)],
            active=True,
        )
        fetched = self.client.users.get(user.id)
        expect_equal(fetched.user_name, user.user_name, "userName after PUT")
        expect_equal(fetched.display_name, "Alice Renamed", "displayName after PUT")
        expect_equal(fetched.name.given_name if fetched.name else None, "Alicia", "name.givenName after PUT")
        expect_equal(values_of(fetched.emails), [new_email], "emails[].value after PUT")

    def user_patch_deactivate(self) -> None:
        user = self.state["user"]
        # The SDK drops a falsy Patch.value, so `path="active", value=False`
        # sends no value at all; Scimitar reads a missing value on a boolean
        # as false, which is what this natural call means.
        self.client.users.patch(
            user.id,
            operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="active", value=False)],
            schemas=PATCH_SCHEMAS,
        )
        fetched = self.client.users.get(user.id)
        expect_equal(fetched.active, False, "active after PATCH replace")
        expect_equal(fetched.display_name, "Alice Renamed", "displayName untouched by PATCH")

    def user_patch_entitlements(self) -> None:
        user = self.state["user"]
        self.client.users.patch(
            user.id,
            operations=[
                iam.Patch(op=iam.PatchOp.ADD, path="entitlements", value=[{"value": ENTITLEMENT}])
            ],
            schemas=PATCH_SCHEMAS,
        )
        fetched = self.client.users.get(user.id)
        expect(
            ENTITLEMENT in values_of(fetched.entitlements),
            f"entitlements after PATCH add: {values_of(fetched.entitlements)}",
        )

    def group_create(self) -> None:
        display_name = self.name("group")
        group = self.client.groups.create(display_name=display_name)
        expect(bool(group.id), f"created group has no id: {group.as_dict()}")
        expect_equal(group.display_name, display_name, "displayName of created group")
        self.state["group"] = group

    def group_get(self) -> None:
        created = self.state["group"]
        group = self.client.groups.get(created.id)
        expect_equal(group.id, created.id, "id")
        expect_equal(group.display_name, created.display_name, "displayName")
        expect_equal(values_of(group.members), [], "members of a new group")

    def group_list_filtered(self) -> None:
        group = self.state["group"]
        found = list(self.client.groups.list(filter=f'displayName eq "{group.display_name}"'))
        expect_equal([g.id for g in found], [group.id], "ids listed for the displayName filter")

    def group_patch_add_member(self) -> None:
        group = self.state["group"]
        member_id = self.state["paging_ids"][0]
        self.client.groups.patch(
            group.id,
            operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": member_id}])],
            schemas=PATCH_SCHEMAS,
        )
        fetched = self.client.groups.get(group.id)
        expect_equal(values_of(fetched.members), [member_id], "members after PATCH add")
        member = self.client.users.get(member_id)
        expect(
            group.id in values_of(member.groups),
            f"the member's groups attribute lacks the group: {values_of(member.groups)}",
        )

    def group_patch_remove_member(self) -> None:
        group = self.state["group"]
        member_id = self.state["paging_ids"][0]
        self.client.groups.patch(
            group.id,
            operations=[iam.Patch(op=iam.PatchOp.REMOVE, path=f'members[value eq "{member_id}"]')],
            schemas=PATCH_SCHEMAS,
        )
        fetched = self.client.groups.get(group.id)
        expect_equal(values_of(fetched.members), [], "members after PATCH remove")

    def group_update(self) -> None:
        group = self.state["group"]
        new_name = self.name("group-renamed")
        self.client.groups.update(group.id, display_name=new_name)
        fetched = self.client.groups.get(group.id)
        expect_equal(fetched.display_name, new_name, "displayName after PUT")

    def group_delete(self) -> None:
        group = self.state["group"]
        self.client.groups.delete(group.id)
        expect_not_found(lambda: self.client.groups.get(group.id), "GET of the deleted group")

    def sp_create(self) -> None:
        display_name = self.name("sp")
        sp = self.client.service_principals.create(display_name=display_name, active=True)
        expect(bool(sp.id), f"created service principal has no id: {sp.as_dict()}")
        expect_equal(sp.display_name, display_name, "displayName of created service principal")
        # Databricks assigns an applicationId when the caller gives none, and
        # clients use it as the principal's stable name.
        expect(bool(sp.application_id), f"created service principal has no applicationId: {sp.as_dict()}")
        self.state["sp"] = sp

    def sp_get(self) -> None:
        created = self.state["sp"]
        sp = self.client.service_principals.get(created.id)
        expect_equal(sp.id, created.id, "id")
        expect_equal(sp.display_name, created.display_name, "displayName")
        expect_equal(sp.application_id, created.application_id, "applicationId")
        expect_equal(sp.active, True, "active")

    def sp_list_filtered(self) -> None:
        sp = self.state["sp"]
        found = list(self.client.service_principals.list(filter=f'displayName eq "{sp.display_name}"'))
        expect_equal([s.id for s in found], [sp.id], "ids listed for the displayName filter")

    def sp_patch(self) -> None:
        sp = self.state["sp"]
        # This is the form Databricks' own documentation uses: a path and the
        # boolean spelled as a string. Real SDK callers send it, so a
        # Databricks-compatible mount has to accept it.
        operations = [iam.Patch(op=iam.PatchOp.REPLACE, path="active", value="false")]
        if self.is_workspace:
            operations.append(
                iam.Patch(op=iam.PatchOp.ADD, path="entitlements", value=[{"value": ENTITLEMENT}])
            )
        self.client.service_principals.patch(sp.id, operations=operations, schemas=PATCH_SCHEMAS)
        fetched = self.client.service_principals.get(sp.id)
        expect_equal(fetched.active, False, "active after PATCH replace")
        if self.is_workspace:
            expect(
                ENTITLEMENT in values_of(fetched.entitlements),
                f"entitlements after PATCH add: {values_of(fetched.entitlements)}",
            )

    def sp_update(self) -> None:
        sp = self.state["sp"]
        new_name = self.name("sp-renamed")
        self.client.service_principals.update(
            sp.id, display_name=new_name, application_id=sp.application_id, active=True
        )
        fetched = self.client.service_principals.get(sp.id)
        expect_equal(fetched.display_name, new_name, "displayName after PUT")
        expect_equal(fetched.application_id, sp.application_id, "applicationId after PUT")
        expect_equal(fetched.active, True, "active after PUT")

    def sp_delete(self) -> None:
        sp = self.state["sp"]
        self.client.service_principals.delete(sp.id)
        expect_not_found(lambda: self.client.service_principals.get(sp.id), "GET of the deleted service principal")

    def user_delete(self) -> None:
        user = self.state["user"]
        self.client.users.delete(user.id)
        expect_not_found(lambda: self.client.users.get(user.id), "GET of the deleted user")
        found = list(self.client.users.list(filter=f'userName eq "{user.user_name}"'))
        expect_equal(found, [], "users listed for the deleted user's userName")

    def paging_users_delete(self) -> None:
        for user_id in self.state["paging_ids"]:
            self.client.users.delete(user_id)
        expect_not_found(
            lambda: self.client.users.get(self.state["paging_ids"][-1]), "GET of a deleted paging user"
        )


def build_client(kind: str, host: str, token: str, account_id: str | None, config_file: str):
    settings = dict(
        host=host,
        token=token,
        auth_type="pat",
        # A missing file, so that no ~/.databrickscfg on the machine is read.
        config_file=config_file,
        # Fail fast: the server is on loopback, and the SDK's default retry
        # budget would hide a hung server for minutes.
        retry_timeout_seconds=30,
        http_timeout_seconds=30,
        debug_truncate_bytes=2000,
    )
    if kind == "workspace":
        return WorkspaceClient(config=Config(**settings))
    return AccountClient(config=Config(account_id=account_id, **settings))


def main() -> int:
    arguments = sys.argv[1:]
    if not arguments or arguments[0] not in ("workspace", "account") or (
        len(arguments) != (2 if arguments[0] == "workspace" else 3)
    ):
        print(__doc__, file=sys.stderr)
        return 2
    kind, host = arguments[0], arguments[1]
    account_id = arguments[2] if kind == "account" else None
    token = os.environ.get("SCIMITAR_TOKEN")
    if not token:
        print("SCIMITAR_TOKEN is not set", file=sys.stderr)
        return 2

    # Nothing from the caller's environment may steer the SDK: only the
    # arguments above describe the server under test.
    for variable in [v for v in os.environ if v.startswith("DATABRICKS_")]:
        del os.environ[variable]

    recent = RecentLogLines(RECENT_LOG_LINES)
    recent.setFormatter(logging.Formatter("%(message)s"))
    sdk_logger = logging.getLogger("databricks.sdk")
    sdk_logger.setLevel(logging.DEBUG)
    sdk_logger.addHandler(recent)
    sdk_logger.propagate = False

    with tempfile.TemporaryDirectory() as scratch:
        try:
            client = build_client(kind, host, token, account_id, os.path.join(scratch, "no-databrickscfg"))
        except Exception as error:  # noqa: BLE001 - any setup failure ends the scenario
            print(f"FAIL  building the {kind} client: {type(error).__name__}: {error}")
            return 1
        scenario = Scenario(client, kind, account_id)
        print(f"Databricks SDK scenario, {kind} client, host {host}, run {scenario.run}")
        steps = scenario.steps()
        for number, (title, step) in enumerate(steps, start=1):
            recent.lines.clear()
            try:
                step()
            except (ScenarioFailure, DatabricksError) as error:
                print(f"FAIL  {number:2d}. {title}")
                print(f"      {type(error).__name__}: {error}")
                if recent.lines:
                    print("      last SDK requests and responses:")
                    for line in recent.lines:
                        for part in line.splitlines():
                            print(f"        {part}")
                return 1
            print(f"ok    {number:2d}. {title}")
    print(f"Databricks SDK scenario ({kind}): all {len(steps)} steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
