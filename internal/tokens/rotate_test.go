package tokens

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Protected.KeyID
}

func openTestKeyset(t *testing.T, st KeyStore, now time.Time, opts KeysetOptions) *Keyset {
	t.Helper()
	ks, err := OpenKeyset(context.Background(), st, testSealer(t), now, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// After a rotation the new key signs; the old one verifies the tokens it
// signed until Keep after the new key's creation, then leaves the JWKS.
func TestRotateKeepsOldKeyUntilItsTokensExpire(t *testing.T) {
	st := &memKeys{}
	const keep = 2 * time.Hour
	ks := openTestKeyset(t, st, t0, KeysetOptions{Keep: keep})
	oldKid := ks.SigningKeyID()
	old := mint(t, ks, testClaims())

	rotatedAt := t0.Add(time.Minute)
	kid, err := ks.Rotate(context.Background(), rotatedAt)
	if err != nil {
		t.Fatal(err)
	}
	if kid == oldKid || ks.SigningKeyID() != kid || len(st.rows) != 2 {
		t.Fatalf("signs with %s (old %s), %d keys stored: want a second key that signs", kid, oldKid, len(st.rows))
	}
	c := testClaims()
	c.IssuedAt, c.ExpiresAt = rotatedAt, rotatedAt.Add(time.Hour)
	if got := kidOf(t, mint(t, ks, c)); got != kid {
		t.Fatalf("minted with kid %s, want the new key %s", got, kid)
	}
	if _, err := at(ks, t0.Add(30*time.Minute)).Verify(old, issuer, resource); err != nil {
		t.Fatalf("a token of the old key before it expires: %v", err)
	}
	if jwks := string(ks.JWKS()); !strings.Contains(jwks, oldKid) || !strings.Contains(jwks, kid) {
		t.Fatalf("JWKS %s, want both keys while the old one's tokens live", jwks)
	}

	// Just before Keep has run out the old key is still published.
	if err := ks.Reload(context.Background(), rotatedAt.Add(keep-time.Second)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ks.JWKS()), oldKid) {
		t.Fatal("the old key left the JWKS before Keep ran out")
	}
	if err := ks.Reload(context.Background(), rotatedAt.Add(keep)); err != nil {
		t.Fatal(err)
	}
	if jwks := string(ks.JWKS()); strings.Contains(jwks, oldKid) || !strings.Contains(jwks, kid) {
		t.Fatalf("JWKS %s, want only the new key once Keep has run out", jwks)
	}
	c2, err := at(ks, t0.Add(30*time.Minute)).Verify(old, issuer, resource)
	wantInvalid(t, c2, err)
}

// Processes that find the key due at once create one successor between
// them, and one that lists the keys after a rotation does not rotate again.
func TestRotateIfDueOnceAcrossProcesses(t *testing.T) {
	st := &memKeys{}
	const every = 30 * 24 * time.Hour
	first := openTestKeyset(t, st, t0, KeysetOptions{})
	later := t0.Add(every - time.Second)
	if rotated, err := first.RotateIfDue(context.Background(), later, every); err != nil || rotated || len(st.rows) != 1 {
		t.Fatalf("rotated %v, err %v, %d keys: want no rotation before it is due", rotated, err, len(st.rows))
	}

	const racers = 8
	kss := make([]*Keyset, racers)
	for i := range kss {
		kss[i] = openTestKeyset(t, st, t0, KeysetOptions{})
	}
	due := t0.Add(every)
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() { _, errs[i] = kss[i].RotateIfDue(context.Background(), due, every) })
	}
	wg.Wait()
	for i := range racers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	if len(st.rows) != 2 {
		t.Fatalf("%d keys stored after racing rotations, want 2", len(st.rows))
	}
	for i := range racers {
		if err := kss[i].Reload(context.Background(), due); err != nil {
			t.Fatal(err)
		}
		if kss[i].SigningKeyID() != st.rows[1].ID {
			t.Fatalf("racer %d signs with %s, want the one new key %s", i, kss[i].SigningKeyID(), st.rows[1].ID)
		}
	}
	// first still signs with the old key, due since: it reloads, finds
	// the new key, and leaves it be.
	if _, err := first.RotateIfDue(context.Background(), due.Add(time.Minute), every); err != nil {
		t.Fatal(err)
	}
	if len(st.rows) != 2 || first.SigningKeyID() != st.rows[1].ID {
		t.Fatalf("%d keys: a process that listed after the rotation rotated again", len(st.rows))
	}
}

// A token signed by a key another process has just created verifies at
// once: the unknown kid makes the keyset list the keys again.
func TestUnknownKidReloads(t *testing.T) {
	st := &memKeys{}
	a := openTestKeyset(t, st, t0, KeysetOptions{Now: fixedNow(t0)})
	b := openTestKeyset(t, st, t0, KeysetOptions{Now: fixedNow(t0)})
	oldKid := b.SigningKeyID()
	if _, err := a.Rotate(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	tok := mint(t, a, testClaims())
	if _, err := at(b, t0).Verify(tok, issuer, resource); err != nil {
		t.Fatalf("a token of the new key on the other process: %v", err)
	}
	if b.SigningKeyID() != a.SigningKeyID() {
		t.Fatalf("after the reload b signs with %s, want the new key %s (old %s)", b.SigningKeyID(), a.SigningKeyID(), oldKid)
	}
	// Made-up kids cause at most one reload a second: a burst of them
	// lists the keys a few times, not once each.
	lists := st.lists()
	forged := signRawKid(t, a, "made-up")
	start := time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			c, err := at(b, t0).Verify(forged, issuer, resource)
			wantInvalid(t, c, err)
		})
	}
	wg.Wait()
	if n := st.lists() - lists; n > int(time.Since(start)/UnknownKidReload)+2 {
		t.Fatalf("%d listings for 20 tokens with an unknown kid in %v, want at most one a second", n, time.Since(start))
	}
}

// An identity token is signed with the signing key of the moment.
func TestIdentityMinterFollowsRotation(t *testing.T) {
	st := &memKeys{}
	ks := openTestKeyset(t, st, t0, KeysetOptions{})
	m, err := NewIdentityMinter(ks, "http://127.0.0.1:3000/mcp", fixedNow(t0))
	if err != nil {
		t.Fatal(err)
	}
	kid, err := ks.Rotate(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	c := testCaller()
	c.TokenID = "jti-after-rotation"
	tok, err := m.Token(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := kidOf(t, tok); got != kid {
		t.Fatalf("identity token signed with %s, want the new key %s", got, kid)
	}
}

// With a Lead, a new key is published at once and signs only once Lead
// old: another process, which publishes it at its next reload, holds it in
// its JWKS before any token it signs exists, so that a backend verifying
// identity tokens with the JWKS of any replica never meets an unknown
// kid. Before, the rotating process signed with it at once, while the
// other published it up to a reload later.
func TestRotatedKeyPublishedBeforeItSigns(t *testing.T) {
	st := &memKeys{}
	const lead = 30 * time.Second
	opts := KeysetOptions{Keep: 2 * time.Hour, Lead: lead}
	a := openTestKeyset(t, st, t0, opts)
	b := openTestKeyset(t, st, t0, opts)
	oldKid := a.SigningKeyID()

	rotatedAt := t0.Add(time.Hour)
	kid, err := a.Rotate(context.Background(), rotatedAt)
	if err != nil {
		t.Fatal(err)
	}
	if kid == oldKid || !strings.Contains(string(a.JWKS()), kid) {
		t.Fatalf("Rotate: %s (old %s), JWKS %s; want a new key, published", kid, oldKid, a.JWKS())
	}
	if got := kidOf(t, mint(t, a, testClaims())); got != oldKid {
		t.Fatalf("just after the rotation the rotating process signs with %s, want the old key %s until the new one is %v old", got, oldKid, lead)
	}
	// The other process reloads within the lead: it publishes the key.
	if err := b.Reload(context.Background(), rotatedAt.Add(15*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b.JWKS()), kid) || b.SigningKeyID() != oldKid {
		t.Fatalf("the other process 15 s after: signs with %s, JWKS %s; want the new key published, the old one signing", b.SigningKeyID(), b.JWKS())
	}
	// At their reloads past the lead both sign with it.
	for _, ks := range []*Keyset{a, b} {
		if err := ks.Reload(context.Background(), rotatedAt.Add(lead)); err != nil {
			t.Fatal(err)
		}
		if ks.SigningKeyID() != kid {
			t.Fatalf("after the lead: signs with %s, want the new key %s", ks.SigningKeyID(), kid)
		}
	}
	// The rotation is not due again while the new key waits out its lead.
	c := openTestKeyset(t, st, rotatedAt.Add(time.Second), opts)
	if rotated, err := c.RotateIfDue(context.Background(), rotatedAt.Add(time.Second), time.Hour); err != nil || rotated || len(st.rows) != 2 {
		t.Fatalf("RotateIfDue during the lead: rotated %v, %v, %d keys; want nothing done", rotated, err, len(st.rows))
	}
}
