// tsclient.mjs: a real MCP TypeScript SDK client (@modelcontextprotocol/sdk, pinned under
// scripts/tools/tssdk) for e2e/tssdk_test.go. It runs headlessly, but does not walk the
// authorization itself: the Go test is its browser.
//
//   node tsclient.mjs dcr    SERVER_URL REDIRECT_URL
//   node tsclient.mjs stepup SERVER_URL REDIRECT_URL
//   node tsclient.mjs cimd   SERVER_URL REDIRECT_URL CLIENT_METADATA_URL [PRIVATE_KEY_FILE]
//
// The SDK discovers (401 challenge, protected resource metadata, authorization server
// metadata), then registers (dcr: RFC 7591, a public native client) or uses the https
// client_id of a Client ID Metadata Document (cimd), and asks for authorization. Its
// OAuthClientProvider.redirectToAuthorization prints
//
//   AUTH_URL <authorization URL>
//
// on stdout and reads one line from stdin: the redirect to REDIRECT_URL that the
// authorization ended with (the Go test walks the consent and login pages to get it).
// The script checks its state (and error), trades the code (finishAuth: the token
// request with the PKCE verifier and resource), reconnects, calls the tools whoami and
// echo, then refreshes the tokens through the SDK (auth() with the stored refresh token)
// and calls whoami with the new access token.
//
// In stepup mode (registered as dcr) the server refuses echo with 403 insufficient_scope:
// the SDK authorizes again for the challenge's scope (a second AUTH_URL, a second line on
// stdin) and throws UnauthorizedError, as it does for any authorization that ends in a
// redirect; the script trades the new code and calls echo again, as an application does.
// The client keeps no refresh token in this mode, and does not refresh: the SDK (1.32.2)
// answers a 403 with a refresh when it holds one, which keeps the token's scope, and then
// gives up ("Server returned 403 after trying upscoping") without authorizing again.
//
// With PRIVATE_KEY_FILE (cimd only: an RSA key in PKCS#8 PEM), the client is confidential
// with private_key_jwt, as ChatGPT's document says: the provider's addClientAuthentication
// is the SDK's createPrivateKeyJwtAuth (issuer and subject the client_id, RS256), which
// signs a new assertion for each token request and sends no client_id and no kid. Each
// such request is listed in the result's client_auth: its parameter names, the
// assertion's header and claims (never the assertion itself).
//
// It prints
//
//   RESULT <json>
//
// and exits 0. Secrets are never printed: the refresh tokens appear only as lengths.
// Any failure prints "ERROR <message>" on stderr and exits 1.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { createPrivateKeyJwtAuth } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const [mode, serverArg, redirect, metadataUrl, keyFile] = process.argv.slice(2);
if (
  !['dcr', 'stepup', 'cimd'].includes(mode) ||
  !serverArg ||
  !redirect ||
  (mode === 'cimd' && !metadataUrl) ||
  (keyFile && mode !== 'cimd')
) {
  console.error('usage: tsclient.mjs dcr|stepup|cimd SERVER_URL REDIRECT_URL [CLIENT_METADATA_URL [PRIVATE_KEY_FILE]]');
  process.exit(2);
}
const serverUrl = new URL(serverArg);

// The token requests' client authentication with a private key, and what each sent.
const clientAuth = [];
let privateKeyAuth;
if (keyFile) {
  const sign = createPrivateKeyJwtAuth({
    issuer: metadataUrl,
    subject: metadataUrl,
    privateKey: readFileSync(keyFile, 'utf8'),
    alg: 'RS256',
  });
  privateKeyAuth = async (headers, params, url, metadata) => {
    await sign(headers, params, url, metadata);
    const [header, claims] = params
      .get('client_assertion')
      .split('.')
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')));
    clientAuth.push({
      endpoint: String(url),
      grant_type: params.get('grant_type'),
      params: [...params.keys()].sort(),
      header,
      claims,
    });
  };
}

// A bound on the whole run: the Go test has its own, this one leaves a message.
setTimeout(() => {
  console.error('ERROR tsclient: timed out after 50 s');
  process.exit(1);
}, 50_000).unref();

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

// readLine returns the next line of stdin; end of input is an error.
async function readLine() {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed before the callback URL arrived');
  return value.trim();
}

class HeadlessProvider {
  info;
  toks;
  verifier;
  code;
  iss;
  authURL;
  st = randomBytes(16).toString('base64url');
  // Undefined unless a private key was given: the SDK then authenticates as a public client.
  addClientAuthentication = privateKeyAuth;

  get redirectUrl() {
    return redirect;
  }
  get clientMetadataUrl() {
    return mode === 'cimd' ? metadataUrl : undefined;
  }
  get clientMetadata() {
    return {
      client_name: `mcpgate e2e TypeScript SDK (${mode})`,
      redirect_uris: [redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: keyFile ? 'private_key_jwt' : 'none',
      application_type: 'native',
    };
  }
  state() {
    return this.st;
  }
  // Stored exactly as received: the SDK stamps the issuer into both.
  clientInformation() {
    return this.info;
  }
  saveClientInformation(i) {
    this.info = i;
  }
  tokens() {
    return this.toks;
  }
  saveTokens(t) {
    this.toks = mode === 'stepup' ? { ...t, refresh_token: undefined } : t;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  // The "browser": hand the URL to the Go test and wait for the redirect it ended with.
  async redirectToAuthorization(url) {
    this.authURL = new URL(url.href);
    process.stdout.write(`AUTH_URL ${url.href}\n`);
    const back = new URL(await readLine());
    if (!back.href.startsWith(redirect)) throw new Error(`callback ${back.origin}${back.pathname} is not ${redirect}`);
    const p = back.searchParams;
    if (p.get('error')) throw new Error(`authorization error ${p.get('error')}: ${p.get('error_description') ?? ''}`);
    if (p.get('state') !== this.st) throw new Error('state mismatch');
    if (!p.get('code')) throw new Error('no code in the callback');
    this.code = p.get('code');
    this.iss = p.get('iss');
  }
}

async function connect(provider) {
  const client = new Client({ name: 'mcpgate-e2e-tssdk', version: '0.0.1' });
  await client.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: provider }));
  return client;
}

async function whoami(client) {
  const r = await client.callTool({ name: 'whoami', arguments: {} });
  if (r.isError) throw new Error(`whoami: ${JSON.stringify(r.content)}`);
  return r.structuredContent;
}

async function main() {
  const provider = new HeadlessProvider();
  let client;
  try {
    client = await connect(provider);
    throw new Error('connected without authorization');
  } catch (e) {
    if (!(e instanceof UnauthorizedError) || !provider.code) throw e;
  }
  const t = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  await t.finishAuth(provider.code);
  client = new Client({ name: 'mcpgate-e2e-tssdk', version: '0.0.1' });
  await client.connect(t);

  const who = await whoami(client);
  const callEcho = () => client.callTool({ name: 'echo', arguments: { text: 'hello from the TypeScript SDK' } });
  let echo, stepUp;
  if (mode === 'stepup') {
    const before = provider.toks.scope;
    try {
      await callEcho();
      throw new Error('echo went through without a step-up');
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
    }
    await t.finishAuth(provider.code);
    echo = await callEcho();
    stepUp = { scope_before: before, scope_requested: provider.authURL.searchParams.get('scope'), scope_after: provider.toks.scope };
  } else {
    echo = await callEcho();
  }
  if (echo.isError) throw new Error(`echo: ${JSON.stringify(echo.content)}`);
  await client.close(); // without it the standalone SSE stream keeps node alive
  if (mode === 'stepup') {
    process.stdout.write(`RESULT ${JSON.stringify({ mode, client_id: provider.info?.client_id, whoami: who, echo: echo.content?.[0]?.text, step_up: stepUp })}\n`);
    return;
  }

  // Refresh through the SDK: auth() with a stored refresh token posts grant_type=refresh_token.
  const first = provider.toks;
  const outcome = await auth(provider, { serverUrl });
  const second = provider.toks;
  const again = await connect(provider);
  const whoAfterRefresh = await whoami(again);
  await again.close();

  const q = provider.authURL.searchParams;
  const result = {
    mode,
    client_id: provider.info?.client_id,
    authorization_request: Object.fromEntries([...q].filter(([k]) => !['code_challenge', 'state'].includes(k))),
    iss: provider.iss,
    token_type: first.token_type,
    scope: first.scope,
    expires_in: first.expires_in,
    refresh_token_length: first.refresh_token?.length ?? 0,
    whoami: who,
    echo: echo.content?.[0]?.text,
    refresh: {
      outcome,
      rotated: !!second.refresh_token && second.refresh_token !== first.refresh_token,
      new_access_token: second.access_token !== first.access_token,
      refresh_token_length: second.refresh_token?.length ?? 0,
      whoami: whoAfterRefresh,
    },
    client_auth: clientAuth,
    step_up: stepUp,
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`ERROR ${e?.stack ?? e}`);
    process.exit(1);
  },
);
