// Package githubtest is a local stand-in for github.com and api.github.com,
// for tests of code that logs people in with GitHub: the OAuth web flow
// (GET /login/oauth/authorize, POST /login/oauth/access_token, with PKCE S256)
// and the two REST calls a login needs (GET /user, GET /user/emails).
//
// It follows GitHub's documented behaviour where a client can observe it:
// the token endpoint answers HTTP 200 even for errors, in the format the
// Accept header asks for (form-encoded by default); codes are single-use,
// bound to the client, redirect_uri and PKCE challenge, and expire after ten
// minutes; the API takes "Bearer" or "token" credentials and answers 401
// "Requires authentication" without them and "Bad credentials" for a wrong
// one; /user/emails needs the user:email (or user) scope, 404 otherwise, and
// is paginated. GitHub documents no error for a failed PKCE check; the fake
// answers bad_verification_code. Signing in and approving the app are
// automatic: the fake acts as its "current user" and approves, or denies
// when told to.
//
// Two choices are stricter than GitHub, to catch mistakes in the code under
// test: a request to /login/oauth/authorize without state is refused, and a
// redirect_uri is required when no callback URL is registered.
package githubtest
