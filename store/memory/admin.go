package memory

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// ListClients implements store.Store.
func (s *Store) ListClients(_ context.Context, limit int) ([]*store.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*store.Client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, copyClient(c))
	}
	slices.SortFunc(out, func(a, b *store.Client) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return limited(out, limit), nil
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(_ context.Context, id string, now time.Time) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return nil, notFound("delete client")
	}
	delete(s.clients, id)
	for k := range s.consents {
		if k.client == id {
			delete(s.consents, k)
		}
	}
	for h, c := range s.codes {
		switch _, stored := s.grants[c.GrantID]; {
		case c.ClientID != id:
		case c.UsedAt.IsZero():
			delete(s.codes, h)
		case !stored:
			// Spent, its grant not stored yet: stored to be revoked with
			// the rest, so that the redemption under way stores none
			// (SEC-155).
			s.grants[c.GrantID] = grantOfSpent(c, time.Time{})
		}
	}
	return s.revokeLocked(func(g *store.Grant) bool { return g.ClientID == id }, now), nil
}

// revokeLocked revokes at now every unrevoked grant that match selects
// and returns their ids in byte order. s.mu must be held for writing.
func (s *Store) revokeLocked(match func(*store.Grant) bool, now time.Time) []string {
	ids := []string{}
	for id, g := range s.grants {
		if g.RevokedAt.IsZero() && match(g) {
			g.RevokedAt = now
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// ListGrants implements store.Store.
func (s *Store) ListGrants(_ context.Context, q store.GrantQuery) ([]*store.Grant, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*store.Grant{}
	index := map[string]*store.Grant{}
	for _, g := range s.grants {
		if (q.UserID == "" || g.User.ID == q.UserID) && (!q.Live || g.RevokedAt.IsZero()) {
			c := copyGrant(g)
			index[g.ID] = c
			out = append(out, c)
		}
	}
	for _, t := range s.refresh {
		if g, ok := index[t.GrantID]; ok && t.CreatedAt.After(g.LastIssuedAt) {
			g.LastIssuedAt = t.CreatedAt
		}
	}
	slices.SortFunc(out, func(a, b *store.Grant) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return limited(out, q.Limit), nil
}

// limited is a list's first limit elements, all of them for 0.
func limited[T any](list []T, limit int) []T {
	if limit > 0 && len(list) > limit {
		return list[:limit]
	}
	return list
}

// ListLocalUsers implements store.Store.
func (s *Store) ListLocalUsers(context.Context) ([]*store.LocalUser, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*store.LocalUser, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, copyLocalUser(u))
	}
	slices.SortFunc(out, func(a, b *store.LocalUser) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// DisableLocalUser implements store.Store.
func (s *Store) DisableLocalUser(_ context.Context, name string, now time.Time) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return nil, notFound("disable local user")
	}
	if u.DisabledAt.IsZero() {
		u.DisabledAt = now
	}
	userID := localUserID(name)
	s.endSessionsLocked(userID)
	for h, c := range s.codes {
		if c.User.ID == userID && c.UsedAt.IsZero() {
			delete(s.codes, h)
		}
	}
	return s.revokeLocked(func(g *store.Grant) bool { return g.User.ID == userID }, now), nil
}

// EnableLocalUser implements store.Store.
func (s *Store) EnableLocalUser(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return notFound("enable local user")
	}
	u.DisabledAt = time.Time{}
	return nil
}

// localUserID is the identity.User.ID of the local account name, as the
// local connector gives it.
func localUserID(name string) string { return "local:" + name }

// endSessionsLocked deletes userID's browser sessions.
func (s *Store) endSessionsLocked(userID string) {
	for h, ss := range s.sessions {
		if ss.User.ID == userID {
			delete(s.sessions, h)
		}
	}
}
