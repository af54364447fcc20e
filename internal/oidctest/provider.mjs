// provider.mjs runs oidc-provider (panva's OpenID Certified provider) on
// 127.0.0.1 as the upstream IdP of mcpgate's OIDC tests. Only for tests: its
// login interaction takes the user from a form field, checks the password
// when the user has one, and grants every requested scope and claim at once.
//
//   node provider.mjs CONFIG_JSON
//
// with OIDC_PROVIDER_DIR naming the pinned install (scripts/install-tools.sh).
// CONFIG_JSON: {"port": 0, "clients": [{"id", "secret", "redirect_uris"}],
// "users": [{"sub", "email", "email_verified", "name", "username", "groups",
// "roles", "password", "extra"}], "id_token_claims_only_at_userinfo": false,
// "unadvertised_scopes": [], "id_token_omit_claims": []}.
// A user's "extra" claims (Google's hd, Entra's tid, Auth0's namespaced ones)
// come with the openid scope, so they are in every ID token.
// unadvertised_scopes are left out of the discovery document's
// scopes_supported but still honoured (an Okta authorization server that
// answers a groups scope it does not list); id_token_omit_claims are left
// out of ID tokens but still at userinfo (GitLab's groups).
// When ready it prints one line: "oidctest: ready <issuer>".
//
// Test-only admin endpoints (loopback, no auth):
//   PUT /oidctest/users/<sub>   JSON user: adds or replaces the user; later
//                               ID tokens, userinfo and refreshes see it
//   DELETE /oidctest/users/<sub>/grants
//                               revokes every grant of the user, so their
//                               refresh tokens stop working
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.OIDC_PROVIDER_DIR;
if (!dir) {
  console.error('oidctest: OIDC_PROVIDER_DIR is not set: run make tools');
  process.exit(2);
}
// ESM ignores NODE_PATH: resolve the package from the pinned install's directory.
const entry = createRequire(join(dir, 'package.json')).resolve('oidc-provider');
const { default: Provider } = await import(pathToFileURL(entry).href);

const config = JSON.parse(process.argv[2] ?? '{}');
const users = new Map();
for (const u of config.users ?? []) users.set(u.sub, u);
// The extra claim names known at start: a claim must be declared to be issued.
const extraClaims = [...new Set((config.users ?? []).flatMap((u) => Object.keys(u.extra ?? {})))];

function claimsOf(u) {
  const c = {
    sub: u.sub,
    email: u.email,
    email_verified: !!u.email_verified,
    name: u.name,
    preferred_username: u.username,
    groups: u.groups ?? [],
    realm_access: { roles: u.roles ?? [] },
  };
  for (const k of Object.keys(c)) if (c[k] === undefined || c[k] === '') delete c[k];
  return { ...(u.extra ?? {}), ...c };
}

const clients = (config.clients ?? []).map((c) => {
  const m = {
    client_id: c.id,
    redirect_uris: c.redirect_uris ?? [],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  };
  if (c.secret) {
    m.client_secret = c.secret;
    m.token_endpoint_auth_method = 'client_secret_basic';
  } else {
    m.token_endpoint_auth_method = 'none';
  }
  return m;
});

// Listen first, so that port 0 gives a free port and the issuer names it.
let handler = (req, res) => { res.statusCode = 503; res.end(); };
const server = createServer((req, res) => handler(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'oidctest-1', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients,
  // Both client_secret_basic and client_secret_post are accepted for any
  // confidential client, whichever its metadata names.
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub', ...extraClaims],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups', 'realm_access'],
  },
  // false: the scopes' claims are in the ID token too (as Google, Entra and
  // Keycloak do); true: oidc-provider's default, only at userinfo.
  conformIdTokenClaims: !!config.id_token_claims_only_at_userinfo,
  pkce: { required: () => true },
  // Issue a refresh token whenever the client may refresh, as Keycloak does,
  // without oidc-provider's default demand for offline_access + prompt=consent.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const u = users.get(sub);
    if (!u) return undefined;
    return {
      accountId: sub,
      claims: async (use) => {
        const c = claimsOf(users.get(sub) ?? u);
        if (use === 'id_token') for (const k of config.id_token_omit_claims ?? []) delete c[k];
        return c;
      },
    };
  },
  renderError(ctx, out) {
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = `oidctest error: ${out.error}: ${out.error_description ?? ''}`;
  },
});
const unadvertised = config.unadvertised_scopes ?? [];
if (unadvertised.length) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/.well-known/openid-configuration' && Array.isArray(ctx.body?.scopes_supported)) {
      ctx.body.scopes_supported = ctx.body.scopes_supported.filter((s) => !unadvertised.includes(s));
    }
  });
}
const callback = provider.callback();

function page(res, status, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><html><body>${body}</body></html>`);
}

function escape(s) {
  return String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

// interaction logs in and consents at once: login=<sub> (or username=, the
// name the e2e form follower fills) and password= when the user has one, from
// the query or a form post; without either it shows the form.
async function interaction(req, res, uid) {
  const url = new URL(req.url, issuer);
  let form = url.searchParams;
  if (req.method === 'POST') form = new URLSearchParams(await readBody(req));
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, 'interaction mismatch');
  const login = form.get('login') || form.get('username');
  if (!login) {
    return page(res, 200, `<h1>Sign in to oidctest</h1>
<form method="post" action="/interaction/${escape(uid)}">
<label>User <input name="username" id="username"></label>
<label>Password <input name="password" id="password" type="password"></label>
<button type="submit" id="submit">Sign in</button></form>`);
  }
  const u = users.get(login);
  if (!u || (u.password && form.get('password') !== u.password)) {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'wrong user or password',
    }, { mergeWithLastSubmission: false });
  }
  const { params } = details;
  let grant;
  if (details.grantId) grant = await provider.Grant.find(details.grantId);
  if (!grant) grant = new provider.Grant({ accountId: login, clientId: params.client_id });
  if (params.scope) grant.addOIDCScope(String(params.scope));
  if (params.claims) {
    const c = JSON.parse(String(params.claims));
    const names = [...Object.keys(c.id_token ?? {}), ...Object.keys(c.userinfo ?? {})];
    if (names.length) grant.addOIDCClaims(names);
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, {
    login: { accountId: login },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

async function admin(req, res, path) {
  let m = /^\/oidctest\/users\/([^/]+)$/.exec(path);
  if (m && req.method === 'PUT') {
    const u = JSON.parse(await readBody(req));
    u.sub = decodeURIComponent(m[1]);
    users.set(u.sub, u);
    res.statusCode = 204;
    return res.end();
  }
  m = /^\/oidctest\/users\/([^/]+)\/grants$/.exec(path);
  if (m && req.method === 'DELETE') {
    const sub = decodeURIComponent(m[1]);
    const revoked = [];
    for (const id of grantsOf(sub)) {
      await provider.Grant.adapter.destroy(id);
      await revokeByGrant(id);
      revoked.push(id);
    }
    res.setHeader('Content-Type', 'application/json');
    return res.end(JSON.stringify({ revoked: revoked.length }));
  }
  res.statusCode = 404;
  res.end();
}

// Grants are remembered per user as they are saved, so that the admin
// endpoint can revoke them.
const grantIDs = new Map();
provider.on('grant.saved', (grant) => {
  if (!grantIDs.has(grant.accountId)) grantIDs.set(grant.accountId, new Set());
  grantIDs.get(grant.accountId).add(grant.jti);
});
function grantsOf(sub) {
  const s = grantIDs.get(sub) ?? new Set();
  grantIDs.delete(sub);
  return s;
}
async function revokeByGrant(grantId) {
  for (const model of ['RefreshToken', 'AccessToken', 'AuthorizationCode']) {
    await provider[model].adapter.revokeByGrantId(grantId);
  }
}

handler = async (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  try {
    const m = /^\/interaction\/([^/]+)$/.exec(path);
    if (m) return await interaction(req, res, m[1]);
    if (path.startsWith('/oidctest/')) return await admin(req, res, path);
    return callback(req, res);
  } catch (err) {
    console.error('oidctest:', err);
    if (!res.headersSent) page(res, 500, `oidctest: ${escape(err.message)}`);
    else res.end();
  }
};

process.on('SIGTERM', () => server.close(() => process.exit(0)));
console.log(`oidctest: ready ${issuer}`);
