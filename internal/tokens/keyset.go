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
// non-retired key signs, every non-retired key verifies and is published in
// the JWKS. A Keyset is immutable and safe for concurrent use; a key
// rotation loads a new one.
type Keyset struct {
	kid     string // of the signing key
	signKey ed25519.PrivateKey
	signer  jose.Signer
	keys    map[string]ed25519.PublicKey // kid → key, non-retired keys only
	jwks    []byte
}

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
// that one key.
//
// A key is retired once its RetiredAt is set and not after now. A
// non-retired key whose algorithm is not EdDSA, or that does not open, is an
// error: a gateway that silently skipped it could sign with an old key or
// reject valid tokens. Public keys are derived from the sealed private keys
// (the stored public JWK must match them): write access to the database
// without the sealing key cannot add a verification key.
func LoadKeyset(ctx context.Context, st KeyStore, sealer *Sealer, now time.Time) (*Keyset, error) {
	rows, err := st.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("tokens: list signing keys: %w", err)
	}
	if !hasActive(rows, now) {
		priv, err := generateKey()
		if err != nil {
			return nil, err
		}
		row, err := sealSigningKey(sealer, nextKeyID(sealer, rows), priv, now)
		if err != nil {
			return nil, err
		}
		if err := st.CreateSigningKey(ctx, row); err != nil && !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("tokens: create signing key: %w", err)
		}
		if rows, err = st.ListSigningKeys(ctx); err != nil {
			return nil, fmt.Errorf("tokens: list signing keys: %w", err)
		}
	}
	return newKeyset(rows, sealer, now)
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
func (k *Keyset) JWKS() []byte { return k.jwks }

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

func newKeyset(rows []*store.SigningKey, sealer *Sealer, now time.Time) (*Keyset, error) {
	ks := &Keyset{keys: make(map[string]ed25519.PublicKey)}
	var (
		set    jose.JSONWebKeySet
		newest *store.SigningKey
		signBy ed25519.PrivateKey
	)
	for _, r := range rows {
		if retired(r, now) {
			continue
		}
		if _, dup := ks.keys[r.ID]; dup {
			return nil, fmt.Errorf("tokens: signing key %q listed twice", r.ID)
		}
		priv, err := openSigningKey(sealer, r)
		if err != nil {
			return nil, err
		}
		pub := priv.Public().(ed25519.PublicKey)
		ks.keys[r.ID] = pub
		set.Keys = append(set.Keys, publicJWK(r.ID, pub))
		if newest == nil || cmp.Or(r.CreatedAt.Compare(newest.CreatedAt), cmp.Compare(r.ID, newest.ID)) > 0 {
			newest, signBy = r, priv
		}
	}
	if newest == nil {
		return nil, errors.New("tokens: no active signing key in the store")
	}
	signer, err := newSigner(signBy, newest.ID, typAccessToken)
	if err != nil {
		return nil, fmt.Errorf("tokens: signer: %w", err)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("tokens: encode JWKS: %w", err)
	}
	ks.kid, ks.signKey, ks.signer, ks.jwks = newest.ID, signBy, signer, jwks
	return ks, nil
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
