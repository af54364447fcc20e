package upstream

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// TokenError reduces an error of x/oauth2's token exchange to what is safe
// to log. RetrieveError's message quotes the whole response body, and a
// success body that x/oauth2 could not use would carry the access token,
// so only the OAuth error fields (or the HTTP status) are kept.
func TokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	if re.ErrorCode != "" {
		return fmt.Errorf("%s: %s", Clip(re.ErrorCode), Clip(re.ErrorDescription))
	}
	status := "no response"
	if re.Response != nil {
		status = re.Response.Status
	}
	return fmt.Errorf("token endpoint answered %s", status)
}

// Clip bounds text that came from the network before it reaches a log:
// at most 200 bytes, cut at a rune boundary, with "…" when cut.
func Clip(s string) string {
	n := 200
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
