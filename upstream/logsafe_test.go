package upstream

import (
	"errors"
	"net/http"
	"net/url"
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

// Mark adds a kind without changing what the log says.
func TestMark(t *testing.T) {
	base := errors.New("oidc: ID token: nonce does not match this login")
	err := Mark(base, ErrRefused)
	if err.Error() != base.Error() || !errors.Is(err, base) || !errors.Is(err, ErrRefused) || errors.Is(err, ErrUnavailable) {
		t.Errorf("Mark = %q; want the same text, both base and ErrRefused, not ErrUnavailable", err)
	}
	if Mark(nil, ErrRefused) != nil {
		t.Error("Mark(nil) is not nil")
	}
	if err := Mark(base, nil); err != base {
		t.Errorf("Mark(err, nil) = %v; want err itself", err)
	}
}

// A callback error the configuration causes is for the operator: neither
// a refusal (the person would try again, and fail again) nor an outage.
func TestCallbackErrorKind(t *testing.T) {
	for code, want := range map[string]error{
		"access_denied": ErrRefused, "login_required": ErrRefused, "interaction_required": ErrRefused,
		"consent_required": ErrRefused, "something_new": ErrRefused,
		"server_error": ErrUnavailable, "temporarily_unavailable": ErrUnavailable,
		"invalid_request": nil, "invalid_scope": nil, "unauthorized_client": nil,
		"unsupported_response_type": nil, "invalid_client": nil,
	} {
		if got := CallbackErrorKind(code); got != want {
			t.Errorf("CallbackErrorKind(%q) = %v; want %v", code, got, want)
		}
	}
}

// A token endpoint out of reach or answering 5xx is ErrUnavailable; one
// that answers an OAuth error below 500 is not.
func TestTokenErrorKinds(t *testing.T) {
	down := &url.Error{Op: "Post", URL: "http://127.0.0.1:9/token", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{down, true},
		{&oauth2.RetrieveError{Response: &http.Response{Status: "503 Service Unavailable", StatusCode: 503}}, true},
		{&oauth2.RetrieveError{Response: &http.Response{Status: "500 Internal Server Error", StatusCode: 500}, ErrorCode: "server_error"}, true},
		{&oauth2.RetrieveError{Response: &http.Response{Status: "400 Bad Request", StatusCode: 400}, ErrorCode: "invalid_grant"}, false},
		{&url.Error{Op: "parse", URL: "::", Err: errors.New("missing protocol scheme")}, false},
		{errors.New("oauth2: server response missing access_token"), false},
	} {
		got := TokenError(tc.err)
		if errors.Is(got, ErrUnavailable) != tc.want || errors.Is(got, ErrRefused) {
			t.Errorf("TokenError(%v) = %v; ErrUnavailable %v, want %v", tc.err, got, errors.Is(got, ErrUnavailable), tc.want)
		}
	}
	if got := TokenError(down); got.Error() != down.Error() {
		t.Errorf("TokenError(%q) = %q; want the same text", down, got)
	}
}
