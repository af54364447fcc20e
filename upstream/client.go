package upstream

import (
	"errors"
	"net/http"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
)

// Client returns a copy of c (a new client if nil) for the calls to an
// identity provider:
//   - they end after timeout when c sets no Timeout of its own (SEC-73):
//     without a bound a provider that accepts the connection and never
//     answers would hold a login (under the callback's request) or a
//     recheck for good;
//   - they follow a redirect only within the origin of the request first
//     made (SEC-203), before c's own CheckRedirect: the URLs of a
//     provider's document are checked to be https (SEC-66), and a redirect
//     from one of them (a proxy's, a CDN's) to plain http or to another
//     host would fetch the key set in clear, or post the code, its verifier
//     and the client secret there.
//
// The caller's client is not the connector's to change.
func Client(c *http.Client, timeout time.Duration) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	if out.Timeout <= 0 {
		out.Timeout = timeout
	}
	next := out.CheckRedirect
	out.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if oauth.Origin(req.URL.String()) != oauth.Origin(via[0].URL.String()) {
			return errors.New("the provider redirected to another origin; mcpgate follows a provider's redirects within its origin only")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return out
}
