// panva's oidc-provider (pinned in package.json; an OpenID Certified implementation) as a real OpenID
// provider on loopback, in one of two profiles:
//
//   node server.mjs --profile test  --port P   an interactive OP for sign-in tests: a few accounts
//                                              with `email`/`groups` claims, its own login and consent
//                                              pages, open dynamic client registration (RFC 7591) so
//                                              a test registers its own redirect URI
//   node server.mjs --profile bench --port P   the benchmark peer: a static confidential client
//                                              (client_credentials), introspection (RFC 7662) and
//                                              revocation (RFC 7009), nothing interactive
//
// `--port 0` takes a free port. When ready it prints exactly one line on stdout:
//   listening http://127.0.0.1:P
// and that URL is its issuer. It listens on 127.0.0.1 only. Signing keys and cookie keys are made
// fresh at every start; all state is in memory (the provider's default adapter). See README.md.

import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    profile: { type: 'string' },
    port: { type: 'string', default: '0' },
  },
  strict: true,
});
if (args.profile !== 'test' && args.profile !== 'bench') {
  console.error('usage: node server.mjs --profile test|bench [--port P]');
  process.exit(2);
}
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be 0-65535, not ${args.port}`);
  process.exit(2);
}

// Test accounts of the `test` profile. Their passwords are fixtures, not secrets: this OP only ever
// runs on loopback for the tests. `mallory` is in no group (for allow-list refusals).
const ACCOUNTS = {
  alice: {
    password: 'alice-op-password',
    claims: {
      email: 'alice@example.com', email_verified: true, name: 'Alice Admin',
      preferred_username: 'alice', groups: ['mcp-users', 'mcp-admins'],
    },
  },
  bob: {
    password: 'bob-op-password',
    claims: {
      email: 'bob@example.com', email_verified: true, name: 'Bob User',
      preferred_username: 'bob', groups: ['mcp-users'],
    },
  },
  mallory: {
    password: 'mallory-op-password',
    claims: {
      email: 'mallory@example.org', email_verified: true, name: 'Mallory Outsider',
      preferred_username: 'mallory', groups: [],
    },
  },
};

function signingKeys() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsa = privateKey.export({ format: 'jwk' });
  const { privateKey: ec } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    keys: [
      { ...rsa, kid: `rs-${randomBytes(6).toString('hex')}`, use: 'sig', alg: 'RS256' },
      { ...ec.export({ format: 'jwk' }), kid: `es-${randomBytes(6).toString('hex')}`, use: 'sig', alg: 'ES256' },
    ],
  };
}

function configuration(profile) {
  const common = {
    jwks: signingKeys(),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // Our own interaction pages below (test profile); the dev ones are for demos only.
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    // Error pages without stack traces or debug output.
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>${escapeHtml(out.error)}</h1><p>${escapeHtml(out.error_description || '')}</p>`);
    },
  };
  if (profile === 'bench') {
    return {
      ...common,
      clients: [{
        client_id: 'bench',
        client_secret: 'bench-secret',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'mcp:tools mcp:admin',
      }],
      scopes: ['mcp:tools', 'mcp:admin'],
      features: { ...common.features, clientCredentials: { enabled: true } },
    };
  }
  return {
    ...common,
    // A test registers its own client with its own redirect URI (RFC 7591, no initial access token).
    features: {
      ...common.features,
      registration: { enabled: true },
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    // The ID token carries the claims of the granted scopes (the relying party reads them there).
    conformIdTokenClaims: false,
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...account.claims }; } };
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  };
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function page(title, body) {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>`
    + `<body>${body}</body></html>`;
}

function passwordMatches(given, expected) {
  const a = Buffer.from(String(given));
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

function loginPage(uid, clientId, error) {
  return page('Sign in', `<h1>Sign in</h1><p>to continue to ${escapeHtml(clientId)}</p>`
    + (error ? `<p class="error">${escapeHtml(error)}</p>` : '')
    + `<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">`
    + '<input type="text" name="login" placeholder="username" required>'
    + '<input type="password" name="password" placeholder="password" required>'
    + '<button type="submit">Sign in</button></form>'
    + `<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button type="submit">Cancel</button></form>`);
}

function consentPage(uid, clientId, scopes) {
  return page('Authorize', `<h1>Authorize ${escapeHtml(clientId)}</h1>`
    + `<p>It asks for: ${scopes.map(escapeHtml).join(', ') || '(nothing new)'}</p>`
    + `<form method="post" action="/interaction/${escapeHtml(uid)}/confirm"><button type="submit">Continue</button></form>`
    + `<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button type="submit">Cancel</button></form>`);
}

// The login and consent pages of the test profile: /interaction/<uid>[/login|/confirm|/abort].
async function interaction(provider, req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const [, , uid, action] = url.pathname.split('/');
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    send(res, 400, page('Error', `<h1>invalid interaction</h1><p>${escapeHtml(err.message)}</p>`));
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<h1>interaction mismatch</h1>'));
    return;
  }
  const { prompt, params, session } = details;
  if (req.method === 'GET' && action === undefined) {
    if (prompt.name === 'login') send(res, 200, loginPage(uid, params.client_id));
    else send(res, 200, consentPage(uid, params.client_id, prompt.details.missingOIDCScope || []));
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, page('Error', '<h1>method not allowed</h1>'));
    return;
  }
  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'the user cancelled',
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'login' && prompt.name === 'login') {
    const form = await readForm(req);
    const login = form.get('login') || '';
    const account = Object.hasOwn(ACCOUNTS, login) ? ACCOUNTS[login] : undefined;
    if (!account || !passwordMatches(form.get('password') || '', account.password)) {
      send(res, 200, loginPage(uid, params.client_id, 'wrong username or password'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    await readForm(req);
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    if (prompt.details.missingResourceScopes) {
      for (const [indicator, scope] of Object.entries(prompt.details.missingResourceScopes)) {
        grant.addResourceScope(indicator, scope.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  send(res, 400, page('Error', `<h1>unexpected ${escapeHtml(action)} at prompt ${escapeHtml(prompt.name)}</h1>`));
}

let provider;
let callback;
const server = createServer((req, res) => {
  if (args.profile === 'test' && req.url.startsWith('/interaction/')) {
    interaction(provider, req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, page('Error', `<h1>${escapeHtml(err.message)}</h1>`));
      else res.destroy();
    });
    return;
  }
  if (!callback) {
    res.writeHead(503).end();
    return;
  }
  callback(req, res);
});
server.on('error', (err) => {
  console.error(`oidc-provider: ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = new Provider(issuer, configuration(args.profile));
  // Failures of the provider itself (not a client's bad request) go to stderr.
  provider.on('server_error', (ctx, err) => console.error(`oidc-provider: server_error at ${ctx.path}: ${err.stack || err}`));
  callback = provider.callback();
  console.log(`listening ${issuer}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
