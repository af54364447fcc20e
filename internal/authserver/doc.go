// Package authserver is mcpgate's OAuth 2.1 authorization server: discovery
// metadata (RFC 8414), dynamic client registration (RFC 7591), /authorize
// with consent and upstream login, the upstream callback, and /token for
// the authorization_code and refresh_token grants. One file per endpoint.
//
// The flow: /authorize verifies the client and redirect URI first (errors
// before that point are pages, never redirects: REDIR-2), then everything
// else (errors from then on go back to the client with iss: ISS-1). The
// person consents per client (DEP-1..3); only then is an upstream state
// created (DEP-6, DEP-7) and the person sent to log in. The login ends in
// a browser session, the consent is remembered per user and client, and a
// single-use code goes back to the client. Every step after consent is
// bound to the browser that consented (SEC-1, flow.go): a login link or a
// callback opened in another browser shows that browser the consent page.
package authserver
