package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

// revokedAt reads the RevokedAt of grant id.
func revokedAt(t *testing.T, s store.Store, id string) time.Time {
	t.Helper()
	g, err := s.GetGrant(t.Context(), id)
	must(t, "get grant "+id, err)
	return g.RevokedAt
}

func wantIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if got == nil || !slices.Equal(got, want) {
		t.Errorf("%s: %#v, want %#v (never nil)", what, got, want)
	}
}

// SEC-94: an operator's removal of a client takes its consents and unused
// codes with it and revokes its live grants, and touches nothing of
// another client's.
func testDeleteClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	list, err := s.ListClients(ctx, 0)
	must(t, "list empty", err)
	if list == nil || len(list) != 0 {
		t.Fatalf("clients of an empty store: %#v, want an empty list", list)
	}
	later := newClient("c-later")
	later.CreatedAt = t0.Add(time.Hour)
	must(t, "create later", s.CreateClient(ctx, later))
	must(t, "create c-b", s.CreateClient(ctx, newClient("c-b")))
	must(t, "create c-a", s.CreateClient(ctx, newClient("c-a")))
	list, err = s.ListClients(ctx, 0)
	must(t, "list", err)
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	wantIDs(t, "clients, newest first", ids, []string{"c-later", "c-a", "c-b"})
	same(t, "listed client", list[1], newClient("c-a"))
	// Anyone may register clients: a page lists the newest it shows.
	list, err = s.ListClients(ctx, 2)
	must(t, "list 2", err)
	ids = nil
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	wantIDs(t, "the 2 newest clients", ids, []string{"c-later", "c-a"})

	grantOf := func(id, client string) *store.Grant {
		g := newGrant(id)
		g.ClientID = client
		return g
	}
	must(t, "grant 1", s.CreateGrant(ctx, grantOf("g-a1", "c-a"), newRefresh("g-a1", "g-a1")))
	must(t, "grant 2", s.CreateGrant(ctx, grantOf("g-a2", "c-a"), nil))
	must(t, "grant revoked", s.CreateGrant(ctx, grantOf("g-a0", "c-a"), nil))
	must(t, "revoke", s.RevokeGrant(ctx, "g-a0", t0))
	must(t, "grant other", s.CreateGrant(ctx, grantOf("g-b", "c-b"), nil))
	code := newCode("a")
	code.ClientID = "c-a"
	must(t, "code", s.CreateCode(ctx, code))
	otherCode := newCode("b")
	otherCode.ClientID = "c-b"
	must(t, "other code", s.CreateCode(ctx, otherCode))
	// A code spent whose redemption has not stored its grant yet.
	spent := newCode("a-spent")
	spent.ClientID = "c-a"
	must(t, "spent code", s.CreateCode(ctx, spent))
	_, err = s.ConsumeCode(ctx, spent.Hash, challenge, t0)
	must(t, "spend the code", err)
	must(t, "consent", s.PutConsent(ctx, &store.Consent{UserID: "github:1", ClientID: "c-a", Scopes: []string{"mcp:read"}, CreatedAt: t0}))
	must(t, "other consent", s.PutConsent(ctx, &store.Consent{UserID: "github:1", ClientID: "c-b", Scopes: []string{"mcp:read"}, CreatedAt: t0}))

	at := t0.Add(2 * time.Hour)
	revoked, err := s.DeleteClient(ctx, "c-a", at)
	must(t, "delete", err)
	wantIDs(t, "grants revoked", revoked, []string{"g-a1", "g-a2", spent.GrantID})
	// SEC-155: the redemption under way stores no live grant.
	late := grantOf(spent.GrantID, "c-a")
	wantErr(t, "SEC-155: the grant of a code spent before DeleteClient", s.CreateGrant(ctx, late, nil), store.ErrConflict)
	_, err = s.GetClient(ctx, "c-a")
	wantErr(t, "deleted client", err, store.ErrNotFound)
	_, err = s.GetConsent(ctx, "github:1", "c-a", "")
	wantErr(t, "its consent", err, store.ErrNotFound)
	_, err = s.ConsumeCode(ctx, code.Hash, challenge, t0)
	wantErr(t, "its code", err, store.ErrNotFound)
	for _, id := range []string{"g-a1", "g-a2"} {
		if got := revokedAt(t, s, id); !got.Equal(at) {
			t.Errorf("grant %s revoked at %v, want %v", id, got, at)
		}
	}
	if got := revokedAt(t, s, "g-a0"); !got.Equal(t0) {
		t.Errorf("grant revoked before: revoked at %v, want its first revocation %v", got, t0)
	}
	_, _, err = s.RotateRefresh(ctx, hash("refresh-g-a1"), newRefresh("g-a1-next", ""), nil, t0, 0)
	wantErr(t, "its refresh token", err, store.ErrNotFound)
	since, err := s.RevokedGrantsSince(ctx, at)
	must(t, "revoked since", err)
	wantIDs(t, "revoked since", since, []string{"g-a1", "g-a2", spent.GrantID})

	// The other client keeps everything.
	if got := revokedAt(t, s, "g-b"); !got.IsZero() {
		t.Errorf("the other client's grant was revoked at %v", got)
	}
	_, err = s.GetConsent(ctx, "github:1", "c-b", "")
	must(t, "other consent", err)
	_, err = s.ConsumeCode(ctx, otherCode.Hash, challenge, t0)
	must(t, "other code", err)

	_, err = s.DeleteClient(ctx, "c-a", at)
	wantErr(t, "deleted again", err, store.ErrNotFound)
	_, err = s.DeleteClient(ctx, "nope", at)
	wantErr(t, "unknown", err, store.ErrNotFound)
	revoked, err = s.DeleteClient(ctx, "c-later", at)
	must(t, "delete a client without grants", err)
	wantIDs(t, "nothing revoked", revoked, []string{})
}

// ListGrants lists a user's grants or everyone's, newest first, revoked
// ones included unless Live, at most Limit of them.
func testListGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	list, err := s.ListGrants(ctx, store.GrantQuery{})
	must(t, "list empty", err)
	if list == nil || len(list) != 0 {
		t.Fatalf("grants of an empty store: %#v, want an empty list", list)
	}
	for i, id := range []string{"g1", "g2", "g3"} {
		g := newGrant(id)
		g.CreatedAt = t0.Add(time.Duration(i) * time.Hour)
		if id == "g3" {
			g.User = user("other")
		} else {
			g.User = user("one")
		}
		must(t, "create "+id, s.CreateGrant(ctx, g, nil))
	}
	must(t, "revoke g1", s.RevokeGrant(ctx, "g1", t0))
	ids := func(gs []*store.Grant) []string {
		out := []string{}
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}
	list, err = s.ListGrants(ctx, store.GrantQuery{})
	must(t, "list all", err)
	wantIDs(t, "every grant, newest first", ids(list), []string{"g3", "g2", "g1"})
	want := newGrant("g1")
	want.User, want.RevokedAt = user("one"), t0
	same(t, "listed grant", list[2], want)
	list, err = s.ListGrants(ctx, store.GrantQuery{UserID: user("one").ID})
	must(t, "list one user's", err)
	wantIDs(t, "one user's", ids(list), []string{"g2", "g1"})
	list, err = s.ListGrants(ctx, store.GrantQuery{Limit: 2})
	must(t, "list the 2 newest", err)
	wantIDs(t, "the 2 newest grants", ids(list), []string{"g3", "g2"})
	list, err = s.ListGrants(ctx, store.GrantQuery{UserID: user("one").ID, Limit: 1})
	must(t, "list one user's newest", err)
	wantIDs(t, "one user's newest", ids(list), []string{"g2"})
	// A person's page shows their live grants: the revoked ones, kept
	// until housekeeping, must not take the places of the live.
	list, err = s.ListGrants(ctx, store.GrantQuery{UserID: user("one").ID, Live: true})
	must(t, "list one user's live", err)
	wantIDs(t, "one user's live", ids(list), []string{"g2"})
	must(t, "revoke g2", s.RevokeGrant(ctx, "g2", t0))
	list, err = s.ListGrants(ctx, store.GrantQuery{Live: true, Limit: 1})
	must(t, "list the newest live", err)
	wantIDs(t, "the newest live grant", ids(list), []string{"g3"})
	list, err = s.ListGrants(ctx, store.GrantQuery{UserID: user("one").ID, Live: true, Limit: 1})
	must(t, "list one user's newest live", err)
	wantIDs(t, "one user's newest live, with none", ids(list), []string{})
	list, err = s.ListGrants(ctx, store.GrantQuery{UserID: "github:nobody"})
	must(t, "list nobody's", err)
	wantIDs(t, "nobody's", ids(list), []string{})
}

// ListGrants says when each grant last issued tokens: its newest refresh
// token's creation, the code exchange's or the latest rotation's, and
// zero for a grant that issued no refresh token. The account page shows
// it as the grant's last use without a write per request.
func testListGrantsLastIssued(t *testing.T, s store.Store) {
	ctx := t.Context()
	rotated, plain := newGrant("rotated"), newGrant("plain")
	must(t, "create rotated", s.CreateGrant(ctx, rotated, newRefresh("r1", "rotated")))
	must(t, "create plain", s.CreateGrant(ctx, plain, nil))
	at := t0.Add(2 * time.Hour)
	next := newRefresh("r2", "")
	next.CreatedAt = at
	_, _, err := s.RotateRefresh(ctx, hash("refresh-r1"), next, []byte("s2"), at, 0)
	must(t, "rotate", err)
	list, err := s.ListGrants(ctx, store.GrantQuery{})
	must(t, "list", err)
	got := map[string]time.Time{}
	for _, g := range list {
		got[g.ID] = g.LastIssuedAt
	}
	if !got["rotated"].Equal(at) || !got["plain"].IsZero() {
		t.Fatalf("LastIssuedAt: rotated %v, plain %v; want %v and zero", got["rotated"], got["plain"], at)
	}
}

// SEC-93: a disabled account stays disabled whatever PutLocalUser writes,
// and its user's sessions, unused codes and live grants end with it.
func testDisableLocalUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	list, err := s.ListLocalUsers(ctx)
	must(t, "list empty", err)
	if list == nil || len(list) != 0 {
		t.Fatalf("accounts of an empty store: %#v, want an empty list", list)
	}
	bob := &store.LocalUser{Name: "bob", PasswordHash: []byte("$2a$10$bob"), Groups: []string{"devs"}, CreatedAt: t0}
	alice := &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$alice"), CreatedAt: t0}
	must(t, "put bob", s.PutLocalUser(ctx, bob))
	must(t, "put alice", s.PutLocalUser(ctx, alice))

	local := func(name string) identity.User {
		return identity.User{ID: "local:" + name, Upstream: "local", Username: name, Name: name}
	}
	for _, name := range []string{"alice", "bob"} {
		must(t, "session "+name, s.CreateSession(ctx, &store.Session{Hash: hash("cookie-" + name), User: local(name), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		c := newCode(name)
		c.User = local(name)
		must(t, "code "+name, s.CreateCode(ctx, c))
		g := newGrant("g-" + name)
		g.User = local(name)
		must(t, "grant "+name, s.CreateGrant(ctx, g, newRefresh("g-"+name, "g-"+name)))
	}
	// A GitHub user whose id ends the same way is someone else.
	gh := newGrant("g-github-alice")
	gh.User = identity.User{ID: "github:alice", Upstream: "github"}
	must(t, "github grant", s.CreateGrant(ctx, gh, nil))

	at := t0.Add(time.Hour)
	revoked, err := s.DisableLocalUser(ctx, "alice", at)
	must(t, "disable", err)
	wantIDs(t, "grants revoked", revoked, []string{"g-alice"})
	got, err := s.GetLocalUser(ctx, "alice")
	must(t, "get disabled", err)
	same(t, "disabled", got, &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$alice"), CreatedAt: t0, DisabledAt: at})
	_, err = s.GetSession(ctx, hash("cookie-alice"), t0)
	wantErr(t, "her session", err, store.ErrNotFound)
	_, err = s.ConsumeCode(ctx, hash("code-alice"), challenge, t0)
	wantErr(t, "her code", err, store.ErrNotFound)
	if r := revokedAt(t, s, "g-alice"); !r.Equal(at) {
		t.Errorf("her grant revoked at %v, want %v", r, at)
	}

	// Bob and the GitHub user keep everything.
	_, err = s.GetSession(ctx, hash("cookie-bob"), t0)
	must(t, "bob's session", err)
	_, err = s.ConsumeCode(ctx, hash("code-bob"), challenge, t0)
	must(t, "bob's code", err)
	for _, id := range []string{"g-bob", "g-github-alice"} {
		if r := revokedAt(t, s, id); !r.IsZero() {
			t.Errorf("grant %s revoked at %v, want it live", id, r)
		}
	}

	// A password change, or the configuration's accounts at a start,
	// never enable her; a second disable keeps the first time.
	must(t, "put again", s.PutLocalUser(ctx, &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$new"), CreatedAt: t0}))
	revoked, err = s.DisableLocalUser(ctx, "alice", at.Add(time.Hour))
	must(t, "disable again", err)
	wantIDs(t, "revoked again", revoked, []string{})
	got, err = s.GetLocalUser(ctx, "alice")
	must(t, "get after put", err)
	same(t, "still disabled", got, &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$new"), CreatedAt: t0, DisabledAt: at})
	// A new account may be created disabled.
	must(t, "put carol", s.PutLocalUser(ctx, &store.LocalUser{Name: "carol", PasswordHash: []byte("$2a$10$carol"), CreatedAt: t0, DisabledAt: t0}))

	list, err = s.ListLocalUsers(ctx)
	must(t, "list", err)
	same(t, "accounts by name", list, []*store.LocalUser{
		{Name: "alice", PasswordHash: []byte("$2a$10$new"), CreatedAt: t0, DisabledAt: at},
		{Name: "bob", PasswordHash: []byte("$2a$10$bob"), Groups: []string{"devs"}, CreatedAt: t0},
		{Name: "carol", PasswordHash: []byte("$2a$10$carol"), CreatedAt: t0, DisabledAt: t0},
	})
	_, err = s.DisableLocalUser(ctx, "nobody", at)
	wantErr(t, "unknown", err, store.ErrNotFound)

	// Enabled again: the account logs in; what disabling ended stays ended.
	must(t, "enable", s.EnableLocalUser(ctx, "alice"))
	u, err := s.GetLocalUser(ctx, "alice")
	must(t, "get enabled", err)
	if !u.DisabledAt.IsZero() {
		t.Errorf("enabled alice: DisabledAt = %v, want zero", u.DisabledAt)
	}
	wantErr(t, "enable unknown", s.EnableLocalUser(ctx, "nobody"), store.ErrNotFound)
}

// SEC-130: PutLocalUser ends an account's browser sessions when it
// replaces the account's password hash or its groups, and only then: the
// same account put again (the configuration's, at every start) keeps
// them, and so does every other user's.
func testPutLocalUserEndsSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	local := func(name string) identity.User {
		return identity.User{ID: "local:" + name, Upstream: "local", Username: name, Name: name}
	}
	sessions := 0
	signIn := func(name string) []byte {
		sessions++
		h := hash(fmt.Sprintf("cookie-%s-%d", name, sessions))
		must(t, "session of "+name, s.CreateSession(ctx, &store.Session{Hash: h, User: local(name), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		return h
	}
	live := func(what string, h []byte, want bool) {
		t.Helper()
		_, err := s.GetSession(ctx, h, t0)
		switch {
		case want && err != nil:
			t.Errorf("%s: %v, want the session live", what, err)
		case !want && !errors.Is(err, store.ErrNotFound):
			t.Errorf("%s: %v, want it ended (ErrNotFound)", what, err)
		}
	}
	alice := &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$alice"), Groups: []string{"admins"}, CreatedAt: t0}
	must(t, "put alice", s.PutLocalUser(ctx, alice))
	must(t, "put bob", s.PutLocalUser(ctx, &store.LocalUser{Name: "bob", PasswordHash: []byte("$2a$10$bob"), CreatedAt: t0}))
	bob := signIn("bob")
	gh := hash("cookie-github-alice")
	must(t, "github session", s.CreateSession(ctx, &store.Session{Hash: gh, User: identity.User{ID: "github:alice", Upstream: "github"}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))

	first := signIn("alice")
	must(t, "put the same", s.PutLocalUser(ctx, alice))
	live("her session after the same account is put again", first, true)

	must(t, "new password", s.PutLocalUser(ctx, &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$other"), Groups: []string{"admins"}, CreatedAt: t0}))
	live("her session after a new password", first, false)

	second := signIn("alice")
	must(t, "out of admins", s.PutLocalUser(ctx, &store.LocalUser{Name: "alice", PasswordHash: []byte("$2a$10$other"), CreatedAt: t0}))
	live("her session after her groups changed", second, false)

	live("bob's session", bob, true)
	live("the GitHub user alice's session", gh, true)

	// No groups, written as an empty list or as none (an account from
	// before groups were stored has the empty list), are the same groups.
	// Fails before on SQLite and PostgreSQL: their texts, [] and null,
	// differed, and the account put again signed its person out.
	must(t, "carol, groups empty", s.PutLocalUser(ctx, &store.LocalUser{Name: "carol", PasswordHash: []byte("$2a$10$carol"), Groups: []string{}, CreatedAt: t0}))
	carol := signIn("carol")
	must(t, "carol, no groups", s.PutLocalUser(ctx, &store.LocalUser{Name: "carol", PasswordHash: []byte("$2a$10$carol"), CreatedAt: t0}))
	live("carol's session after her account is put again, no groups for an empty list", carol, true)
	must(t, "carol, groups empty again", s.PutLocalUser(ctx, &store.LocalUser{Name: "carol", PasswordHash: []byte("$2a$10$carol"), Groups: []string{}, CreatedAt: t0}))
	live("carol's session after her account is put again, an empty list for no groups", carol, true)
}
