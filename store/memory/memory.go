package memory

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

var (
	_ store.Store                = (*Store)(nil)
	_ store.RefreshSessionGetter = (*Store)(nil)
)

type consentKey struct{ user, client, resource string }

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu       sync.RWMutex
	meta     map[string][]byte // PutMetaOnce's, made at the first put
	clients  map[string]*store.Client
	requests map[string]*store.AuthRequest
	byState  map[string]string // upstream state hash -> request id
	consents map[consentKey]*store.Consent
	codes    map[string]*store.Code
	grants   map[string]*store.Grant
	refresh  map[string]*store.RefreshToken
	sessions map[string]*store.Session
	upstream map[string]*store.UpstreamSession // by grant id
	mcp      map[mcpKey]store.MCPSession
	users    map[string]*store.LocalUser
	claims   map[string]time.Time // grant id → until when its upstream recheck is claimed
	keys     []*store.SigningKey  // insertion order; sorted on read
	rates    map[rateKey]*rateCounter

	// The flow debugger's events, in append order, under a lock of their
	// own: recording never waits behind the flow it records.
	flowMu sync.Mutex
	flows  []store.FlowEvent
}

type rateKey struct {
	key    string
	window int64 // unix nanoseconds
}

type rateCounter struct {
	count   int
	expires time.Time
}

// New returns an empty store.
func New() *Store {
	return &Store{
		clients:  make(map[string]*store.Client),
		requests: make(map[string]*store.AuthRequest),
		byState:  make(map[string]string),
		consents: make(map[consentKey]*store.Consent),
		codes:    make(map[string]*store.Code),
		grants:   make(map[string]*store.Grant),
		refresh:  make(map[string]*store.RefreshToken),
		sessions: make(map[string]*store.Session),
		upstream: make(map[string]*store.UpstreamSession),
		mcp:      make(map[mcpKey]store.MCPSession),
		users:    make(map[string]*store.LocalUser),
		claims:   make(map[string]time.Time),
		rates:    make(map[rateKey]*rateCounter),
	}
}

// live reports whether a record expiring at exp is still usable at now. A
// zero expiry is treated as already expired: failing closed beats a code or
// session that never expires because a caller forgot to set it.
func live(exp, now time.Time) bool { return now.Before(exp) }

// refreshLive differs from live: a refresh token with no expiry lives until
// its grant is revoked.
func refreshLive(exp, now time.Time) bool { return exp.IsZero() || now.Before(exp) }

func notFound(op string) error { return fmt.Errorf("memory: %s: %w", op, store.ErrNotFound) }
func conflict(op string) error { return fmt.Errorf("memory: %s: %w", op, store.ErrConflict) }

func (s *Store) CreateClient(_ context.Context, c *store.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return conflict("create client")
	}
	s.clients[c.ID] = copyClient(c)
	return nil
}

func (s *Store) GetClient(_ context.Context, id string) (*store.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, notFound("get client")
	}
	return copyClient(c), nil
}

func (s *Store) TouchClient(_ context.Context, id string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return notFound("touch client")
	}
	if now.After(c.LastUsedAt) {
		c.LastUsedAt = now
	}
	return nil
}

func (s *Store) DeleteUnusedClients(_ context.Context, unusedSince, now time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[string]bool{} // clients holding a live grant
	for _, c := range s.codes {
		if c.UsedAt.IsZero() && now.Before(c.ExpiresAt) {
			live[c.ClientID] = true
		}
	}
	for _, t := range s.refresh {
		if g, ok := s.grants[t.GrantID]; ok && g.RevokedAt.IsZero() && t.RotatedAt.IsZero() && refreshLive(t.ExpiresAt, now) {
			live[g.ClientID] = true
		}
	}
	gone := map[string]bool{}
	for id, c := range s.clients {
		if len(gone) >= limit {
			break
		}
		last := c.CreatedAt
		if c.LastUsedAt.After(last) {
			last = c.LastUsedAt
		}
		if last.Before(unusedSince) && !live[id] {
			gone[id] = true
			delete(s.clients, id)
		}
	}
	for k := range s.consents {
		if gone[k.client] {
			delete(s.consents, k)
		}
	}
	return len(gone), nil
}

func (s *Store) CreateAuthRequest(_ context.Context, r *store.AuthRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requests[r.ID]; ok {
		return conflict("create auth request")
	}
	if r.UpstreamStateHash != nil {
		if _, ok := s.byState[string(r.UpstreamStateHash)]; ok {
			return conflict("create auth request")
		}
		s.byState[string(r.UpstreamStateHash)] = r.ID
	}
	s.requests[r.ID] = copyAuthRequest(r)
	return nil
}

func (s *Store) GetAuthRequest(_ context.Context, id string, now time.Time) (*store.AuthRequest, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.requests[id]
	if !ok || !live(r.ExpiresAt, now) {
		return nil, notFound("get auth request")
	}
	return copyAuthRequest(r), nil
}

func (s *Store) AttachUpstreamState(_ context.Context, id, connector string, stateHash []byte, now time.Time) error {
	if len(stateHash) == 0 {
		return fmt.Errorf("memory: attach upstream state: empty state hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok || !live(r.ExpiresAt, now) {
		return notFound("attach upstream state")
	}
	if r.UpstreamStateHash != nil {
		return conflict("attach upstream state")
	}
	if _, taken := s.byState[string(stateHash)]; taken {
		return conflict("attach upstream state")
	}
	r.Connector = connector
	r.UpstreamStateHash = bytes.Clone(stateHash)
	s.byState[string(stateHash)] = id
	return nil
}

func (s *Store) TakeAuthRequestByUpstreamState(_ context.Context, stateHash []byte, now time.Time) (*store.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byState[string(stateHash)]
	if !ok {
		return nil, notFound("take auth request")
	}
	r := s.requests[id]
	if !live(r.ExpiresAt, now) {
		return nil, notFound("take auth request")
	}
	s.deleteRequestLocked(r)
	return r, nil // no longer reachable from the store, so no copy needed
}

func (s *Store) GetAuthRequestByUpstreamState(_ context.Context, stateHash []byte, now time.Time) (*store.AuthRequest, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byState[string(stateHash)]
	if !ok {
		return nil, notFound("get auth request by upstream state")
	}
	r := s.requests[id]
	if !live(r.ExpiresAt, now) {
		return nil, notFound("get auth request by upstream state")
	}
	return copyAuthRequest(r), nil
}

func (s *Store) ReplaceUpstreamState(_ context.Context, id, connector string, oldHash, newHash []byte, now time.Time) error {
	if len(oldHash) == 0 || len(newHash) == 0 {
		return fmt.Errorf("memory: replace upstream state: empty state hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok || !live(r.ExpiresAt, now) {
		return notFound("replace upstream state")
	}
	if !bytes.Equal(r.UpstreamStateHash, oldHash) {
		return conflict("replace upstream state")
	}
	if _, taken := s.byState[string(newHash)]; taken {
		return conflict("replace upstream state")
	}
	delete(s.byState, string(oldHash))
	r.Connector = connector
	r.UpstreamStateHash = bytes.Clone(newHash)
	s.byState[string(newHash)] = id
	return nil
}

func (s *Store) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return notFound("delete auth request")
	}
	s.deleteRequestLocked(r)
	return nil
}

func (s *Store) deleteRequestLocked(r *store.AuthRequest) {
	delete(s.requests, r.ID)
	if r.UpstreamStateHash != nil {
		delete(s.byState, string(r.UpstreamStateHash))
	}
}

func (s *Store) PutConsent(_ context.Context, c *store.Consent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consents[consentKey{c.UserID, c.ClientID, c.Resource}] = copyConsent(c)
	return nil
}

func (s *Store) GetConsent(_ context.Context, userID, clientID, resource string) (*store.Consent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.consents[consentKey{userID, clientID, resource}]
	if !ok {
		return nil, notFound("get consent")
	}
	return copyConsent(c), nil
}

// DeleteConsent implements store.Store.
func (s *Store) DeleteConsent(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.consents {
		if k.user == userID && k.client == clientID {
			delete(s.consents, k)
		}
	}
	for k, c := range s.codes {
		if c.ClientID != clientID || c.User.ID != userID {
			continue
		}
		switch _, stored := s.grants[c.GrantID]; {
		case c.UsedAt.IsZero():
			delete(s.codes, k) // SEC-155
		case !stored:
			// Spent, its grant not stored yet: stored revoked, so that
			// the redemption under way stores none (SEC-155).
			s.grants[c.GrantID] = grantOfSpent(c, c.UsedAt)
		}
	}
	return nil
}

// grantOfSpent is the grant that code c, spent, would make, revoked at
// revokedAt (zero: live, to be revoked by the caller): stored before the
// redemption under way stores it, it makes that redemption's CreateGrant
// conflict (SEC-155).
func grantOfSpent(c *store.Code, revokedAt time.Time) *store.Grant {
	return &store.Grant{ID: c.GrantID, ClientID: c.ClientID, User: c.User, Resource: c.Resource,
		Scopes: slices.Clone(c.Scopes), CreatedAt: c.UsedAt, RevokedAt: revokedAt}
}

func (s *Store) CreateCode(_ context.Context, c *store.Code) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.codes[string(c.Hash)]; ok {
		return conflict("create code")
	}
	s.codes[string(c.Hash)] = copyCode(c)
	return nil
}

func (s *Store) ConsumeCode(_ context.Context, hash []byte, challenge string, now time.Time) (*store.Code, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[string(hash)]
	if !ok || !live(c.ExpiresAt, now) {
		return nil, notFound("consume code")
	}
	if !c.UsedAt.IsZero() {
		// PKCE-3: hand back the code so the caller can revoke its grant.
		return copyCode(c), fmt.Errorf("memory: consume code: %w", store.ErrCodeReused)
	}
	if c.CodeChallenge != challenge {
		return copyCode(c), fmt.Errorf("memory: consume code: %w", store.ErrCodeMismatch)
	}
	c.UsedAt = now
	return copyCode(c), nil
}

func (s *Store) CreateGrant(_ context.Context, g *store.Grant, rt *store.RefreshToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.grants[g.ID]; ok {
		return conflict("create grant")
	}
	if name, ok := store.LiveLocalAccount(g); ok {
		if u := s.users[name]; u != nil && !u.DisabledAt.IsZero() {
			return fmt.Errorf("memory: create grant: %w", store.ErrAccountDisabled)
		}
	}
	if rt != nil {
		if rt.GrantID != "" && rt.GrantID != g.ID {
			return fmt.Errorf("memory: create grant: refresh token names grant %q, not %q", rt.GrantID, g.ID)
		}
		if _, ok := s.refresh[string(rt.Hash)]; ok {
			return conflict("create grant")
		}
		t := copyRefresh(rt)
		t.GrantID = g.ID
		s.refresh[string(rt.Hash)] = t
	}
	s.grants[g.ID] = copyGrant(g)
	return nil
}

func (s *Store) GetGrant(_ context.Context, id string) (*store.Grant, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, ok := s.grants[id]
	if !ok {
		return nil, notFound("get grant")
	}
	return copyGrant(g), nil
}

// RotateRefresh fills in next.GrantID, next.Generation and next.Scopes, which the caller
// cannot know before the old token is looked up.
func (s *Store) RotateRefresh(_ context.Context, oldHash []byte, next *store.RefreshToken, successor []byte, now time.Time, grace time.Duration) (*store.Grant, *store.RefreshToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.refresh[string(oldHash)]
	if !ok || !refreshLive(old.ExpiresAt, now) {
		return nil, nil, notFound("rotate refresh")
	}
	g, ok := s.grants[old.GrantID]
	if !ok || !g.RevokedAt.IsZero() {
		return nil, nil, notFound("rotate refresh")
	}
	if !old.RotatedAt.IsZero() {
		if grace > 0 && now.Before(old.RotatedAt.Add(grace)) {
			// A retry or a duplicate in flight: the caller answers with
			// the same pair.
			return copyGrant(g), copyRefresh(old), fmt.Errorf("memory: rotate refresh: %w", store.ErrRefreshRotated)
		}
		// RT-1: a rotated token came back, so someone holds a copy.
		g.RevokedAt = now
		return copyGrant(g), copyRefresh(old), fmt.Errorf("memory: rotate refresh: %w", store.ErrRefreshReused)
	}
	if _, ok := s.refresh[string(next.Hash)]; ok {
		return nil, nil, conflict("rotate refresh")
	}
	old.RotatedAt = now
	old.Successor = bytes.Clone(successor)
	next.GrantID = old.GrantID
	next.Generation = old.Generation + 1
	next.Scopes = append([]string(nil), old.Scopes...) // RFC 6749 §6: same scope as the old token
	s.refresh[string(next.Hash)] = copyRefresh(next)
	return copyGrant(g), copyRefresh(old), nil
}

func (s *Store) GetRefresh(_ context.Context, hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.getRefresh(hash, now)
}

// GetRefreshSession implements store.RefreshSessionGetter.
func (s *Store) GetRefreshSession(_ context.Context, hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, *store.UpstreamSession, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, g, err := s.getRefresh(hash, now)
	if err != nil {
		return nil, nil, nil, err
	}
	u, ok := s.upstream[g.ID]
	if !ok {
		return t, g, nil, nil
	}
	return t, g, copyUpstream(u), nil
}

func (s *Store) getRefresh(hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, error) {
	t, ok := s.refresh[string(hash)]
	if !ok || !refreshLive(t.ExpiresAt, now) {
		return nil, nil, notFound("get refresh")
	}
	g, ok := s.grants[t.GrantID]
	if !ok {
		return nil, nil, notFound("get refresh")
	}
	return copyRefresh(t), copyGrant(g), nil
}

func (s *Store) RevokedGrantsSince(_ context.Context, since time.Time) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ids []string
	for id, g := range s.grants {
		if !g.RevokedAt.IsZero() && !g.RevokedAt.Before(since) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (s *Store) RevokeGrant(_ context.Context, id string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[id]
	if !ok {
		return notFound("revoke grant")
	}
	if g.RevokedAt.IsZero() {
		g.RevokedAt = now
	}
	return nil
}

func (s *Store) CreateSession(_ context.Context, ss *store.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[string(ss.Hash)]; ok {
		return conflict("create session")
	}
	s.sessions[string(ss.Hash)] = copySession(ss)
	return nil
}

func (s *Store) GetSession(_ context.Context, hash []byte, now time.Time) (*store.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ss, ok := s.sessions[string(hash)]
	if !ok || !live(ss.ExpiresAt, now) {
		return nil, notFound("get session")
	}
	return copySession(ss), nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(_ context.Context, hash []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[string(hash)]; !ok {
		return notFound("delete session")
	}
	delete(s.sessions, string(hash))
	return nil
}

type mcpKey struct{ resource, hash string }

// PutMCPSession implements store.Store.
func (s *Store) PutMCPSession(_ context.Context, m *store.MCPSession, now time.Time) error {
	k := mcpKey{m.Resource, string(m.Hash)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.mcp[k]; ok && old.UserID != m.UserID && live(old.ExpiresAt, now) {
		return conflict("put mcp session")
	}
	c := *m
	c.Hash = slices.Clone(m.Hash)
	s.mcp[k] = c
	return nil
}

// GetMCPSession implements store.Store.
func (s *Store) GetMCPSession(_ context.Context, resource string, hash []byte, now time.Time) (*store.MCPSession, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.mcp[mcpKey{resource, string(hash)}]
	if !ok || !live(m.ExpiresAt, now) {
		return nil, notFound("get mcp session")
	}
	m.Hash = slices.Clone(m.Hash)
	return &m, nil
}

// DeleteMCPSession implements store.Store.
func (s *Store) DeleteMCPSession(_ context.Context, resource string, hash []byte) error {
	k := mcpKey{resource, string(hash)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.mcp[k]; !ok {
		return notFound("delete mcp session")
	}
	delete(s.mcp, k)
	return nil
}

func (s *Store) PutLocalUser(_ context.Context, u *store.LocalUser) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := copyLocalUser(u)
	if old, ok := s.users[u.Name]; ok {
		n.DisabledAt = old.DisabledAt // SEC-93: only DisableLocalUser changes it
		if !bytes.Equal(old.PasswordHash, n.PasswordHash) || !slices.Equal(old.Groups, n.Groups) {
			s.endSessionsLocked(localUserID(u.Name)) // SEC-130
		}
	}
	s.users[u.Name] = n
	return nil
}

func (s *Store) CreateLocalUser(_ context.Context, u *store.LocalUser) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.Name]; ok {
		return conflict("create local user")
	}
	s.users[u.Name] = copyLocalUser(u)
	return nil
}

func (s *Store) GetLocalUser(_ context.Context, name string) (*store.LocalUser, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[name]
	if !ok {
		return nil, notFound("get local user")
	}
	return copyLocalUser(u), nil
}

func (s *Store) CountLocalUsers(context.Context) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.users), nil
}

func (s *Store) CreateSigningKey(_ context.Context, k *store.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, have := range s.keys {
		if have.ID == k.ID {
			return conflict("create signing key")
		}
	}
	s.keys = append(s.keys, copySigningKey(k))
	return nil
}

func (s *Store) ListSigningKeys(context.Context) ([]*store.SigningKey, error) {
	s.mu.RLock()
	out := make([]*store.SigningKey, len(s.keys))
	for i, k := range s.keys {
		out[i] = copySigningKey(k)
	}
	s.mu.RUnlock()
	// Stable, so keys created at the same instant keep insertion order.
	slices.SortStableFunc(out, func(a, b *store.SigningKey) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// DeleteExpired goes through the kinds in the order the other stores
// do, so that a call that comes back under limit has seen the deletions
// of each kind before judging the next.
func (s *Store) DeleteExpired(_ context.Context, now, grantsBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("memory: delete expired: limit %d is not positive", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Each step stops once limit entries are deleted, and none runs after
	// that: housekeeping calls again for the next batch, and a walk of
	// every map per batch would make a large backlog cost its square.
	n := 0
	for _, r := range s.requests {
		if n >= limit {
			return n, nil
		}
		if !live(r.ExpiresAt, now) {
			s.deleteRequestLocked(r)
			n++
		}
	}
	n += deleteWhere(s.codes, limit-n, func(c *store.Code) bool { return !live(c.ExpiresAt, now) })
	n += deleteWhere(s.sessions, limit-n, func(ss *store.Session) bool { return !live(ss.ExpiresAt, now) })
	n += deleteWhere(s.rates, limit-n, func(c *rateCounter) bool { return !live(c.expires, now) })
	n += deleteWhere(s.mcp, limit-n, func(m store.MCPSession) bool { return !live(m.ExpiresAt, now) })
	n += deleteWhere(s.refresh, limit-n, func(t *store.RefreshToken) bool {
		g, ok := s.grants[t.GrantID]
		return !refreshLive(t.ExpiresAt, now) || !ok || !g.RevokedAt.IsZero()
	})
	if n >= limit {
		return n, nil
	}
	refreshes := make(map[string]bool)
	for _, t := range s.refresh {
		refreshes[t.GrantID] = true
	}
	if !grantsBefore.IsZero() {
		n += deleteWhere(s.grants, limit-n, func(g *store.Grant) bool {
			return !refreshes[g.ID] && !g.CreatedAt.After(grantsBefore) && !g.RevokedAt.After(grantsBefore)
		})
	}
	pending := make(map[string]bool)
	for _, c := range s.codes {
		pending[c.GrantID] = true
	}
	// A grant without a refresh token left never uses its session (SEC-69).
	n += deleteWhere(s.upstream, limit-n, func(u *store.UpstreamSession) bool {
		g, ok := s.grants[u.GrantID]
		return (ok && (!g.RevokedAt.IsZero() || !refreshes[u.GrantID])) || (!ok && !pending[u.GrantID])
	})
	return n, nil
}

// deleteWhere deletes at most "most" entries of m for which dead holds and
// returns how many.
func deleteWhere[K comparable, V any](m map[K]V, most int, dead func(V) bool) int {
	n := 0
	for k, v := range m {
		if n >= most {
			break
		}
		if dead(v) {
			delete(m, k)
			n++
		}
	}
	return n
}

func (s *Store) DeleteSuccessors(_ context.Context, rotatedBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("memory: delete successors: limit %d is not positive", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.refresh {
		if n == limit {
			break
		}
		if t.Successor != nil && !t.RotatedAt.IsZero() && !t.RotatedAt.After(rotatedBefore) {
			t.Successor = nil
			n++
		}
	}
	return n, nil
}

func (s *Store) AddRateHit(_ context.Context, key string, window, expires time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := rateKey{key, window.UnixNano()}
	c, ok := s.rates[k]
	if !ok {
		c = &rateCounter{expires: expires}
		s.rates[k] = c
	}
	c.count++
	return c.count, nil
}

// PutUpstreamSession implements store.Store.
func (s *Store) PutUpstreamSession(_ context.Context, u *store.UpstreamSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *u
	c.User = copyUser(u.User)
	c.Token = bytes.Clone(u.Token)
	s.upstream[u.GrantID] = &c
	delete(s.claims, u.GrantID)
	return nil
}

// GetUpstreamSession implements store.Store.
func (s *Store) GetUpstreamSession(_ context.Context, grantID string) (*store.UpstreamSession, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.upstream[grantID]
	if !ok {
		return nil, store.ErrNotFound
	}
	return copyUpstream(u), nil
}

// ClaimUpstreamRecheck implements store.Store.
func (s *Store) ClaimUpstreamRecheck(_ context.Context, grantID string, checkedAt, now, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.upstream[grantID]
	if !ok {
		return false, store.ErrNotFound
	}
	if !u.CheckedAt.Equal(checkedAt) || now.Before(s.claims[grantID]) {
		return false, nil
	}
	s.claims[grantID] = until
	return true, nil
}

func copyUpstream(u *store.UpstreamSession) *store.UpstreamSession {
	c := *u
	c.User = copyUser(u.User)
	c.Token = bytes.Clone(u.Token)
	return &c
}

// Ping has nothing to check: memory always takes a write.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ctx.Err()
}

// Close does nothing; the store stays usable.
func (s *Store) Close() error { return nil }

// The copies below are deep: every slice a caller could write through is
// cloned. slices.Clone and bytes.Clone keep nil as nil and empty as empty.

func copyUser(u identity.User) identity.User {
	u.Groups = slices.Clone(u.Groups)
	return u
}

func copyClient(c *store.Client) *store.Client {
	n := *c
	n.SecretHash = bytes.Clone(c.SecretHash)
	n.RedirectURIs = slices.Clone(c.RedirectURIs)
	n.GrantTypes = slices.Clone(c.GrantTypes)
	n.ResponseTypes = slices.Clone(c.ResponseTypes)
	return &n
}

func copyAuthRequest(r *store.AuthRequest) *store.AuthRequest {
	n := *r
	n.Scopes = slices.Clone(r.Scopes)
	n.UpstreamStateHash = bytes.Clone(r.UpstreamStateHash)
	return &n
}

func copyConsent(c *store.Consent) *store.Consent {
	n := *c
	n.Scopes = slices.Clone(c.Scopes)
	n.RedirectURIs = slices.Clone(c.RedirectURIs)
	return &n
}

func copyCode(c *store.Code) *store.Code {
	n := *c
	n.Hash = bytes.Clone(c.Hash)
	n.Scopes = slices.Clone(c.Scopes)
	n.User = copyUser(c.User)
	return &n
}

func copyGrant(g *store.Grant) *store.Grant {
	n := *g
	n.User = copyUser(g.User)
	n.Scopes = slices.Clone(g.Scopes)
	return &n
}

func copyRefresh(t *store.RefreshToken) *store.RefreshToken {
	n := *t
	n.Hash = bytes.Clone(t.Hash)
	n.Scopes = slices.Clone(t.Scopes)
	n.Successor = bytes.Clone(t.Successor)
	return &n
}

func copySession(s *store.Session) *store.Session {
	n := *s
	n.Hash = bytes.Clone(s.Hash)
	n.User = copyUser(s.User)
	return &n
}

func copyLocalUser(u *store.LocalUser) *store.LocalUser {
	n := *u
	n.PasswordHash = bytes.Clone(u.PasswordHash)
	n.Groups = slices.Clone(u.Groups)
	return &n
}

func copySigningKey(k *store.SigningKey) *store.SigningKey {
	n := *k
	n.Private = bytes.Clone(k.Private)
	n.Public = bytes.Clone(k.Public)
	return &n
}
