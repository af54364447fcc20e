package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
)

// fakeUsers is a UserStore in a map. store/memory is not used so that these
// tests depend on nothing but the store package's types.
type fakeUsers struct {
	mu    sync.Mutex
	users map[string]store.LocalUser
}

func newFakeUsers() *fakeUsers { return &fakeUsers{users: make(map[string]store.LocalUser)} }

func (f *fakeUsers) PutLocalUser(_ context.Context, u *store.LocalUser) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *u
	c.PasswordHash = bytes.Clone(u.PasswordHash)
	f.users[u.Name] = c
	return nil
}

func (f *fakeUsers) CreateLocalUser(_ context.Context, u *store.LocalUser) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[u.Name]; ok {
		return fmt.Errorf("fake: local user %q: %w", u.Name, store.ErrConflict)
	}
	c := *u
	c.PasswordHash = bytes.Clone(u.PasswordHash)
	f.users[u.Name] = c
	return nil
}

func (f *fakeUsers) GetLocalUser(_ context.Context, name string) (*store.LocalUser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[name]
	if !ok {
		return nil, fmt.Errorf("fake: local user %q: %w", name, store.ErrNotFound)
	}
	u.PasswordHash = bytes.Clone(u.PasswordHash)
	u.Groups = slices.Clone(u.Groups)
	return &u, nil
}

func (f *fakeUsers) CountLocalUsers(context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.users), nil
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fastHash is a bcrypt hash at the lowest cost SetUser takes; SetUser
// stores it as it is.
func fastHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func newTestConnector(t *testing.T) (*Connector, *fakeUsers, *clock) {
	t.Helper()
	users, clk := newFakeUsers(), newClock()
	return New(users, Options{Now: clk.Now}), users, clk
}

func TestConnectorNames(t *testing.T) {
	t.Parallel()
	c, _, _ := newTestConnector(t)
	if c.ID() != "local" || c.DisplayName() != "Local account" {
		t.Errorf("ID, DisplayName = %q, %q; want local, Local account", c.ID(), c.DisplayName())
	}
}

func TestLoginSuccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, users, clk := newTestConnector(t)
	if err := c.SetUser(ctx, "alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	stored, err := users.GetLocalUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost(stored.PasswordHash); err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("stored hash cost = %d, %v; want %d", cost, err, bcrypt.DefaultCost)
	}
	if !stored.CreatedAt.Equal(clk.Now()) {
		t.Errorf("CreatedAt = %v, want the injected clock's %v", stored.CreatedAt, clk.Now())
	}

	got, err := c.Login(ctx, "alice", "correct horse")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	want := identity.User{ID: "local:alice", Upstream: "local", Username: "alice", Name: "alice"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Login = %+v, want %+v", got, want)
	}
}

func TestSetUserKeepsCreatedAt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, users, clk := newTestConnector(t)
	if err := c.SetUser(ctx, "alice", fastHash(t, "one")); err != nil {
		t.Fatal(err)
	}
	first := clk.Now()
	clk.Advance(time.Hour)
	if err := c.SetUser(ctx, "alice", fastHash(t, "two")); err != nil {
		t.Fatal(err)
	}
	u, _ := users.GetLocalUser(ctx, "alice")
	if !u.CreatedAt.Equal(first) {
		t.Errorf("CreatedAt = %v after a password change, want %v", u.CreatedAt, first)
	}
	if _, err := c.Login(ctx, "alice", "two"); err != nil {
		t.Errorf("Login with the new password: %v, want success", err)
	}
}

func TestLoginFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, _ := newTestConnector(t)
	if err := c.SetUser(ctx, "alice", fastHash(t, "secret")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, password string
	}{
		{"wrong password", "alice", "Secret"},
		{"empty password", "alice", ""},
		{"unknown user", "bob", "secret"},
		{"name differs in case", "Alice", "secret"},
		{"invalid name", "al ice", "secret"},
		{"password past bcrypt's 72 bytes", "alice", "secret" + strings.Repeat("x", 80)},
	}
	var msg string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Login(ctx, tt.user, tt.password)
			if !errors.Is(err, upstream.ErrInvalidCredentials) {
				t.Fatalf("Login = %v, want ErrInvalidCredentials", err)
			}
			if errors.Is(err, ErrThrottled) {
				t.Fatalf("Login = %v, throttled already; want a plain failure", err)
			}
			// An unknown user must look exactly like a wrong password.
			if msg == "" {
				msg = err.Error()
			} else if err.Error() != msg {
				t.Errorf("error %q differs from %q, want every failure to read the same", err, msg)
			}
		})
	}
}

// The comparison for an unknown user runs against dummyHash; it must be a
// usable hash at the cost SetUser uses, or unknown users would answer faster.
func TestDummyHash(t *testing.T) {
	t.Parallel()
	cost, err := bcrypt.Cost(dummyHash)
	if err != nil || cost != bcrypt.DefaultCost {
		t.Fatalf("dummyHash cost = %d, %v; want %d", cost, err, bcrypt.DefaultCost)
	}
	if err := bcrypt.CompareHashAndPassword(dummyHash, []byte("")); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		t.Fatalf("compare against dummyHash = %v, want a plain mismatch", err)
	}
}

func TestParseUserSpec(t *testing.T) {
	t.Parallel()
	hash := fastHash(t, "pw")
	tests := []struct {
		spec, name, password string
		ok                   bool
	}{
		{"alice:secret", "alice", "secret", true},
		{"alice:se:cr:et", "alice", "se:cr:et", true},
		{"alice::", "alice", ":", true},
		{"a.b_c@d-e:x", "a.b_c@d-e", "x", true},
		{strings.Repeat("n", 64) + ":x", strings.Repeat("n", 64), "x", true},
		{"bob:" + hash, "bob", hash, true},
		{"bob:$2y$" + hash[4:], "bob", "$2y$" + hash[4:], true},
		{"bob:$2b$" + hash[4:], "bob", "$2b$" + hash[4:], true},

		{"alice", "", "", false},
		{"alice:", "", "", false},
		{":secret", "", "", false},
		{strings.Repeat("n", 65) + ":x", "", "", false},
		{"al ice:x", "", "", false},
		{"al/ice:x", "", "", false},
		{"älice:x", "", "", false},
		{"bob:$2a$10$notahash", "", "", false},
		{"bob:" + strings.Repeat("p", 73), "", "", false},
	}
	for _, tt := range tests {
		name, password, err := ParseUserSpec(tt.spec)
		if (err == nil) != tt.ok {
			t.Errorf("ParseUserSpec(%q) error = %v, want ok=%v", tt.spec, err, tt.ok)
			continue
		}
		if err != nil {
			// The spec's password part must not leak into the message,
			// which ends up in logs and on terminals.
			if _, pw, _ := strings.Cut(tt.spec, ":"); pw != "" && strings.Contains(err.Error(), pw) {
				t.Errorf("ParseUserSpec(%q) error %q quotes the password, want it left out", tt.spec, err)
			}
			continue
		}
		if name != tt.name || password != tt.password {
			t.Errorf("ParseUserSpec(%q) = %q, %q; want %q, %q", tt.spec, name, password, tt.name, tt.password)
		}
	}
}

// A bcrypt hash from a config file is stored as it is, in all three variants.
func TestSetUserHashPassthrough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, users, _ := newTestConnector(t)
	hash := fastHash(t, "from-config")
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		t.Run(prefix, func(t *testing.T) {
			h := prefix + hash[4:]
			name, pw, err := ParseUserSpec("carol:" + h)
			if err != nil {
				t.Fatalf("ParseUserSpec: %v, want the hash accepted", err)
			}
			if err := c.SetUser(ctx, name, pw); err != nil {
				t.Fatalf("SetUser(%s…): %v, want the hash accepted", prefix, err)
			}
			u, _ := users.GetLocalUser(ctx, "carol")
			if string(u.PasswordHash) != h {
				t.Errorf("stored %q, want the hash unchanged %q", u.PasswordHash, h)
			}
			if _, err := c.Login(ctx, "carol", "from-config"); err != nil {
				t.Errorf("Login against a %s hash: %v, want success", prefix, err)
			}
			if _, err := c.Login(ctx, "carol", h); err == nil {
				t.Errorf("the hash itself logged in as a password (%s), want a failure", prefix)
			}
		})
	}
}

func TestSetUserRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, users, _ := newTestConnector(t)
	for _, tt := range []struct{ name, pw string }{
		{"", "pw"},
		{"bad name", "pw"},
		{"alice", ""},
		{"alice", "$2a$12$short"},
		{"alice", strings.Repeat("p", 73)},
	} {
		err := c.SetUser(ctx, tt.name, tt.pw)
		if err == nil {
			t.Errorf("SetUser(%q, %q) = nil, want an error", tt.name, tt.pw)
			continue
		}
		if tt.pw != "" && strings.Contains(err.Error(), tt.pw) {
			t.Errorf("SetUser error %q quotes the password, want it left out", err)
		}
	}
	if n, _ := users.CountLocalUsers(ctx); n != 0 {
		t.Errorf("%d users stored after rejected SetUser calls, want 0", n)
	}
}

func TestEnsureAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, _ := newTestConnector(t)

	password, created, err := c.EnsureAdmin(ctx)
	if err != nil || !created {
		t.Fatalf("EnsureAdmin on an empty store = %v, %v; want created", created, err)
	}
	if len(password) < 20 {
		t.Errorf("generated password has %d characters, want at least 20", len(password))
	}
	u, err := c.Login(ctx, "admin", password)
	if err != nil {
		t.Fatalf("Login as admin with the returned password: %v", err)
	}
	if u.ID != "local:admin" {
		t.Errorf("admin ID = %q, want local:admin", u.ID)
	}

	again, created, err := c.EnsureAdmin(ctx)
	if err != nil || created || again != "" {
		t.Fatalf("second EnsureAdmin = %q, %v, %v; want nothing created", again, created, err)
	}
	if _, err := c.Login(ctx, "admin", password); err != nil {
		t.Errorf("the first password stopped working: %v, want success", err)
	}

	// Any configured user, not only admin, means the install is set up.
	other, users2, _ := newTestConnector(t)
	if err := other.SetUser(ctx, "alice", fastHash(t, "pw")); err != nil {
		t.Fatal(err)
	}
	if _, created, err := other.EnsureAdmin(ctx); err != nil || created {
		t.Errorf("EnsureAdmin with alice present = %v, %v; want nothing created", created, err)
	}
	if _, err := users2.GetLocalUser(ctx, "admin"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("admin lookup after EnsureAdmin found alice: %v, want ErrNotFound", err)
	}
}

func TestEnsureAdminConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, _ := newTestConnector(t)
	var wg sync.WaitGroup
	results := make(chan bool, 4)
	for range 4 {
		wg.Go(func() {
			_, created, err := c.EnsureAdmin(ctx)
			if err != nil {
				t.Errorf("EnsureAdmin: %v, want success", err)
			}
			results <- created
		})
	}
	wg.Wait()
	close(results)
	n := 0
	for created := range results {
		if created {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d concurrent EnsureAdmin calls created the admin, want 1", n)
	}
}

// countedTogether is a UserStore whose CountLocalUsers answers only once
// every one of n callers has counted: processes that all find the store
// empty before any of them creates the admin.
type countedTogether struct {
	*fakeUsers
	barrier sync.WaitGroup
}

func (c *countedTogether) CountLocalUsers(ctx context.Context) (int, error) {
	n, err := c.fakeUsers.CountLocalUsers(ctx)
	c.barrier.Done()
	c.barrier.Wait()
	return n, err
}

// SEC-152: gateways starting on one empty store at once (replicas) each
// find no account; one creates the admin and shows its password, which
// works, and the others show none.
func TestEnsureAdminAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const processes = 3
	users := &countedTogether{fakeUsers: newFakeUsers()}
	users.barrier.Add(processes)
	var wg sync.WaitGroup
	shown := make(chan string, processes)
	for range processes {
		c := New(users, Options{}) // a connector per process: no shared lock
		wg.Go(func() {
			password, created, err := c.EnsureAdmin(ctx)
			if err != nil {
				t.Errorf("EnsureAdmin: %v, want success", err)
			}
			if created {
				shown <- password
			}
		})
	}
	wg.Wait()
	close(shown)
	var passwords []string
	for p := range shown {
		passwords = append(passwords, p)
	}
	if len(passwords) != 1 {
		t.Fatalf("%d of %d processes showed an admin password, want 1", len(passwords), processes)
	}
	if _, err := New(users, Options{}).Login(ctx, AdminName, passwords[0]); err != nil {
		t.Errorf("the password shown does not log admin in: %v", err)
	}
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, clk := newTestConnector(t)
	if err := c.SetUser(ctx, "alice", fastHash(t, "right")); err != nil {
		t.Fatal(err)
	}
	for i := range maxFailures {
		if _, err := c.Login(ctx, "alice", "wrong"); errors.Is(err, ErrThrottled) {
			t.Fatalf("failure %d throttled already, want the first %d let through", i+1, maxFailures)
		}
	}

	// Locked: even the right password is not checked.
	_, err := c.Login(ctx, "alice", "right")
	if !errors.Is(err, ErrThrottled) || !errors.Is(err, upstream.ErrInvalidCredentials) {
		t.Fatalf("Login after %d failures = %v, want ErrThrottled wrapping ErrInvalidCredentials", maxFailures, err)
	}
	// Case variants share the lock.
	if _, err := c.Login(ctx, "ALICE", "right"); !errors.Is(err, ErrThrottled) {
		t.Errorf("Login as ALICE = %v, want throttled", err)
	}
	// Other users are not affected.
	if _, err := c.Login(ctx, "bob", "x"); errors.Is(err, ErrThrottled) {
		t.Errorf("bob is throttled by alice's failures, want him unaffected")
	}

	// The lock lasts baseBackoff after the 5th failure, then one more try.
	clk.Advance(baseBackoff - time.Millisecond)
	if _, err := c.Login(ctx, "alice", "right"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("Login just before the backoff ends = %v, want throttled", err)
	}
	clk.Advance(time.Millisecond)
	if _, err := c.Login(ctx, "alice", "wrong"); errors.Is(err, ErrThrottled) || err == nil {
		t.Fatalf("Login after the backoff = %v, want a plain failure", err)
	}
	// The 6th failure doubles the lock.
	clk.Advance(2*baseBackoff - time.Millisecond)
	if _, err := c.Login(ctx, "alice", "right"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("Login within the doubled backoff = %v, want throttled", err)
	}
	clk.Advance(time.Millisecond)

	// Success resets the count: five more failures before the next lock.
	if _, err := c.Login(ctx, "alice", "right"); err != nil {
		t.Fatalf("Login after the backoff with the right password: %v, want success", err)
	}
	for i := range maxFailures - 1 {
		if _, err := c.Login(ctx, "alice", "wrong"); errors.Is(err, ErrThrottled) {
			t.Fatalf("failure %d after a success is throttled: the count was not reset, want %d failures let through", i+1, maxFailures-1)
		}
	}
	if _, err := c.Login(ctx, "alice", "right"); err != nil {
		t.Fatalf("Login after 4 failures: %v, want success", err)
	}
}

func TestThrottleUnknownUserAlike(t *testing.T) {
	t.Parallel()
	// Throttling must not reveal which names exist: unknown names lock too.
	ctx := context.Background()
	c, _, _ := newTestConnector(t)
	for range maxFailures {
		c.Login(ctx, "ghost", "x")
	}
	if _, err := c.Login(ctx, "ghost", "x"); !errors.Is(err, ErrThrottled) {
		t.Errorf("unknown user after %d failures = %v, want throttled", maxFailures, err)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i, w := range want {
		if got := backoff(maxFailures + i); got != w*time.Second {
			t.Errorf("backoff(%d) = %v, want %v", maxFailures+i, got, w*time.Second)
		}
	}
	if got := backoff(1 << 20); got != maxBackoff {
		t.Errorf("backoff(huge) = %v, want %v", got, maxBackoff)
	}
}

func TestThrottleWindowExpires(t *testing.T) {
	t.Parallel()
	c, _, clk := newTestConnector(t)
	for range maxFailures - 1 {
		c.failed("alice", true)
	}
	clk.Advance(failureWindow + time.Second)
	if n := c.failed("alice", true); n != 1 {
		t.Errorf("failure count after the window = %d, want 1 (old failures forgotten)", n)
	}
	// An idle locked entry is forgotten too.
	for range 20 {
		c.failed("bob", true)
	}
	clk.Advance(failureWindow + time.Second)
	if d, _ := c.begin(t.Context(), "bob"); d != 0 {
		t.Errorf("bob still locked for %v after the window, want 0", d)
	} else {
		c.end("bob")
	}
	c.mu.Lock()
	_, ok := c.failures["bob"]
	c.mu.Unlock()
	if ok {
		t.Error("bob's expired entry is still in the map, want it forgotten")
	}
}

func TestThrottleMapBounded(t *testing.T) {
	t.Parallel()
	c, _, clk := newTestConnector(t)
	// A username under attack...
	for range 10 {
		c.failed("alice", true)
	}
	// ...then a flood of junk names, one failure each.
	for i := range maxEntries + 500 {
		clk.Advance(time.Millisecond)
		c.failed(fmt.Sprintf("junk%d", i), false)
	}
	c.mu.Lock()
	n := len(c.failures)
	_, kept := c.failures["alice"]
	c.mu.Unlock()
	if n > maxEntries {
		t.Errorf("failure map holds %d entries, want at most %d", n, maxEntries)
	}
	if !kept {
		t.Error("the flood evicted the username under attack, want it kept")
	}
}

func TestPasswordsNeverLogged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	users, clk := newFakeUsers(), newClock()
	c := New(users, Options{Now: clk.Now, Logger: logger})

	adminPW, _, err := c.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const alicePW, wrongPW, typedInUserField = "alice-Pa55word", "wrong-Guess-77", "oops-my-Pa55word"
	hashed := fastHash(t, "bob-Pa55word")
	if err := c.SetUser(ctx, "alice", alicePW); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUser(ctx, "bob", hashed); err != nil {
		t.Fatal(err)
	}
	c.SetUser(ctx, "carol", "$2a$10$broken-"+wrongPW) // rejected
	c.Login(ctx, "admin", adminPW)
	c.Login(ctx, "alice", alicePW)
	c.Login(ctx, "bob", "bob-Pa55word")
	c.Login(ctx, typedInUserField, alicePW)
	c.Login(ctx, "nobody", wrongPW)
	if err := c.SetUser(ctx, "erin", fastHash(t, "erin-Pa55word")); err != nil {
		t.Fatal(err)
	}
	for range maxFailures + 2 { // into throttling; erin's cheap hash keeps this quick
		c.Login(ctx, "erin", wrongPW)
	}
	c.Login(ctx, "alice", wrongPW)
	// A corrupt stored hash is logged as an error; its content must not be.
	users.PutLocalUser(ctx, &store.LocalUser{Name: "dave", PasswordHash: []byte("$2a$10$" + alicePW)})
	clk.Advance(time.Hour)
	c.Login(ctx, "dave", alicePW)

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "local login failed") || !strings.Contains(out, "local login throttled") ||
		!strings.Contains(out, "user=erin") {
		t.Fatalf("expected failure and throttle records in the log, got:\n%s", out)
	}
	for _, secret := range []string{adminPW, alicePW, wrongPW, typedInUserField, "bob-Pa55word", hashed} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q, want no password or hash:\n%s", secret, out)
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestParseUserSpecGroups(t *testing.T) {
	t.Parallel()
	hash := fastHash(t, "pw")
	tests := []struct {
		spec, name, password string
		groups               []string
		ok                   bool
	}{
		// Without brackets, exactly ParseUserSpec: colons and commas
		// belong to the password.
		{"alice:secret", "alice", "secret", nil, true},
		{"alice:se:cr:et", "alice", "se:cr:et", nil, true},
		{"alice:pw1,carol:pw2", "alice", "pw1,carol:pw2", nil, true},
		{"alice[admins,devs]:PW", "alice", "PW", []string{"admins", "devs"}, true},
		{"alice[admins+devs]:PW", "alice", "PW", []string{"admins", "devs"}, true},
		{"alice[admins]:p:w,x", "alice", "p:w,x", []string{"admins"}, true},
		{"alice[acme/platform,acme]:pw", "alice", "pw", []string{"acme/platform", "acme"}, true},
		{"alice[devs,devs]:pw", "alice", "pw", []string{"devs"}, true},
		{"bob[ops]:" + hash, "bob", hash, []string{"ops"}, true},

		{"alice[]:pw", "", "", nil, false},
		{"alice[admins,,devs]:pw", "", "", nil, false},
		{"alice[admins:pw", "", "", nil, false},
		{"alice[a]b]:pw", "", "", nil, false},
		{"alice[a b]:pw", "", "", nil, false},
		{"[admins]:pw", "", "", nil, false},
		{"alice[admins]", "", "", nil, false},
		{"alice[admins]:", "", "", nil, false},
		{"alice[" + strings.Repeat("g", 129) + "]:pw", "", "", nil, false},
		{"alice[admins]:" + strings.Repeat("p", 73), "", "", nil, false},
	}
	for _, tt := range tests {
		name, password, groups, err := ParseUserSpecGroups(tt.spec)
		if (err == nil) != tt.ok {
			t.Errorf("ParseUserSpecGroups(%q) error = %v, want ok=%v", tt.spec, err, tt.ok)
			continue
		}
		if err != nil {
			if _, pw, _ := strings.Cut(tt.spec, ":"); pw != "" && strings.Contains(err.Error(), pw) {
				t.Errorf("ParseUserSpecGroups(%q) error %q quotes the password, want it left out", tt.spec, err)
			}
			continue
		}
		if name != tt.name || password != tt.password || !slices.Equal(groups, tt.groups) {
			t.Errorf("ParseUserSpecGroups(%q) = %q, %q, %q; want %q, %q, %q", tt.spec, name, password, groups, tt.name, tt.password, tt.groups)
		}
	}
}

// The groups given to SetUser are the user's at login, stored with the
// account; setting the user again replaces them.
func TestLoginGroups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, users, _ := newTestConnector(t)
	if err := c.SetUser(ctx, "alice", fastHash(t, "pw"), "admins", "devs"); err != nil {
		t.Fatal(err)
	}
	if u, _ := users.GetLocalUser(ctx, "alice"); !slices.Equal(u.Groups, []string{"admins", "devs"}) {
		t.Errorf("stored groups %q, want [admins devs]", u.Groups)
	}
	got, err := c.Login(ctx, "alice", "pw")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if !slices.Equal(got.Groups, []string{"admins", "devs"}) {
		t.Errorf("Login groups %q, want [admins devs]", got.Groups)
	}
	if err := c.SetUser(ctx, "alice", fastHash(t, "pw")); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Login(ctx, "alice", "pw"); err != nil || got.Groups != nil {
		t.Errorf("Login after SetUser without groups = %q, %v; want no groups", got.Groups, err)
	}
	if err := c.SetUser(ctx, "alice", "pw", "bad group"); err == nil {
		t.Error("SetUser with the group \"bad group\" succeeded, want an error")
	}
}

// SEC-93: a disabled account is refused with its right password, as a
// wrong password is, and setting its password (as the configuration's
// accounts are at every start) does not enable it.
func TestSEC93_DisabledAccountRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs bytes.Buffer
	users, clk := newFakeUsers(), newClock()
	c := New(users, Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := c.SetUser(ctx, "alice", fastHash(t, "right")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "alice", "right"); err != nil {
		t.Fatalf("Login before disabling: %v, want success", err)
	}
	users.mu.Lock()
	u := users.users["alice"]
	u.DisabledAt = clk.Now()
	users.users["alice"] = u
	users.mu.Unlock()

	_, err := c.Login(ctx, "alice", "right")
	if !errors.Is(err, upstream.ErrInvalidCredentials) || errors.Is(err, ErrThrottled) {
		t.Fatalf("Login of a disabled account: %v, want ErrInvalidCredentials", err)
	}
	if !strings.Contains(logs.String(), `reason="disabled account"`) {
		t.Errorf("log does not say why:\n%s", logs.String())
	}
	if err := c.SetUser(ctx, "alice", fastHash(t, "new")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "alice", "new"); !errors.Is(err, upstream.ErrInvalidCredentials) {
		t.Fatalf("Login after a new password: %v, want the account still disabled", err)
	}
}

// SEC-125: a known device's logins have a failure count of their own under
// the name: the name's lock, made by anyone's failures, does not reach
// them, and theirs does not reach the name or another device.
func TestSEC125_KnownDeviceThrottledOnItsOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, _ := newTestConnector(t)
	if err := c.SetUser(ctx, "alice", fastHash(t, "right")); err != nil {
		t.Fatal(err)
	}
	for range maxFailures {
		if _, err := c.Login(ctx, "alice", "wrong"); err == nil {
			t.Fatal("a wrong password signed in")
		}
	}
	if _, err := c.Login(ctx, "alice", "right"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("Login after %d failures = %v, want throttled", maxFailures, err)
	}
	if _, err := c.LoginKnownDevice(ctx, "alice", "right", "dev1"); err != nil {
		t.Fatalf("LoginKnownDevice while the name is locked = %v, want success", err)
	}
	for range maxFailures {
		if _, err := c.LoginKnownDevice(ctx, "alice", "wrong", "dev1"); errors.Is(err, ErrThrottled) || err == nil {
			t.Fatalf("a known device's failure = %v, want a plain failure", err)
		}
	}
	if _, err := c.LoginKnownDevice(ctx, "alice", "right", "dev1"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("LoginKnownDevice after its own %d failures = %v, want throttled", maxFailures, err)
	}
	if _, err := c.LoginKnownDevice(ctx, "alice", "right", "dev2"); err != nil {
		t.Fatalf("another known device = %v, want success", err)
	}
	// An empty device is no device: the name's lock.
	if _, err := c.LoginKnownDevice(ctx, "alice", "right", ""); !errors.Is(err, ErrThrottled) {
		t.Fatalf("LoginKnownDevice without a device = %v, want the name's lock", err)
	}
}

// SEC-131: a bcrypt hash cheaper than the connector's own is refused: it is
// quicker to crack, and a wrong password for its name would answer faster
// than for a name that is no account, which tells that the name is one.
func TestSEC131_CheapHashRefused(t *testing.T) {
	t.Parallel()
	c, _, _ := newTestConnector(t)
	cheap, err := bcrypt.GenerateFromPassword([]byte("s3cret-pw"), 5) // htpasswd -B's default
	if err != nil {
		t.Fatal(err)
	}
	err = c.SetUser(context.Background(), "alice", string(cheap))
	if err == nil || !strings.Contains(err.Error(), "cost 5") || !strings.Contains(err.Error(), "must be 10") {
		t.Errorf("SetUser with a hash of cost 5: %v, want it refused, naming the cost and the one to use", err)
	}
	if _, _, err := ParseUserSpec("alice:" + string(cheap)); err == nil {
		t.Errorf("ParseUserSpec with a hash of cost 5: accepted, want it refused at start")
	}
}

// SEC-131: a bcrypt hash dearer than the connector's own is refused too: a
// wrong password for its name would take longer than for a name that is no
// account, compared at cost 10, and the time would tell that the name is
// one. Comparing unknown names at the dearest account's cost instead only
// moves the tell to every account of cost 10. Fails before this change: a
// hash of cost 12 was taken.
func TestSEC131_DearHashRefused(t *testing.T) {
	t.Parallel()
	c, _, _ := newTestConnector(t)
	dear, err := bcrypt.GenerateFromPassword([]byte("s3cret-pw"), 11)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetUser(context.Background(), "alice", string(dear)); err == nil || !strings.Contains(err.Error(), "cost 11") || !strings.Contains(err.Error(), "must be 10") {
		t.Errorf("SetUser with a hash of cost 11: %v, want it refused, naming the cost and the one to use", err)
	}
	if _, _, err := ParseUserSpec("alice:" + string(dear)); err == nil {
		t.Errorf("ParseUserSpec with a hash of cost 11: accepted, want it refused at start")
	}
}

// SEC-76: a spec with groups and no colon is refused without quoting it:
// all of it after the groups is the password someone forgot to separate.
func TestSEC76_SpecWithoutColonNotQuoted(t *testing.T) {
	for _, spec := range []string{"alice[admins]hunter2", "alice[admins,x]hunter2", "alice[adm]ins]hunter2"} {
		if _, _, _, err := ParseUserSpecGroups(spec); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseUserSpecGroups(%q): %v, want an error that does not quote the password", spec, err)
		}
	}
}

// changingUsers is a UserStore on which a change lands while a login
// checks the password: right after the login's first read of the account.
type changingUsers struct {
	*fakeUsers
	change func()
	once   sync.Once
}

func (c *changingUsers) GetLocalUser(ctx context.Context, name string) (*store.LocalUser, error) {
	u, err := c.fakeUsers.GetLocalUser(ctx, name)
	c.once.Do(c.change)
	return u, err
}

// SEC-130: a login whose password check straddles a change of the account
// (a new password, groups, or its disabling: the store then ends the
// sessions that exist, not the one this login would start) is refused, as
// a wrong password is but without counting against the name; once the
// change is in, a login with what is now right succeeds.
func TestSEC130_ChangeDuringLoginRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	oldHash, newHash := fastHash(t, "old password"), fastHash(t, "new password")
	for _, tc := range []struct {
		name     string
		changed  store.LocalUser
		password string // right after the change
	}{
		{"new password", store.LocalUser{Name: "alice", PasswordHash: []byte(newHash), Groups: []string{"ops"}}, "new password"},
		{"out of a group", store.LocalUser{Name: "alice", PasswordHash: []byte(oldHash)}, "old password"},
		{"disabled", store.LocalUser{Name: "alice", PasswordHash: []byte(oldHash), Groups: []string{"ops"}, DisabledAt: time.Unix(1, 0)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users := &changingUsers{fakeUsers: newFakeUsers()}
			users.change = func() { users.PutLocalUser(ctx, &tc.changed) }
			c := New(users, Options{Now: newClock().Now})
			users.PutLocalUser(ctx, &store.LocalUser{Name: "alice", PasswordHash: []byte(oldHash), Groups: []string{"ops"}})
			if u, err := c.Login(ctx, "alice", "old password"); !errors.Is(err, upstream.ErrInvalidCredentials) {
				t.Fatalf("a login across the change: %+v, %v; want ErrInvalidCredentials", u, err)
			}
			if tc.password == "" {
				return
			}
			u, err := c.Login(ctx, "alice", tc.password)
			if err != nil || !slices.Equal(u.Groups, tc.changed.Groups) {
				t.Fatalf("the next login: %+v, %v; want success in groups %v", u, err, tc.changed.Groups)
			}
		})
	}
}

// SEC-125: guesses posted together are not all checked before the first
// of them fails: no more are checked at once than the failures the name
// has left before its pause, and the others wait for those to end, then
// find the name locked and are told to wait, so that a burst of 50 gets
// no more than 5 guesses checked, and the right password posted with them
// or just after is not checked at all. Fails before this change: all 50
// were checked, the lock being read before any of them had failed.
func TestSEC125_ParallelGuessesCheckedNoFasterThanOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, _ := newTestConnector(t)
	if err := c.SetUser(ctx, "alice", fastHash(t, "right password")); err != nil {
		t.Fatal(err)
	}
	var wrong, throttled atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			<-start
			_, err := c.Login(ctx, "alice", fmt.Sprintf("guess %d", i))
			switch {
			case errors.Is(err, ErrThrottled):
				throttled.Add(1)
			case errors.Is(err, upstream.ErrInvalidCredentials):
				wrong.Add(1)
			default:
				t.Errorf("guess %d: %v, want it refused", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := wrong.Load(); n > maxFailures {
		t.Errorf("%d of 50 guesses posted together were checked, want at most %d; %d told to wait", n, maxFailures, throttled.Load())
	}
	if _, err := c.Login(ctx, "alice", "right password"); !errors.Is(err, ErrThrottled) {
		t.Errorf("the right password after the burst: %v, want it told to wait, unchecked", err)
	}
}

// SEC-125: a burst of sign-ins under one name with its right password,
// more than are checked at once, is checked a few at a time, each waiting
// for a check under way to end, not refused as guesses: none fails, so
// none takes a slot away. Fails before this change: all but 5 were told
// to wait, with a page that said the name had too many failed sign-ins
// (the replica-kill load test met it).
func TestSEC125_BurstOfRightPasswordsWaitsItsTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, _ := newTestConnector(t)
	if err := c.SetUser(ctx, "alice", fastHash(t, "right password")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 4 * maxFailures {
		wg.Go(func() {
			<-start
			if _, err := c.Login(ctx, "alice", "right password"); err != nil {
				t.Errorf("a sign-in of the burst: %v, want it checked and let in", err)
			}
		})
	}
	close(start)
	wg.Wait()
}
