#!/usr/bin/env python3
"""Personal access tokens, token management and workspace-conf, driven with the official
Databricks SDK, unchanged.

Usage:
    SCIMITAR_TOKEN=<secret> databricks_sdk_tokens.py HOST ACCOUNT_ID BINARY DATABASE_URL

HOST is the server root (http://127.0.0.1:8080), ACCOUNT_ID the account the admin token
belongs to. BINARY and DATABASE_URL are used only to give the scenario's user its first,
account-level token (`scimitar token create --user`), as an operator holding the database
does.

The admin grants a user CAN_USE on tokens (w.token_management.update_permissions); the user
makes a personal access token with a lifetime (w.tokens.create), acts with it, and lists only
its own tokens; the admin finds it with w.token_management.list(created_by_username=...),
reads it (get) and revokes it (delete), and the next call with it fails. The user rotates a
second token through Scimitar's POST /api/2.0/token/rotate: both secrets work during the
overlap. maxTokenLifetimeDays set with w.workspace_conf caps lifetimes; an on-behalf-of token
made with w.token_management.create_obo_token acts as its service principal. It stops with
exit status 1 at the first step that fails. Names carry a per-run suffix.
"""

import os
import subprocess
import sys
import tempfile
import uuid

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError, InvalidParameterValue, NotFound, Unauthenticated
from databricks.sdk.service import settings
from scenario_checks import ScenarioFailure, expect, expect_raises


class Scenario:
    def __init__(self, host, account_id, token, binary, database, scratch) -> None:
        self.host = host
        self.account_id = account_id
        self.token = token
        self.binary = binary
        self.database = database
        self.scratch = scratch
        self.run = uuid.uuid4().hex[:8]
        self.w = self.client(token)
        self.state: dict = {}

    def client(self, token: str) -> WorkspaceClient:
        return WorkspaceClient(
            config=Config(
                host=self.host,
                token=token,
                auth_type="pat",
                config_file=os.path.join(self.scratch, "no-databrickscfg"),
                retry_timeout_seconds=30,
                http_timeout_seconds=30,
            )
        )

    def steps(self):
        return [
            ("a user granted CAN_USE on tokens", self.user_with_can_use),
            ("the user makes a token with a lifetime and acts with it", self.user_makes_token),
            ("w.tokens.list shows the user its own tokens only", self.user_lists_own),
            ("w.token_management.list, get and delete by the admin", self.admin_revokes),
            ("a rotated token keeps working beside its replacement", self.rotation),
            ("w.workspace_conf caps the lifetime of new tokens", self.lifetime_cap),
            ("w.token_management.create_obo_token acts as its service principal", self.obo),
        ]

    def user_with_can_use(self):
        user = self.w.users.create(user_name=f"tokens-{self.run}@example.com")
        self.w.token_management.update_permissions(
            access_control_list=[
                settings.TokenAccessControlRequest(
                    user_name=user.user_name,
                    permission_level=settings.TokenPermissionLevel.CAN_USE,
                )
            ]
        )
        made = subprocess.run(
            [self.binary, "token", "create", "--database", self.database,
             "--account", self.account_id, "--user", user.user_name],
            check=True, capture_output=True, text=True,
        )
        self.state.update(user=user, user_client=self.client(made.stdout.strip()))

    def user_makes_token(self):
        made = self.state["user_client"].tokens.create(comment=f"laptop-{self.run}", lifetime_seconds=3600)
        info = made.token_info
        expect(made.token_value.startswith("dapi"), "a dapi token")
        expect(info.expiry_time - info.creation_time == 3_600_000, f"{info}")
        me = self.client(made.token_value).current_user.me()
        expect(me.user_name == self.state["user"].user_name, f"{me}")
        self.state["made"] = made
        self.w.tokens.create(comment=f"admin-{self.run}", lifetime_seconds=3600)

    def user_lists_own(self):
        listed = [info.token_id for info in self.state["user_client"].tokens.list()]
        expect(listed == [self.state["made"].token_info.token_id], f"{listed}")

    def admin_revokes(self):
        made = self.state["made"]
        found = list(self.w.token_management.list(created_by_username=self.state["user"].user_name))
        expect([info.token_id for info in found] == [made.token_info.token_id], f"{found}")
        got = self.w.token_management.get(made.token_info.token_id).token_info
        expect(got.owner_id == int(self.state["user"].id), f"{got}")
        expect(got.comment == f"laptop-{self.run}", f"{got}")
        self.w.token_management.delete(made.token_info.token_id)
        revoked = self.client(made.token_value)
        expect_raises(Unauthenticated, revoked.current_user.me, "a revoked token")
        expect_raises(NotFound, lambda: self.w.token_management.get(made.token_info.token_id), "a revoked token's info")

    def rotation(self):
        user_client = self.state["user_client"]
        made = user_client.tokens.create(comment=f"ci-{self.run}", lifetime_seconds=7200)
        rotated = user_client.api_client.do(
            "POST", "/api/2.0/token/rotate", body={"token_id": made.token_info.token_id}
        )
        expect(rotated["token_value"] != made.token_value, f"{rotated['token_info']}")
        for secret in (made.token_value, rotated["token_value"]):
            me = self.client(secret).current_user.me()
            expect(me.user_name == self.state["user"].user_name, f"{me}")

    def lifetime_cap(self):
        self.w.workspace_conf.set_status({"maxTokenLifetimeDays": "30"})
        conf = self.w.workspace_conf.get_status(keys="enableTokensConfig,maxTokenLifetimeDays")
        expect(conf == {"enableTokensConfig": "true", "maxTokenLifetimeDays": "30"}, f"{conf}")
        expect_raises(
            InvalidParameterValue,
            lambda: self.w.tokens.create(lifetime_seconds=31 * 86400),
            "a lifetime past maxTokenLifetimeDays",
        )
        self.w.workspace_conf.set_status({"maxTokenLifetimeDays": ""})

    def obo(self):
        principal = self.w.service_principals.create(display_name=f"robot-{self.run}")
        made = self.w.token_management.create_obo_token(
            application_id=principal.application_id, lifetime_seconds=600, comment="robot"
        )
        expect(made.token_info.owner_id == int(principal.id), f"{made.token_info}")
        me = self.client(made.token_value).current_user.me()
        expect(me.id == principal.id, f"{me}")
        self.w.token_management.delete(made.token_info.token_id)


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
        print(f"Databricks SDK tokens scenario, host {host}, run {scenario.run}")
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
