// The local environment's OpenID provider: the certified npm `oidc-provider`, on 127.0.0.1.
// It issues client-credentials JWT access tokens for the stack's machine identities (one
// audience per resource indicator), authorization-code (+PKCE) tokens for the human test users
// through oidc-provider's development login pages, and serves discovery + JWKS for the Workers.
// Signing keys persist in the state folder, so tokens survive a restart of this process.
//
// Usage: node oidc_provider.mjs <config.json>   (written by `airgate up`, see infra/local/)
import { readFileSync, writeFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { generateKeyPair, exportJWK } from "jose";
import Provider, { errors } from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));

async function signingKeys(file) {
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8"));
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: "RS256", use: "sig", kid: `local-${Date.now()}` };
  const keys = { keys: [jwk] };
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

const audiences = new Set(config.audiences);
const clientsById = new Map(config.clients.map((client) => [client.client_id, client]));
const usersById = new Map((config.users ?? []).map((user) => [user.account_id, user]));
const human = config.human_client;
// Airflow's UI signs people in with its own confidential client (FAB OAuth, authorization code +
// PKCE); its access token is for the userinfo endpoint (groups claim), so no resource is forced on it.
const airflowUi = config.airflow_ui_client;

const provider = new Provider(config.issuer, {
  jwks: await signingKeys(config.keys_file),
  clients: [
    ...config.clients.map((client) => ({
      client_id: client.client_id,
      client_secret: client.client_secret,
      grant_types: ["client_credentials"],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: "client_secret_basic",
    })),
    ...(human
      ? [{
          client_id: human.client_id,
          grant_types: ["authorization_code"],
          response_types: ["code"],
          redirect_uris: [human.redirect_uri],
          token_endpoint_auth_method: "none",
        }]
      : []),
    ...(airflowUi
      ? [{
          client_id: airflowUi.client_id,
          client_secret: airflowUi.client_secret,
          grant_types: ["authorization_code"],
          response_types: ["code"],
          redirect_uris: [airflowUi.redirect_uri],
          token_endpoint_auth_method: "client_secret_basic",
        }]
      : []),
  ],
  // Only the configured test users exist; the development login page takes their name.
  async findAccount(ctx, id) {
    const user = usersById.get(id);
    if (!user) return undefined;
    return { accountId: id, claims: () => ({ sub: id, email: user.email, groups: user.groups }) };
  },
  claims: { openid: ["sub"], email: ["email"], groups: ["groups"] },
  scopes: ["openid", "email", "groups", "gateway"],
  ttl: { ClientCredentials: config.token_ttl_seconds ?? 600 },
  features: {
    devInteractions: { enabled: Boolean(human) },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => (client?.clientId === airflowUi?.client_id ? undefined : config.audiences[0]),
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, resource) {
        if (!audiences.has(resource)) throw new errors.InvalidTarget();
        return {
          scope: "gateway",
          audience: resource,
          accessTokenTTL: config.token_ttl_seconds ?? 600,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        };
      },
    },
  },
  async extraTokenClaims(ctx, token) {
    const user = token.accountId ? usersById.get(token.accountId) : undefined;
    if (user) return { email: user.email, groups: user.groups };
    const client = clientsById.get(token.clientId);
    return client?.groups?.length ? { groups: client.groups } : undefined;
  },
});
// Client-credentials JWT access tokens are stateless, so the in-memory adapter loses nothing.
provider.proxy = false;

const server = provider.listen(config.port, "127.0.0.1", () => {
  console.log(JSON.stringify({ event: "ready", issuer: config.issuer, port: config.port }));
});

function stop() {
  server.close();
  server.closeAllConnections();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
