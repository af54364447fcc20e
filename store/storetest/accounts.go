package storetest

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

func testClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newClient("c1")
	must(t, "create", s.CreateClient(ctx, c))
	want := newClient("c1")

	// The store keeps its own copy of what it was given...
	c.RedirectURIs[0] = "https://evil.example/cb"
	c.SecretHash[0] ^= 0xff
	got, err := s.GetClient(ctx, "c1")
	must(t, "get", err)
	same(t, "round trip", got, want)

	// ...and hands out copies.
	got.RedirectURIs[0] = "https://evil.example/cb"
	got.GrantTypes = append(got.GrantTypes[:0], "implicit")
	got.SecretHash[0] ^= 0xff
	again, err := s.GetClient(ctx, "c1")
	must(t, "get again", err)
	same(t, "after mutating a returned client", again, want)

	other := newClient("c1")
	other.Name = "impostor"
	wantErr(t, "duplicate id", s.CreateClient(ctx, other), store.ErrConflict)
	again, err = s.GetClient(ctx, "c1")
	must(t, "get after conflict", err)
	same(t, "after conflict", again, want)

	_, err = s.GetClient(ctx, "nope")
	wantErr(t, "unknown", err, store.ErrNotFound)

	// A public client with every optional field empty and a zero time.
	bare := &store.Client{ID: "bare", TokenEndpointAuthMethod: "none"}
	must(t, "create bare", s.CreateClient(ctx, bare))
	got, err = s.GetClient(ctx, "bare")
	must(t, "get bare", err)
	same(t, "bare round trip", got, bare)
	if !got.CreatedAt.IsZero() {
		t.Errorf("zero CreatedAt came back as %v, want the zero time", got.CreatedAt)
	}
	if !got.Public() {
		t.Errorf("bare client with auth method %q is not public, want public", got.TokenEndpointAuthMethod)
	}

}

func testClientSecretNilVsEmpty(t *testing.T, s store.Store) {
	ctx := t.Context()
	pub := newClient("public")
	pub.SecretHash = nil
	empty := newClient("empty")
	empty.SecretHash = []byte{}
	must(t, "create public", s.CreateClient(ctx, pub))
	must(t, "create empty", s.CreateClient(ctx, empty))

	got, err := s.GetClient(ctx, "public")
	must(t, "get public", err)
	if got.SecretHash != nil {
		t.Errorf("nil SecretHash came back as %#v, want nil", got.SecretHash)
	}
	got, err = s.GetClient(ctx, "empty")
	must(t, "get empty", err)
	if got.SecretHash == nil || len(got.SecretHash) != 0 {
		t.Errorf("empty SecretHash came back as %#v, want empty and not nil", got.SecretHash)
	}
}

func testConsent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const notes, ops = "https://mcp.example/notes", "https://mcp.example/ops"
	_, err := s.GetConsent(ctx, "github:1", "c1", notes)
	wantErr(t, "none yet", err, store.ErrNotFound)

	c := &store.Consent{UserID: "github:1", ClientID: "c1", Resource: notes, Scopes: []string{"mcp:read"},
		RedirectURIs: []string{"http://127.0.0.1:4000/cb", "https://app.example/cb"}, CreatedAt: t0}
	must(t, "put", s.PutConsent(ctx, c))
	c.Scopes[0], c.RedirectURIs[0] = "changed", "changed"
	got, err := s.GetConsent(ctx, "github:1", "c1", notes)
	must(t, "get", err)
	same(t, "round trip", got, &store.Consent{UserID: "github:1", ClientID: "c1", Resource: notes, Scopes: []string{"mcp:read"},
		RedirectURIs: []string{"http://127.0.0.1:4000/cb", "https://app.example/cb"}, CreatedAt: t0})
	got.Scopes[0] = "changed"

	// Put replaces: scopes, redirect URIs and time are the new ones, not
	// a merge.
	repl := &store.Consent{UserID: "github:1", ClientID: "c1", Resource: notes, Scopes: []string{"mcp:write", "mcp:admin"},
		RedirectURIs: []string{"https://app.example/other"}, CreatedAt: t0.Add(time.Hour)}
	must(t, "replace", s.PutConsent(ctx, repl))
	got, err = s.GetConsent(ctx, "github:1", "c1", notes)
	must(t, "get replaced", err)
	same(t, "replaced", got, repl)

	// Consent is per user, client and resource (SEC-134).
	_, err = s.GetConsent(ctx, "github:1", "c2", notes)
	wantErr(t, "other client", err, store.ErrNotFound)
	_, err = s.GetConsent(ctx, "github:2", "c1", notes)
	wantErr(t, "other user", err, store.ErrNotFound)
	_, err = s.GetConsent(ctx, "github:1", "c1", ops)
	wantErr(t, "other resource", err, store.ErrNotFound)
	other := &store.Consent{UserID: "github:2", ClientID: "c1", Resource: notes, Scopes: []string{"mcp:read"}, CreatedAt: t0}
	must(t, "put other user", s.PutConsent(ctx, other))
	opsToo := &store.Consent{UserID: "github:1", ClientID: "c1", Resource: ops, Scopes: []string{"mcp:read"}, CreatedAt: t0}
	must(t, "put other resource", s.PutConsent(ctx, opsToo))
	got, err = s.GetConsent(ctx, "github:1", "c1", notes)
	must(t, "get after other user and resource", err)
	same(t, "first approval untouched", got, repl)

	// Codes issued under the approvals: one not yet redeemed, one
	// redeemed, and one of the same person for another client.
	code := func(name, userID, clientID string) *store.Code {
		c := newCode(name)
		c.User.ID, c.ClientID = userID, clientID
		must(t, "create code "+name, s.CreateCode(ctx, c))
		return c
	}
	unused, used, elsewhere := code("unused", "github:1", "c1"), code("used", "github:1", "c1"), code("elsewhere", "github:1", "c2")
	otherUser, redeemed := code("other-user", "github:2", "c1"), code("redeemed", "github:1", "c1")
	_, err = s.ConsumeCode(ctx, used.Hash, challenge, t0)
	must(t, "consume the used code", err)
	// One redeemed whole: its grant stored.
	_, err = s.ConsumeCode(ctx, redeemed.Hash, challenge, t0)
	must(t, "consume the redeemed code", err)
	grantOf := func(c *store.Code) *store.Grant {
		return &store.Grant{ID: c.GrantID, ClientID: c.ClientID, User: c.User, Resource: c.Resource, Scopes: c.Scopes, CreatedAt: t0}
	}
	must(t, "the redeemed code's grant", s.CreateGrant(ctx, grantOf(redeemed), nil))

	// DeleteConsent forgets one user's approvals of one client, for every
	// resource, and deleting none is no error (SEC-109); with them, the
	// codes issued under them not yet redeemed (SEC-155), not the one
	// redeemed (its replay must still be seen, PKCE-3), nor another
	// client's or another person's.
	must(t, "delete", s.DeleteConsent(ctx, "github:1", "c1"))
	for _, r := range []string{notes, ops} {
		_, err = s.GetConsent(ctx, "github:1", "c1", r)
		wantErr(t, "deleted "+r, err, store.ErrNotFound)
	}
	_, err = s.ConsumeCode(ctx, unused.Hash, challenge, t0)
	wantErr(t, "SEC-155: the unredeemed code after DeleteConsent", err, store.ErrNotFound)
	_, err = s.ConsumeCode(ctx, used.Hash, challenge, t0)
	wantErr(t, "the redeemed code after DeleteConsent", err, store.ErrCodeReused)
	// SEC-155: a code spent but whose grant is not stored yet, a
	// redemption under way, stores no live grant after DeleteConsent: its
	// grant is stored revoked in the same write, so the redemption's
	// CreateGrant conflicts. A grant stored before is left as it was, for
	// EndClientGrants to revoke.
	err = s.CreateGrant(ctx, grantOf(used), nil)
	wantErr(t, "SEC-155: the grant of a code spent before DeleteConsent", err, store.ErrConflict)
	if g, err := s.GetGrant(ctx, used.GrantID); err != nil || g.RevokedAt.IsZero() {
		t.Errorf("SEC-155: the grant of a code spent before DeleteConsent: %+v, %v; want it stored revoked", g, err)
	}
	if g, err := s.GetGrant(ctx, redeemed.GrantID); err != nil || !g.RevokedAt.IsZero() {
		t.Errorf("the grant stored before DeleteConsent: %+v, %v; want it as it was", g, err)
	}
	for _, c := range []*store.Code{elsewhere, otherUser} {
		_, err = s.ConsumeCode(ctx, c.Hash, challenge, t0)
		must(t, "another client's or person's code after DeleteConsent", err)
		must(t, "another client's or person's grant after DeleteConsent", s.CreateGrant(ctx, grantOf(c), nil))
	}
	got, err = s.GetConsent(ctx, "github:2", "c1", notes)
	must(t, "other user after delete", err)
	same(t, "other user untouched", got, other)
	must(t, "delete again", s.DeleteConsent(ctx, "github:1", "c1"))
}

func testSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	ss := &store.Session{Hash: hash("cookie"), User: user("1"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	must(t, "create", s.CreateSession(ctx, ss))
	want := &store.Session{Hash: hash("cookie"), User: user("1"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	ss.User.Groups[0] = "changed"

	got, err := s.GetSession(ctx, hash("cookie"), t0)
	must(t, "get", err)
	same(t, "round trip", got, want)
	got.User.Groups[0] = "changed"
	got.Hash[0] ^= 0xff
	got, err = s.GetSession(ctx, hash("cookie"), t0)
	must(t, "get again", err)
	same(t, "after mutating a returned session", got, want)

	wantErr(t, "duplicate", s.CreateSession(ctx, want), store.ErrConflict)

	_, err = s.GetSession(ctx, hash("cookie"), want.ExpiresAt.Add(-time.Nanosecond))
	must(t, "get just before expiry", err)
	_, err = s.GetSession(ctx, hash("cookie"), want.ExpiresAt)
	wantErr(t, "get at expiry", err, store.ErrNotFound)
	_, err = s.GetSession(ctx, hash("other"), t0)
	wantErr(t, "unknown", err, store.ErrNotFound)

	// A sign-out: the session is gone, the others stay.
	must(t, "create another", s.CreateSession(ctx, &store.Session{Hash: hash("cookie 2"), User: user("1"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	must(t, "delete", s.DeleteSession(ctx, hash("cookie")))
	_, err = s.GetSession(ctx, hash("cookie"), t0)
	wantErr(t, "get after delete", err, store.ErrNotFound)
	wantErr(t, "delete again", s.DeleteSession(ctx, hash("cookie")), store.ErrNotFound)
	_, err = s.GetSession(ctx, hash("cookie 2"), t0)
	must(t, "the other session after the delete", err)

}

func testLocalUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	n, err := s.CountLocalUsers(ctx)
	must(t, "count empty", err)
	if n != 0 {
		t.Fatalf("count of an empty store = %d, want 0", n)
	}
	_, err = s.GetLocalUser(ctx, "alice")
	wantErr(t, "unknown", err, store.ErrNotFound)

	alice := &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$first"), CreatedAt: t0}
	must(t, "put", s.PutLocalUser(ctx, alice))
	alice.PasswordHash[0] = 'X'
	got, err := s.GetLocalUser(ctx, "alice")
	must(t, "get", err)
	same(t, "round trip", got, &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$first"), CreatedAt: t0})
	got.PasswordHash[0] = 'X'

	// Put replaces (a password change), and does not add a user.
	repl := &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$second"), CreatedAt: t0.Add(time.Hour)}
	must(t, "replace", s.PutLocalUser(ctx, repl))
	got, err = s.GetLocalUser(ctx, "alice")
	must(t, "get replaced", err)
	same(t, "replaced", got, repl)
	n, err = s.CountLocalUsers(ctx)
	must(t, "count", err)
	if n != 1 {
		t.Errorf("count after put and replace = %d, want 1", n)
	}

	// Groups come back as they were put, and a copy: the caller's slice
	// is not the store's.
	grouped := &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$third"), Groups: []string{"admins", "devs"}, CreatedAt: t0}
	must(t, "put with groups", s.PutLocalUser(ctx, grouped))
	grouped.Groups[0] = "changed"
	got, err = s.GetLocalUser(ctx, "alice")
	must(t, "get with groups", err)
	same(t, "groups", got, &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$third"), Groups: []string{"admins", "devs"}, CreatedAt: t0})
	got.Groups[0] = "changed"
	got, err = s.GetLocalUser(ctx, "alice")
	must(t, "get with groups again", err)
	same(t, "groups after the caller changed its copy", got, &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$third"), Groups: []string{"admins", "devs"}, CreatedAt: t0})

	// Configured, the mark of an account serve's configuration sets,
	// comes back as put, and a later put sets it again either way.
	for _, configured := range []bool{true, false} {
		put := &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$third"), Groups: []string{"admins", "devs"}, CreatedAt: t0, Configured: configured}
		must(t, "put configured", s.PutLocalUser(ctx, put))
		got, err = s.GetLocalUser(ctx, "alice")
		must(t, "get configured", err)
		same(t, "configured", got, put)
		list, err := s.ListLocalUsers(ctx)
		must(t, "list configured", err)
		if len(list) != 1 || list[0].Configured != configured {
			t.Errorf("listed %+v, want alice with Configured %v", list, configured)
		}
	}

	must(t, "put bob", s.PutLocalUser(ctx, &store.LocalUser{Name: "bob", PasswordHash: []byte("$2a$10$bob")}))
	n, err = s.CountLocalUsers(ctx)
	must(t, "count", err)
	if n != 2 {
		t.Errorf("count with two users = %d, want 2", n)
	}
	got, err = s.GetLocalUser(ctx, "bob")
	must(t, "get bob", err)
	if !got.CreatedAt.IsZero() {
		t.Errorf("zero CreatedAt came back as %v, want the zero time", got.CreatedAt)
	}
}

// SEC-152: CreateLocalUser makes an account only where none of its name
// is, and leaves an existing one as it was.
func testCreateLocalUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := &store.LocalUser{Name: "admin", PasswordHash: []byte("$2a$10$first"), Groups: []string{"ops"}, CreatedAt: t0}
	must(t, "create", s.CreateLocalUser(ctx, first))
	got, err := s.GetLocalUser(ctx, "admin")
	must(t, "get created", err)
	same(t, "created", got, first)

	err = s.CreateLocalUser(ctx, &store.LocalUser{Name: "admin", PasswordHash: []byte("$2a$10$second"), CreatedAt: t0.Add(time.Hour)})
	wantErr(t, "create again", err, store.ErrConflict)
	got, err = s.GetLocalUser(ctx, "admin")
	must(t, "get after the refused create", err)
	same(t, "after the refused create", got, first)
}

func testSigningKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	keys, err := s.ListSigningKeys(ctx)
	must(t, "list empty", err)
	if len(keys) != 0 {
		t.Fatalf("empty store lists %d keys, want none", len(keys))
	}

	mk := func(id string, created time.Time) *store.SigningKey {
		return &store.SigningKey{
			ID:        id,
			Algorithm: "EdDSA",
			Private:   []byte("sealed-" + id),
			Public:    []byte(`{"kty":"OKP","crv":"Ed25519","kid":"` + id + `"}`),
			CreatedAt: created,
		}
	}
	// Inserted out of order; b and b2 share a time and keep insertion order.
	c := mk("c", t0.Add(2*time.Hour))
	c.Algorithm = "ES256"
	c.RetiredAt = t0.Add(3 * time.Hour)
	a := mk("a", t0)
	b := mk("b", t0.Add(time.Hour))
	b2 := mk("b2", t0.Add(time.Hour))
	for _, k := range []*store.SigningKey{c, a, b, b2} {
		must(t, "create "+k.ID, s.CreateSigningKey(ctx, k))
	}
	wantErr(t, "duplicate kid", s.CreateSigningKey(ctx, mk("a", t0.Add(5*time.Hour))), store.ErrConflict)

	keys, err = s.ListSigningKeys(ctx)
	must(t, "list", err)
	same(t, "oldest first", keys, []*store.SigningKey{a, b, b2, c})

	keys[0].Private[0] ^= 0xff
	keys[0].ID = "changed"
	again, err := s.ListSigningKeys(ctx)
	must(t, "list again", err)
	same(t, "after mutating a returned key", again, []*store.SigningKey{a, b, b2, c})
}

// The first value put under a name stays: a later put returns it, and of
// racing puts with different values all get the same one back.
func testPutMetaOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := []byte{0, 1, 2, 0xff, 'k'}
	got, err := s.PutMetaOnce(ctx, "secret_key_check", first)
	must(t, "put", err)
	if !bytes.Equal(got, first) {
		t.Fatalf("first put returned %x, want %x", got, first)
	}
	got, err = s.PutMetaOnce(ctx, "secret_key_check", []byte("other"))
	must(t, "put again", err)
	if !bytes.Equal(got, first) {
		t.Fatalf("second put returned %q, want the first value %x", got, first)
	}
	got[0] = 9
	if got, err = s.PutMetaOnce(ctx, "secret_key_check", []byte("x")); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("after mutating a returned value: %x, %v; want %x", got, err, first)
	}
	if got, err = s.PutMetaOnce(ctx, "another", []byte("b")); err != nil || string(got) != "b" {
		t.Fatalf("another name: %q, %v; want b", got, err)
	}

	const racers = 8
	var wg sync.WaitGroup
	results := make([][]byte, racers)
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() { results[i], errs[i] = s.PutMetaOnce(ctx, "raced", []byte{byte('a' + i)}) })
	}
	wg.Wait()
	for i := range racers {
		must(t, "racing put", errs[i])
		if len(results[i]) != 1 || !bytes.Equal(results[i], results[0]) {
			t.Fatalf("racer %d got %q, racer 0 %q: want one value for all", i, results[i], results[0])
		}
	}
}
