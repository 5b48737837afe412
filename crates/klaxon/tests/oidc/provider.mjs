// A real OpenID provider for the SSO integration test (crates/klaxon/tests/sso.rs), built on
// the `oidc-provider` package with its development login and consent pages: any login name
// signs in with any password, and the account's claims come from USERS below.
//
// Usage: node provider.mjs <port> <client_id> <client_secret> <redirect_uri>
// Prints "listening <issuer>" once it accepts connections.

import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!port || !clientId || !clientSecret || !redirectUri) {
  console.error('usage: node provider.mjs <port> <client_id> <client_secret> <redirect_uri>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// Claims per login name. `noemail` has none, to check that such a sign-in is refused.
const USERS = {
  ann: {
    email: 'Ann.Lee@example.com',
    name: 'Ann Lee',
    phone_number: '+14155550100',
    groups: ['oncall-sre', 'everyone'],
  },
  bob: { email: 'bob@example.com', name: 'Bob Stone' },
  invited: { email: 'invited@example.com', name: 'Name At The Provider' },
  noemail: { name: 'No Mail' },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
    },
  ],
  // The name and the groups (for the team mapping) travel with the email scope, as
  // field_mapping.name reads it (RSP-575 asks for `openid email phone` only).
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified', 'name', 'groups'],
    phone: ['phone_number', 'phone_number_verified'],
  },
  pkce: { required: () => true },
  cookies: { keys: ['klaxon-test-provider-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    const claims = USERS[id] ?? { email: `${id}@example.com` };
    return {
      accountId: id,
      async claims() {
        const out = { sub: id, ...claims };
        if (claims.email) out.email_verified = true;
        return out;
      },
    };
  },
});
provider.proxy = false;

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
