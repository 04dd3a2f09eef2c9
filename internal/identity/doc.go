// Package identity is Custos's token service: an issuer compatible with the
// Microsoft Entra ID v2 endpoints that azidentity / MSAL for Go use (OpenID
// discovery, JWKS, and the client credentials grant at
// /{tenant}/oauth2/v2.0/token with a client secret or a signed client
// assertion), the service principals, managed identities and their
// credentials behind it, machine enrollment (POST /enroll, authenticated by a
// one-time token), and Authenticate, which validates the bearer token of
// every API request and checks that its principal is still enabled.
//
// Tokens are ES256 JWTs signed with rotating keys. Private signing keys are
// stored through Store sealed by the platform key (a Sealer). Client secrets
// are stored only as hashes. Tokens, secrets and keys are never logged.
//
// identity imports crypt and enroll (the enrollment wire types) and nothing
// above them. It must not import api,
// rbac, catalog or any HTTP handler package: api imports identity, so the
// errors returned here carry their Azure code and failure kind as plain
// strings (AuthError.AzureError).
package identity
