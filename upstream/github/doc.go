// Package github logs people in with their GitHub account, through an OAuth
// app and GitHub's web application flow (authorization code, with PKCE S256),
// as the seed's connector did: the user is "github:<numeric id>", with the
// login, name, profile URL and avatar of GET /user, and the address from
// GET /user/emails that is both primary and verified, if there is one.
//
// The connector holds no per-login state. The PKCE verifier is derived from
// the state mcpgate hands to LoginURL and gets back at the callback; see
// Config.PKCEKey. Package githubtest is a local fake of GitHub to test it.
package github
