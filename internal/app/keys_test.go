package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// SEC-171: DATA-DIR/secret.key is the gateway's own file, as the database
// is (SEC-150): a data directory every user may write to, a key that is a
// symbolic link, or one another user owns is refused with the reason, by
// serve (which makes the key) and by the commands that only read it; the
// file a link names is left as it was. Fails before this change: each
// was read, or the key made there.
func TestSEC171_DataDirKeyIsTheGatewaysOwn(t *testing.T) {
	keyIn := func(t *testing.T, dir string) *config.Config {
		t.Helper()
		cfg := config.Defaults()
		cfg.DataDir = dir
		if _, err := tokens.LoadOrCreateKeyFile(filepath.Join(dir, "secret.key")); err != nil {
			t.Fatal(err)
		}
		return &cfg
	}
	refused := func(t *testing.T, cfg *config.Config, want string) {
		t.Helper()
		for _, create := range []bool{true, false} {
			if _, err := secretKey(cfg, create); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("secretKey (create %v): %v, want it refused: %q", create, err, want)
			}
		}
	}

	t.Run("own", func(t *testing.T) {
		if _, err := secretKey(keyIn(t, t.TempDir()), false); err != nil {
			t.Errorf("a key in a private data directory: %v, want it read", err)
		}
	})
	t.Run("directory every user may write to", func(t *testing.T) {
		cfg := keyIn(t, t.TempDir())
		if err := os.Chmod(cfg.DataDir, 0o777); err != nil {
			t.Fatal(err)
		}
		refused(t, cfg, "may be written by every user (mode 0777): chmod o-w it")
		// Nor is one made there.
		os.Remove(filepath.Join(cfg.DataDir, "secret.key"))
		refused(t, cfg, "may be written by every user")
		if _, err := os.Lstat(filepath.Join(cfg.DataDir, "secret.key")); err == nil {
			t.Error("a key was made in a directory every user may write to")
		}
	})
	t.Run("symbolic link", func(t *testing.T) {
		elsewhere := keyIn(t, t.TempDir())
		target := filepath.Join(elsewhere.DataDir, "secret.key")
		if err := os.Chmod(target, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := config.Defaults()
		cfg.DataDir = t.TempDir()
		if err := os.Symlink(target, filepath.Join(cfg.DataDir, "secret.key")); err != nil {
			t.Fatal(err)
		}
		refused(t, &cfg, "secret.key is a symbolic link")
		if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("the link's target: %v %v, want it as it was, 0644", fi.Mode(), err)
		}
	})
	t.Run("another user's", func(t *testing.T) {
		cfg := keyIn(t, t.TempDir())
		// The tests run as root, who may give a file away.
		if err := os.Chown(filepath.Join(cfg.DataDir, "secret.key"), 54321, -1); err != nil {
			t.Fatalf("giving the key file to another user: %v (the tests run as root)", err)
		}
		refused(t, cfg, "belongs to uid 54321, who could change it")
	})
	t.Run("the data directory's owner's, read by root", func(t *testing.T) {
		// sudo mcpgate check on the data directory of the user mcpgate
		// serves as: the key is that user's, as its directory is.
		cfg := keyIn(t, t.TempDir())
		for _, p := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "secret.key")} {
			if err := os.Chown(p, 54321, -1); err != nil {
				t.Fatalf("giving %s to another user: %v (the tests run as root)", p, err)
			}
		}
		if _, err := secretKey(cfg, false); err != nil {
			t.Errorf("root reading the key of its data directory's owner: %v, want it read", err)
		}
		// SEC-196: serve, as root, does not take it: that user chose it.
		// Fails before: serve took it, and that user could mint tokens.
		if _, err := secretKey(cfg, true); err == nil || !strings.Contains(err.Error(), "belongs to uid 54321") {
			t.Errorf("serve as root on another user's data directory: %v, want it refused", err)
		}
	})
	t.Run("serve in another user's directory", func(t *testing.T) {
		// SEC-196: its owner may put a key of their own in place of the
		// one serve made. Fails before: the key was read.
		cfg := keyIn(t, t.TempDir())
		if err := os.Chown(cfg.DataDir, 54321, -1); err != nil {
			t.Fatalf("giving the directory to another user: %v (the tests run as root)", err)
		}
		if _, err := secretKey(cfg, true); err == nil || !strings.Contains(err.Error(), "who could put files of their own where mcpgate") {
			t.Errorf("serve with a key in another user's directory: %v, want it refused", err)
		}
	})
}
