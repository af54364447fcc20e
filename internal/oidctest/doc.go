// Package oidctest runs a real OpenID provider for tests: the npm package
// oidc-provider (OpenID Certified), pinned by scripts/install-tools.sh and run
// with its Node 22, configured by provider.mjs from this package's Options.
// The OIDC tests talk to it as to any IdP, over HTTP on loopback: discovery,
// JWKS, authorization code with PKCE S256, ID tokens signed RS256, userinfo,
// refresh and revocation are oidc-provider's own, not a mock written here.
//
// Only the login interaction is the test's: [Provider.Login] follows the
// authorization redirects, signs in as a user through a form that grants
// every requested scope and claim at once, and returns the redirect to the
// client's redirect URI without following it, so a test can hand it to the
// gateway's callback. The form is plain HTML, so a browser or a form follower
// can walk it too.
//
// By default the scopes' claims (email, email_verified, name,
// preferred_username, groups, realm_access.roles) are in the ID token as well
// as at userinfo, as Google, Entra ID and Keycloak put them;
// Options.ClaimsOnlyAtUserinfo switches to oidc-provider's default
// (conformIdTokenClaims), where the ID token of the code flow carries only
// sub and the rest comes from userinfo.
//
// The package is imported only by _test.go files. A missing tool fails the
// test with what to run (make tools); it never skips.
package oidctest
