// Package console serves the gateway's own pages for people: the account
// page /account, where a person sees the clients that can act for them and
// revokes any in one click, and the admin console /admin (users, clients,
// grants, recent tool calls, and pages other packages mount there).
//
// It has no login of its own: the authorization server's browser session
// is the login, started by an authorization request's login or by
// /signin, which goes through the same connectors and login pages
// (authserver/pages.go). Every page is plain server-rendered HTML that no
// site may frame and no cache may keep; every change is a POST whose form
// token is bound to the browser's CSRF cookie and its session (SEC-108).
//
// Revoking here is what the admin CLI does, plus the in-process deny
// list: the store records it (other replicas learn of it through the
// store within a second, SEC-80) and this replica refuses the grant's
// access tokens at once (SEC-109).
package console
