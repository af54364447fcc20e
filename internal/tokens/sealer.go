package tokens

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mcpgate/mcpgate/internal/privatedir"
)

// KeySize is the length of a sealing key: AES-256.
const KeySize = 32

// ErrOpen is returned by Sealer.Open when sealed data is malformed, was
// sealed under another key or other additional data, or was altered.
var ErrOpen = errors.New("tokens: cannot open sealed data")

// Sealer encrypts secrets at rest (private signing keys, upstream tokens)
// with AES-256-GCM. Every Seal draws a fresh random 96-bit nonce; the output
// is nonce || ciphertext || tag. Bind each value to its place with the
// additional data (a kid, a user id), so that a row copied elsewhere in the
// database does not open. A Sealer is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
	// idKey derives ids that every holder of the sealing key computes
	// alike (see nextKeyID); it is not the sealing key itself.
	idKey []byte
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("tokens: sealing key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("tokens: sealing key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("tokens: sealing key: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("mcpgate/tokens: signing key ids"))
	return &Sealer{aead: aead, idKey: m.Sum(nil)}, nil
}

// Seal encrypts and authenticates plaintext, and authenticates
// additionalData (which is not stored: Open needs it again).
func (s *Sealer) Seal(plaintext, additionalData []byte) []byte {
	ns := s.aead.NonceSize()
	out := make([]byte, ns, ns+len(plaintext)+s.aead.Overhead())
	rand.Read(out) // never fails (Go 1.24+)
	return s.aead.Seal(out, out, plaintext, additionalData)
}

// Open reverses Seal. Any failure is ErrOpen.
func (s *Sealer) Open(sealed, additionalData []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < ns+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	pt, err := s.aead.Open(nil, sealed[:ns], sealed[ns:], additionalData)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// LoadOrCreateKeyFile returns the 32-byte sealing key kept, base64 encoded,
// in the file at path. When the file does not exist it creates it: the
// parent directory with mode 0700 if missing, the file with mode 0600,
// written to a temporary file and then linked into place, so that a reader
// never sees a partial key and of two processes racing to create it both end
// up with the same key (the loser reads the winner's). Existing files and
// directories are used as they are; their modes are not changed. A file
// that does not hold exactly 32 base64-encoded bytes is an error: it is
// never replaced, since everything sealed under it would be lost.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	key, err := readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := privatedir.Make(filepath.Dir(path), filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("tokens: key file: %w", err)
	}
	key = NewKey()
	if err := createExclusive(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
		return nil, err
	}
	// Read back rather than return key: another process may have won.
	return readKeyFile(path)
}

// ReadKeyFile returns the 32-byte key kept, base64 encoded, in the file at
// path, as LoadOrCreateKeyFile does, but never creates it: for a key that
// several processes share, made once by the operator. A missing file is an
// error that wraps fs.ErrNotExist.
func ReadKeyFile(path string) ([]byte, error) {
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokens: key file: %w", err)
	}
	return key, err
}

// NewKey returns a new random secret key of KeySize bytes.
func NewKey() []byte {
	key := make([]byte, KeySize)
	rand.Read(key) // never fails (Go 1.24+)
	return key
}

// NewKeyText returns a new random key as a key file holds it: standard
// base64 and a newline.
func NewKeyText() string {
	return base64.StdEncoding.EncodeToString(NewKey()) + "\n"
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("tokens: key file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("tokens: key file %s is malformed: want %d bytes in standard base64", path, KeySize)
	}
	return key, nil
}

// LooksTyped reports whether key was typed by hand rather than drawn at
// random (SEC-198): fewer than 8 different byte values in its 32 (32 zero
// bytes, AAAA…A=, a short pattern). A random key has about 30, and the
// text of 32 random hex digits about 15; fewer than 8 happens to such a
// text once in 10^7 keys, to a random key never.
func LooksTyped(key []byte) bool { return distinctBytes(key) < 8 }

func distinctBytes(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}

// createExclusive writes data to path unless path exists already (which is
// not an error: the caller reads whatever is there).
func createExclusive(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("tokens: key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens: key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens: key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tokens: key file: %w", err)
	}
	// link(2) fails if path exists, unlike rename(2), which would replace a
	// key that a concurrent process already uses.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		// No hard links on this file system: rename, still never exposing
		// a partial file, but a concurrent creator may be overwritten.
		if _, statErr := os.Lstat(path); statErr == nil {
			return nil
		}
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("tokens: key file: %w", err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the new name durable; best effort
		d.Close()
	}
	return nil
}
