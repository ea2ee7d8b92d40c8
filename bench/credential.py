#!/usr/bin/env python3
"""Makes the credential a benchmark presents, from the admin token the CLI printed.

Standard library only. The admin token comes from BENCH_TOKEN (never from argv, so it does not
show in `ps`); the new credential is printed on standard output.

    credential.py KIND ORIGIN
        KIND admin: the admin token itself.
        KIND pat: a personal access token of the admin (POST /api/2.0/token/create, a day's
            lifetime), the credential issue #15's "authenticating adds no more than 5 %" is about.
        KIND oauth: an OAuth access token (a JWT) of a new service principal made an account
            admin (so it reads what the admin reads), minted at the workspace's /oidc/v1/token
            with the client-credentials grant.
        KIND oauth-client: the same principal's "CLIENT_ID SECRET", for a benchmark of the token
            endpoint itself.
ORIGIN is the server's root, for example http://127.0.0.1:8080.
"""

import base64
import json
import os
import sys
import urllib.parse
import urllib.request


def call(origin, method, path, token, body=None, form=None, basic=None):
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if basic is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(origin + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as reply:
        text = reply.read()
        return json.loads(text) if text else {}


def oauth_client(origin, token):
    scim = "/api/2.0/preview/scim/v2"
    principal = call(origin, "POST", f"{scim}/ServicePrincipals", token, {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"],
        "displayName": "bench-oauth",
    })
    query = urllib.parse.quote('displayName eq "admins"')
    admins = call(origin, "GET", f"{scim}/Groups?filter={query}", token)["Resources"][0]
    call(origin, "PATCH", f"{scim}/Groups/{admins['id']}", token, {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": principal["id"]}]}],
    })
    secret = call(origin, "POST",
                  f"/api/2.0/accounts/servicePrincipals/{principal['id']}/credentials/secrets",
                  token, {})
    return principal["applicationId"], secret["secret"]


def main():
    kind, origin = sys.argv[1], sys.argv[2].rstrip("/")
    token = os.environ["BENCH_TOKEN"]
    if kind == "admin":
        print(token)
    elif kind == "pat":
        made = call(origin, "POST", "/api/2.0/token/create", token,
                    {"lifetime_seconds": 86_400, "comment": "bench"})
        print(made["token_value"])
    elif kind in ("oauth", "oauth-client"):
        client_id, secret = oauth_client(origin, token)
        if kind == "oauth-client":
            print(client_id, secret)
            return
        minted = call(origin, "POST", "/oidc/v1/token", None,
                      form={"grant_type": "client_credentials", "scope": "all-apis"},
                      basic=(client_id, secret))
        print(minted["access_token"])
    else:
        sys.exit(f"unknown credential kind {kind}")


if __name__ == "__main__":
    main()
