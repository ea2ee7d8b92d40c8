#!/usr/bin/env python3
"""OAuth machine-to-machine access for a service principal, driven with the official Databricks
SDK, unchanged.

Usage:
    SCIMITAR_TOKEN=<secret> databricks_sdk_oauth.py HOST ACCOUNT_ID SERVER_LOG

HOST is the server root (http://127.0.0.1:8080), ACCOUNT_ID the account the admin token
belongs to, SERVER_LOG the file the server writes its log to (read at the end: no secret and
no access token may be in it).

The admin makes a service principal (w.service_principals.create) and an OAuth secret for it
(a.service_principal_secrets.create), which the workspace proxy lists without its value
(w.service_principal_secrets_proxy.list). A WorkspaceClient with the principal's client id and
secret (auth_type="oauth-m2m") finds the token endpoint from /.well-known/databricks-config and
calls current_user.me(); an AccountClient does the same through the account's token endpoint
and lists the account's users. The secret deleted, the clients' next calls fail, and the
token endpoint refuses the secret. It stops with exit status 1 at the first step that fails.

The AccountClient is given `discovery_url`: this server answers the account and its default
workspace on one host, and the SDK takes a host's `oidc_endpoint` for the workspace's unless
told otherwise (Databricks' account hosts are separate: accounts.cloud.databricks.com).
"""

import os
import sys
import tempfile
import uuid

from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service import iam
from scenario_checks import ScenarioFailure, expect


class Scenario:
    def __init__(self, host, account_id, token, server_log, scratch) -> None:
        self.host = host
        self.account_id = account_id
        self.token = token
        self.server_log = server_log
        self.scratch = scratch
        self.run = uuid.uuid4().hex[:8]
        self.w = WorkspaceClient(config=self.config(token=token, auth_type="pat"))
        self.a = AccountClient(
            config=self.config(token=token, auth_type="pat", account_id=account_id)
        )
        self.state: dict = {}

    def config(self, **settings) -> Config:
        return Config(
            host=self.host,
            config_file=os.path.join(self.scratch, "no-databrickscfg"),
            retry_timeout_seconds=30,
            http_timeout_seconds=30,
            **settings,
        )

    def oauth_workspace(self) -> WorkspaceClient:
        return WorkspaceClient(
            config=self.config(
                client_id=self.state["client_id"],
                client_secret=self.state["secret"],
                auth_type="oauth-m2m",
            )
        )

    def oauth_account(self) -> AccountClient:
        return AccountClient(
            config=self.config(
                account_id=self.account_id,
                client_id=self.state["client_id"],
                client_secret=self.state["secret"],
                auth_type="oauth-m2m",
                discovery_url=f"{self.host}/oidc/accounts/{self.account_id}"
                "/.well-known/oauth-authorization-server",
            )
        )

    def steps(self):
        return [
            ("a service principal gets a secret with a.service_principal_secrets", self.secret),
            ("w.service_principal_secrets_proxy lists it without its value", self.listed),
            ("oauth-m2m against the workspace: current_user.me()", self.workspace),
            ("oauth-m2m against the account: a.users.list()", self.account),
            ("the secret deleted, its clients and its tokens stop", self.deleted),
            ("no secret and no access token in the server log", self.log_is_clean),
        ]

    def secret(self):
        principal = self.w.service_principals.create(display_name=f"m2m-{self.run}")
        # Account users are listed by the account's admins: the principal is made one.
        admins = next(iter(self.a.groups.list(filter='displayName eq "admins"')))
        self.a.groups.patch(
            admins.id,
            operations=[
                iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": principal.id}])
            ],
            schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
        )
        made = self.a.service_principal_secrets.create(
            service_principal_id=principal.id, lifetime="3600s"
        )
        expect(bool(made.secret) and made.secret.startswith("dose"), f"{made}")
        expect(bool(made.id) and bool(made.expire_time), f"{made}")
        self.state.update(
            principal_id=principal.id,
            client_id=principal.application_id,
            secret=made.secret,
            secret_id=made.id,
            seen=[made.secret],
        )

    def listed(self):
        secrets = list(
            self.w.service_principal_secrets_proxy.list(
                service_principal_id=self.state["principal_id"]
            )
        )
        expect([s.id for s in secrets] == [self.state["secret_id"]], f"{secrets}")
        expect(all(s.secret_hash and not hasattr(s, "secret") for s in secrets), f"{secrets}")

    def workspace(self):
        client = self.oauth_workspace()
        me = client.current_user.me()
        expect(me.id == self.state["principal_id"], f"{me}")
        self.state["workspace_client"] = client
        self.state["seen"].append(client.config.oauth_token().access_token)

    def account(self):
        client = self.oauth_account()
        names = [user.user_name for user in client.users.list()]
        expect(len(names) > 0, f"{names}")
        self.state["account_client"] = client
        self.state["seen"].append(client.config.oauth_token().access_token)

    def deleted(self):
        self.a.service_principal_secrets.delete(
            service_principal_id=self.state["principal_id"], secret_id=self.state["secret_id"]
        )
        # The clients still hold tokens minted from the secret: their next calls fail.
        for name, call in [
            ("workspace", lambda: self.state["workspace_client"].current_user.me()),
            ("account", lambda: list(self.state["account_client"].users.list())),
        ]:
            try:
                call()
            except DatabricksError:
                continue
            raise ScenarioFailure(f"the {name} client still works after its secret was deleted")
        # A new client cannot get a token with the deleted secret.
        try:
            self.oauth_workspace().current_user.me()
        except (DatabricksError, ValueError):
            return
        raise ScenarioFailure("a new client authenticated with a deleted secret")

    def log_is_clean(self):
        with open(self.server_log, encoding="utf-8", errors="replace") as log:
            text = log.read()
        expect("/oidc/v1/token" in text, "the server log shows no token request")
        for value in self.state["seen"]:
            expect(value not in text, "a secret or access token is in the server log")
            # Nor the signed part of a token alone.
            expect(value.split(".")[-1] not in text, "a token's signature is in the server log")


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, account_id, server_log = sys.argv[1:]
    token = os.environ.get("SCIMITAR_TOKEN")
    if not token:
        print("SCIMITAR_TOKEN is not set", file=sys.stderr)
        return 2
    # Only the arguments describe the server under test.
    for variable in [v for v in os.environ if v.startswith("DATABRICKS_")]:
        del os.environ[variable]
    with tempfile.TemporaryDirectory() as scratch:
        scenario = Scenario(host, account_id, token, server_log, scratch)
        print(f"Databricks SDK OAuth scenario, host {host}, run {scenario.run}")
        for number, (title, step) in enumerate(scenario.steps(), start=1):
            try:
                step()
            except (ScenarioFailure, DatabricksError, ValueError) as error:
                print(f"FAIL  {number:2d}. {title}")
                print(f"      {type(error).__name__}: {error}")
                return 1
            print(f"ok    {number:2d}. {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
