// A real SAML 2.0 identity provider for the SAML sign-in test (crates/klaxon/tests/sso_saml.rs),
// built on the `samlify` package (XML signatures by xml-crypto, the AuthnRequest checked
// against the SAML schema by xmllint). It reads the service provider from Klaxon's own SP
// metadata URL, so the test also checks that metadata is usable by another implementation.
//
// idp-key.pem/idp-cert.pem are the IdP's signing key and certificate, other-key.pem/
// other-cert.pem a key the metadata does not list: made for this test only, secret nowhere.
//
// Usage: node idp.mjs <port> <sp_metadata_url>
// Prints "listening <base>" once it accepts connections. Its metadata is at <base>/metadata.
//
// The login page takes any user name in USERS and a `mode`, which makes the response an
// attacker would send: `ok` (assertion signed, RSA-SHA256 + exclusive c14n), `response`
// (only the Response signed), `both`, `unsigned` (signatures stripped), `tamper` (the email
// changed after signing), `otherkey` (signed with a key the metadata does not list),
// `audience` (issued for another SP entity ID) and `wrap` (an unsigned forged assertion
// placed before the genuinely signed one).

import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import samlify from 'samlify';
import validator from '@authenio/samlify-node-xmllint';

const [port, spMetadataUrl] = process.argv.slice(2);
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

const idpFor = (key, cert) =>
  samlify.IdentityProvider({
    entityID: `${base}/metadata`,
    privateKey: read(key),
    signingCert: read(cert),
    nameIDFormat: [EMAIL_FORMAT],
    singleSignOnService: [{ Binding: samlify.Constants.namespace.binding.redirect, Location: `${base}/sso` }],
    // samlify's own template, with the statements filled in by loginResponse below.
    loginResponseTemplate: {
      context: samlify.SamlLib.defaultLoginResponseTemplate.context
        .replace('{AuthnStatement}', 'AUTHN_STATEMENT')
        .replace('{AttributeStatement}', 'ATTRIBUTE_STATEMENT'),
    },
  });
const idp = idpFor('idp-key.pem', 'idp-cert.pem');
const otherIdp = idpFor('other-key.pem', 'other-cert.pem');

const esc = (s) =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

async function spMetadata() {
  const resp = await fetch(spMetadataUrl);
  if (!resp.ok) throw new Error(`SP metadata: HTTP ${resp.status}`);
  return resp.text();
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
  const signer = mode === 'otherkey' ? otherIdp : idp;
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
    const authn =
      `<saml:AuthnStatement AuthnInstant="${now.toISOString()}" SessionIndex="${tvalue.AssertionID}">` +
      '<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>';
    const context = samlify.SamlLib.replaceTagsByValue(template, tvalue)
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
    res.end(idp.getMetadata());
    return;
  }
  if (req.method === 'GET' && url.pathname === '/sso') {
    const query = Object.fromEntries(url.searchParams);
    const sp = samlify.ServiceProvider({ metadata: await spMetadata() });
    // Inflates the request, validates it against the SAML schema and reads it.
    const parsed = await idp.parseLoginRequest(sp, 'redirect', { query });
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
