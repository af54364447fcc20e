// Package browser is a headless, JavaScript-free "person with a browser" for end-to-end
// tests: it walks an OAuth authorization flow the way someone clicking through it
// would. Starting at an authorization URL it follows 30x redirects, fills and submits
// the HTML forms it meets (mcpgate's consent form posts decision=allow or deny, the
// local login form posts username and password, both with hidden CSRF fields and a
// cookie), keeps cookies across steps, and stops at the first redirect to the client's
// redirect URI, which it returns without requesting: nothing need listen there.
//
// Walk returns that redirect; Authorize and FollowAuthorization read the
// authorization response from it (code, state and iss, RFC 6749 §4.1.2 and RFC 9207),
// or turn an error response (§4.1.2.1) into an *AuthorizationError. A page the walk
// cannot get past (an error page, a page without a form, a form that comes back
// unchanged after submitting it, as a login form with a wrong password does) ends it
// with a *PageError that carries the HTTP status and the page's visible text, so a
// failing test says what the person would have seen.
//
// It can act as the browser for the conformance suite's authorization scenarios, and
// as the go-sdk's auth.AuthorizationCodeFetcher:
//
//	fetch := func(ctx context.Context, a *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
//		code, state, iss, err := b.Authorize(ctx, a.URL, redirectURL)
//		if err != nil {
//			return nil, err
//		}
//		return &auth.AuthorizationResult{Code: code, State: state, Iss: iss}, nil
//	}
package browser
