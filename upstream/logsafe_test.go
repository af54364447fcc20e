package upstream

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// A body x/oauth2 could not use never reaches the log; the OAuth error
// fields do, clipped.
func TestTokenErrorKeepsNoBody(t *testing.T) {
	body := []byte(`{"access_token":"secret-token","token_type":"weird"}`)
	err := TokenError(&oauth2.RetrieveError{Response: &http.Response{Status: "200 OK"}, Body: body})
	if strings.Contains(err.Error(), "secret-token") || err.Error() != "token endpoint answered 200 OK" {
		t.Errorf("TokenError = %q, want the status only, no body", err)
	}
	err = TokenError(&oauth2.RetrieveError{ErrorCode: "invalid_grant", ErrorDescription: strings.Repeat("x", 300), Body: body})
	if strings.Contains(err.Error(), "secret-token") || !strings.HasPrefix(err.Error(), "invalid_grant: ") || len(err.Error()) > 250 {
		t.Errorf("TokenError = %q, want the error code and a clipped description", err)
	}
	plain := errors.New("dial failed")
	if got := TokenError(plain); got != plain {
		t.Errorf("TokenError of another error = %v, want it unchanged", got)
	}
}

// Clip cuts at a rune boundary and says it cut.
func TestClip(t *testing.T) {
	if got := Clip("short"); got != "short" {
		t.Errorf("Clip(short) = %q", got)
	}
	long := strings.Repeat("é", 150) // 300 bytes
	got := Clip(long)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || len(got) > 200+len("…") {
		t.Errorf("Clip of 300 bytes = %d bytes %q, want valid UTF-8 of at most 200 bytes and …", len(got), got)
	}
}
