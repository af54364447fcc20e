package oauth

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestWriteJSONHidesInternalErrors(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/token", nil)
	WriteJSON(w, r, nil, errors.New("sqlite: disk I/O error at /secret/path"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "sqlite") || !strings.Contains(w.Body.String(), `"server_error"`) {
		t.Fatalf("internal error leaked: %d %s, want 500 server_error without the cause", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("TOK-6: error responses must be no-store, got Cache-Control %q", cc)
	}
}

func TestWriteJSONInvalidClientBasic(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/token", nil)
	r.SetBasicAuth("a", "b")
	WriteJSON(w, r, nil, &Error{Code: InvalidClient, Description: "x"})
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("RFC 6749 §5.2: invalid_client with Basic needs 401 and a challenge, got %d", w.Code)
	}
}

func TestWriteRedirectCarriesIssAndState(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/authorize", nil)
	state := strings.Repeat("s", 500) + "&=?#"
	WriteRedirect(w, r, nil, "http://127.0.0.1:9/cb?keep=1", state, "http://127.0.0.1:8080", Errorf(InvalidRequest, "bad"))
	u, err := url.Parse(w.Header().Get("Location"))
	if err != nil || w.Code != 302 {
		t.Fatalf("got %d, Location %q (%v); want a 302 with a valid Location", w.Code, w.Header().Get("Location"), err)
	}
	q := u.Query()
	// ISS-1: iss on error responses too; REDIR-5: state verbatim, whatever its length.
	if q.Get("iss") != "http://127.0.0.1:8080" || q.Get("state") != state || q.Get("error") != InvalidRequest || q.Get("keep") != "1" {
		t.Fatalf("redirect query %v, want iss, the state verbatim, error invalid_request and the registered keep=1", q)
	}
}
