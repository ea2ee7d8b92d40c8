#!/usr/bin/env python3
"""Workload identity federation, driven with the official Databricks SDK, unchanged, against a
real OpenID Connect provider on loopback.

Usage:
    SCIMITAR_TOKEN=<secret> databricks_sdk_federation.py HOST ACCOUNT_ID SERVER_LOG

HOST is the server root (http://127.0.0.1:8080), which must allow loopback http issuers
(`SCIMITAR_FEDERATION_ALLOW_LOOPBACK_HTTP=true`), ACCOUNT_ID the account the admin token
belongs to, SERVER_LOG the file the server writes its log to (no exchanged JWT or access token
may be in it).

The provider is `oidc-provider` from npm (the version pinned in oidc_issuer/package.json),
installed with the machine's npm into a cache directory ($SCIMITAR_NPM_CACHE, default
~/.cache/scimitar) the first time, and started on a free loopback port with one client that
may use the client-credentials grant; it issues RS256-signed JWT access tokens whose audience
is the account id.

The admin makes a service principal (w.service_principals.create) and a federation policy for
it that trusts the provider (a.service_principal_federation_policy.create, then get and list).
A JWT from the provider's token endpoint is exchanged by a WorkspaceClient with
auth_type="env-oidc" (DATABRICKS_OIDC_TOKEN, client_id = the principal's application id),
which calls current_user.me() as the principal; the same JWT sent again (a raw RFC 8693 POST)
is refused as a replay. The policy deleted, the client's token stops working. Then an account
policy (a.federation_policy) maps a new JWT's subject to the user of that name, as whom an
env-oidc client without client_id acts. It stops with exit status 1 at the first step that
fails.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service import oauth2
from scenario_checks import ScenarioFailure, expect

HERE = os.path.dirname(os.path.abspath(__file__))
ISSUER_SOURCE = os.path.join(HERE, "oidc_issuer")
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
START_TIMEOUT_SECONDS = 30


def provider_version() -> str:
    with open(os.path.join(ISSUER_SOURCE, "package.json"), encoding="utf-8") as package:
        return json.load(package)["dependencies"]["oidc-provider"]


def installed_issuer() -> str:
    """The issuer's directory, with oidc-provider installed in it (once per version)."""
    cache = os.environ.get("SCIMITAR_NPM_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "scimitar"
    )
    target = os.path.join(cache, f"oidc-issuer-{provider_version()}")
    for name in ("package.json", "issuer.mjs"):
        os.makedirs(target, exist_ok=True)
        shutil.copyfile(os.path.join(ISSUER_SOURCE, name), os.path.join(target, name))
    if not os.path.isdir(os.path.join(target, "node_modules", "oidc-provider")):
        print(f"      installing oidc-provider {provider_version()} into {target}")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock"],
            cwd=target,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_form(url: str, fields: dict, basic=None):
    """POSTs a form; returns (status, JSON body)."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if basic:
        pair = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {pair}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Scenario:
    def __init__(self, host, account_id, token, server_log, scratch) -> None:
        self.host = host
        self.account_id = account_id
        self.server_log = server_log
        self.scratch = scratch
        self.run = uuid.uuid4().hex[:8]
        self.client_id = f"ci-pipeline-{self.run}"
        self.client_secret = uuid.uuid4().hex
        self.w = WorkspaceClient(config=self.config(token=token, auth_type="pat"))
        self.a = AccountClient(config=self.config(token=token, auth_type="pat", account_id=account_id))
        self.state: dict = {"seen": []}
        self.issuer_process = None

    def config(self, **settings) -> Config:
        return Config(
            host=self.host,
            config_file=os.path.join(self.scratch, "no-databrickscfg"),
            retry_timeout_seconds=30,
            http_timeout_seconds=30,
            **settings,
        )

    def steps(self):
        return [
            ("oidc-provider from npm starts on loopback", self.start_issuer),
            ("a.service_principal_federation_policy creates, gets and lists a policy", self.policy),
            ("a client-credentials JWT from the provider", self.provider_jwt),
            ("env-oidc exchanges it: current_user.me() is the service principal", self.exchange),
            ("the same JWT again is refused as a replay (raw RFC 8693)", self.replay),
            ("the policy deleted, the exchanged token stops working", self.deleted),
            ("a.federation_policy: env-oidc without client_id acts as the user it names", self.account_wide),
            ("no JWT and no access token in the server log", self.log_is_clean),
        ]

    def start_issuer(self):
        directory = installed_issuer()
        port = free_port()
        self.issuer_process = subprocess.Popen(
            ["node", "issuer.mjs", str(port), self.account_id, self.client_id, self.client_secret],
            cwd=directory,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            line = self.issuer_process.stdout.readline()
            if line.startswith("ready "):
                self.state["issuer"] = line.split()[1]
                return
            if not line and self.issuer_process.poll() is not None:
                break
        raise ScenarioFailure("oidc-provider did not start")

    def policy(self):
        principal = self.w.service_principals.create(display_name=f"federated-{self.run}")
        self.state.update(principal_id=principal.id, application_id=principal.application_id)
        made = self.a.service_principal_federation_policy.create(
            service_principal_id=int(principal.id),
            policy_id=f"ci-{self.run}",
            policy=oauth2.FederationPolicy(
                description="the loopback CI issuer",
                oidc_policy=oauth2.OidcFederationPolicy(
                    issuer=self.state["issuer"],
                    audiences=[self.account_id],
                    subject=self.client_id,
                ),
            ),
        )
        expect(made.policy_id == f"ci-{self.run}" and bool(made.uid), f"{made}")
        expect(made.oidc_policy.issuer == self.state["issuer"], f"{made}")
        got = self.a.service_principal_federation_policy.get(
            service_principal_id=int(principal.id), policy_id=made.policy_id
        )
        expect(got.uid == made.uid and got.oidc_policy.subject == self.client_id, f"{got}")
        listed = list(self.a.service_principal_federation_policy.list(service_principal_id=int(principal.id)))
        expect([p.policy_id for p in listed] == [made.policy_id], f"{listed}")
        self.state["policy_id"] = made.policy_id

    def provider_jwt(self):
        status, body = post_form(
            f"{self.state['issuer']}/token",
            {"grant_type": "client_credentials", "scope": "scimitar"},
            basic=(self.client_id, self.client_secret),
        )
        expect(status == 200 and "access_token" in body, f"{status} {body}")
        self.state["jwt"] = body["access_token"]
        self.state["seen"].append(body["access_token"])

    def exchange(self):
        os.environ["DATABRICKS_OIDC_TOKEN"] = self.state["jwt"]
        try:
            client = WorkspaceClient(
                config=self.config(client_id=self.state["application_id"], auth_type="env-oidc")
            )
            me = client.current_user.me()
        finally:
            del os.environ["DATABRICKS_OIDC_TOKEN"]
        expect(me.id == self.state["principal_id"], f"{me}")
        self.state["client"] = client
        self.state["seen"].append(client.config.oauth_token().access_token)

    def replay(self):
        status, body = post_form(
            f"{self.host}/oidc/v1/token",
            {
                "grant_type": EXCHANGE,
                "subject_token": self.state["jwt"],
                "subject_token_type": JWT_TYPE,
                "client_id": self.state["application_id"],
                "scope": "all-apis",
            },
        )
        expect(status == 400 and body.get("error") == "invalid_grant", f"{status} {body}")

    def deleted(self):
        self.a.service_principal_federation_policy.delete(
            service_principal_id=int(self.state["principal_id"]), policy_id=self.state["policy_id"]
        )
        try:
            self.state["client"].current_user.me()
        except DatabricksError:
            return
        raise ScenarioFailure("the exchanged token still works after its policy was deleted")

    def account_wide(self):
        # The provider's JWTs name its client in `sub`: a user of that name is who they become.
        user = self.w.users.create(user_name=self.client_id)
        made = self.a.federation_policy.create(
            policy_id=f"idp-{self.run}",
            policy=oauth2.FederationPolicy(
                oidc_policy=oauth2.OidcFederationPolicy(issuer=self.state["issuer"], subject_claim="sub"),
            ),
        )
        expect(made.oidc_policy.audiences in (None, []), f"{made}")
        self.provider_jwt()
        os.environ["DATABRICKS_OIDC_TOKEN"] = self.state["jwt"]
        try:
            client = WorkspaceClient(config=self.config(auth_type="env-oidc"))
            me = client.current_user.me()
        finally:
            del os.environ["DATABRICKS_OIDC_TOKEN"]
        expect(me.id == user.id and me.user_name == self.client_id, f"{me}")
        self.state["seen"].append(client.config.oauth_token().access_token)
        self.a.federation_policy.delete(policy_id=made.policy_id)

    def log_is_clean(self):
        with open(self.server_log, encoding="utf-8", errors="replace") as log:
            text = log.read()
        expect("/oidc/v1/token" in text, "the server log shows no token request")
        for value in self.state["seen"]:
            expect(value not in text, "a JWT or access token is in the server log")
            expect(value.split(".")[-1] not in text, "a token's signature is in the server log")

    def stop(self):
        if self.issuer_process and self.issuer_process.poll() is None:
            self.issuer_process.terminate()
            try:
                self.issuer_process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.issuer_process.kill()


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
        print(f"Databricks SDK federation scenario, host {host}, run {scenario.run}")
        try:
            for number, (title, step) in enumerate(scenario.steps(), start=1):
                try:
                    step()
                except (ScenarioFailure, DatabricksError, ValueError, OSError, subprocess.SubprocessError) as error:
                    print(f"FAIL  {number:2d}. {title}")
                    print(f"      {type(error).__name__}: {error}")
                    return 1
                print(f"ok    {number:2d}. {title}")
        finally:
            scenario.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
