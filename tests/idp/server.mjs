// The demo authorization server bundled with Gatehouse: npm `oidc-provider` (OpenID Certified), configured for
// one native public client, plus a small protected resource. It binds 127.0.0.1 only and keeps everything in
// memory, so a restart forgets every grant.
//
// Environment:
//   PORT                   port to listen on (default 4470)
//   IDP_REDIRECT_URI       the client's redirect URI (default com.example.gatehouse:/callback)
//   IDP_ACCESS_TOKEN_TTL   access token lifetime in seconds (default 600)
//   IDP_TEST_HOOKS=1       serve GET /__test/events, the provider's event log, for the test suite
//   IDP_STORE=PATH         keep grants and tokens in this JSON file, so they survive a restart
//   IDP_PAR=off            turn off pushed authorization requests (RFC 9126), which are on by default
//   IDP_DEVICE=off         turn off the device authorization grant (RFC 8628), which is on by default
//   IDP_DPOP=off           turn off DPoP (RFC 9449), which is on by default: tokens are then Bearer tokens
//   IDP_SPLIT_METADATA=1   list revocation_endpoint only in RFC 8414 metadata (/.well-known/oauth-authorization-server),
//                          not in the OpenID discovery document, as some servers do
//
// Two more resources, /api/a and /api/b, each take only a JWT access token for its own audience (RFC 8707 resource
// indicators, RFC 9068 tokens): tokens narrowed to them come from a refresh grant with `resource`, or from token
// exchange (RFC 8693), which the provider lists.
import { createHash, randomBytes } from 'node:crypto';

import { calculateJwkThumbprint, createRemoteJWKSet, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import Provider, { errors } from 'oidc-provider';

import { fileAdapter } from './file-adapter.mjs';

const port = Number(process.env.PORT ?? 4470);
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = process.env.IDP_REDIRECT_URI ?? 'com.example.gatehouse:/callback';
const accessTokenTtl = Number(process.env.IDP_ACCESS_TOKEN_TTL ?? 600);
const testHooks = process.env.IDP_TEST_HOOKS === '1';
const store = process.env.IDP_STORE;
const splitMetadata = process.env.IDP_SPLIT_METADATA === '1';
const par = process.env.IDP_PAR !== 'off';
const dpop = process.env.IDP_DPOP !== 'off';
const device = process.env.IDP_DEVICE !== 'off';

// Client IDs. Gatehouse is `gatehouse-desktop`. The test suite also signs in as two variants of it: one that is
// never issued a refresh token, and one that must authenticate with a secret made of the characters RFC 6749
// §2.3.1's form-encoding exists for. The last is a confidential client the test suite uses for RFC 7662
// introspection, the way a resource server would; Gatehouse itself never sees it.
export const CLIENT_ID = 'gatehouse-desktop';
const NO_REFRESH_CLIENT_ID = 'gatehouse-no-refresh';
const SECRET_CLIENT = { client_id: 'gatehouse-with-secret', client_secret: 'p+q/r=s%t:u v' };
// A client that must send its secret in the form body (client_secret_post), as some providers insist.
const POST_SECRET_CLIENT = { client_id: 'gatehouse-secret-post', client_secret: 'posted+secret/=' };
const OIDC_AGENT_CLIENT = { client_id: 'oidc-agent-bench', client_secret: 'oidc-agent-bench-secret' };
const INTROSPECTION_CLIENT = { client_id: 'gatehouse-tests', client_secret: 'introspection-only-test-secret' };

// The resources tokens can be narrowed to (RFC 8707), and the scopes each knows.
const NARROW_RESOURCES = { [`${issuer}/api/a`]: 'a:read a:write', [`${issuer}/api/b`]: 'b:read' };
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const events = [];
const sha256 = (value) => createHash('sha256').update(value).digest('hex');
function record(name, details = {}) {
  const entry = { event: name, at: new Date().toISOString(), ...details };
  if (testHooks) events.push(entry);
  console.log(JSON.stringify(entry));
}

function displayName(login) {
  const clean = String(login).trim() || 'guest';
  return clean.charAt(0).toUpperCase() + clean.slice(1);
}

const configuration = {
  clients: [
    {
      client_id: CLIENT_ID,
      client_name: 'Gatehouse',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      // The private-use scheme, and the loopback redirects of RFC 8252 §7.3, whose port oidc-provider ignores
      // for native clients (§7.3: "any port").
      redirect_uris: [redirectUri, 'http://127.0.0.1/callback', 'http://[::1]/callback'],
      // RFC 8628: `gatehouse sign-in --device`, for a machine with no browser. RFC 8693: narrowed tokens.
      grant_types: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE, ...(device ? ['urn:ietf:params:oauth:grant-type:device_code'] : [])],
      response_types: ['code'],
    },
    {
      client_id: NO_REFRESH_CLIENT_ID,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: [redirectUri],
      // Without a refresh token, a narrowed token can only come from token exchange (RFC 8693).
      grant_types: ['authorization_code', TOKEN_EXCHANGE],
      response_types: ['code'],
    },
    {
      ...SECRET_CLIENT,
      application_type: 'native',
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
    {
      ...POST_SECRET_CLIENT,
      application_type: 'native',
      token_endpoint_auth_method: 'client_secret_post',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
    {
      // Debian's oidc-agent, for the bench's figures (tests/bin/bench --agent): oidc-gen signs in with the device
      // grant, and oidc-agent renews with the refresh token as any confidential client would.
      ...OIDC_AGENT_CLIENT,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [],
      grant_types: ['refresh_token', ...(device ? ['urn:ietf:params:oauth:grant-type:device_code'] : [])],
      response_types: [],
    },
    {
      ...INTROSPECTION_CLIENT,
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ],
  // RFC 9700 §2.1.1: PKCE for every client; oidc-provider offers only S256.
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    revocation: {
      enabled: true,
      // Which token each revocation presented (its hash, never the token): a spent, rotated-away refresh token
      // and the live one revoke the same grant here, but not at every provider.
      allowedPolicy: async (ctx, client, token) => {
        record('revocation.requested', {
          kind: token.kind,
          consumed: Boolean(token.consumed),
          tokenSha256: sha256(String(ctx.oidc.params.token)),
        });
        return true;
      },
    },
    userinfo: { enabled: true },
    introspection: { enabled: true },
    // RFC 8628 device authorization grant: the user enters the code at /device (the default pages).
    deviceFlow: { enabled: device },
    // RFC 9126: Gatehouse pushes its authorization requests when the metadata lists this endpoint.
    pushedAuthorizationRequests: { enabled: par },
    // RFC 9449: a client that proves a key gets tokens bound to it. A nonce is required (§8), so that clients
    // are tried on the retry the RFC asks of them.
    dPoP: { enabled: dpop, nonceSecret: randomBytes(32), requireNonce: () => true },
    // RFC 7591 dynamic client registration, open to anyone (no initial access token), and RFC 7592 management,
    // so that Gatehouse's setup view can register itself when given no client ID, and delete the registration
    // when the provider is removed.
    registration: { enabled: true, initialAccessToken: false },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: false },
    // RFC 8707: a sign-in may name the resources its tokens will be narrowed to, and a refresh grant then asks for
    // one of them. A token for a resource is a JWT for that audience (RFC 9068); with none asked for, tokens are
    // for userinfo and /api/resource, as before.
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => undefined,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (ctx, indicator) => {
        const scope = NARROW_RESOURCES[indicator];
        if (!scope) throw new errors.InvalidTarget();
        return { scope, audience: indicator, accessTokenTTL: accessTokenTtl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  // Issue a refresh token to every client allowed the refresh_token grant. By default oidc-provider drops
  // offline_access (and so the refresh token) unless the request also says prompt=consent (OIDC Core §11);
  // this policy is the "other condition" §11 allows, so the user is not asked to consent on every sign-in.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
  ttl: {
    AccessToken: accessTokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
  // Any login name is accepted: this is a demo.
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, name: displayName(id), preferred_username: id }),
  }),
  cookies: { keys: [randomBytes(32).toString('hex')] },
  ...(store ? { adapter: fileAdapter(store) } : {}),
};

const provider = new Provider(issuer, configuration);

// RFC 8693 token exchange: an access token this provider issued to the same client, for one narrowed to a
// listed resource and to scopes of the same grant.
provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
  const { params, client } = ctx.oidc;
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('subject_token_type must be an access token');
  if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('only access tokens are issued');
  const subject = await provider.AccessToken.find(params.subject_token);
  if (!subject || subject.isExpired || subject.clientId !== client.clientId) throw new errors.InvalidGrant('subject_token is not an active token of this client');
  const grant = await provider.Grant.find(subject.grantId);
  if (!grant) throw new errors.InvalidGrant('the grant is gone');
  const resource = params.resource;
  if (resource && !NARROW_RESOURCES[resource]) throw new errors.InvalidTarget();
  const known = resource ? NARROW_RESOURCES[resource].split(' ') : [...subject.scopes];
  const asked = params.scope ? params.scope.split(' ') : known;
  const at = new provider.AccessToken({ accountId: subject.accountId, client, grantId: subject.grantId, gty: 'token_exchange' });
  if (resource) {
    at.resourceServer = new provider.ResourceServer(resource, { scope: NARROW_RESOURCES[resource], audience: resource, accessTokenTTL: accessTokenTtl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } });
    at.scope = grant.getResourceScopeFiltered(resource, asked.filter((s) => known.includes(s)));
  } else {
    at.scope = asked.filter((s) => subject.scopes.has(s)).join(' ');
  }
  const value = await at.save();
  record('token_exchange.success', { resource, scope: at.scope });
  ctx.body = { access_token: value, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: at.expiration, scope: at.scope };
}, ['subject_token', 'subject_token_type', 'requested_token_type', 'resource', 'scope']);

const signingKeys = createRemoteJWKSet(new URL(`${issuer}/jwks`));

for (const name of ['grant.success', 'grant.error', 'grant.revoked', 'authorization.success', 'authorization.error', 'revocation.error', 'server_error', 'registration_create.success', 'registration_create.error', 'registration_delete.success']) {
  provider.on(name, (ctx, err) => {
    const details = { grantType: ctx?.oidc?.params?.grant_type };
    // Hashes, never tokens: the test suite checks where tokens went without the log holding one.
    if (testHooks && name === 'grant.success' && ctx?.body) {
      for (const field of ['access_token', 'refresh_token']) {
        if (typeof ctx.body[field] === 'string') details[`${field}_sha256`] = sha256(ctx.body[field]);
      }
    }
    if (name.startsWith('registration_') && err?.clientId) {
      // A registration event's second argument is the client.
      details.clientId = err.clientId;
      details.applicationType = err.applicationType;
      details.authMethod = err.tokenEndpointAuthMethod;
    } else if (err && typeof err === 'object') {
      details.error = err.error ?? err.name;
      details.reason = err.error_detail ?? err.message;
    } else if (typeof err === 'string') {
      details.grantId = err;
    }
    record(name, details);
  });
}

// What a pushed authorization request (RFC 9126) carried, for the test suite: the parameters' names, the PKCE
// method, the redirect URI and scope, and the lengths of the one-time values, never the values themselves.
provider.on('pushed_authorization_request.success', (ctx) => {
  const params = ctx.oidc?.params ?? {};
  record('par.success', {
    parameters: Object.keys(params).filter((k) => params[k] !== undefined).sort(),
    responseType: params.response_type,
    codeChallengeMethod: params.code_challenge_method,
    redirectUri: params.redirect_uri,
    scope: params.scope,
    prompt: params.prompt,
    stateLength: params.state?.length ?? 0,
    nonceLength: params.nonce?.length ?? 0,
  });
});

// A small protected resource (RFC 6750): GET /api/resource with a Bearer access token.
function resourceFor(accountId, token) {
  const seed = parseInt(sha256(accountId).slice(0, 8), 16);
  const projects = ['Lighthouse', 'Portcullis', 'Drawbridge', 'Keep', 'Rampart', 'Barbican'];
  return {
    greeting: `Hello, ${displayName(accountId)}!`,
    account: {
      username: accountId,
      plan: ['Community', 'Team', 'Enterprise'][seed % 3],
      memberSince: `20${18 + (seed % 7)}-0${1 + (seed % 9)}-1${seed % 10}`,
    },
    projects: [0, 1, 2].map((i) => ({
      name: projects[(seed + i) % projects.length],
      openIssues: (seed >> (i * 3)) % 17,
    })),
    grantedScope: token.scope,
    servedAt: new Date().toISOString(),
  };
}

// The resource's side of DPoP (RFC 9449 §7.1), checked with `jose`: a bound token comes with the DPoP scheme and
// a proof signed by the key it is bound to (`cnf.jkt`), for this request (`htm`, `htu`), fresh (`iat`), used once
// (`jti`), for this token (`ath`), carrying a nonce this resource gave out (§9).
const resourceNonces = new Map();
const seenProofs = new Map();
class ProofError extends Error {}
class NonceError extends Error {}

function newResourceNonce() {
  const nonce = randomBytes(16).toString('base64url');
  resourceNonces.set(nonce, Date.now() + 300_000);
  return nonce;
}

async function checkProof(ctx, tokenValue, jkt) {
  const proof = ctx.get('dpop');
  if (!proof) throw new ProofError('no DPoP proof');
  let header;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw new ProofError('the proof is not a JWT');
  }
  if (header.typ !== 'dpop+jwt' || typeof header.jwk !== 'object' || header.jwk.d !== undefined) {
    throw new ProofError('the proof header is not a DPoP header with a public key');
  }
  let payload;
  try {
    const key = await importJWK(header.jwk, header.alg);
    ({ payload } = await jwtVerify(proof, key, {
      typ: 'dpop+jwt', algorithms: ['ES256'], maxTokenAge: 60, clockTolerance: 5,
    }));
  } catch (e) {
    throw new ProofError(`the proof does not verify (${e.code ?? e.name})`);
  }
  if (payload.htm !== ctx.method) throw new ProofError('htm is not this request\'s method');
  if (payload.htu !== `${issuer}${ctx.path}`) throw new ProofError('htu is not this resource');
  if (payload.ath !== createHash('sha256').update(tokenValue).digest('base64url')) {
    throw new ProofError('ath is not this access token\'s hash');
  }
  if (await calculateJwkThumbprint(header.jwk, 'sha256') !== jkt) {
    throw new ProofError('the proof is signed by another key than the token is bound to');
  }
  if (typeof payload.jti !== 'string' || seenProofs.has(payload.jti)) throw new ProofError('the proof was used before');
  if (!(resourceNonces.get(payload.nonce) > Date.now())) throw new NonceError('no nonce, or not ours');
  seenProofs.set(payload.jti, Date.now());
}

provider.use(async (ctx, next) => {
  if (NARROW_RESOURCES[`${issuer}${ctx.path}`]) {
    // A resource of its own audience (RFC 8707, RFC 9068 §4): a JWT this provider signed, for this resource only.
    const audience = `${issuer}${ctx.path}`;
    const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/.exec(ctx.get('authorization'));
    try {
      if (!match) throw new Error('no Bearer token');
      const { payload } = await jwtVerify(match[1], signingKeys, { issuer, audience, typ: 'at+jwt' });
      record('narrowed.served', { resource: audience, scope: payload.scope, tokenSha256: sha256(match[1]) });
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { resource: audience, sub: payload.sub, scope: payload.scope };
    } catch (e) {
      record('narrowed.rejected', { resource: audience, reason: e.code ?? e.message });
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      ctx.body = { error: 'invalid_token' };
    }
    return;
  }
  if (ctx.path === '/api/resource') {
    const match = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/.exec(ctx.get('authorization'));
    const token = match ? await provider.AccessToken.find(match[2]) : undefined;
    const refuse = (reason, challenge) => {
      record('resource.rejected', { reason });
      ctx.status = 401;
      ctx.set('WWW-Authenticate', challenge);
      ctx.body = { error: 'invalid_token' };
    };
    if (!token) {
      refuse('unknown token', 'Bearer error="invalid_token"');
      return;
    }
    if (token.jkt) {
      if (match[1] !== 'DPoP') {
        refuse('a DPoP-bound token without its proof', 'DPoP error="invalid_token", algs="ES256"');
        return;
      }
      try {
        await checkProof(ctx, match[2], token.jkt);
      } catch (e) {
        if (e instanceof NonceError) {
          record('resource.nonce_required');
          ctx.status = 401;
          ctx.set('DPoP-Nonce', newResourceNonce());
          ctx.set('WWW-Authenticate', 'DPoP error="use_dpop_nonce", algs="ES256"');
          ctx.body = { error: 'use_dpop_nonce' };
          return;
        }
        refuse(e.message, 'DPoP error="invalid_dpop_proof", algs="ES256"');
        return;
      }
    }
    record('resource.served', { accountId: token.accountId, tokenSha256: sha256(match[2]), dpop: Boolean(token.jkt) });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = resourceFor(token.accountId, token);
    return;
  }
  if (testHooks && ctx.path === '/__test/events') {
    ctx.body = events;
    return;
  }
  if (splitMetadata && ctx.path === '/.well-known/oauth-authorization-server') {
    // RFC 8414 §3: the same metadata, served at its own well-known path, revocation endpoint included.
    ctx.path = '/.well-known/openid-configuration';
    await next();
    return;
  }
  await next();
  if (splitMetadata && ctx.path === '/.well-known/openid-configuration' && ctx.body) {
    const { revocation_endpoint: _, ...withoutRevocation } = ctx.body;
    ctx.body = withoutRevocation;
  }
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ event: 'ready', issuer }));
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
