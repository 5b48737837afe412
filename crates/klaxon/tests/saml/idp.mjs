// A real SAML 2.0 identity provider for the SAML sign-in test (crates/klaxon/tests/sso_saml.rs),
// built on the `samlify` package (XML signatures by xml-crypto, the AuthnRequest checked
// against the SAML schema by xmllint). It reads the service provider from Klaxon's own SP
// metadata URL, so the test also checks that metadata is usable by another implementation.
//
// idp-key.pem/idp-cert.pem are the IdP's signing key and certificate, other-key.pem/
// other-cert.pem a key the metadata does not list, sp-enc-key.pem/sp-enc-cert.pem the SP's
// encryption key pair the test uploads to Klaxon: made for this test only, secret nowhere.
//
// Usage: node idp.mjs <port> <sp_metadata_url> [want-signed-requests]
// Prints "listening <base>" once it accepts connections. Its metadata is at <base>/metadata
// (<base>/metadata?slo=none: the same without a SingleLogoutService). With
// `want-signed-requests` its metadata says WantAuthnRequestsSigned="true" and /sso refuses
// an AuthnRequest whose redirect signature (SAML bindings §3.4.4.1) does not verify with the
// SP's signing certificate of its metadata.
//
// Single logout (HTTP-Redirect, every message signed, signatures required both ways):
// GET /slo takes Klaxon's LogoutRequest (answered with a signed LogoutResponse redirected to
// Klaxon's SingleLogoutService) or Klaxon's LogoutResponse to a logout the IdP started
// (answered with a page saying what it read). GET /logout-initiate?login=NAME&mode=MODE
// starts an IdP-initiated logout of the user's last session: `ok`, `otherkey` (signed with
// a key the metadata does not list) or `expired` (NotOnOrAfter one minute ahead).
//
// The login page takes any user name in USERS and a `mode`, which makes the response an
// attacker would send: `ok` (assertion signed, RSA-SHA256 + exclusive c14n), `response`
// (only the Response signed), `both`, `unsigned` (signatures stripped), `tamper` (the email
// changed after signing), `otherkey` (signed with a key the metadata does not list),
// `audience` (issued for another SP entity ID) and `wrap` (an unsigned forged assertion
// placed before the genuinely signed one). `encrypted` (AES-256-CBC, RSA-OAEP) and
// `encrypted-gcm` (AES-128-GCM, RSA-OAEP) sign the assertion and then encrypt it for
// the SP's encryption certificate of its metadata (samlify with `isAssertionEncrypted`).
//
// GET /initiate?login=NAME&mode=MODE&relay_state=PATH is an IdP-initiated sign-in: the page
// auto-posts an unsolicited response (no InResponseTo) to the SP's ACS.

import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import samlify from 'samlify';
import validator from '@authenio/samlify-node-xmllint';

const [port, spMetadataUrl, option] = process.argv.slice(2);
const wantSignedRequests = option === 'want-signed-requests';
if (!port || !spMetadataUrl) {
  console.error('usage: node idp.mjs <port> <sp_metadata_url>');
  process.exit(2);
}
samlify.setSchemaValidator(validator);

const base = `http://127.0.0.1:${port}`;
const read = (name) => fs.readFileSync(new URL(name, import.meta.url), 'utf8');
const EMAIL_FORMAT = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

// Attributes per login name. `nameidonly` has no mail attribute: its email comes from the
// NameID; `noemail` has neither.
const USERS = {
  ann: {
    nameId: 'ann.saml@example.com',
    nameIdFormat: EMAIL_FORMAT,
    attributes: { mail: ['Ann.Saml@example.com'], displayName: ['Ann Saml'], groups: ['oncall-sre', 'everyone'] },
  },
  nameidonly: { nameId: 'nameid.only@example.com', nameIdFormat: EMAIL_FORMAT, attributes: {} },
  noemail: {
    nameId: 'opaque-4711',
    nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    attributes: { displayName: ['No Mail'] },
  },
};

const ENC = samlify.Constants.algorithms.encryption;
const REDIRECT = samlify.Constants.namespace.binding.redirect;
const idpFor = (key, cert, encryption = {}, slo = true) =>
  samlify.IdentityProvider({
    ...encryption,
    entityID: `${base}/metadata`,
    privateKey: read(key),
    signingCert: read(cert),
    nameIDFormat: [EMAIL_FORMAT],
    wantAuthnRequestsSigned: wantSignedRequests,
    wantLogoutRequestSigned: true,
    wantLogoutResponseSigned: true,
    requestSignatureAlgorithm: samlify.Constants.algorithms.signature.RSA_SHA256,
    singleSignOnService: [{ Binding: REDIRECT, Location: `${base}/sso` }],
    singleLogoutService: slo ? [{ Binding: REDIRECT, Location: `${base}/slo` }] : [],
    // samlify's own template, with the statements filled in by loginResponse below.
    loginResponseTemplate: {
      context: samlify.SamlLib.defaultLoginResponseTemplate.context
        .replace('{AuthnStatement}', 'AUTHN_STATEMENT')
        .replace('{AttributeStatement}', 'ATTRIBUTE_STATEMENT'),
    },
  });
const idp = idpFor('idp-key.pem', 'idp-cert.pem');
const otherIdp = idpFor('other-key.pem', 'other-cert.pem');
const encryptingIdp = idpFor('idp-key.pem', 'idp-cert.pem', {
  isAssertionEncrypted: true,
  dataEncryptionAlgorithm: ENC.data.AES_256,
  keyEncryptionAlgorithm: ENC.key.RSA_OAEP_MGF1P,
});
const gcmIdp = idpFor('idp-key.pem', 'idp-cert.pem', {
  isAssertionEncrypted: true,
  dataEncryptionAlgorithm: ENC.data.AES_128_GCM,
  keyEncryptionAlgorithm: ENC.key.RSA_OAEP_MGF1P,
});
const signers = { otherkey: otherIdp, encrypted: encryptingIdp, 'encrypted-gcm': gcmIdp };
const idpWithoutSlo = idpFor('idp-key.pem', 'idp-cert.pem', {}, false);

// The SessionIndex of each user's last sign-in, and the logout the IdP started last.
const sessions = new Map();
let pendingLogout = '';

const esc = (s) =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

async function spMetadata() {
  const resp = await fetch(spMetadataUrl);
  if (!resp.ok) throw new Error(`SP metadata: HTTP ${resp.status}`);
  return resp.text();
}

// The SP as the IdP sends it logout messages: signed, as it requires of the SP.
async function logoutSp() {
  return samlify.ServiceProvider({
    metadata: await spMetadata(),
    wantLogoutRequestSigned: true,
    wantLogoutResponseSigned: true,
    requestSignatureAlgorithm: samlify.Constants.algorithms.signature.RSA_SHA256,
  });
}

// The signed octets of a redirect, exactly as received (SAML bindings §3.4.4.1).
function octetString(url, param) {
  const raw = Object.fromEntries(
    url.search
      .slice(1)
      .split('&')
      .map((p) => [p.split('=')[0], p]),
  );
  return [raw[param], raw.RelayState, raw.SigAlg].filter((p) => p !== undefined).join('&');
}

function attributeStatement(attributes) {
  const names = Object.keys(attributes);
  if (names.length === 0) return '';
  const one = (name) =>
    `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">` +
    attributes[name].map((v) => `<saml:AttributeValue xsi:type="xs:string">${esc(v)}</saml:AttributeValue>`).join('') +
    '</saml:Attribute>';
  return `<saml:AttributeStatement>${names.map(one).join('')}</saml:AttributeStatement>`;
}

// The signed response for `user` to the request `requestId`, as `mode` wants it.
async function loginResponse(user, requestId, mode) {
  let metadata = await spMetadata();
  if (mode === 'audience') {
    metadata = metadata.replace(/entityID="[^"]*"/, 'entityID="https://elsewhere.example.com/sp"');
  }
  if (mode === 'response') {
    metadata = metadata.replace('WantAssertionsSigned="true"', 'WantAssertionsSigned="false"');
  }
  const sp = samlify.ServiceProvider({ metadata, wantMessageSigned: mode === 'response' || mode === 'both' });
  const signer = signers[mode] ?? idp;
  const now = new Date();
  const later = new Date(now.getTime() + 5 * 60_000);
  const acs = sp.entityMeta.getAssertionConsumerService('post');
  const replace = (template) => {
    const tvalue = {
      ID: `_${crypto.randomBytes(16).toString('hex')}`,
      AssertionID: `_${crypto.randomBytes(16).toString('hex')}`,
      Destination: acs,
      Audience: sp.entityMeta.getEntityID(),
      SubjectRecipient: acs,
      Issuer: `${base}/metadata`,
      IssueInstant: now.toISOString(),
      StatusCode: samlify.Constants.StatusCode.Success,
      ConditionsNotBefore: now.toISOString(),
      ConditionsNotOnOrAfter: later.toISOString(),
      SubjectConfirmationDataNotOnOrAfter: later.toISOString(),
      NameIDFormat: user.nameIdFormat,
      NameID: user.nameId,
      InResponseTo: requestId,
    };
    sessions.set(user.nameId, tvalue.AssertionID);
    const authn =
      `<saml:AuthnStatement AuthnInstant="${now.toISOString()}" SessionIndex="${tvalue.AssertionID}">` +
      '<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>';
    // An unsolicited (IdP-initiated) response answers no request.
    const unsolicited = requestId ? template : template.replace(/ InResponseTo="\{InResponseTo\}"/g, '');
    const context = samlify.SamlLib.replaceTagsByValue(unsolicited, tvalue)
      .replace('AUTHN_STATEMENT', authn)
      .replace('ATTRIBUTE_STATEMENT', attributeStatement(user.attributes));
    return { id: tvalue.ID, context };
  };
  const made = await signer.createLoginResponse(sp, { extract: { request: { id: requestId } } }, 'post', {}, replace);
  let xml = Buffer.from(made.context, 'base64').toString('utf8');
  if (mode === 'unsigned') {
    xml = xml.replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/g, '');
  }
  if (mode === 'tamper') {
    xml = xml.split('Ann.Saml@example.com').join('mallory@example.com');
  }
  if (mode === 'wrap') {
    // The forged copy: the genuine assertion without its signature, another ID and email.
    const start = xml.indexOf('<saml:Assertion');
    const end = xml.indexOf('</saml:Assertion>') + '</saml:Assertion>'.length;
    const forged = xml
      .slice(start, end)
      .replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/g, '')
      .replace(/ ID="[^"]*"/, ' ID="_forged"')
      .split('Ann.Saml@example.com')
      .join('mallory@example.com');
    xml = xml.slice(0, start) + forged + xml.slice(start);
  }
  return { acs, xml };
}

function page(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><body>${html}</body></html>`);
}

async function handle(req, res) {
  const url = new URL(req.url, base);
  if (req.method === 'GET' && url.pathname === '/metadata') {
    res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' });
    res.end(url.searchParams.get('slo') === 'none' ? idpWithoutSlo.getMetadata() : idp.getMetadata());
    return;
  }
  if (req.method === 'GET' && url.pathname === '/sso') {
    const query = Object.fromEntries(url.searchParams);
    const sp = samlify.ServiceProvider({ metadata: await spMetadata() });
    // Inflates the request, validates it against the SAML schema and reads it; when the
    // IdP wants signed requests, verifies the redirect's signature first.
    let parsed;
    try {
      parsed = await idp.parseLoginRequest(sp, 'redirect', { query, octetString: octetString(url, 'SAMLRequest') });
    } catch (e) {
      page(res, 403, `the AuthnRequest is refused: ${esc(e.message ?? e)}`);
      return;
    }
    const request = parsed.extract.request;
    if (parsed.extract.issuer !== sp.entityMeta.getEntityID()) {
      page(res, 400, `the request's issuer ${esc(parsed.extract.issuer)} is not the SP's entity ID`);
      return;
    }
    page(
      res,
      200,
      `<form method="post" action="/login">` +
        `<input type="hidden" name="request_id" value="${esc(request.id)}">` +
        `<input type="hidden" name="relay_state" value="${esc(query.RelayState ?? '')}">` +
        `<input type="hidden" name="acs" value="${esc(request.assertionConsumerServiceUrl ?? '')}">` +
        `<input name="login"><input name="mode" value="ok"><button>Sign in</button></form>`,
    );
    return;
  }
  if (req.method === 'GET' && url.pathname === '/initiate') {
    const user = USERS[url.searchParams.get('login')];
    if (!user) {
      page(res, 401, 'unknown user');
      return;
    }
    const { acs, xml } = await loginResponse(user, '', url.searchParams.get('mode') || 'ok');
    page(
      res,
      200,
      `<form method="post" action="${esc(acs)}">` +
        `<input type="hidden" name="SAMLResponse" value="${Buffer.from(xml).toString('base64')}">` +
        `<input type="hidden" name="RelayState" value="${esc(url.searchParams.get('relay_state') ?? '')}">` +
        `</form>`,
    );
    return;
  }
  if (req.method === 'POST' && url.pathname === '/login') {
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = Object.fromEntries(new URLSearchParams(body));
    const user = USERS[form.login];
    if (!user) {
      page(res, 401, 'unknown user');
      return;
    }
    const { acs, xml } = await loginResponse(user, form.request_id, form.mode || 'ok');
    if (form.acs && form.acs !== acs) {
      page(res, 400, `the request's ACS URL ${esc(form.acs)} is not the one of the SP metadata ${esc(acs)}`);
      return;
    }
    page(
      res,
      200,
      `<form method="post" action="${esc(acs)}">` +
        `<input type="hidden" name="SAMLResponse" value="${Buffer.from(xml).toString('base64')}">` +
        `<input type="hidden" name="RelayState" value="${esc(form.relay_state)}">` +
        `</form>`,
    );
    return;
  }
  if (req.method === 'GET' && url.pathname === '/slo') {
    const query = Object.fromEntries(url.searchParams);
    const sp = await logoutSp();
    if (query.SAMLRequest !== undefined) {
      // SP-initiated: verify (signature required, schema), then answer Success.
      let parsed;
      try {
        parsed = await idp.parseLogoutRequest(sp, 'redirect', { query, octetString: octetString(url, 'SAMLRequest') });
      } catch (e) {
        page(res, 403, `the LogoutRequest is refused: ${esc(e.message ?? e)}`);
        return;
      }
      const nameId = parsed.extract.nameID;
      const index = parsed.extract.sessionIndex;
      if (sessions.get(nameId) !== index) {
        page(res, 400, `the LogoutRequest names ${esc(nameId)} / ${esc(index)}, not a session of this IdP`);
        return;
      }
      sessions.delete(nameId);
      const { context } = idp.createLogoutResponse(sp, parsed, 'redirect', { relayState: query.RelayState ?? '' });
      res.writeHead(302, { location: context });
      res.end();
      return;
    }
    if (query.SAMLResponse !== undefined) {
      // The answer to a logout the IdP started: signature required, InResponseTo ours.
      const octets = octetString(url, 'SAMLResponse');
      const signed =
        query.Signature !== undefined &&
        samlify.SamlLib.verifyMessageSignature(sp.entityMeta, octets, Buffer.from(query.Signature, 'base64'), query.SigAlg);
      if (!signed) {
        page(res, 403, 'the LogoutResponse is not signed by the SP');
        return;
      }
      try {
        const parsed = await idp.parseLogoutResponse(sp, 'redirect', { query, octetString: octets });
        const irt = parsed.extract.response.inResponseTo;
        if (irt !== pendingLogout) {
          page(res, 400, `the LogoutResponse answers ${esc(irt)}, not ${esc(pendingLogout)}`);
          return;
        }
        page(res, 200, `logout accepted: Success; relay ${esc(query.RelayState ?? '')}`);
      } catch (e) {
        page(res, 200, `logout answered: ${esc(e.message ?? e)}`);
      }
      return;
    }
    page(res, 400, 'no SAMLRequest or SAMLResponse');
    return;
  }
  if (req.method === 'GET' && url.pathname === '/logout-initiate') {
    const user = USERS[url.searchParams.get('login')];
    const mode = url.searchParams.get('mode') || 'ok';
    if (!user || !sessions.has(user.nameId)) {
      page(res, 400, 'no session of that user');
      return;
    }
    const sp = await logoutSp();
    const signer = mode === 'otherkey' ? otherIdp : idp;
    const until = new Date(Date.now() + (mode === 'expired' ? 60_000 : 5 * 60_000)).toISOString();
    const template = samlify.SamlLib.defaultLogoutRequestTemplate.context.replace(
      'Destination="{Destination}"',
      'Destination="{Destination}" NotOnOrAfter="{NotOnOrAfter}"',
    );
    const made = signer.createLogoutRequest(
      sp,
      'redirect',
      { logoutNameID: user.nameId, sessionIndex: sessions.get(user.nameId) },
      {
        relayState: 'idp-relay',
        customTagReplacement: (_, tags) => ({
          id: tags.ID,
          context: samlify.SamlLib.replaceTagsByValue(template, { ...tags, NotOnOrAfter: until }),
        }),
      },
    );
    pendingLogout = made.id;
    res.writeHead(302, { location: made.context });
    res.end();
    return;
  }
  page(res, 404, 'not found');
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    console.error(e);
    page(res, 500, esc(e.message ?? e));
  });
});
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${base}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
