package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

func testAuthRequest(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := newAuthRequest("r1")
	must(t, "create", s.CreateAuthRequest(ctx, r))
	want := newAuthRequest("r1")
	r.Scopes[0] = "changed"

	got, err := s.GetAuthRequest(ctx, "r1", t0)
	must(t, "get", err)
	same(t, "round trip", got, want)
	if got.UpstreamStateHash != nil {
		t.Errorf("UpstreamStateHash before consent = %x, want nil", got.UpstreamStateHash)
	}

	// SignIn (prompt=login, SEC-162) comes back as stored, through each
	// way of reading a request.
	signIn := newAuthRequest("r-sign-in")
	signIn.SignIn = true
	must(t, "create with SignIn", s.CreateAuthRequest(ctx, signIn))
	got, err = s.GetAuthRequest(ctx, "r-sign-in", t0)
	must(t, "get with SignIn", err)
	same(t, "round trip with SignIn", got, newAuthRequestSigningIn("r-sign-in"))
	must(t, "attach to SignIn", s.AttachUpstreamState(ctx, "r-sign-in", "github", hash("r-sign-in"), t0))
	got, err = s.GetAuthRequestByUpstreamState(ctx, hash("r-sign-in"), t0)
	must(t, "get by state with SignIn", err)
	if !got.SignIn {
		t.Error("SignIn lost when read by upstream state")
	}
	got, err = s.TakeAuthRequestByUpstreamState(ctx, hash("r-sign-in"), t0)
	must(t, "take with SignIn", err)
	if !got.SignIn {
		t.Error("SignIn lost when taken by upstream state")
	}
	got.Scopes[0] = "changed"
	got, err = s.GetAuthRequest(ctx, "r1", t0)
	must(t, "get again", err)
	same(t, "after mutating a returned request", got, want)

	wantErr(t, "duplicate id", s.CreateAuthRequest(ctx, newAuthRequest("r1")), store.ErrConflict)

	_, err = s.GetAuthRequest(ctx, "r1", want.ExpiresAt.Add(-time.Nanosecond))
	must(t, "get just before expiry", err)
	_, err = s.GetAuthRequest(ctx, "r1", want.ExpiresAt)
	wantErr(t, "get at expiry", err, store.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, "r1", want.ExpiresAt.Add(time.Hour))
	wantErr(t, "get after expiry", err, store.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, "nope", t0)
	wantErr(t, "unknown", err, store.ErrNotFound)
}

// DEP-6: the upstream state is attached once, after consent, and only to a
// live request.
func testAttachUpstreamState(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create r1", s.CreateAuthRequest(ctx, newAuthRequest("r1")))
	must(t, "create r2", s.CreateAuthRequest(ctx, newAuthRequest("r2")))

	wantErr(t, "unknown request", s.AttachUpstreamState(ctx, "nope", "github", hash("st"), t0), store.ErrNotFound)
	exp := newAuthRequest("r1").ExpiresAt
	wantErr(t, "expired request", s.AttachUpstreamState(ctx, "r1", "github", hash("st"), exp), store.ErrNotFound)

	st := hash("state-1")
	must(t, "attach", s.AttachUpstreamState(ctx, "r1", "github", st, t0))
	st[0] ^= 0xff // the store kept its own copy
	want := newAuthRequest("r1")
	want.Connector = "github"
	want.UpstreamStateHash = hash("state-1")
	got, err := s.GetAuthRequest(ctx, "r1", t0)
	must(t, "get", err)
	same(t, "after attach", got, want)

	wantErr(t, "second attach", s.AttachUpstreamState(ctx, "r1", "google", hash("state-2"), t0), store.ErrConflict)
	wantErr(t, "same state again", s.AttachUpstreamState(ctx, "r1", "github", hash("state-1"), t0), store.ErrConflict)
	got, err = s.GetAuthRequest(ctx, "r1", t0)
	must(t, "get after conflict", err)
	same(t, "after a refused attach", got, want)

	// One state names one request.
	wantErr(t, "state of another request", s.AttachUpstreamState(ctx, "r2", "github", hash("state-1"), t0), store.ErrConflict)
	must(t, "attach r2", s.AttachUpstreamState(ctx, "r2", "google", hash("state-r2"), t0))
}

// DEP-6: the callback takes the request by its upstream state, once.
func testTakeAuthRequest(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateAuthRequest(ctx, newAuthRequest("r1")))
	must(t, "attach", s.AttachUpstreamState(ctx, "r1", "github", hash("st"), t0))
	want := newAuthRequest("r1")
	want.Connector = "github"
	want.UpstreamStateHash = hash("st")

	_, err := s.TakeAuthRequestByUpstreamState(ctx, hash("other"), t0)
	wantErr(t, "unknown state", err, store.ErrNotFound)
	_, err = s.TakeAuthRequestByUpstreamState(ctx, nil, t0)
	wantErr(t, "nil state", err, store.ErrNotFound)
	_, err = s.TakeAuthRequestByUpstreamState(ctx, hash("st"), want.ExpiresAt)
	wantErr(t, "take at expiry", err, store.ErrNotFound)

	got, err := s.TakeAuthRequestByUpstreamState(ctx, hash("st"), t0)
	must(t, "take", err)
	same(t, "taken", got, want)

	_, err = s.TakeAuthRequestByUpstreamState(ctx, hash("st"), t0)
	wantErr(t, "second take", err, store.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, "r1", t0)
	wantErr(t, "get taken", err, store.ErrNotFound)
	wantErr(t, "delete taken", s.DeleteAuthRequest(ctx, "r1"), store.ErrNotFound)

	// A request never attached cannot be taken.
	must(t, "create r2", s.CreateAuthRequest(ctx, newAuthRequest("r2")))
	_, err = s.TakeAuthRequestByUpstreamState(ctx, []byte{}, t0)
	wantErr(t, "empty state", err, store.ErrNotFound)
	if _, err := s.GetAuthRequest(ctx, "r2", t0); err != nil {
		t.Errorf("r2 after takes of other states: %v, want it still there", err)
	}
}

// SEC-1: a login step from another browser finds the request by its
// upstream state without consuming it.
func testGetAuthRequestByUpstreamState(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateAuthRequest(ctx, newAuthRequest("r1")))
	must(t, "create r2", s.CreateAuthRequest(ctx, newAuthRequest("r2")))
	must(t, "attach", s.AttachUpstreamState(ctx, "r1", "github", hash("st"), t0))
	want := newAuthRequest("r1")
	want.Connector = "github"
	want.UpstreamStateHash = hash("st")

	for range 2 {
		got, err := s.GetAuthRequestByUpstreamState(ctx, hash("st"), t0)
		must(t, "get", err)
		same(t, "by state", got, want)
		got.Scopes[0] = "changed"
	}
	_, err := s.GetAuthRequestByUpstreamState(ctx, hash("other"), t0)
	wantErr(t, "unknown state", err, store.ErrNotFound)
	_, err = s.GetAuthRequestByUpstreamState(ctx, nil, t0)
	wantErr(t, "nil state (r2 has none)", err, store.ErrNotFound)
	_, err = s.GetAuthRequestByUpstreamState(ctx, hash("st"), want.ExpiresAt)
	wantErr(t, "get at expiry", err, store.ErrNotFound)

	got, err := s.TakeAuthRequestByUpstreamState(ctx, hash("st"), t0)
	must(t, "take after gets", err)
	same(t, "taken after gets", got, want)
	_, err = s.GetAuthRequestByUpstreamState(ctx, hash("st"), t0)
	wantErr(t, "get taken", err, store.ErrNotFound)
}

// SEC-1: consent given again in another browser replaces the upstream
// state; the old one then finds nothing, the new one is single-use.
func testReplaceUpstreamState(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateAuthRequest(ctx, newAuthRequest("r1")))
	must(t, "create r2", s.CreateAuthRequest(ctx, newAuthRequest("r2")))
	must(t, "create r3", s.CreateAuthRequest(ctx, newAuthRequest("r3")))
	must(t, "attach", s.AttachUpstreamState(ctx, "r1", "github", hash("old"), t0))
	must(t, "attach r2", s.AttachUpstreamState(ctx, "r2", "github", hash("r2-state"), t0))

	wantErr(t, "unknown request", s.ReplaceUpstreamState(ctx, "nope", "local", hash("old"), hash("new"), t0), store.ErrNotFound)
	exp := newAuthRequest("r1").ExpiresAt
	wantErr(t, "expired request", s.ReplaceUpstreamState(ctx, "r1", "local", hash("old"), hash("new"), exp), store.ErrNotFound)
	wantErr(t, "wrong old state", s.ReplaceUpstreamState(ctx, "r1", "local", hash("r2-state"), hash("new"), t0), store.ErrConflict)
	wantErr(t, "request without a state", s.ReplaceUpstreamState(ctx, "r3", "local", hash("old"), hash("new"), t0), store.ErrConflict)
	wantErr(t, "new state of another request", s.ReplaceUpstreamState(ctx, "r1", "local", hash("old"), hash("r2-state"), t0), store.ErrConflict)
	if err := s.ReplaceUpstreamState(ctx, "r1", "local", nil, hash("new"), t0); err == nil {
		t.Error("replace with an empty old state: nil error, want an error")
	}
	if err := s.ReplaceUpstreamState(ctx, "r1", "local", hash("old"), nil, t0); err == nil {
		t.Error("replace with an empty new state: nil error, want an error")
	}

	st := hash("new")
	must(t, "replace", s.ReplaceUpstreamState(ctx, "r1", "local", hash("old"), st, t0))
	st[0] ^= 0xff // the store kept its own copy
	want := newAuthRequest("r1")
	want.Connector = "local"
	want.UpstreamStateHash = hash("new")
	got, err := s.GetAuthRequest(ctx, "r1", t0)
	must(t, "get", err)
	same(t, "after replace", got, want)

	wantErr(t, "replace again from the old state", s.ReplaceUpstreamState(ctx, "r1", "github", hash("old"), hash("newer"), t0), store.ErrConflict)
	_, err = s.GetAuthRequestByUpstreamState(ctx, hash("old"), t0)
	wantErr(t, "get by the old state", err, store.ErrNotFound)
	_, err = s.TakeAuthRequestByUpstreamState(ctx, hash("old"), t0)
	wantErr(t, "take by the old state", err, store.ErrNotFound)
	got, err = s.TakeAuthRequestByUpstreamState(ctx, hash("new"), t0)
	must(t, "take by the new state", err)
	same(t, "taken", got, want)
	_, err = s.TakeAuthRequestByUpstreamState(ctx, hash("new"), t0)
	wantErr(t, "second take", err, store.ErrNotFound)
	if _, err := s.GetAuthRequestByUpstreamState(ctx, hash("r2-state"), t0); err != nil {
		t.Errorf("r2 after r1's replace and take: %v, want it still there", err)
	}
}

func testDeleteAuthRequest(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateAuthRequest(ctx, newAuthRequest("r1")))
	must(t, "create r2", s.CreateAuthRequest(ctx, newAuthRequest("r2")))
	must(t, "attach", s.AttachUpstreamState(ctx, "r1", "github", hash("st"), t0))
	must(t, "delete", s.DeleteAuthRequest(ctx, "r1"))
	err := s.DeleteAuthRequest(ctx, "r1")
	wantErr(t, "delete again", err, store.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, "r1", t0)
	wantErr(t, "get deleted", err, store.ErrNotFound)
	_, err = s.TakeAuthRequestByUpstreamState(ctx, hash("st"), t0)
	wantErr(t, "take deleted", err, store.ErrNotFound)
	wantErr(t, "delete unknown", s.DeleteAuthRequest(ctx, "nope"), store.ErrNotFound)

	// Deleting an expired request still reports that it was there: the
	// caller racing for it must be able to tell it won.
	exp := newAuthRequest("r2").ExpiresAt
	if _, err := s.GetAuthRequest(ctx, "r2", exp); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("r2 at expiry: %v, want ErrNotFound", err)
	}
	must(t, "delete expired", s.DeleteAuthRequest(ctx, "r2"))
}

// The client's state is echoed verbatim (RFC 6749 §4.1.2), whatever bytes
// it sent: a NUL or bytes that are not UTF-8 come back as they went in,
// and do not make the request fail to store.
func testAuthRequestStateBytes(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, state := range []string{"a\x00b", "\xff\xfe not UTF-8", "\x00"} {
		r := newAuthRequest(fmt.Sprint("r", i))
		r.State = state
		must(t, "create", s.CreateAuthRequest(ctx, r))
		got, err := s.GetAuthRequest(ctx, r.ID, t0)
		must(t, "get", err)
		if got.State != state {
			t.Errorf("state %q came back as %q, want it byte for byte", state, got.State)
		}
		must(t, "attach", s.AttachUpstreamState(ctx, r.ID, "github", hash(r.ID), t0))
		got, err = s.TakeAuthRequestByUpstreamState(ctx, hash(r.ID), t0)
		must(t, "take", err)
		if got.State != state {
			t.Errorf("state %q taken as %q, want it byte for byte", state, got.State)
		}
	}
}

func newAuthRequestSigningIn(id string) *store.AuthRequest {
	r := newAuthRequest(id)
	r.SignIn = true
	return r
}
