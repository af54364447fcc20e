package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcpgate/mcpgate/internal/policy"
)

// Whom a rule counts.
const (
	PerUser   = "user"
	PerClient = "client"
)

// The OAuth endpoints a rule may limit.
const (
	EndpointToken      = "token"
	EndpointAuthorize  = "authorize"
	EndpointRevoke     = "revoke"
	EndpointIntrospect = "introspect"
)

var endpoints = []string{EndpointToken, EndpointAuthorize, EndpointRevoke, EndpointIntrospect}

// Bounds of what a rule may say.
const (
	MaxCount = 1_000_000 // requests in a Rate, and a Burst
	// DefaultMaxKeys bounds the buckets held at once unless Options say
	// otherwise: a few hundred bytes each.
	DefaultMaxKeys = 100_000
	sweepEvery     = time.Minute
)

// Rate is N requests per Per (a second, a minute or an hour).
type Rate struct {
	N   int
	Per time.Duration
}

// ParseRate reads "N/s", "N/m" or "N/h", N a whole number from 1 to
// MaxCount.
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q must be N/s, N/m or N/h", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 || count > MaxCount || n != strconv.Itoa(count) {
		return Rate{}, fmt.Errorf("rate %q: the count must be a whole number from 1 to %d", s, MaxCount)
	}
	per, ok := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: the unit must be s, m or h", s)
	}
	return Rate{N: count, Per: per}, nil
}

func (r Rate) String() string {
	return strconv.Itoa(r.N) + "/" + map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
}

func (r Rate) limit() rate.Limit { return rate.Limit(float64(r.N) / r.Per.Seconds()) }

// Rule is one rate limit. Exactly one of Tools and Endpoints is set.
type Rule struct {
	Tools     []string // tool name patterns ('*': any run of characters)
	Endpoints []string // EndpointToken, EndpointAuthorize, EndpointRevoke, EndpointIntrospect
	Per       string   // PerUser or PerClient (endpoints: PerClient)
	Rate      Rate
	Burst     int // the most requests at once; 0: Rate.N
}

// Validate says what is wrong with r, if anything.
func (r *Rule) Validate() error {
	switch {
	case len(r.Tools) == 0 && len(r.Endpoints) == 0:
		return errors.New("needs tools or endpoints")
	case len(r.Tools) > 0 && len(r.Endpoints) > 0:
		return errors.New("has both tools and endpoints: give each its own rule")
	case r.Per != PerUser && r.Per != PerClient:
		return fmt.Errorf("per %q must be user or client", r.Per)
	case len(r.Endpoints) > 0 && r.Per != PerClient:
		return errors.New("an endpoint rule counts clients (per: client): no user is known before the token is issued")
	case r.Rate.N < 1 || r.Rate.N > MaxCount || (r.Rate.Per != time.Second && r.Rate.Per != time.Minute && r.Rate.Per != time.Hour):
		return fmt.Errorf("rate must be N/s, N/m or N/h with N from 1 to %d", MaxCount)
	case r.Burst < 0 || r.Burst > MaxCount:
		return fmt.Errorf("burst %d must be from 1 to %d (0 or absent: the rate's count)", r.Burst, MaxCount)
	}
	for _, t := range r.Tools {
		if t == "" || strings.TrimSpace(t) != t || strings.ContainsFunc(t, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			return fmt.Errorf("tool pattern %q must be a tool name, with '*' for any run of characters", t)
		}
	}
	for _, e := range r.Endpoints {
		if !slices.Contains(endpoints, e) {
			return fmt.Errorf("endpoint %q must be token, authorize, revoke or introspect", e)
		}
	}
	return nil
}

func (r *Rule) burst() int {
	if r.Burst == 0 {
		return r.Rate.N
	}
	return r.Burst
}

func (r *Rule) limit() rate.Limit { return r.Rate.limit() }

// Options configure New.
type Options struct {
	Rules   []Rule
	MaxKeys int // DefaultMaxKeys when 0
	Now     func() time.Time
}

// Limiter decides, by its rules, whether a request may go on. A nil
// *Limiter allows everything.
type Limiter struct {
	rules   []Rule
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[key]*bucket
	swept   time.Time
}

type key struct {
	rule int
	who  string
}

type bucket struct {
	lim  *rate.Limiter
	full time.Time // when it holds Burst tokens again: then it may be dropped
}

// New returns the Limiter of opts.Rules, or nil when there are none; an
// invalid rule is an error naming its index.
func New(opts Options) (*Limiter, error) {
	if len(opts.Rules) == 0 {
		return nil, nil
	}
	for i := range opts.Rules {
		if err := opts.Rules[i].Validate(); err != nil {
			return nil, fmt.Errorf("rate_limits[%d]: %w", i, err)
		}
	}
	l := &Limiter{rules: opts.Rules, maxKeys: opts.MaxKeys, now: opts.Now, buckets: map[key]*bucket{}}
	if l.maxKeys <= 0 {
		l.maxKeys = DefaultMaxKeys
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// Tools decides whether user, through client, may call tools now (one
// entry per call: a batch is decided whole). It returns "" when they may,
// and took a token from every matching bucket; else the first tool
// refused and how long to wait, and took nothing.
func (l *Limiter) Tools(user, client string, tools []string) (limited string, wait time.Duration) {
	if l == nil {
		return "", 0
	}
	var need []want
	for ri := range l.rules {
		r := &l.rules[ri]
		who := user
		if r.Per == PerClient {
			who = client
		}
		for _, t := range tools {
			if matchAny(r.Tools, t) {
				need = add(need, key{ri, who}, t)
			}
		}
	}
	limited, wait = l.take(need)
	if limited != "" {
		l.refused("tools/call", limited)
	}
	return limited, wait
}

// Endpoint decides whether client may be served at endpoint now, and
// took a token if so; else it returns how long to wait.
func (l *Limiter) Endpoint(endpoint, client string) time.Duration {
	if l == nil {
		return 0
	}
	var need []want
	for ri := range l.rules {
		for _, e := range l.rules[ri].Endpoints {
			if e == endpoint {
				need = add(need, key{ri, client}, endpoint)
				break
			}
		}
	}
	if _, wait := l.take(need); wait > 0 {
		l.refused(endpoint, "")
		return wait
	}
	return 0
}

// refused is called once for every request refused: the place to count
// them (by endpoint, "tools/call" with the tool).
func (l *Limiter) refused(endpoint, tool string) {}

// want is the tokens one request needs from one bucket.
type want struct {
	k    key
	n    int
	what string // the first tool (or endpoint) that needs it
}

func add(need []want, k key, what string) []want {
	for i := range need {
		if need[i].k == k {
			need[i].n++
			return need
		}
	}
	return append(need, want{k: k, n: 1, what: what})
}

// take takes n tokens from each bucket of need, or none if any of them
// lacks its n.
func (l *Limiter) take(need []want) (limited string, wait time.Duration) {
	if len(need) == 0 {
		return "", 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now, false)
	bs := make([]*bucket, len(need))
	for i, w := range need {
		b := l.bucket(w.k, now)
		if b == nil {
			return w.what, time.Second
		}
		bs[i] = b
		if d := shortfall(b.lim, now, w.n); d > wait {
			limited, wait = w.what, d
		}
	}
	if limited != "" {
		return limited, wait
	}
	for i, w := range need {
		lim := bs[i].lim
		lim.AllowN(now, w.n)
		bs[i].full = now.Add(shortfall(lim, now, lim.Burst()))
	}
	return "", 0
}

// shortfall is how long until lim holds n tokens; 0 if it does now. A
// bucket that can never hold n (n over its burst) gives the time it takes
// to fill.
func shortfall(lim *rate.Limiter, now time.Time, n int) time.Duration {
	have := lim.TokensAt(now)
	if have >= float64(n) {
		return 0
	}
	missing := float64(n) - have
	if n > lim.Burst() {
		missing = float64(lim.Burst())
	}
	return max(time.Duration(math.Ceil(missing/float64(lim.Limit())*float64(time.Second))), time.Nanosecond)
}

// bucket returns k's bucket, made full if new; nil when the table is full.
func (l *Limiter) bucket(k key, now time.Time) *bucket {
	if b, ok := l.buckets[k]; ok {
		return b
	}
	if len(l.buckets) >= l.maxKeys {
		l.sweep(now, true)
		if len(l.buckets) >= l.maxKeys {
			return nil
		}
	}
	r := &l.rules[k.rule]
	b := &bucket{lim: rate.NewLimiter(r.limit(), r.burst()), full: now}
	l.buckets[k] = b
	return b
}

// sweep drops the buckets that have been idle long enough to be full
// again, at most once a minute unless full says the table is at its cap
// (then at most once a second, so that a flood of new keys does not turn
// every request into a walk of the table).
func (l *Limiter) sweep(now time.Time, full bool) {
	every := sweepEvery
	if full {
		every = time.Second
	}
	if now.Sub(l.swept) < every {
		return
	}
	l.swept = now
	for k, b := range l.buckets {
		if !now.Before(b.full) {
			delete(l.buckets, k)
		}
	}
}

// Len is the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// RetryAfter is wait in whole seconds, rounded up, at least 1: the value
// of a Retry-After header.
func RetryAfter(wait time.Duration) int {
	return max(int((wait+time.Second-1)/time.Second), 1)
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if match(p, name) {
			return true
		}
	}
	return false
}

// match is the tool policy's: a pattern means the same in both.
var match = policy.Match
