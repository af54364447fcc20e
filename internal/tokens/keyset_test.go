package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

func TestLoadKeysetCreatesOneKey(t *testing.T) {
	ks, st := newTestKeyset(t)
	if len(st.rows) != 1 {
		t.Fatalf("%d keys stored, want 1", len(st.rows))
	}
	r := st.rows[0]
	if r.ID != ks.gen().kid || r.Algorithm != "EdDSA" || !r.CreatedAt.Equal(t0) || !r.RetiredAt.IsZero() {
		t.Fatalf("row %+v, want kid %s, EdDSA, created at t0, not retired", r, ks.gen().kid)
	}
	// The private key is sealed: no PKCS #8 structure in the clear.
	if bytes.Contains(r.Private, []byte{0x30, 0x2e, 0x02, 0x01, 0x00}) {
		t.Fatal("private key stored in clear")
	}
	var jwks struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(), &jwks); err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 1 {
		t.Fatalf("JWKS %s, want one key", ks.JWKS())
	}
	k := jwks.Keys[0]
	if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || k["kid"] != ks.gen().kid || k["x"] == "" || k["d"] != "" {
		t.Fatalf("JWK %v, want a public OKP Ed25519 signing key (no d) with kid %s", k, ks.gen().kid)
	}
}

// A restart reuses the stored key: same kid, same JWKS, and tokens minted
// before the restart still verify.
func TestLoadKeysetRestart(t *testing.T) {
	ks1, st := newTestKeyset(t)
	tok := mint(t, ks1, testClaims())
	ks2, err := LoadKeyset(context.Background(), st, testSealer(t), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.creates != 1 || len(st.rows) != 1 {
		t.Fatalf("%d creates, %d keys, want 1 and 1: the second load reuses the key", st.creates, len(st.rows))
	}
	if ks2.gen().kid != ks1.gen().kid || !bytes.Equal(ks1.JWKS(), ks2.JWKS()) {
		t.Fatalf("JWKS changed across restart:\n%s\n%s", ks1.JWKS(), ks2.JWKS())
	}
	if _, err := at(ks2, t0).Verify(tok, issuer, resource); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeysetWrongSealingKey(t *testing.T) {
	_, st := newTestKeyset(t)
	other, err := NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyset(context.Background(), st, other, t0); err == nil || !errors.Is(err, ErrOpen) {
		t.Fatalf("err = %v, want ErrOpen", err)
	}
}

// The stored public JWK is not trusted: it must match the sealed key.
func TestLoadKeysetSwappedPublicKey(t *testing.T) {
	_, st := newTestKeyset(t)
	_, other := newTestKeyset(t)
	st.rows[0].Public = other.rows[0].Public
	if _, err := LoadKeyset(context.Background(), st, testSealer(t), t0); err == nil {
		t.Fatal("loaded a key whose public JWK was replaced")
	}
	// Sealed under another kid (a row copied): does not open.
	_, st = newTestKeyset(t)
	st.rows[0].ID = "other-kid"
	if _, err := LoadKeyset(context.Background(), st, testSealer(t), t0); !errors.Is(err, ErrOpen) {
		t.Fatalf("err = %v, want ErrOpen", err)
	}
}

func TestLoadKeysetRetired(t *testing.T) {
	ks1, st := newTestKeyset(t)
	old := mint(t, ks1, testClaims())

	// Retirement scheduled in the future: the key still signs.
	st.rows[0].RetiredAt = t0.Add(2 * time.Hour)
	ks, err := LoadKeyset(context.Background(), st, testSealer(t), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if ks.gen().kid != ks1.gen().kid || len(st.rows) != 1 {
		t.Fatal("a key retiring later was replaced early")
	}

	later := t0.Add(3 * time.Hour)
	ks2, err := LoadKeyset(context.Background(), st, testSealer(t), later)
	if err != nil {
		t.Fatal(err)
	}
	if ks2.gen().kid == ks1.gen().kid || len(st.rows) != 2 {
		t.Fatalf("%d keys and kid %s, want a second, new key after retirement", len(st.rows), ks2.gen().kid)
	}
	if strings.Contains(string(ks2.JWKS()), ks1.gen().kid) {
		t.Fatal("retired key still in the JWKS")
	}
	c, err := at(ks2, t0).Verify(old, issuer, resource)
	wantInvalid(t, c, err)
}

// With several active keys, the newest signs and all verify and are
// published.
func TestLoadKeysetNewestSigns(t *testing.T) {
	s := testSealer(t)
	st := &memKeys{}
	for i, kid := range []string{"b-old", "a-new", "c-new"} {
		row, err := sealSigningKey(s, kid, testPriv, t0.Add(time.Duration(min(i, 1))*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		st.rows = append(st.rows, row)
	}
	ks, err := LoadKeyset(context.Background(), st, s, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if ks.gen().kid != "c-new" { // newest CreatedAt, then the greatest kid
		t.Fatalf("signs with %q, want c-new (newest, then greatest kid)", ks.gen().kid)
	}
	if len(ks.gen().keys) != 3 || strings.Count(string(ks.JWKS()), `"kid"`) != 3 {
		t.Fatalf("JWKS %s, want all 3 keys", ks.JWKS())
	}
}

func TestLoadKeysetRejectsUnknownAlgorithm(t *testing.T) {
	_, st := newTestKeyset(t)
	st.rows[0].Algorithm = "RS256"
	if _, err := LoadKeyset(context.Background(), st, testSealer(t), t0); err == nil {
		t.Fatal("loaded an RS256 key")
	}
}

// racyKeys lets every racer list the empty store before any creates.
type racyKeys struct {
	memKeys
	listed  sync.WaitGroup
	firstMu sync.Mutex
	lists   int
	racers  int
}

func (r *racyKeys) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	out, err := r.memKeys.ListSigningKeys(ctx)
	r.firstMu.Lock()
	r.lists++
	first := r.lists <= r.racers
	r.firstMu.Unlock()
	if first {
		r.listed.Done()
		r.listed.Wait() // nobody creates before everybody has listed
	}
	return out, err
}

// Replicas starting together all sign with the same key: each computes the
// same kid, the store keeps one, and all list that one.
func TestLoadKeysetRace(t *testing.T) {
	const racers = 8
	st := &racyKeys{racers: racers}
	st.listed.Add(racers)
	kss := make([]*Keyset, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			kss[i], errs[i] = LoadKeyset(context.Background(), st, testSealer(t), t0)
		})
	}
	wg.Wait()
	for i := range racers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if kss[i].gen().kid != kss[0].gen().kid || !bytes.Equal(kss[i].JWKS(), kss[0].JWKS()) {
			t.Fatalf("racer %d signs with %s, racer 0 with %s", i, kss[i].gen().kid, kss[0].gen().kid)
		}
	}
	if st.creates != racers || len(st.rows) != 1 {
		t.Fatalf("%d creates, %d keys stored; want %d and 1", st.creates, len(st.rows), racers)
	}
	tok := mint(t, kss[3], testClaims())
	if _, err := at(kss[5], t0).Verify(tok, issuer, resource); err != nil {
		t.Fatal(err)
	}
}

// Kids differ between installations (sealing keys) and between
// generations.
func TestNextKeyID(t *testing.T) {
	s1 := testSealer(t)
	s2, _ := NewSealer(bytes.Repeat([]byte{7}, 32))
	a := nextKeyID(s1, nil)
	if a == nextKeyID(s2, nil) || len(a) != 22 {
		t.Fatalf("kid %q, want 22 characters and another kid under another sealing key", a)
	}
	if b := nextKeyID(s1, []*store.SigningKey{{ID: a}}); b == a {
		t.Fatal("second generation reuses the kid")
	}
}
