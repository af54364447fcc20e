package mcpgate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/store"
)

// errDiskFull is what a store that cannot write says; its text must never
// reach a client.
var errDiskFull = errors.New("disk I/O error: database or disk is full (/var/lib/mcpgate/mcpgate.db)")

// faultyStore is a store whose writes fail while failWrites is set, as a
// full disk or a read-only file makes them fail.
type faultyStore struct {
	store.Store
	failWrites atomic.Bool
	// failRotate fails RotateRefresh alone, as a write the store did not
	// take (the reuse path's revocation is part of it).
	failRotate atomic.Bool
	// failKeys makes ListSigningKeys fail, as a table the gateway may not
	// read would.
	failKeys atomic.Bool
	// failTake makes TakeAuthRequestByUpstreamState fail, as a login
	// meets a store it cannot read.
	failTake atomic.Bool
	// failCount makes AddRateHit fail, as a store that cannot write
	// fails to count a registration or a client assertion's use.
	failCount atomic.Bool
	// counts is how many times AddRateHit was called.
	counts atomic.Int64
}

// withFaultyStore wraps the gateway's store; the test reaches it through
// gw.store.
func withFaultyStore(c *mcpgate.Config) { c.Store = &faultyStore{Store: c.Store} }

func (g *gw) faulty() *faultyStore { return g.store.(*faultyStore) }

func (s *faultyStore) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	if s.failWrites.Load() {
		return fmt.Errorf("sqlite: revoke grant: %w", errDiskFull)
	}
	return s.Store.RevokeGrant(ctx, id, now)
}

func (s *faultyStore) RotateRefresh(ctx context.Context, old []byte, next *store.RefreshToken, successor []byte, now time.Time, grace time.Duration) (*store.Grant, *store.RefreshToken, error) {
	if s.failRotate.Load() {
		return nil, nil, fmt.Errorf("sqlite: rotate refresh: %w", errDiskFull)
	}
	return s.Store.RotateRefresh(ctx, old, next, successor, now, grace)
}

func (s *faultyStore) AddRateHit(ctx context.Context, key string, window, expires time.Time) (int, error) {
	s.counts.Add(1)
	if s.failCount.Load() {
		return 0, fmt.Errorf("sqlite: add rate hit: %w", errDiskFull)
	}
	return s.Store.AddRateHit(ctx, key, window, expires)
}

func (s *faultyStore) Ping(ctx context.Context) error {
	if s.failWrites.Load() {
		return fmt.Errorf("sqlite: ping: %w", errDiskFull)
	}
	return s.Store.Ping(ctx)
}

func (s *faultyStore) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	if s.failKeys.Load() {
		return nil, fmt.Errorf("sqlite: list signing keys: %w", errDiskFull)
	}
	return s.Store.ListSigningKeys(ctx)
}

func (s *faultyStore) TakeAuthRequestByUpstreamState(ctx context.Context, hash []byte, now time.Time) (*store.AuthRequest, error) {
	if s.failTake.Load() {
		return nil, fmt.Errorf("sqlite: take auth request: %w", errDiskFull)
	}
	return s.Store.TakeAuthRequestByUpstreamState(ctx, hash, now)
}

// SEC-12: a grant ended for a misused token while the store refused
// writes is denied in memory at once, its refresh token too, and revoked
// in the store as soon as the store takes writes again: a gateway started
// afterwards refuses its access token. Fails before this change: once the
// store recovered, the refresh token refreshed, and the restarted gateway
// accepted the access token.
func TestSEC12_MisuseRevokedOnceTheStoreTakesIt(t *testing.T) {
	g := newGateway(t, withFaultyStore)
	c, _, tok := g.fullFlow()
	other := g.register(nil)
	g.faulty().failWrites.Store(true)
	if resp, _ := g.refresh(other.ClientID, tok.RefreshToken, nil); resp.StatusCode < 400 {
		t.Fatalf("a refresh by another client: %d, want refused", resp.StatusCode)
	}
	g.faulty().failWrites.Store(false)
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the family's refresh after the misuse: %d, want 400 invalid_grant", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		grants, err := g.store.ListGrants(context.Background(), store.GrantQuery{UserID: "local:" + testUser})
		if err == nil && len(grants) == 1 && !grants[0].RevokedAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the store took writes again, the grant: %+v %v, want revoked there", grants, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := initializeStatus(g.restartOn(g.store), g.url, tok.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("a gateway started afterwards, the access token: %d, want 401", code)
	}
}

// disablingStore disables the local account whose code it consumes, right
// after consuming it: an operator's users disable that lands while the
// code's redemption is on its way to storing the grant.
type disablingStore struct{ store.Store }

func (s disablingStore) ConsumeCode(ctx context.Context, hash []byte, challenge string, now time.Time) (*store.Code, error) {
	c, err := s.Store.ConsumeCode(ctx, hash, challenge, now)
	if err == nil {
		if name, ok := strings.CutPrefix(c.User.ID, "local:"); ok {
			s.Store.DisableLocalUser(ctx, name, now)
		}
	}
	return c, err
}

// SEC-93: an account disabled while its code is being redeemed gets no
// grant: the token request is invalid_grant and nothing live is stored.
// Fails before this change: the grant was stored after the disabling had
// revoked the account's grants, and lived, refreshing, for good.
func TestSEC93_DisabledDuringRedemption(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.Store = disablingStore{c.Store} })
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	if resp, tok := g.exchange(a, code); resp.StatusCode != http.StatusBadRequest || tok.Error != "invalid_grant" {
		t.Fatalf("the redemption of a code whose account was disabled meanwhile: %d %+v, want 400 invalid_grant", resp.StatusCode, tok)
	}
	grants, err := g.store.ListGrants(context.Background(), store.GrantQuery{UserID: "local:" + testUser})
	if err != nil || slices.ContainsFunc(grants, func(gr *store.Grant) bool { return gr.RevokedAt.IsZero() }) {
		t.Fatalf("grants of the disabled account: %+v %v, want none live", grants, err)
	}
}
