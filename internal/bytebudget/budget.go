package bytebudget

import "sync"

// Budget is a count of bytes held, at most Total in all and PerUser by
// one user. Its zero value holds nothing and admits nothing.
type Budget struct {
	Total, PerUser int

	mu     sync.Mutex
	held   int
	byUser map[string]int
}

// Reserve counts n more bytes held for user, unless that would pass
// PerUser or Total.
func (b *Budget) Reserve(user string, n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held+n > b.Total || b.byUser[user]+n > b.PerUser {
		return false
	}
	if b.byUser == nil {
		b.byUser = map[string]int{}
	}
	b.held += n
	b.byUser[user] += n
	return true
}

// Release gives back n bytes that Reserve counted for user.
func (b *Budget) Release(user string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held -= n
	if b.byUser[user] -= n; b.byUser[user] <= 0 {
		delete(b.byUser, user)
	}
}

// OverShare reports whether n more bytes for user would pass PerUser:
// which of the two limits a refused Reserve met, for its answer (429 for
// the user's share, 503 for the whole).
func (b *Budget) OverShare(user string, n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byUser[user]+n > b.PerUser
}

// Held is the bytes held in all.
func (b *Budget) Held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}
