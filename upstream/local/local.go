package local

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
)

// ID is the connector's ID, the prefix of its users' IDs ("local:alice").
const ID = "local"

// AdminName is the account EnsureAdmin creates.
const AdminName = "admin"

// Throttling. After maxFailures failed logins for one username, each further
// failure locks that username for a backoff that doubles from baseBackoff up
// to maxBackoff. A username whose last failure is older than failureWindow is
// forgotten. maxEntries bounds the memory an attacker can make us spend by
// trying many usernames. A browser that signed in as the username before
// (LoginKnownDevice) has a count of its own under the name, so that
// failures sent from elsewhere cannot lock its person out of it (SEC-125).
const (
	maxFailures   = 5
	baseBackoff   = time.Second
	maxBackoff    = 30 * time.Second
	failureWindow = 15 * time.Minute
	// checkingWait bounds how long a login waits for a check under way to
	// end, when as many of its name run as its failures left allow: a
	// burst of one name's sign-ins, each a bcrypt check, queues rather
	// than fail; one that waited so long for any is told to wait again.
	checkingWait = 10 * time.Second
	maxEntries   = 10000
)

// maxPasswordLen is bcrypt's limit: it ignores everything past 72 bytes.
const maxPasswordLen = 72

// ErrThrottled is returned by Login, without looking at the password, while a
// username is locked after repeated failures. It wraps upstream.ErrThrottled,
// and so upstream.ErrInvalidCredentials.
var ErrThrottled = fmt.Errorf("local: %w", upstream.ErrThrottled)

// dummyHash is compared against when the user does not exist (or the input
// cannot match anything), so that such a login costs the same bcrypt work as
// a wrong password. Its cost is bcrypt.DefaultCost, the cost SetUser uses.
// The password it hashes was random and thrown away.
var dummyHash = []byte("$2a$10$ao2L2.4gt8.uffJOmniEj.yzAMeWwmG16KBNXubGr7sKAsvlMDGFK")

// UserStore is the part of store.Store the connector needs; a store.Store
// satisfies it.
type UserStore interface {
	PutLocalUser(ctx context.Context, u *store.LocalUser) error    // insert or replace
	CreateLocalUser(ctx context.Context, u *store.LocalUser) error // insert only: ErrConflict if the name is taken
	GetLocalUser(ctx context.Context, name string) (*store.LocalUser, error)
	CountLocalUsers(ctx context.Context) (int, error)
}

var _ UserStore = store.Store(nil)

// Options holds the connector's optional dependencies.
type Options struct {
	// Now is the clock for throttling and CreatedAt; time.Now if nil.
	Now func() time.Time
	// Logger receives login failures and account changes, never passwords.
	// Nothing is logged if nil.
	Logger *slog.Logger
}

// Connector checks usernames and passwords against local accounts.
type Connector struct {
	users UserStore
	now   func() time.Time
	log   *slog.Logger

	adminMu sync.Mutex // serialises EnsureAdmin's count-then-create

	mu        sync.Mutex
	failures  map[string]*failure // key: throttleKey(username)
	checking  map[string]int      // logins of a key whose password is being checked
	ended     chan struct{}       // closed, and replaced, when a check ends
	lastSweep time.Time
}

type failure struct {
	count int
	known bool      // the username exists; only then is it logged
	last  time.Time // the latest failure
	until time.Time // locked until; zero while count < maxFailures
}

var _ upstream.KnownDeviceConnector = (*Connector)(nil)

// New returns a connector over users.
func New(users UserStore, opts Options) *Connector {
	c := &Connector{
		users:    users,
		now:      opts.Now,
		log:      opts.Logger,
		failures: make(map[string]*failure),
		checking: make(map[string]int),
		ended:    make(chan struct{}),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// ID implements upstream.Connector.
func (c *Connector) ID() string { return ID }

// DisplayName implements upstream.Connector.
func (c *Connector) DisplayName() string { return "Local account" }

// ValidName reports whether name can be a local account name: 1 to 64 of
// A-Z a-z 0-9 . _ @ -.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '.', b == '_', b == '@', b == '-':
		default:
			return false
		}
	}
	return true
}

// ParseUserSpec splits "NAME:PASSWORD" at the first colon, so the password
// may contain colons. The password may also be a bcrypt hash ("$2a$", "$2b$"
// or "$2y$"), which SetUser stores as it is. Errors never quote the password.
func ParseUserSpec(spec string) (name, password string, err error) {
	name, password, ok := strings.Cut(spec, ":")
	if !ok {
		return "", "", errors.New("local: user spec must be NAME:PASSWORD")
	}
	if !ValidName(name) {
		return "", "", fmt.Errorf("local: user spec: invalid name %q: want 1-64 characters of A-Z a-z 0-9 . _ @ -", name)
	}
	if err := checkPassword(password); err != nil {
		return "", "", fmt.Errorf("local: user spec for %q: %w", name, err)
	}
	return name, password, nil
}

// maxGroupLen bounds one group name.
const maxGroupLen = 128

// MaxGroups bounds the groups of one account.
const MaxGroups = 100

// ValidGroup reports whether g can be a local account's group: 1 to 128 of
// A-Z a-z 0-9 . _ @ - /, so that it never holds the separators of a spec
// (, + [ ] :) nor of X-Forwarded-Groups, and "org/team" names, as GitHub's
// groups are written, are possible.
func ValidGroup(g string) bool {
	if len(g) == 0 || len(g) > maxGroupLen {
		return false
	}
	for i := 0; i < len(g); i++ {
		if g[i] != '/' && !ValidName(g[i:i+1]) {
			return false
		}
	}
	return true
}

// ParseUserSpecGroups parses "NAME:PASSWORD" as ParseUserSpec does, or
// "NAME[GROUPS]:PASSWORD", GROUPS separated by "," or "+" (the form for
// MCPGATE_LOCAL_USERS, whose items are split at commas). The groups sit
// with the name because any text after the first colon is already a valid
// password ("alice:pw:admins" is the password "pw:admins"), while brackets
// were never valid in a name, so no spec that worked before changes
// meaning. Duplicate groups are dropped; errors never quote the password.
func ParseUserSpecGroups(spec string) (name, password string, groups []string, err error) {
	head, rest, _ := strings.Cut(spec, ":")
	open := strings.IndexByte(head, '[')
	if open < 0 {
		name, password, err = ParseUserSpec(spec)
		return name, password, nil, err
	}
	if !strings.Contains(spec, ":") {
		// Without a colon, head is the whole spec, password and all: it
		// must not be quoted below.
		return "", "", nil, errors.New("local: user spec must be NAME[GROUPS]:PASSWORD")
	}
	name, list := head[:open], head[open+1:]
	inner, ok := strings.CutSuffix(list, "]")
	if !ok || strings.ContainsAny(inner, "[]") {
		return "", "", nil, fmt.Errorf("local: user spec %q: want NAME[GROUP,GROUP]:PASSWORD", head)
	}
	for _, g := range strings.Split(strings.ReplaceAll(inner, "+", ","), ",") {
		if !ValidGroup(g) {
			return "", "", nil, fmt.Errorf("local: user spec %q: invalid group %q: want 1-%d characters of A-Z a-z 0-9 . _ @ - /", head, g, maxGroupLen)
		}
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	if len(groups) > MaxGroups {
		return "", "", nil, fmt.Errorf("local: user spec %q: more than %d groups", name, MaxGroups)
	}
	if name, password, err = ParseUserSpec(name + ":" + rest); err != nil {
		return "", "", nil, err
	}
	return name, password, groups, nil
}

// IsBcryptHash reports whether s, a password as configured, is a bcrypt
// hash of one, which SetUser stores as it is.
func IsBcryptHash(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// checkPassword validates a clear password or a bcrypt hash.
func checkPassword(p string) error {
	switch {
	case p == "":
		return errors.New("empty password")
	case IsBcryptHash(p):
		cost, err := bcrypt.Cost([]byte(p))
		if err != nil {
			return fmt.Errorf("password looks like a bcrypt hash but is not a valid one: %w", err)
		}
		if cost != bcrypt.DefaultCost {
			// Every account's wrong password must take as long as a name
			// that is no account's, compared with dummyHash, or the time
			// tells which names are accounts (SEC-131): a cheaper hash
			// answers faster (and is quicker to crack), a dearer one
			// slower. One cost for all keeps them alike.
			return fmt.Errorf("bcrypt hash of cost %d: the cost must be %d, as every account's (htpasswd -nB -C %d NAME)", cost, bcrypt.DefaultCost, bcrypt.DefaultCost)
		}
	case len(p) > maxPasswordLen:
		return fmt.Errorf("password longer than %d bytes (bcrypt's limit)", maxPasswordLen)
	}
	return nil
}

// SetUser creates or replaces the account name, with groups (see
// ValidGroup) that replace any it had. passwordOrHash is either a clear
// password, hashed here with bcrypt.DefaultCost, or a bcrypt hash, stored as
// it is (see ParseUserSpec).
func (c *Connector) SetUser(ctx context.Context, name, passwordOrHash string, groups ...string) error {
	return c.set(ctx, name, passwordOrHash, false, groups)
}

// SetConfiguredUser is SetUser for an account of the gateway's
// configuration, which sets it again at every start: the account is
// marked so (store.LocalUser.Configured), and the admin commands refuse
// to change it.
func (c *Connector) SetConfiguredUser(ctx context.Context, name, passwordOrHash string, groups ...string) error {
	return c.set(ctx, name, passwordOrHash, true, groups)
}

func (c *Connector) set(ctx context.Context, name, passwordOrHash string, configured bool, groups []string) error {
	if !ValidName(name) {
		return fmt.Errorf("local: set user: invalid name %q", name)
	}
	if len(groups) > MaxGroups {
		return fmt.Errorf("local: set user %q: more than %d groups", name, MaxGroups)
	}
	for _, g := range groups {
		if !ValidGroup(g) {
			return fmt.Errorf("local: set user %q: invalid group %q", name, g)
		}
	}
	if err := checkPassword(passwordOrHash); err != nil {
		return fmt.Errorf("local: set user %q: %w", name, err)
	}
	created, disabled := c.now(), time.Time{}
	var hash []byte
	switch old, err := c.users.GetLocalUser(ctx, name); {
	case err == nil:
		// Replacing the password keeps the account's age, and never
		// enables a disabled account (SEC-93).
		created, disabled = old.CreatedAt, old.DisabledAt
		if SamePassword(old.PasswordHash, passwordOrHash) {
			// The same password keeps its hash: a new one would end the
			// account's sessions (SEC-130), as at every start for the
			// configuration's accounts.
			hash = old.PasswordHash
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("local: set user %q: %w", name, err)
	}
	if hash == nil {
		var err error
		if hash, err = hashPassword(passwordOrHash); err != nil {
			return fmt.Errorf("local: set user %q: hash password: %w", name, err)
		}
	}
	if len(groups) == 0 {
		groups = nil // one spelling of none, so that none is never a change (SEC-130)
	}
	u := &store.LocalUser{Name: name, PasswordHash: hash, Groups: slices.Clone(groups), CreatedAt: created, DisabledAt: disabled, Configured: configured}
	if err := c.users.PutLocalUser(ctx, u); err != nil {
		return fmt.Errorf("local: set user %q: %w", name, err)
	}
	c.log.InfoContext(ctx, "local user set", "user", name, "groups", groups)
	return nil
}

// hashPassword returns the bcrypt hash of passwordOrHash, or the hash
// itself when it is one.
func hashPassword(passwordOrHash string) ([]byte, error) {
	if IsBcryptHash(passwordOrHash) {
		return []byte(passwordOrHash), nil
	}
	return bcrypt.GenerateFromPassword([]byte(passwordOrHash), bcrypt.DefaultCost)
}

// SamePassword reports whether passwordOrHash, a password or a bcrypt
// hash, is the password that stored hashes.
func SamePassword(stored []byte, passwordOrHash string) bool {
	if IsBcryptHash(passwordOrHash) {
		return subtle.ConstantTimeCompare(stored, []byte(passwordOrHash)) == 1
	}
	return bcrypt.CompareHashAndPassword(stored, []byte(passwordOrHash)) == nil
}

// EnsureAdmin bootstraps a fresh install: when the store holds no local
// user, it creates AdminName with a random password and returns it with
// created=true, for the caller to show once. When any local user exists it
// returns created=false and changes nothing. Of processes starting on an
// empty shared store at once, one creates the account and shows its
// password; the others return created=false (SEC-152), where each used to
// show a password of its own and all but the last one written failed.
func (c *Connector) EnsureAdmin(ctx context.Context) (password string, created bool, err error) {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	n, err := c.users.CountLocalUsers(ctx)
	if err != nil {
		return "", false, fmt.Errorf("local: ensure admin: count users: %w", err)
	}
	if n > 0 {
		return "", false, nil
	}
	password = rand.Text() // 26 base32 characters, 128 bits
	hash, err := hashPassword(password)
	if err != nil {
		return "", false, fmt.Errorf("local: ensure admin: hash password: %w", err)
	}
	err = c.users.CreateLocalUser(ctx, &store.LocalUser{Name: AdminName, PasswordHash: hash, CreatedAt: c.now()})
	switch {
	case errors.Is(err, store.ErrConflict):
		return "", false, nil // another process made it first
	case err != nil:
		return "", false, fmt.Errorf("local: ensure admin: %w", err)
	}
	c.log.InfoContext(ctx, "local admin account created", "user", AdminName)
	return password, true, nil
}

// Login implements upstream.PasswordConnector. A wrong password and an
// unknown user both return upstream.ErrInvalidCredentials after the same
// bcrypt work; a locked username returns an error wrapping ErrThrottled
// without checking the password. Other errors come from the store.
func (c *Connector) Login(ctx context.Context, username, password string) (identity.User, error) {
	return c.login(ctx, username, password, throttleKey(username))
}

// LoginKnownDevice implements upstream.KnownDeviceConnector: Login, with
// the failures counted for username in device only (SEC-125), so that the
// failures sent from elsewhere under the name, which lock it there, leave
// the browser its person signed in with alone.
func (c *Connector) LoginKnownDevice(ctx context.Context, username, password, device string) (identity.User, error) {
	key := throttleKey(username)
	if device != "" && ValidName(username) {
		key += "\x00" + device
	}
	return c.login(ctx, username, password, key)
}

// login is Login with the failures counted under key.
func (c *Connector) login(ctx context.Context, username, password, key string) (identity.User, error) {
	wait, known := c.begin(ctx, key)
	if wait > 0 {
		c.log.WarnContext(ctx, "local login throttled", "user", upstream.LogName(username, known), "retry_after", wait)
		return identity.User{}, fmt.Errorf("local: login throttled for %s: %w", wait.Round(time.Second), ErrThrottled)
	}
	defer c.end(key)

	hash, reason, known := dummyHash, "", false
	var groups []string
	switch {
	case !ValidName(username):
		reason = "invalid username"
	case len(password) > maxPasswordLen:
		// SetUser never stores such a password; bcrypt would silently
		// compare only its first 72 bytes.
		reason = "password too long"
	default:
		u, err := c.users.GetLocalUser(ctx, username)
		switch {
		case err == nil:
			hash, known, groups = u.PasswordHash, true, u.Groups
			if !u.DisabledAt.IsZero() {
				// SEC-93: refused as a wrong password is, after the same
				// work, so that the form does not tell which accounts
				// exist and are disabled.
				reason = "disabled account"
			}
		case errors.Is(err, store.ErrNotFound):
			reason = "unknown user"
		default:
			return identity.User{}, fmt.Errorf("local: login: %w", err)
		}
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if err == nil && reason == "" {
		if changed, err := c.changedSince(ctx, username, hash, groups); err != nil {
			return identity.User{}, fmt.Errorf("local: login: %w", err)
		} else if changed {
			c.log.InfoContext(ctx, "local login refused: the account changed while its password was checked", "user", username)
			return identity.User{}, fmt.Errorf("local: the account changed during the login: %w", upstream.ErrInvalidCredentials)
		}
		c.succeeded(key)
		return identity.User{
			ID:       ID + ":" + username,
			Upstream: ID,
			Username: username,
			Name:     username,
			Groups:   groups,
		}, nil
	}
	if reason == "" {
		reason = "wrong password"
		if !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			// A corrupt stored hash: the operator needs to know, the
			// person at the form does not.
			reason = "unusable password hash"
			c.log.ErrorContext(ctx, "local user has an unusable password hash", "user", username, "error", err)
		}
	}
	n := c.failed(key, known)
	c.log.InfoContext(ctx, "local login failed", "user", upstream.LogName(username, known), "reason", reason, "failures", n)
	return identity.User{}, fmt.Errorf("local: %w", upstream.ErrInvalidCredentials)
}

// changedSince reports whether the account name no longer has the hash
// and groups a login read before it checked the password, or was
// disabled since (SEC-130). A new password or new groups end the sessions
// that exist when they are stored; a login whose bcrypt check (~100 ms)
// straddled the change would otherwise start one after, with the old
// password or groups, for its 12 hours.
func (c *Connector) changedSince(ctx context.Context, name string, hash []byte, groups []string) (bool, error) {
	u, err := c.enabled(ctx, name)
	if u == nil {
		return err == nil, err
	}
	return !bytes.Equal(u.PasswordHash, hash) || !slices.Equal(u.Groups, groups), nil
}

// SessionValid implements upstream.SessionChecker: the account of user
// exists, is enabled and has the groups the login gave.
func (c *Connector) SessionValid(ctx context.Context, user identity.User) (bool, error) {
	name, ok := strings.CutPrefix(user.ID, ID+":")
	if !ok {
		return false, nil
	}
	u, err := c.enabled(ctx, name)
	return u != nil && slices.Equal(u.Groups, user.Groups), err
}

// enabled returns the account name as stored now, or nil when there is
// none or it is disabled.
func (c *Connector) enabled(ctx context.Context, name string) (*store.LocalUser, error) {
	u, err := c.users.GetLocalUser(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case !u.DisabledAt.IsZero():
		return nil, nil
	}
	return u, nil
}

// throttleKey folds case so that "Alice" and "alice" share one budget, and
// puts every invalid name into one bucket so that an attacker cannot grow
// the map with long junk names (invalid names never log in anyway).
func throttleKey(username string) string {
	if !ValidName(username) {
		return "\x00invalid"
	}
	return strings.ToLower(username)
}

// begin starts a login's check of key, or returns how long key stays
// locked (with whether the failures were for an existing account). The
// logins being checked count as failures to come: no more run at once
// than the failures key has left before its pause, and one once it has
// none, so that guesses posted together are not all checked before the
// first of them fails (SEC-125). A login over that number waits for one
// to end, as long as checks keep ending (checkingWait at most between
// two): a burst of sign-ins under one name is checked a few at a time,
// not refused. end must follow a begin that returns 0.
func (c *Connector) begin(ctx context.Context, key string) (time.Duration, bool) {
	give := time.NewTimer(checkingWait)
	defer give.Stop()
	for {
		wait, known, ended := c.tryBegin(key)
		if ended == nil {
			return wait, known
		}
		select {
		case <-ended:
			give.Reset(checkingWait)
		case <-give.C:
			return checkingWait, known
		case <-ctx.Done():
			return checkingWait, known
		}
	}
}

// tryBegin is begin without waiting: when as many logins of key are being
// checked as it allows, it returns the channel that is closed when a check
// ends.
func (c *Connector) tryBegin(key string) (time.Duration, bool, <-chan struct{}) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	count, known := 0, false
	if f := c.failures[key]; f != nil {
		if now.Sub(f.last) > failureWindow {
			delete(c.failures, key)
		} else if now.Before(f.until) {
			return f.until.Sub(now), f.known, nil
		} else {
			count, known = f.count, f.known
		}
	}
	if c.checking[key] >= max(maxFailures-count, 1) {
		return 0, known, c.ended
	}
	c.checking[key]++
	return 0, false, nil
}

// end ends a login's check that begin started.
func (c *Connector) end(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checking[key]--; c.checking[key] <= 0 {
		delete(c.checking, key)
	}
	close(c.ended)
	c.ended = make(chan struct{})
}

// failed records a failure for key and returns the failure count.
func (c *Connector) failed(key string, known bool) int {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.failures[key]
	if f != nil && now.Sub(f.last) > failureWindow {
		f = nil
	}
	if f == nil {
		c.makeRoom(now)
		f = &failure{}
		c.failures[key] = f
	}
	f.count++
	f.last = now
	f.known = known
	if f.count >= maxFailures {
		f.until = now.Add(backoff(f.count))
	}
	return f.count
}

func (c *Connector) succeeded(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.failures, key)
}

// backoff is the lock after the n-th consecutive failure (n >= maxFailures):
// baseBackoff, doubling, capped at maxBackoff.
func backoff(n int) time.Duration {
	shift := n - maxFailures
	if shift >= 16 { // far past the cap; avoids overflowing the shift
		return maxBackoff
	}
	return min(baseBackoff<<shift, maxBackoff)
}

// makeRoom keeps the failure map bounded. It drops expired entries at most
// once a window, or whenever the map is full. If the map is still full it
// evicts a tenth of it, the entries with the fewest failures and oldest
// first: a flood of one-failure junk names then evicts junk, not a username
// under attack. c.mu must be held.
func (c *Connector) makeRoom(now time.Time) {
	if len(c.failures) < maxEntries && now.Sub(c.lastSweep) < failureWindow {
		return
	}
	c.lastSweep = now
	for k, f := range c.failures {
		if now.Sub(f.last) > failureWindow {
			delete(c.failures, k)
		}
	}
	if len(c.failures) < maxEntries {
		return
	}
	keys := slices.Collect(maps.Keys(c.failures))
	slices.SortFunc(keys, func(a, b string) int {
		fa, fb := c.failures[a], c.failures[b]
		if fa.count != fb.count {
			return cmp.Compare(fa.count, fb.count)
		}
		return fa.last.Compare(fb.last)
	})
	for _, k := range keys[:len(keys)-maxEntries*9/10] {
		delete(c.failures, k)
	}
}
