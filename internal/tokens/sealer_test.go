package tokens

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("accepted a %d-byte key", n)
		}
	}
}

func TestSealerRoundTrip(t *testing.T) {
	s := testSealer(t)
	pt := []byte("upstream refresh token")
	ad := []byte("github:583231")
	a, b := s.Seal(pt, ad), s.Seal(pt, ad)
	if bytes.Equal(a, b) {
		t.Fatal("two seals are equal: nonce reused")
	}
	if bytes.Contains(a, pt) {
		t.Fatal("plaintext visible")
	}
	for _, sealed := range [][]byte{a, b} {
		got, err := s.Open(sealed, ad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, %v; want %q", got, err, pt)
		}
	}
	got, err := s.Open(s.Seal(nil, nil), nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty: %q %v, want an empty plaintext", got, err)
	}
}

func TestSealerRejects(t *testing.T) {
	s := testSealer(t)
	ad := []byte("kid-1")
	sealed := s.Seal([]byte("private key"), ad)

	other, _ := NewSealer(bytes.Repeat([]byte{9}, 32))
	cases := map[string]func() ([]byte, error){
		"wrong AD":   func() ([]byte, error) { return s.Open(sealed, []byte("kid-2")) },
		"missing AD": func() ([]byte, error) { return s.Open(sealed, nil) },
		"other key":  func() ([]byte, error) { return other.Open(sealed, ad) },
		"short":      func() ([]byte, error) { return s.Open(sealed[:20], ad) },
		"empty":      func() ([]byte, error) { return s.Open(nil, ad) },
		"truncated":  func() ([]byte, error) { return s.Open(sealed[:len(sealed)-1], ad) },
		"appended":   func() ([]byte, error) { return s.Open(append(bytes.Clone(sealed), 0), ad) },
		"nonce bit":  func() ([]byte, error) { return s.Open(flip(sealed, 0), ad) },
		"ciphertext": func() ([]byte, error) { return s.Open(flip(sealed, 13), ad) },
		"tag bit":    func() ([]byte, error) { return s.Open(flip(sealed, len(sealed)-1), ad) },
	}
	for name, open := range cases {
		if pt, err := open(); !errors.Is(err, ErrOpen) || pt != nil {
			t.Errorf("%s: %q, %v; want nil and ErrOpen", name, pt, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "parent", "data")
	path := filepath.Join(dir, "sealing.key")
	k1, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("%d-byte key, want 32", len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("file mode %o, want 600", m)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := di.Mode().Perm(); m != 0o700 {
		t.Fatalf("dir mode %o, want 700", m)
	}
	// A parent made for it is searchable, as mkdir -p makes it (SEC-22).
	if pi, err := os.Stat(filepath.Dir(dir)); err != nil {
		t.Fatal(err)
	} else if pi.Mode().Perm()&0o001 == 0 {
		t.Fatalf("the parent made for the directory: %v, want it searchable by others", pi.Mode())
	}
	k2, err := LoadOrCreateKeyFile(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: %v, same=%v; want the same key", err, bytes.Equal(k1, k2))
	}
	raw, _ := os.ReadFile(path)
	if got, _ := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(raw))); !bytes.Equal(got, k1) {
		t.Fatalf("file holds %q, want the key in base64", raw)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files %v, want the key file alone (no temporary file left)", entries)
	}
	if _, err := NewSealer(k1); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateKeyFileMalformed(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":     "",
		"short":     base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"long":      base64.StdEncoding.EncodeToString(make([]byte, 33)),
		"not b64":   "this is not base64 at all!!!!!!!!!!!!!!!!!!!",
		"raw bytes": string(bytes.Repeat([]byte{0xff}, 32)),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKeyFile(path); err == nil {
			t.Errorf("%s: accepted, want an error", name)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("%s: file was rewritten, want it left as it was", name)
		}
	}
	// A key written by hand with a trailing newline, or by an operator
	// with `openssl rand -base64 32`, loads.
	path := filepath.Join(dir, "hand")
	sum := sha256.Sum256([]byte("a key from openssl rand"))
	want := sum[:]
	os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(want)+"\r\n"), 0o644)
	if got, err := LoadOrCreateKeyFile(path); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%v %x, want %x", err, got, want)
	}
}

// Processes creating the file at once all get the same key.
func TestLoadOrCreateKeyFileRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k", "sealing.key")
	keys := make([][]byte, 16)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := LoadOrCreateKeyFile(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i := range keys {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("racer %d got another key, want every racer the same", i)
		}
	}
}

// A key file named one level below a data directory that does not exist
// yet (data/keys/secret.key) makes the data directory as a parent: it is
// searchable for the stdio servers' uids, but nobody else lists what the
// gateway keeps in it (SEC-22).
func TestLoadOrCreateKeyFileParentsNotListable(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if _, err := LoadOrCreateKeyFile(filepath.Join(data, "keys", "secret.key")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m&0o044 != 0 || m&0o001 == 0 {
		t.Errorf("the parent made for the key's directory: mode %04o, want searchable by others but not readable (0711)", m)
	}
}

// SEC-198: a key typed by hand is told from a random one, and from the
// text of random hex digits (openssl rand -hex 16, 128 bits), which an
// operator may have written as a key and whose store it seals.
func TestLooksTyped(t *testing.T) {
	for name, key := range map[string][]byte{
		"zeros":   make([]byte, 32),
		"AAAA…A=": bytes.Repeat([]byte{0}, 32),
		"pattern": bytes.Repeat([]byte("0123456"), 5)[:32],
		"ones":    bytes.Repeat([]byte{1, 1, 1, 2}, 8),
	} {
		if !LooksTyped(key) {
			t.Errorf("%s: not taken for a key typed by hand", name)
		}
	}
	for i := range 1000 {
		hexText := []byte(hex.EncodeToString(NewKey()[:16]))
		if LooksTyped(NewKey()) || LooksTyped(hexText) {
			t.Fatalf("key %d: a random key, or the text of random hex digits, taken for one typed by hand", i)
		}
	}
}
