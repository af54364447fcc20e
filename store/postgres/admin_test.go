package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

// SEC-93, SEC-94: the grants an operator ends by removing their client or
// disabling their user are announced to the other replicas as RevokeGrant's
// are (SEC-80), each once.
func TestSEC94_AdminRevocationsReachTheOtherReplica(t *testing.T) {
	st := replicas(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ids, _ := follow(t, ctx, st[1])
	at := tc0.Add(time.Minute)

	must(t, st[0].CreateClient(ctx, &store.Client{ID: "doomed", TokenEndpointAuthMethod: "none", CreatedAt: tc0}))
	g := grant("g-client")
	g.ClientID = "doomed"
	must(t, st[0].CreateGrant(ctx, g, refresh("g-client")))
	revoked, err := st[0].DeleteClient(ctx, "doomed", at)
	if err != nil || !slices.Equal(revoked, []string{"g-client"}) {
		t.Fatalf("DeleteClient: %v %v, want [g-client]", revoked, err)
	}
	heard(t, ids, "g-client", "DeleteClient")

	must(t, st[0].PutLocalUser(ctx, &store.LocalUser{Name: "bob", PasswordHash: []byte("x"), CreatedAt: tc0}))
	for _, id := range []string{"g-bob-1", "g-bob-2"} {
		g := grant(id)
		g.User = identity.User{ID: "local:bob", Upstream: "local", Username: "bob"}
		must(t, st[0].CreateGrant(ctx, g, refresh(id)))
	}
	revoked, err = st[0].DisableLocalUser(ctx, "bob", at)
	if err != nil || !slices.Equal(revoked, []string{"g-bob-1", "g-bob-2"}) {
		t.Fatalf("DisableLocalUser: %v %v, want [g-bob-1 g-bob-2]", revoked, err)
	}
	var got []string
	for range 2 {
		select {
		case id := <-ids:
			got = append(got, id)
		case <-time.After(30 * time.Second):
			t.Fatalf("DisableLocalUser: heard %v within 30 s, want g-bob-1 and g-bob-2", got)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"g-bob-1", "g-bob-2"}) {
		t.Fatalf("DisableLocalUser: heard %v, want g-bob-1 and g-bob-2", got)
	}
	// Again: nothing left to revoke, nothing announced.
	if revoked, err := st[0].DisableLocalUser(ctx, "bob", at.Add(time.Minute)); err != nil || len(revoked) != 0 {
		t.Fatalf("DisableLocalUser again: %v %v, want nothing revoked", revoked, err)
	}
	select {
	case id := <-ids:
		t.Fatalf("a second DisableLocalUser announced grant %q, want nothing", id)
	case <-time.After(200 * time.Millisecond):
	}
}
