// Package upstream defines how mcpgate logs people in: a Connector per
// identity provider (the built-in local accounts, GitHub, later Google and
// any OIDC provider). The authorization server picks a connector after the
// person consented, hands it a single-use state, and gets an identity.User
// back. Connectors come in two shapes, after dex: a PasswordConnector checks
// a username and password typed into mcpgate's own login form; a
// CallbackConnector sends the browser to the provider and finishes at
// /callback/{id}. A CallbackConnector whose provider issues refresh tokens
// is also a RefreshingConnector: the gateway keeps the provider's refresh
// token with the grant, sealed, and renews it at refreshes to re-read the
// user's groups, ending the grant when the provider refuses (RT-3).
package upstream
