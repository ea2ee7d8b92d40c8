#!/usr/bin/env python3
"""Drive Scimitar's workspace object Permissions API with the official Databricks SDK.

Usage:
    SCIMITAR_TOKEN=<secret> databricks_sdk_permissions.py HOST

HOST is the server root, for example http://127.0.0.1:8080. The script makes a
user and a group through the SDK's SCIM client, then sets, updates and reads
the permissions of a job (through both the generic `w.permissions` client and
`w.jobs`) and of a directory (through `w.permissions` and
`w.workspace`), and reads their permission levels; then builds a folder and a
notebook in it with `w.workspace.mkdirs` and `import_` and reads the ACL the
notebook inherits. It checks what the SDK's
dataclasses parse back and exits with status 1 at the first check that fails.
Names carry a per-run suffix so the script can run twice against one server.
"""

import base64
import os
import sys
import tempfile
import uuid

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError, NotFound, PermissionDenied
from databricks.sdk.service import iam, jobs, workspace


class Failure(Exception):
    """A check did not hold."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Failure(what)


def levels_of(permissions, name: str) -> list[tuple[str, bool]]:
    """(level, inherited) pairs an ObjectPermissions lists for the principal `name`."""
    found = []
    for entry in permissions.access_control_list or []:
        if name in (entry.user_name, entry.group_name, entry.service_principal_name):
            for permission in entry.all_permissions or []:
                found.append((permission.permission_level.value, bool(permission.inherited)))
    return found


def run(client: WorkspaceClient) -> None:
    suffix = uuid.uuid4().hex[:8]
    user_name = f"perm-user-{suffix}@example.com"
    group_name = f"perm-group-{suffix}"
    user = client.users.create(user_name=user_name)
    group = client.groups.create(display_name=group_name)
    job_id = f"job-{suffix}"
    directory_id = f"dir-{suffix}"
    try:
        # Generic client: set replaces, update adds, get reads back.
        set_result = client.permissions.set(
            "jobs",
            job_id,
            access_control_list=[
                iam.AccessControlRequest(user_name=user_name, permission_level=iam.PermissionLevel.IS_OWNER),
                iam.AccessControlRequest(group_name=group_name, permission_level=iam.PermissionLevel.CAN_VIEW),
            ],
        )
        expect(set_result.object_id == f"/jobs/{job_id}", f"object_id after set: {set_result.object_id}")
        expect(levels_of(set_result, user_name) == [("IS_OWNER", False)], f"owner after set: {set_result}")
        expect(("CAN_MANAGE", True) in levels_of(set_result, "admins"), f"admins after set: {set_result}")

        updated = client.permissions.update(
            "jobs",
            job_id,
            access_control_list=[
                iam.AccessControlRequest(group_name=group_name, permission_level=iam.PermissionLevel.CAN_MANAGE_RUN)
            ],
        )
        expect(levels_of(updated, group_name) == [("CAN_MANAGE_RUN", False)], f"group after update: {updated}")
        expect(levels_of(updated, user_name) == [("IS_OWNER", False)], f"owner kept by update: {updated}")

        got = client.permissions.get("jobs", job_id)
        expect(got.as_dict() == updated.as_dict(), f"get differs from update: {got} vs {updated}")

        # The jobs service's own client speaks to the same endpoint.
        job_permissions = client.jobs.get_permissions(job_id)
        expect(
            levels_of(job_permissions, group_name) == [("CAN_MANAGE_RUN", False)],
            f"jobs.get_permissions: {job_permissions}",
        )
        job_levels = client.jobs.get_permission_levels(job_id)
        expect(
            [level.permission_level.value for level in job_levels.permission_levels]
            == ["CAN_VIEW", "CAN_MANAGE_RUN", "IS_OWNER", "CAN_MANAGE"],
            f"job permission levels: {job_levels}",
        )
        replaced = client.jobs.set_permissions(
            job_id,
            access_control_list=[
                jobs.JobAccessControlRequest(user_name=user_name, permission_level=jobs.JobPermissionLevel.IS_OWNER)
            ],
        )
        expect(levels_of(replaced, group_name) == [], f"jobs.set_permissions replaces: {replaced}")

        # A group cannot own a job: the SDK raises the API's error.
        try:
            client.permissions.update(
                "jobs",
                job_id,
                access_control_list=[
                    iam.AccessControlRequest(group_name=group_name, permission_level=iam.PermissionLevel.IS_OWNER)
                ],
            )
            raise Failure("a group was accepted as a job's owner")
        except DatabricksError as error:
            expect(error.error_code == "INVALID_PARAMETER_VALUE", f"error code: {error.error_code}")

        # A directory, through the generic client and the workspace client. Permissions are
        # kept only for a directory the workspace holds: one that does not exist is NotFound.
        try:
            client.permissions.get("directories", directory_id)
            raise Failure("the permissions of a directory that does not exist were answered")
        except NotFound:
            pass
        client.workspace.mkdirs(f"/Shared/acl-{suffix}")
        directory_id = str(client.workspace.get_status(f"/Shared/acl-{suffix}").object_id)
        directory = client.permissions.set(
            "directories",
            directory_id,
            access_control_list=[
                iam.AccessControlRequest(group_name=group_name, permission_level=iam.PermissionLevel.CAN_EDIT)
            ],
        )
        expect(directory.object_id == f"/directories/{directory_id}", f"directory object_id: {directory}")
        expect(levels_of(directory, group_name) == [("CAN_EDIT", False)], f"directory after set: {directory}")
        directory = client.workspace.update_permissions(
            "directories",
            directory_id,
            access_control_list=[
                workspace.WorkspaceObjectAccessControlRequest(
                    user_name=user_name, permission_level=workspace.WorkspaceObjectPermissionLevel.CAN_MANAGE
                )
            ],
        )
        expect(levels_of(directory, user_name) == [("CAN_MANAGE", False)], f"directory after update: {directory}")
        expect(levels_of(directory, group_name) == [("CAN_EDIT", False)], f"directory kept: {directory}")
        read_back = client.workspace.get_permissions("directories", directory_id)
        expect(read_back.as_dict() == directory.as_dict(), f"directory get differs: {read_back}")
        directory_levels = client.permissions.get_permission_levels("directories", directory_id)
        expect(
            [level.permission_level.value for level in directory_levels.permission_levels]
            == ["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"],
            f"directory permission levels: {directory_levels}",
        )

        # The workspace tree: a folder made with mkdirs, a notebook imported into it, and the
        # folder's ACL inherited by the notebook.
        base = f"/Shared/perm-{suffix}"
        client.workspace.mkdirs(f"{base}/reports")
        folder = client.workspace.get_status(f"{base}/reports")
        expect(folder.object_type == workspace.ObjectType.DIRECTORY, f"folder status: {folder}")
        client.workspace.import_(
            f"{base}/reports/daily",
            content=base64.b64encode(b"print(1)").decode(),
            format=workspace.ImportFormat.SOURCE,
            language=workspace.Language.PYTHON,
        )
        notebook = client.workspace.get_status(f"{base}/reports/daily")
        expect(
            notebook.object_type == workspace.ObjectType.NOTEBOOK and notebook.language == workspace.Language.PYTHON,
            f"notebook status: {notebook}",
        )
        listed = [entry.path for entry in client.workspace.list(f"{base}/reports")]
        expect(listed == [f"{base}/reports/daily"], f"list: {listed}")
        client.workspace.set_permissions(
            "directories",
            str(folder.object_id),
            access_control_list=[
                workspace.WorkspaceObjectAccessControlRequest(
                    group_name=group_name, permission_level=workspace.WorkspaceObjectPermissionLevel.CAN_RUN
                )
            ],
        )
        inherited = client.workspace.get_permissions("notebooks", str(notebook.object_id))
        expect(("CAN_RUN", True) in levels_of(inherited, group_name), f"notebook inherits: {inherited}")
        client.workspace.delete(base, recursive=True)
        try:
            client.workspace.get_status(base)
            raise Failure("a deleted folder still has a status")
        except NotFound:
            pass
    finally:
        client.users.delete(user.id)
        client.groups.delete(group.id)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    token = os.environ.get("SCIMITAR_TOKEN")
    if not token:
        print("error: SCIMITAR_TOKEN is not set", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as directory:
        client = WorkspaceClient(
            config=Config(
                host=sys.argv[1],
                token=token,
                auth_type="pat",
                # A missing file, so that no ~/.databrickscfg on the machine is read.
                config_file=os.path.join(directory, "absent.cfg"),
                retry_timeout_seconds=30,
                http_timeout_seconds=30,
            )
        )
        try:
            run(client)
        except (Failure, DatabricksError) as error:
            print(f"FAIL: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    print("PASS: permissions set/update/get on a job and a directory; a workspace folder and the notebook that inherits its ACL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
