package browser_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFollowAuthorizationAllow(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	code, state, iss, err := browser.FollowAuthorization(testContext(t), as.authURL("s-1"), callback, "alice", "wonderland")
	if err != nil {
		t.Fatalf("FollowAuthorization: %v", err)
	}
	if code != fakeCode || state != "s-1" || iss != fakeIssuer {
		t.Errorf("got code=%q state=%q iss=%q, want %q %q %q", code, state, iss, fakeCode, "s-1", fakeIssuer)
	}
	if posts, _ := as.counts(); posts != 1 {
		t.Errorf("login posts = %d, want 1", posts)
	}
}

func TestWalkReturnsRedirectWithoutRequestingIt(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	// Nothing listens on 127.0.0.1:1: requesting the redirect would fail the walk.
	u, err := browser.New("alice", "wonderland").Walk(testContext(t), as.authURL("s-2"), callback)
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != callback {
		t.Errorf("redirect = %s, want %s?…", u, callback)
	}
	if u.Query().Get("code") != fakeCode {
		t.Errorf("redirect %s has no code %q, want it", u, fakeCode)
	}
}

func TestZeroValueBrowser(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	b := &browser.Browser{Username: "alice", Password: "wonderland"} // allow, 20 steps, own jar
	code, _, _, err := b.Authorize(testContext(t), as.authURL("s-3"), callback)
	if err != nil || code != fakeCode {
		t.Fatalf("Authorize = %q, %v; want %q", code, err, fakeCode)
	}
}

func TestDenyDecision(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	b := browser.New("alice", "wonderland")
	b.Decision = "deny"
	code, state, _, err := b.Authorize(testContext(t), as.authURL("s-4"), callback)
	if err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("Authorize after deny: code=%q err=%v, want an access_denied error", code, err)
	}
	var ae *browser.AuthorizationError
	if !errors.As(err, &ae) || ae.Code != "access_denied" || ae.State != "s-4" || ae.Issuer != fakeIssuer {
		t.Errorf("error = %#v, want *AuthorizationError access_denied with state and iss", err)
	}
	if state != "s-4" {
		t.Errorf("state = %q, want s-4", state)
	}
	if posts, _ := as.counts(); posts != 0 {
		t.Errorf("login posts = %d after deny, want 0", posts)
	}
}

func TestFollowAuthorizationErrorResponse(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	// mallory logs in fine but the policy refuses her: the redirect carries the error.
	_, _, _, err := browser.FollowAuthorization(testContext(t), as.authURL("s-5"), callback, "mallory", "pw")
	if err == nil || !strings.Contains(err.Error(), "access_denied") || !strings.Contains(err.Error(), "allow-list") {
		t.Fatalf("err = %v, want access_denied with its description", err)
	}
}

func TestWrongPasswordDoesNotLoop(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	_, err := browser.New("alice", "wrong").Walk(testContext(t), as.authURL("s-6"), callback)
	var pe *browser.PageError
	if !errors.As(err, &pe) {
		t.Fatalf("Walk with a wrong password: %v, want a *PageError", err)
	}
	if !strings.Contains(pe.Text, "Invalid username or password.") || pe.Status != http.StatusOK {
		t.Errorf("PageError = %+v, want the form's error message and status 200", pe)
	}
	if !strings.HasPrefix(pe.Text, "Invalid username or password.") {
		t.Errorf("Text = %q, want the marked error message first", pe.Text)
	}
	// First post re-renders the form with the error; the second gets the same page
	// back, and the walk stops there instead of running into the step limit.
	if posts, _ := as.counts(); posts != 2 {
		t.Errorf("login posts = %d, want 2", posts)
	}
}

func TestErrorPageWithoutForm(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	_, err := browser.New("alice", "wonderland").Walk(testContext(t), as.URL+"/authorize?client_id=evil&state=s", callback)
	var pe *browser.PageError
	if !errors.As(err, &pe) {
		t.Fatalf("Walk to an error page: %v, want a *PageError", err)
	}
	if pe.Status != http.StatusBadRequest || !strings.Contains(pe.Text, "Unknown client evil") {
		t.Errorf("PageError = %+v, want 400 and the page text", pe)
	}
	for _, want := range []string{"400", "Unknown client evil", "/authorize"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(pe.Text, "<h1>") {
		t.Errorf("Text = %q, want visible text without markup", pe.Text)
	}
}

func TestNonHTMLErrorShowsBody(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	_, err := browser.New("alice", "wonderland").Walk(testContext(t), as.URL+"/json-error", callback)
	var pe *browser.PageError
	if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest || !strings.Contains(pe.Text, "missing code_challenge") {
		t.Fatalf("err = %v, want a 400 PageError with the JSON body", err)
	}
}

func TestCSRFCookieIsKept(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	// Without a cookie jar the consent post's CSRF check fails: proof the jar matters.
	b := browser.New("alice", "wonderland")
	b.Client = &http.Client{}
	_, err := b.Walk(testContext(t), as.authURL("s-7"), callback)
	var pe *browser.PageError
	if !errors.As(err, &pe) || pe.Status != http.StatusForbidden || !strings.Contains(pe.Text, "CSRF check failed") {
		t.Fatalf("err = %v, want 403 CSRF check failed", err)
	}
}

func TestStepLimit(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	b := browser.New("alice", "wonderland")
	b.MaxSteps = 5
	_, err := b.Walk(testContext(t), as.URL+"/loop", callback)
	if err == nil || !strings.Contains(err.Error(), "within 5 steps") {
		t.Fatalf("err = %v, want the step limit", err)
	}
	if _, loops := as.counts(); loops != 5 {
		t.Errorf("requests = %d, want 5", loops)
	}
}

func TestDefaultStepLimit(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	_, err := (&browser.Browser{}).Walk(testContext(t), as.URL+"/loop", callback)
	if err == nil || !strings.Contains(err.Error(), "within 20 steps") {
		t.Fatalf("err = %v, want the default step limit of 20", err)
	}
}

func TestCanceledContext(t *testing.T) {
	as := newFakeAS()
	defer as.Close()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := browser.New("alice", "wonderland").Walk(ctx, as.authURL("s-8"), callback)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
