package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/privatedir"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// secretKey reads the secret key: from secret_key_file, which is never
// created, or from DATA-DIR/secret.key, which serve creates at first start
// (create) and other commands only read.
func secretKey(cfg *config.Config, create bool) ([]byte, error) {
	if cfg.SecretKeyFile != "" {
		key, err := tokens.ReadKeyFile(cfg.SecretKeyFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("secret_key_file: %s does not exist: make it once with `mcpgate keys new-secret > FILE` and give every replica the same one", cfg.SecretKeyFile)
		}
		if err != nil {
			return nil, fmt.Errorf("secret_key_file: %w", err)
		}
		return key, nil
	}
	if cfg.StoreDSN() == "memory" {
		// Nothing the key seals outlives the process: no file for it.
		return tokens.NewKey(), nil
	}
	path := keyFile(cfg)
	// The key is the gateway's own file, as the database is (SEC-150):
	// whoever could replace it, or the link in its place, would choose
	// the key the signing keys are sealed with (SEC-171).
	if err := privatedir.CheckDir(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	// serve, which makes and uses the key, takes it only from a directory
	// of its own user's or root's, and never another user's file (SEC-196).
	if create {
		if err := privatedir.CheckPath(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
	}
	if err := privatedir.CheckOwnFile(path, !create); err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	var (
		key []byte
		err error
	)
	if create {
		key, err = tokens.LoadOrCreateKeyFile(path)
	} else if key, err = tokens.ReadKeyFile(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secret key: %s does not exist: give the store's key with --secret-key-file, or the data directory mcpgate serve uses", path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return key, nil
}

// RotateKeys makes a new signing key in the store that cfg names, as
// `mcpgate keys rotate` does, and says on stdout what follows.
func RotateKeys(ctx context.Context, cfg *config.Config, stdout io.Writer) error {
	const onMemory = "keys rotate: the memory store lives inside one mcpgate serve: there is nothing to rotate from outside"
	if cfg.StoreDSN() == "memory" {
		return errors.New(onMemory) // before the key, which it has none of
	}
	key, err := secretKey(cfg, false)
	if err != nil {
		return err
	}
	st, err := openExistingStore(ctx, cfg, onMemory)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := mcpgate.CheckClock(ctx, st); err != nil { // the new key's time is this machine's
		return fmt.Errorf("keys rotate: %w", err)
	}
	kid, err := mcpgate.RotateSigningKey(ctx, st, key, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "New signing key %s. Every mcpgate on this store publishes it within 15 s and signs with it from 110 s on, once every JWKS a backend holds has it; the previous key signs until then, and verifies until the tokens it signed have expired (access_token_ttl + about 7 min).\n", kid)
	return nil
}

// NewSecret writes a new secret key as a secret key file holds it, for
// `mcpgate keys new-secret`.
func NewSecret(stdout io.Writer) error {
	_, err := io.WriteString(stdout, tokens.NewKeyText())
	return err
}
