package tokens

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/store"
)

// algEdDSA is the only signing algorithm this package creates and accepts.
const algEdDSA = "EdDSA"

// KeyStore is the part of store.Store that LoadKeyset needs.
type KeyStore interface {
	CreateSigningKey(context.Context, *store.SigningKey) error
	ListSigningKeys(context.Context) ([]*store.SigningKey, error) // oldest first
}

var _ KeyStore = store.Store(nil)

// Keyset holds the signing keys loaded from the store: the newest
// non-retired key signs (once KeysetOptions.Lead old), every non-retired
// key verifies and is published in the JWKS. A Keyset is safe for
// concurrent use. What it holds is replaced
// whole (an immutable generation) when it reloads the keys from the store:
// Reload, Rotate, RotateIfDue, and, when KeysetOptions.Now is set, a token
// with a kid it does not know.
type Keyset struct {
	cur    atomic.Pointer[keyGen]
	st     KeyStore
	sealer *Sealer
	opts   KeysetOptions

	// reloadMu serialises reloads; it guards opened and lastReload.
	reloadMu sync.Mutex
	opened   map[string]openedKey // kid → the key opened at an earlier load
	// lastReload is when the last reload started (monotonic): a token
	// with an unknown kid that arrived before it waits for the next one.
	lastReload time.Time
}

// keyGen is one generation of a Keyset: what one listing of the store
// yielded. It is never modified.
type keyGen struct {
	kid      string    // of the signing key
	newest   string    // of the newest key, which signs once Lead old
	created  time.Time // of the newest key
	signKey  ed25519.PrivateKey
	signer   jose.Signer                  // typ at+jwt
	idSigner jose.Signer                  // typ TypIdentityToken
	keys     map[string]ed25519.PublicKey // kid → key, verifying keys only
	jwks     []byte
}

// openedKey is a stored key opened once, kept with the sealed bytes it
// came from so that a row changed in the store is opened again.
type openedKey struct {
	sealed, public []byte
	priv           ed25519.PrivateKey
}

// KeysetOptions tune a Keyset that follows the store while keys rotate.
type KeysetOptions struct {
	// Keep is how long a key that a newer key replaced goes on verifying
	// and stays in the JWKS, counted from the newer key's creation: the
	// lifetime of the last token the old key signed, plus the time every
	// process takes to start signing with the new one. Zero keeps it
	// until it is retired.
	Keep time.Duration
	// Lead is how long a new key is published and verifies before it
	// signs: long enough for every process on the store to reload the
	// keys, so that no token or identity token is signed by a key that
	// the JWKS of another (which a backend may fetch behind a load
	// balancer) does not hold yet. Until then the key before it signs;
	// a key alone signs at once. Keep counts from the newer key's
	// creation, so it must cover Lead too.
	Lead time.Duration
	// Now, when set, is the clock of the reloads that a token with an
	// unknown kid causes: before such a token is refused, the keys are
	// listed again (at most once every UnknownKidReload), so that a token
	// signed by a key another process has just created verifies.
	Now func() time.Time
}

// UnknownKidReload is the least time between two reloads caused by tokens
// with an unknown kid: a token signed by a key created just after a reload
// waits at most this long (plus the listing) before it verifies, and
// tokens with made-up kids cost at most one listing of the keys this often.
const UnknownKidReload = time.Second

// LoadKeyset reads the signing keys from the store and opens each with
// sealer (additional data: the kid). When no key is active (all are
// retired, or there are none) it creates an Ed25519 key, seals it and
// stores it, then lists the keys again and signs with the newest active one
// (by creation time, then kid); every active key verifies.
//
// Processes racing to create the key (replicas at first start) must not
// each sign with a key the others do not know. So the new kid is not random
// but derived from the sealing key and the kids already listed: racers that
// saw the same keys try to create the same kid, the store lets exactly one
// succeed (store.ErrConflict for the others), and all of them then list
// that one key. Rotation relies on the same rule.
//
// A key is retired once its RetiredAt is set and not after now. A
// non-retired key whose algorithm is not EdDSA, or that does not open, is an
// error: a gateway that silently skipped it could sign with an old key or
// reject valid tokens. Public keys are derived from the sealed private keys
// (the stored public JWK must match them): write access to the database
// without the sealing key cannot add a verification key.
func LoadKeyset(ctx context.Context, st KeyStore, sealer *Sealer, now time.Time) (*Keyset, error) {
	return OpenKeyset(ctx, st, sealer, now, KeysetOptions{})
}

// OpenKeyset is LoadKeyset with options for a Keyset that follows key
// rotations.
func OpenKeyset(ctx context.Context, st KeyStore, sealer *Sealer, now time.Time, opts KeysetOptions) (*Keyset, error) {
	k := &Keyset{st: st, sealer: sealer, opts: opts}
	if err := k.Reload(ctx, now); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keyset) gen() *keyGen { return k.cur.Load() }

// SigningKeyID is the kid of the key that signs now.
func (k *Keyset) SigningKeyID() string { return k.gen().kid }

// Reload lists the keys in the store again, creating one when none is
// active (see LoadKeyset), and signs and verifies with what it finds from
// then on. On failure the keyset stays as it was.
func (k *Keyset) Reload(ctx context.Context, now time.Time) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	_, err := k.reloadLocked(ctx, now)
	return err
}

func (k *Keyset) reloadLocked(ctx context.Context, now time.Time) ([]*store.SigningKey, error) {
	k.lastReload = time.Now()
	rows, err := k.st.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("tokens: list signing keys: %w", err)
	}
	if !hasActive(rows, now) {
		if err := k.create(ctx, rows, now); err != nil {
			return nil, err
		}
		if rows, err = k.st.ListSigningKeys(ctx); err != nil {
			return nil, fmt.Errorf("tokens: list signing keys: %w", err)
		}
	}
	g, err := k.newGen(rows, now)
	if err != nil {
		return nil, err
	}
	k.cur.Store(g)
	return rows, nil
}

// create stores a new key, the successor of the keys in rows. Another
// process that listed the same rows creates the same kid: the store keeps
// one of them, and the others' store.ErrConflict is no failure.
func (k *Keyset) create(ctx context.Context, rows []*store.SigningKey, now time.Time) error {
	priv, err := generateKey()
	if err != nil {
		return err
	}
	// The new key must sort after every key listed, whatever the clocks.
	for _, r := range rows {
		if !now.After(r.CreatedAt) {
			now = r.CreatedAt.Add(time.Millisecond)
		}
	}
	row, err := sealSigningKey(k.sealer, nextKeyID(k.sealer, rows), priv, now)
	if err != nil {
		return err
	}
	if err := k.st.CreateSigningKey(ctx, row); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("tokens: create signing key: %w", err)
	}
	return nil
}

// Rotate creates a new signing key, which signs once KeysetOptions.Lead
// has passed and the keys are reloaded (in every process); the keys
// before it go on verifying for KeysetOptions.Keep. It returns the new
// key's kid. Processes rotating at once from the same keys create one key
// between them.
func (k *Keyset) Rotate(ctx context.Context, now time.Time) (string, error) {
	return k.rotate(ctx, now, 0)
}

// RotateIfDue rotates when the newest key is at least every old, and
// reloads the keys in any case; it reports whether the newest key changed
// (by this rotation, or by another process's that the reload found). Of
// processes that find the same key due at once, one creates its successor
// and all sign with it.
func (k *Keyset) RotateIfDue(ctx context.Context, now time.Time, every time.Duration) (rotated bool, err error) {
	before := k.gen().newest
	kid, err := k.rotate(ctx, now, every)
	return err == nil && kid != before, err
}

// rotate reloads, and, when every is zero or the newest active key listed
// is at least every old, creates its successor from that same listing, so
// that a process that lists the keys after another's rotation does not
// rotate again.
func (k *Keyset) rotate(ctx context.Context, now time.Time, every time.Duration) (string, error) {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	rows, err := k.reloadLocked(ctx, now)
	if err != nil {
		return "", err
	}
	if every > 0 && now.Before(k.gen().created.Add(every)) {
		return k.gen().newest, nil
	}
	if err := k.create(ctx, rows, now); err != nil {
		return "", err
	}
	if _, err := k.reloadLocked(ctx, now); err != nil {
		return "", err
	}
	return k.gen().newest, nil
}

// reloadForUnknownKid reloads the keys for a token whose kid is unknown,
// unless a reload started after the token arrived, at most once every
// UnknownKidReload, and returns the generation to verify it with. A
// failed reload leaves the keys as they were (the token is then refused).
func (k *Keyset) reloadForUnknownKid(kid string) *keyGen {
	arrived := time.Now()
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	if g := k.gen(); g.keys[kid] != nil || k.lastReload.After(arrived) {
		return g
	}
	if wait := time.Until(k.lastReload.Add(UnknownKidReload)); wait > 0 {
		t := time.NewTimer(wait)
		<-t.C
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = k.reloadLocked(ctx, k.opts.Now())
	return k.gen()
}

// nextKeyID is the kid of the key to create after the keys in rows:
// 128 bits of HMAC-SHA256 under a key derived from the sealing key, over
// the sorted kids already present. It is unpredictable without the sealing
// key and differs between installations, like a random kid, but every
// replica computes the same one from the same list.
func nextKeyID(sealer *Sealer, rows []*store.SigningKey) string {
	kids := make([]string, len(rows))
	for i, r := range rows {
		kids[i] = r.ID
	}
	slices.Sort(kids)
	m := hmac.New(sha256.New, sealer.idKey)
	for _, kid := range kids {
		m.Write([]byte(kid))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// JWKS returns the JSON Web Key Set ({"keys":[...]}, RFC 7517 §5) of the
// non-retired public keys, for /jwks.json. The slice is shared: do not
// modify it.
func (k *Keyset) JWKS() []byte { return k.gen().jwks }

func retired(r *store.SigningKey, now time.Time) bool {
	return !r.RetiredAt.IsZero() && !r.RetiredAt.After(now)
}

func hasActive(rows []*store.SigningKey, now time.Time) bool {
	for _, r := range rows {
		if !retired(r, now) {
			return true
		}
	}
	return false
}

func generateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("tokens: generate signing key: %w", err)
	}
	return priv, nil
}

// sealSigningKey builds the store row for priv: the private key as PKCS #8,
// sealed with the kid as additional data, and the public JWK.
func sealSigningKey(sealer *Sealer, kid string, priv ed25519.PrivateKey, now time.Time) (*store.SigningKey, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("tokens: encode signing key: %w", err)
	}
	pub, err := publicJWK(kid, priv.Public().(ed25519.PublicKey)).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("tokens: encode signing key: %w", err)
	}
	return &store.SigningKey{
		ID:        kid,
		Algorithm: algEdDSA,
		Private:   sealer.Seal(der, []byte(kid)),
		Public:    pub,
		CreatedAt: now,
	}, nil
}

func publicJWK(kid string, pub ed25519.PublicKey) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: algEdDSA, Use: "sig"}
}

func openSigningKey(sealer *Sealer, r *store.SigningKey) (ed25519.PrivateKey, error) {
	if r.Algorithm != algEdDSA {
		return nil, fmt.Errorf("tokens: signing key %q: unsupported algorithm %q", r.ID, r.Algorithm)
	}
	der, err := sealer.Open(r.Private, []byte(r.ID))
	if err != nil {
		return nil, fmt.Errorf("tokens: signing key %q: %w (wrong sealing key?)", r.ID, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("tokens: signing key %q: %w", r.ID, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("tokens: signing key %q: not an Ed25519 key", r.ID)
	}
	var stored jose.JSONWebKey
	if err := stored.UnmarshalJSON(r.Public); err != nil {
		return nil, fmt.Errorf("tokens: signing key %q: public JWK: %w", r.ID, err)
	}
	storedPub, ok := stored.Key.(ed25519.PublicKey)
	if !ok || !bytes.Equal(storedPub, priv.Public().(ed25519.PublicKey)) || stored.KeyID != r.ID {
		return nil, fmt.Errorf("tokens: signing key %q: public JWK does not match the private key", r.ID)
	}
	return priv, nil
}

// newGen builds the generation of rows at now: the active keys, less
// those a newer active key replaced more than Keep ago, opened (or taken
// from an earlier load when their row is unchanged); the newest of them
// at least Lead old signs, or the oldest when none is. It must be called
// with reloadMu held.
func (k *Keyset) newGen(rows []*store.SigningKey, now time.Time) (*keyGen, error) {
	var active []*store.SigningKey
	for _, r := range rows {
		if !retired(r, now) {
			active = append(active, r)
		}
	}
	slices.SortStableFunc(active, func(a, b *store.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	g := &keyGen{keys: make(map[string]ed25519.PublicKey)}
	opened := make(map[string]openedKey, len(active))
	var set jose.JSONWebKeySet
	for i, r := range active {
		if k.opts.Keep > 0 && i+1 < len(active) && !now.Before(active[i+1].CreatedAt.Add(k.opts.Keep)) {
			continue // replaced long enough ago: every token it signed has expired
		}
		if _, dup := g.keys[r.ID]; dup {
			return nil, fmt.Errorf("tokens: signing key %q listed twice", r.ID)
		}
		o, ok := k.opened[r.ID]
		if !ok || !bytes.Equal(o.sealed, r.Private) || !bytes.Equal(o.public, r.Public) {
			priv, err := openSigningKey(k.sealer, r)
			if err != nil {
				return nil, err
			}
			o = openedKey{sealed: r.Private, public: r.Public, priv: priv}
		}
		opened[r.ID] = o
		pub := o.priv.Public().(ed25519.PublicKey)
		g.keys[r.ID] = pub
		set.Keys = append(set.Keys, publicJWK(r.ID, pub))
		if g.signKey == nil || k.opts.Lead == 0 || !now.Before(r.CreatedAt.Add(k.opts.Lead)) {
			g.kid, g.signKey = r.ID, o.priv
		}
		g.newest, g.created = r.ID, r.CreatedAt
	}
	if g.signKey == nil {
		return nil, errors.New("tokens: no active signing key in the store")
	}
	var err error
	if g.signer, err = newSigner(g.signKey, g.kid, typAccessToken); err != nil {
		return nil, fmt.Errorf("tokens: signer: %w", err)
	}
	if g.idSigner, err = newSigner(g.signKey, g.kid, TypIdentityToken); err != nil {
		return nil, fmt.Errorf("tokens: identity signer: %w", err)
	}
	if g.jwks, err = json.Marshal(set); err != nil {
		return nil, fmt.Errorf("tokens: encode JWKS: %w", err)
	}
	k.opened = opened
	return g, nil
}

// newSigner signs with key, named kid, in JWS headers of type typ. The
// keyset's access token signer is the same with typ at+jwt.
func newSigner(key ed25519.PrivateKey, kid string, typ jose.ContentType) (jose.Signer, error) {
	return jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType(typ),
	)
}

// signJSON returns claims, encoded as JSON, signed by signer as a compact
// JWS: the token.
func signJSON(signer jose.Signer, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
