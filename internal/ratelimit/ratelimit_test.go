package ratelimit

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a time that moves only when a test says.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newLimiter(t *testing.T, maxKeys int, rules ...Rule) (*Limiter, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	l, err := New(Options{Rules: rules, MaxKeys: maxKeys, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func TestParseRate(t *testing.T) {
	for s, want := range map[string]Rate{"10/s": {10, time.Second}, "600/m": {600, time.Minute}, "1/h": {1, time.Hour}, "1000000/s": {MaxCount, time.Second}} {
		got, err := ParseRate(s)
		if err != nil || got != want || got.String() != s {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "10", "10/", "/s", "0/s", "-1/s", "+5/s", "05/s", "1.5/s", "10/d", "10/sec", "10/S", " 10/s", "1000001/s", "10/s/s"} {
		if _, err := ParseRate(s); err == nil {
			t.Errorf("ParseRate(%q) accepted", s)
		}
	}
}

func TestRuleValidate(t *testing.T) {
	ok := Rule{Tools: []string{"search_*"}, Per: PerUser, Rate: Rate{10, time.Second}, Burst: 20}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(r *Rule){
		"needs tools or endpoints":        func(r *Rule) { r.Tools = nil },
		"both tools and endpoints":        func(r *Rule) { r.Endpoints = []string{"token"} },
		`per "" must be user or client`:   func(r *Rule) { r.Per = "" },
		`per "ip" must be user or client`: func(r *Rule) { r.Per = "ip" },
		"endpoint rule counts clients":    func(r *Rule) { r.Tools, r.Endpoints = nil, []string{"token"} },
		`endpoint "register" must be`:     func(r *Rule) { r.Tools, r.Endpoints, r.Per = nil, []string{"token", "register"}, PerClient },
		"rate must be":                    func(r *Rule) { r.Rate = Rate{} },
		"rate must be N/s":                func(r *Rule) { r.Rate.Per = 2 * time.Second },
		"burst -1 must be":                func(r *Rule) { r.Burst = -1 },
		"burst 1000001 must be":           func(r *Rule) { r.Burst = MaxCount + 1 },
		`tool pattern "" must be`:         func(r *Rule) { r.Tools = []string{"a", ""} },
		`tool pattern " a" must be`:       func(r *Rule) { r.Tools = []string{" a"} },
		`tool pattern "a\x00" must be`:    func(r *Rule) { r.Tools = []string{"a\x00"} },
	}
	for want, change := range bad {
		r := ok
		change(&r)
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
	_, err := New(Options{Rules: []Rule{ok, {Tools: []string{"x"}, Per: "team", Rate: Rate{1, time.Second}}}})
	if err == nil || !strings.HasPrefix(err.Error(), "rate_limits[1]: per \"team\"") {
		t.Errorf("New with a bad second rule: %v, want an error naming rate_limits[1]", err)
	}
}

// A bucket of 10/s and burst 20 lets 20 calls through at once, then one
// every 100 ms, and says exactly how long to wait.
func TestBucketArithmetic(t *testing.T) {
	l, c := newLimiter(t, 0, Rule{Tools: []string{"search_*"}, Per: PerUser, Rate: Rate{10, time.Second}, Burst: 20})
	for i := range 20 {
		if tool, wait := l.Tools("u1", "c1", []string{"search_web"}); tool != "" {
			t.Fatalf("call %d limited (wait %v) within the burst", i, wait)
		}
	}
	tool, wait := l.Tools("u1", "c1", []string{"search_docs"})
	if tool != "search_docs" || wait != 100*time.Millisecond {
		t.Fatalf("21st call: %q, wait %v; want search_docs, 100ms", tool, wait)
	}
	if RetryAfter(wait) != 1 {
		t.Errorf("RetryAfter(%v) = %d, want 1 (rounded up)", wait, RetryAfter(wait))
	}
	if tool, _ := l.Tools("u1", "c1", []string{"other"}); tool != "" {
		t.Error("a tool no rule names was limited")
	}
	c.advance(60 * time.Millisecond)
	if _, wait := l.Tools("u1", "c1", []string{"search_web"}); wait != 40*time.Millisecond {
		t.Errorf("60 ms later: wait %v, want 40ms", wait)
	}
	c.advance(40 * time.Millisecond)
	if tool, _ := l.Tools("u1", "c1", []string{"search_web"}); tool != "" {
		t.Error("100 ms later: still limited")
	}
	if tool, _ := l.Tools("u1", "c1", []string{"search_web"}); tool == "" {
		t.Error("the refilled token was spent twice")
	}
	// Burst absent: the rate's count.
	l2, _ := newLimiter(t, 0, Rule{Tools: []string{"*"}, Per: PerUser, Rate: Rate{3, time.Minute}})
	for range 3 {
		l2.Tools("u", "c", []string{"t"})
	}
	if _, wait := l2.Tools("u", "c", []string{"t"}); wait != 20*time.Second {
		t.Errorf("3/m after 3 calls: wait %v, want 20s", wait)
	}
	if RetryAfter(20*time.Second+time.Nanosecond) != 21 {
		t.Error("RetryAfter does not round up")
	}
}

// A rule per user counts each user on their own; per client, every user
// of that client together.
func TestPerUserAndPerClient(t *testing.T) {
	l, _ := newLimiter(t, 0,
		Rule{Tools: []string{"a"}, Per: PerUser, Rate: Rate{2, time.Hour}},
		Rule{Tools: []string{"b"}, Per: PerClient, Rate: Rate{2, time.Hour}})
	for range 2 {
		l.Tools("alice", "c1", []string{"a"})
	}
	if tool, _ := l.Tools("alice", "c1", []string{"a"}); tool != "a" {
		t.Error("alice was not limited at her rate")
	}
	if tool, _ := l.Tools("bob", "c1", []string{"a"}); tool != "" {
		t.Error("bob was limited by alice's calls")
	}
	l.Tools("alice", "c1", []string{"b"})
	l.Tools("bob", "c1", []string{"b"})
	if tool, _ := l.Tools("carol", "c1", []string{"b"}); tool != "b" {
		t.Error("a third user of client c1 was not limited by the client's rate")
	}
	if tool, _ := l.Tools("carol", "c2", []string{"b"}); tool != "" {
		t.Error("client c2 was limited by c1's calls")
	}
}

// A refused request takes no token from any bucket: not from another
// rule's, nor from the calls of a batch before the refused one.
func TestAllOrNothing(t *testing.T) {
	l, _ := newLimiter(t, 0,
		Rule{Tools: []string{"*"}, Per: PerUser, Rate: Rate{3, time.Hour}},
		Rule{Tools: []string{"slow"}, Per: PerUser, Rate: Rate{1, time.Hour}})
	if tool, _ := l.Tools("u", "c", []string{"slow"}); tool != "" {
		t.Fatal("first call limited")
	}
	// Left: 2 in "*", 0 in "slow".
	if tool, _ := l.Tools("u", "c", []string{"fast", "slow"}); tool != "slow" {
		t.Fatalf("batch with a limited call: refused %q, want slow", tool)
	}
	if tool, _ := l.Tools("u", "c", []string{"fast", "fast"}); tool != "" {
		t.Error("the refused batch spent tokens of the \"*\" rule")
	}
	if tool, _ := l.Tools("u", "c", []string{"fast"}); tool != "fast" {
		t.Error("the \"*\" rule let a fourth call through")
	}
	// More calls of one bucket than its burst never pass, and say to wait
	// for a full bucket.
	l2, _ := newLimiter(t, 0, Rule{Tools: []string{"*"}, Per: PerUser, Rate: Rate{2, time.Second}})
	if tool, wait := l2.Tools("u", "c", []string{"x", "x", "x"}); tool != "x" || wait != time.Second {
		t.Errorf("batch over the burst: %q, %v; want x, 1s", tool, wait)
	}
	if tool, _ := l2.Tools("u", "c", []string{"x", "x"}); tool != "" {
		t.Error("the batch over the burst spent tokens")
	}
}

// Endpoint rules limit only their endpoints, per client; tool rules never
// limit an endpoint.
func TestEndpoint(t *testing.T) {
	l, c := newLimiter(t, 0,
		Rule{Endpoints: []string{EndpointToken}, Per: PerClient, Rate: Rate{1, time.Second}, Burst: 2},
		Rule{Tools: []string{"*"}, Per: PerClient, Rate: Rate{1, time.Hour}})
	for i := range 2 {
		if wait := l.Endpoint(EndpointToken, "c1"); wait != 0 {
			t.Fatalf("token %d limited", i)
		}
	}
	if wait := l.Endpoint(EndpointToken, "c1"); wait != time.Second {
		t.Errorf("third token request: wait %v, want 1s", wait)
	}
	if wait := l.Endpoint(EndpointToken, "c2"); wait != 0 {
		t.Error("c2 limited by c1")
	}
	for range 5 {
		if wait := l.Endpoint(EndpointAuthorize, "c1"); wait != 0 {
			t.Fatal("authorize limited by a token rule or a tool rule")
		}
	}
	c.advance(500 * time.Millisecond)
	if wait := l.Endpoint(EndpointToken, "c1"); wait != 500*time.Millisecond {
		t.Errorf("half a second later: wait %v, want 500ms", wait)
	}
	var nilL *Limiter
	if wait := nilL.Endpoint(EndpointToken, "c"); wait != 0 {
		t.Error("a nil Limiter limits")
	}
	if tool, _ := nilL.Tools("u", "c", []string{"t"}); tool != "" {
		t.Error("a nil Limiter limits")
	}
	if l, err := New(Options{}); l != nil || err != nil {
		t.Errorf("New without rules = %v, %v; want nil, nil", l, err)
	}
}

// Buckets idle long enough to be full again are dropped; at the cap a new
// key is refused and those held go on.
func TestBoundedMemory(t *testing.T) {
	l, c := newLimiter(t, 2, Rule{Tools: []string{"*"}, Per: PerUser, Rate: Rate{1, time.Second}, Burst: 5})
	l.Tools("u1", "c", []string{"t"})
	l.Tools("u2", "c", []string{"t"})
	if tool, wait := l.Tools("u3", "c", []string{"t"}); tool != "t" || wait != time.Second {
		t.Errorf("a third key at a cap of 2: %q, %v; want refused, 1s", tool, wait)
	}
	if tool, _ := l.Tools("u1", "c", []string{"t"}); tool != "" {
		t.Error("a key held was refused at the cap")
	}
	if n := l.Len(); n != 2 {
		t.Errorf("%d buckets, want 2", n)
	}
	// u2's bucket is full again 1 s after its call; u1's 1 s after its second.
	c.advance(1500 * time.Millisecond)
	if tool, _ := l.Tools("u3", "c", []string{"t"}); tool != "" {
		t.Error("u3 refused though u2's bucket was full again")
	}
	if n := l.Len(); n != 2 {
		t.Errorf("%d buckets after the sweep at the cap, want 2 (u1, u3)", n)
	}
	// An idle table is swept within a minute of any request.
	c.advance(2 * time.Minute)
	l.Tools("u4", "c", []string{"t"})
	if n := l.Len(); n != 1 {
		t.Errorf("%d buckets after 2 idle minutes, want 1", n)
	}
}

// Callers at once get exactly the burst between them, never more: the
// decision and the taking are one step.
func TestConcurrentCallersGetTheBurst(t *testing.T) {
	l, _ := newLimiter(t, 0, Rule{Tools: []string{"*"}, Per: PerClient, Rate: Rate{1, time.Hour}, Burst: 50})
	var wg sync.WaitGroup
	var admitted atomic.Int32
	for i := range 200 {
		wg.Go(func() {
			if tool, _ := l.Tools("u"+strconv.Itoa(i), "c", []string{"t", "t"}[:1+i%2]); tool == "" {
				admitted.Add(int32(1 + i%2))
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n < 49 || n > 50 {
		t.Errorf("%d calls admitted, want the burst, 50 (49 if the last admission was a pair refused for want of one token)", n)
	}
}
