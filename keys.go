package mcpgate

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/authserver"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// ErrSecretKeyMismatch is the error of a gateway, or of RotateSigningKey,
// given another secret key than the one its store's data was sealed with:
// it would mint tokens the other replicas cannot verify and could not open
// what they sealed, so it refuses to start.
var ErrSecretKeyMismatch = errors.New("mcpgate: the secret key is not the one this store's data was sealed with")

// secretCheckName is the store's meta row holding the secret key's check
// value.
const secretCheckName = "secret_key_check"

// keyCheck is the check value of a secret key: an HMAC under a key derived
// from it, which tells keys apart and reveals nothing of them.
func keyCheck(secret []byte) []byte {
	return derive(derive(secret, "mcpgate key check v1"), "the secret key of this store")
}

// openKeys opens the store's signing keys with the sealer of secret, after
// checking that secret is the store's: its check value is recorded in the
// store the first time (before the first key is made, so that of replicas
// given different keys on a new store only the first starts; after the
// stored keys opened, on a store from before the check existed) and
// compared at every start after.
func openKeys(ctx context.Context, st store.Store, secret []byte, now func() time.Time, opts tokens.KeysetOptions) (*tokens.Keyset, *tokens.Sealer, error) {
	sealer, err := tokens.NewSealer(derive(secret, "mcpgate seal v1"))
	if err != nil {
		return nil, nil, err
	}
	rows, err := st.ListSigningKeys(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("mcpgate: signing keys: %w", err)
	}
	if len(rows) == 0 {
		if err := checkSecret(ctx, st, secret); err != nil {
			return nil, nil, err
		}
	}
	keys, err := tokens.OpenKeyset(ctx, st, sealer, now(), opts)
	if errors.Is(err, tokens.ErrOpen) {
		return nil, nil, fmt.Errorf("%w: it cannot open the signing keys there (%v); %s", ErrSecretKeyMismatch, err, sameKeyHint)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mcpgate: signing keys: %w", err)
	}
	if len(rows) > 0 {
		if err := checkSecret(ctx, st, secret); err != nil {
			return nil, nil, err
		}
	}
	return keys, sealer, nil
}

const sameKeyHint = "every replica on one store needs the same secret key: give each the same --secret-key-file (or a copy of the first one's DATA_DIR/secret.key)"

func checkSecret(ctx context.Context, st store.Store, secret []byte) error {
	mine := keyCheck(secret)
	stored, err := st.PutMetaOnce(ctx, secretCheckName, mine)
	if err != nil {
		return fmt.Errorf("mcpgate: secret key check: %w", err)
	}
	if subtle.ConstantTimeCompare(stored, mine) != 1 {
		return fmt.Errorf("%w (this key's check value begins %x, the store's %x); %s",
			ErrSecretKeyMismatch, mine[:4], stored[:min(4, len(stored))], sameKeyHint)
	}
	return nil
}

// keyKeep is how long a replaced signing key goes on verifying: the
// longest a token it signed lives (an access token; identity tokens live
// at most as long), from the last moment a replica may still sign with it
// (one KeyReload after the new key's lead), plus a margin for clocks that
// differ and for a slow reload.
func (cfg *Config) keyKeep() time.Duration {
	return max(cfg.AccessTokenTTL, tokens.IdentityTokenTTL) + cfg.keyLead() + cfg.KeyReload + 5*time.Minute
}

// keyLead is how long a new signing key is published before it signs, so
// that none signs a token with a key that a JWKS a backend holds lacks (a
// backend that checks identity tokens may fetch it from any replica): a
// KeyReload, in which every replica reads the keys again, and one more
// for a slow reading; the most two replicas' clocks may differ (each
// within MaxClockSkew of the store's); and the JWKS's max-age, in which
// a copy fetched before the key was published may still be used.
func (cfg *Config) keyLead() time.Duration {
	return 2*cfg.KeyReload + 2*MaxClockSkew + authserver.JWKSMaxAge
}

// followKeys rotates the signing key when it is due and reads the keys
// again every KeyReload, until Close.
func (g *Gateway) followKeys(keys *tokens.Keyset, cfg *Config) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	g.closers = append(g.closers, func(context.Context) error { stop(); <-done; return nil })
	every, log := cfg.KeyRotation, cfg.Logger
	go func() {
		defer close(done)
		t := time.NewTicker(cfg.KeyReload)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			before, now := keys.SigningKeyID(), g.now()
			rctx, cancel := context.WithTimeout(ctx, max(cfg.KeyReload, 10*time.Second))
			var err error
			if every > 0 {
				_, err = keys.RotateIfDue(rctx, now, every)
			} else {
				err = keys.Reload(rctx, now)
			}
			cancel()
			if err == nil {
				// The time taken before the listing: a listing that
				// fails after it can never look fresher than it is.
				g.keysReadAt.Store(now.UnixNano())
			}
			switch kid := keys.SigningKeyID(); {
			case err != nil && ctx.Err() == nil:
				log.Warn("signing keys: reading them from the store", "err", err)
			case kid != before:
				log.Info("signing with a new key", "kid", kid, "previous", before)
			}
		}
	}()
}

// CheckSecretKey returns ErrSecretKeyMismatch when secretKey is not the
// one st's data was sealed with, as New does, for a caller that sets up
// more than the Gateway before New (a command that creates accounts): a
// replica with the wrong key then changes nothing. On a new store it
// records the key's check value and makes the first signing key.
func CheckSecretKey(ctx context.Context, st store.Store, secretKey []byte) error {
	if len(secretKey) != 32 {
		return errors.New("mcpgate: the secret key must be 32 bytes")
	}
	_, _, err := openKeys(ctx, st, secretKey, time.Now, tokens.KeysetOptions{})
	return err
}

// RotateSigningKey makes a new signing key in st, sealed with secretKey,
// and returns its kid. Every gateway on st publishes it within its
// KeyReload, and signs with it once its lead has passed (110 s with the
// KeyReload of 15 s), when every JWKS a backend holds has it; the
// previous keys go on verifying until the tokens they signed have
// expired. A secretKey that is not the store's is refused with
// ErrSecretKeyMismatch. Of rotations from the same keys at once, one makes
// the key and the others return it.
func RotateSigningKey(ctx context.Context, st store.Store, secretKey []byte, now time.Time) (string, error) {
	if len(secretKey) != 32 {
		return "", errors.New("mcpgate: the secret key must be 32 bytes")
	}
	keys, _, err := openKeys(ctx, st, secretKey, func() time.Time { return now }, tokens.KeysetOptions{})
	if err != nil {
		return "", err
	}
	kid, err := keys.Rotate(ctx, now)
	if err != nil {
		return "", fmt.Errorf("mcpgate: rotate signing key: %w", err)
	}
	return kid, nil
}
