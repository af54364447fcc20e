package storetest

import (
	"testing"

	"github.com/mcpgate/mcpgate/store"
)

// Lookups by a key a client sent (a client id, a request id from a form, a
// username) find nothing when the key is no stored key, whatever its bytes:
// a NUL or bytes that are not UTF-8 are not found, never a store failure,
// so that the caller answers "unknown" and not a server error.
func testOddKeysNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create client", s.CreateClient(ctx, newClient("c1")))
	must(t, "create request", s.CreateAuthRequest(ctx, newAuthRequest("r1")))
	must(t, "create grant", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))
	for _, key := range []string{"c1\x00", "\xff", "g1\xfe", "\x00"} {
		_, err := s.GetClient(ctx, key)
		wantErr(t, "get client", err, store.ErrNotFound)
		wantErr(t, "touch client", s.TouchClient(ctx, key, t0), store.ErrNotFound)
		_, err = s.GetAuthRequest(ctx, key, t0)
		wantErr(t, "get auth request", err, store.ErrNotFound)
		wantErr(t, "attach to request", s.AttachUpstreamState(ctx, key, "github", hash("st"), t0), store.ErrNotFound)
		wantErr(t, "replace state of request", s.ReplaceUpstreamState(ctx, key, "github", hash("a"), hash("b"), t0), store.ErrNotFound)
		wantErr(t, "delete auth request", s.DeleteAuthRequest(ctx, key), store.ErrNotFound)
		_, err = s.GetConsent(ctx, key, "c1", "r")
		wantErr(t, "get consent by user", err, store.ErrNotFound)
		_, err = s.GetConsent(ctx, "github:1", key, "r")
		wantErr(t, "get consent by client", err, store.ErrNotFound)
		_, err = s.GetConsent(ctx, "github:1", "c1", key)
		wantErr(t, "get consent by resource", err, store.ErrNotFound)
		_, err = s.GetGrant(ctx, key)
		wantErr(t, "get grant", err, store.ErrNotFound)
		wantErr(t, "revoke grant", s.RevokeGrant(ctx, key, t0), store.ErrNotFound)
		_, err = s.GetLocalUser(ctx, key)
		wantErr(t, "get local user", err, store.ErrNotFound)
		_, err = s.GetUpstreamSession(ctx, key)
		wantErr(t, "get upstream session", err, store.ErrNotFound)
		_, err = s.DeleteClient(ctx, key, t0)
		wantErr(t, "delete client", err, store.ErrNotFound)
		_, err = s.DisableLocalUser(ctx, key, t0)
		wantErr(t, "disable local user", err, store.ErrNotFound)
		grants, err := s.ListGrants(ctx, store.GrantQuery{UserID: key})
		if err != nil || len(grants) != 0 {
			t.Errorf("list grants of %q: %v %v, want none", key, grants, err)
		}
	}
}
