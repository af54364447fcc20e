package upstream

import (
	"errors"
	"fmt"
	"github.com/mcpgate/mcpgate/internal/safetext"

	"golang.org/x/oauth2"
)

// TokenError reduces an error of x/oauth2's token exchange to what is safe
// to log. RetrieveError's message quotes the whole response body, and a
// success body that x/oauth2 could not use would carry the access token,
// so only the OAuth error fields (or the HTTP status) are kept. A token
// endpoint out of reach or answering 5xx is marked ErrUnavailable.
func TokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return Unreachable(err)
	}
	var out error
	if re.ErrorCode != "" {
		out = fmt.Errorf("%s: %s", Clip(re.ErrorCode), Clip(re.ErrorDescription))
	} else {
		status := "no response"
		if re.Response != nil {
			status = re.Response.Status
		}
		out = fmt.Errorf("token endpoint answered %s", status)
	}
	if re.Response != nil && re.Response.StatusCode >= 500 {
		return Mark(out, ErrUnavailable)
	}
	return out
}

// Clip bounds text that came from the network before it reaches a log:
// at most 200 bytes, cut at a rune boundary, with "…" when cut.
func Clip(s string) string { return safetext.Clip(s, 200) }
