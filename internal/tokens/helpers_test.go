package tokens

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

// memKeys is a KeyStore in memory: ids are unique (store.ErrConflict), and
// List returns copies, oldest first.
type memKeys struct {
	mu      sync.Mutex
	rows    []*store.SigningKey
	creates int
	listed  int
}

func (m *memKeys) CreateSigningKey(_ context.Context, k *store.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creates++
	for _, r := range m.rows {
		if r.ID == k.ID {
			return fmt.Errorf("mem: %w", store.ErrConflict)
		}
	}
	c := *k
	m.rows = append(m.rows, &c)
	return nil
}

func (m *memKeys) ListSigningKeys(context.Context) ([]*store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listed++
	out := make([]*store.SigningKey, len(m.rows))
	for i, r := range m.rows {
		c := *r
		out[i] = &c
	}
	slices.SortStableFunc(out, func(a, b *store.SigningKey) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

var (
	t0       = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	issuer   = "https://gateway.example"
	resource = "https://gateway.example/mcp"
)

func testSealer(t testing.TB) *Sealer {
	t.Helper()
	s, err := NewSealer([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestKeyset(t testing.TB) (*Keyset, *memKeys) {
	t.Helper()
	st := &memKeys{}
	ks, err := LoadKeyset(context.Background(), st, testSealer(t), t0)
	if err != nil {
		t.Fatal(err)
	}
	return ks, st
}

// keysetFromKey builds a keyset around a given private key and kid.
func keysetFromKey(t testing.TB, priv ed25519.PrivateKey, kid string) *Keyset {
	t.Helper()
	s := testSealer(t)
	row, err := sealSigningKey(s, kid, priv, t0)
	if err != nil {
		t.Fatal(err)
	}
	st := &memKeys{rows: []*store.SigningKey{row}}
	ks, err := LoadKeyset(context.Background(), st, s, t0)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func testClaims() *Claims {
	return &Claims{
		Issuer:    issuer,
		Subject:   "github:583231",
		Audience:  resource,
		ClientID:  "https://client.example/metadata.json",
		Scopes:    []string{"mcp:tools", "mcp:resources"},
		IssuedAt:  t0,
		ExpiresAt: t0.Add(time.Hour),
		ID:        "jti-0123456789abcdef",
		GrantID:   "grant-42",
		User: identity.User{
			ID:            "github:583231",
			Upstream:      "github",
			Username:      "octocat",
			Name:          "The Octocat",
			Email:         "octocat@github.example",
			EmailVerified: true,
			Picture:       "https://avatars.example/u/583231",
			Profile:       "https://github.com/octocat",
			Groups:        []string{"github-org/admins", "github-org/devs"},
		},
	}
}

func mint(t testing.TB, ks *Keyset, c *Claims) string {
	t.Helper()
	tok, err := ks.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

// signRaw signs an arbitrary payload with the keyset's signing key and
// extra protected headers (typ defaults to at+jwt).
func signRaw(t testing.TB, ks *Keyset, payload any, typ string) string {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	s := ks.gen().signer // reuse the private key via a fresh signer with another typ
	if typ != typAccessToken {
		priv := signerKey(t, ks)
		s, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: ks.gen().kid}},
			(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			t.Fatal(err)
		}
	}
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testPriv is the fixed key of keysets built by fixedKeyset, so that tests
// can sign with it directly.
var testPriv = ed25519.NewKeyFromSeed([]byte("0123456789abcdef0123456789abcdef"))

const testKid = "test-kid"

func fixedKeyset(t testing.TB) *Keyset { return keysetFromKey(t, testPriv, testKid) }

func signerKey(t testing.TB, ks *Keyset) ed25519.PrivateKey {
	t.Helper()
	if ks.gen().kid != testKid {
		t.Fatal("signRaw with a custom typ needs fixedKeyset")
	}
	return testPriv
}

// wirePayload is testClaims as a JSON object that tests can alter.
func wirePayload() map[string]any {
	return map[string]any{
		"iss": issuer, "sub": "github:583231", "aud": resource,
		"client_id": "client-1", "scope": "mcp:tools",
		"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "jti-1", "gid": "grant-1",
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func segments(t testing.TB, tok string) (header, payload []byte, sig string) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("token has %d parts, want 3", len(p))
	}
	h, err := base64.RawURLEncoding.DecodeString(p[0])
	if err != nil {
		t.Fatal(err)
	}
	pl, err := base64.RawURLEncoding.DecodeString(p[1])
	if err != nil {
		t.Fatal(err)
	}
	return h, pl, p[2]
}

// verifierAt verifies with a keyset at a fixed time.
type verifierAt struct {
	ks  *Keyset
	now time.Time
}

func at(ks *Keyset, now time.Time) verifierAt { return verifierAt{ks, now} }

func (v verifierAt) Verify(token, issuer, audience string) (*Claims, error) {
	return v.ks.Verify(token, issuer, audience, v.now)
}

// lists counts the listings of the keys so far.
func (m *memKeys) lists() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.listed
}

// signRawKid signs testClaims with the keyset's signing key under another
// kid.
func signRawKid(t testing.TB, ks *Keyset, kid string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: ks.gen().signKey, KeyID: kid}},
		(&jose.SignerOptions{}).WithType(typAccessToken))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signJSON(s, wirePayload())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
