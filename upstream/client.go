package upstream

import (
	"net/http"
	"time"
)

// Client returns a copy of c (a new client if nil) whose calls end after
// timeout when c sets no Timeout of its own (SEC-73): the caller's client
// is not the connector's to change, and without a bound a provider that
// accepts the connection and never answers would hold a login (under the
// callback's request) or a recheck for good.
func Client(c *http.Client, timeout time.Duration) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	if out.Timeout <= 0 {
		out.Timeout = timeout
	}
	return out
}
