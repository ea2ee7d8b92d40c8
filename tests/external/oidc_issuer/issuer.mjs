// An OpenID Connect provider on loopback, for tests/external/databricks_sdk_federation.py:
// oidc-provider (a certified implementation) with one confidential client that may use the
// client-credentials grant, issuing RS256-signed JWT access tokens (RFC 9068) for one audience.
// Its discovery document and key set are what Scimitar fetches to verify them.
//
// Usage: node issuer.mjs PORT AUDIENCE CLIENT_ID CLIENT_SECRET
// Prints "ready <issuer>" once it listens.
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const [port, audience, clientId, clientSecret] = process.argv.slice(2);
if (!clientSecret) {
  console.error("usage: node issuer.mjs PORT AUDIENCE CLIENT_ID CLIENT_SECRET");
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
// A fresh key per run: nothing secret is kept anywhere.
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "issuer-key-1", use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
    },
  ],
  jwks: { keys: [signingKey] },
  ttl: { ClientCredentials: 600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "urn:scimitar:federation",
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "scimitar",
        audience,
        accessTokenTTL: 600,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
});

const server = provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
