package policy

import "sync"

// budget counts the bytes a resource's requests hold now, in all and by
// user, within limits: the JSON answers held to filter their tools
// (SEC-161), and the request bodies held until their answer is written
// (SEC-201). A client that reads its answers slowly, or not at all,
// holds them as long as it likes.
type budget struct {
	total, perUser int

	mu     sync.Mutex
	held   int
	byUser map[string]int
}

// reserve counts n more bytes held for user, unless that would pass
// perUser or total.
func (b *budget) reserve(user string, n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held+n > b.total || b.byUser[user]+n > b.perUser {
		return false
	}
	if b.byUser == nil {
		b.byUser = map[string]int{}
	}
	b.held += n
	b.byUser[user] += n
	return true
}

// release gives back n bytes that reserve counted for user.
func (b *budget) release(user string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held -= n
	if b.byUser[user] -= n; b.byUser[user] <= 0 {
		delete(b.byUser, user)
	}
}

// share is the bytes held for user.
func (b *budget) share(user string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byUser[user]
}

// now is the bytes held in all.
func (b *budget) now() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}
