package cimd

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/store"
)

// Defaults of Options.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultMaxBytes = 5 << 10 // the draft recommends 5 KB (CIMD-10)
	DefaultMinTTL   = time.Minute
	// DefaultMaxTTL: a document is read again at least hourly, so that
	// one served by someone who briefly held its host (a lapsed domain, a
	// hijacked bucket) stops being used within an hour of its owner's fix,
	// on every replica (SEC-160).
	DefaultMaxTTL     = time.Hour
	DefaultTTL        = 5 * time.Minute
	DefaultMaxEntries = 1000
)

// Resolver looks up the addresses of a host name. *net.Resolver implements it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Options configure a Fetcher. The zero value is ready for production.
type Options struct {
	// AllowHosts are exact host names, or host:port, whose addresses are
	// not checked (CIMD-10): they may resolve to loopback or private
	// addresses. A jwks_uri on one is exempt only for a client whose
	// document is on one too. For local testing only; empty by default.
	AllowHosts []string
	// DenyHosts are hosts whose documents and key sets are refused, cached
	// or not: "example.com" that host, ".example.com" any host under it
	// (SEC-164). An operator who learns that a host serving documents
	// was taken over blocks it at once, on the next request.
	DenyHosts []string
	// RootCAs adds trust for tests (a test CA); nil means the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds a whole fetch: resolve, connect, TLS, headers, body.
	// Default 5 s.
	Timeout time.Duration
	// MaxBytes is the largest document accepted. Default 5 KiB (5120).
	MaxBytes int64
	// MaxKeyBytes is the largest key set (jwks_uri) accepted. Default
	// 32 KiB.
	MaxKeyBytes int64
	// MinTTL and MaxTTL bound every cache lifetime (CIMD-6). Defaults 1 min
	// and 1 h (SEC-160). no-cache and max-age=0 get MinTTL.
	MinTTL, MaxTTL time.Duration
	// DefaultTTL is the lifetime of a document served without freshness
	// headers, clamped to [MinTTL, MaxTTL]. Default 5 min.
	DefaultTTL time.Duration
	// MaxEntries bounds the cache. Default 1000.
	MaxEntries int
	// Now is the clock for cache lifetimes. Default time.Now.
	Now func() time.Time
	// Logger receives one line per fetch. Default: discard.
	Logger *slog.Logger
	// Resolver resolves client_id hosts. Default net.DefaultResolver.
	Resolver Resolver
}

// Fetcher fetches, validates and caches client ID metadata documents. It is
// safe for concurrent use.
type Fetcher struct {
	opts     Options
	allow    map[string]bool // lower-cased AllowHosts
	deny     []string        // lower-cased DenyHosts
	resolver Resolver
	log      *slog.Logger

	mu    sync.Mutex
	cache map[string]entry
	keys  map[string]keyEntry // by jwks_uri, as Keys says

	documents flights[*store.Client]
	keySets   flights[*jose.JSONWebKeySet]
	// fetching holds a slot per fetch under way: past
	// maxConcurrentFetches, a fetch waits for one (SEC-159).
	fetching chan struct{}

	// testDial, when set, replaces the real dialer (tests only).
	testDial func(ctx context.Context, ap netip.AddrPort) (net.Conn, error)
}

type entry struct {
	client  *store.Client
	expires time.Time
	reused  bool // served from the cache since it was stored
}

// maxConcurrentFetches bounds the documents and key sets fetched at once,
// whoever asks: each holds an outbound connection for up to Timeout, which
// the caps on inbound connections do not count (SEC-159). The others wait
// for a slot.
const maxConcurrentFetches = 64

var errTooManyFetches = errors.New("too many documents and key sets are being fetched at once")

// New returns a Fetcher; zero fields of opts take their defaults.
func New(opts Options) *Fetcher {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxKeyBytes <= 0 {
		opts.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if opts.MinTTL <= 0 {
		opts.MinTTL = DefaultMinTTL
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = DefaultMaxTTL
	}
	if opts.MinTTL > opts.MaxTTL {
		opts.MinTTL = opts.MaxTTL
	}
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = DefaultTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := &Fetcher{
		opts:     opts,
		allow:    make(map[string]bool),
		resolver: opts.Resolver,
		log:      opts.Logger,
		cache:    make(map[string]entry),
		keys:     make(map[string]keyEntry),
		fetching: make(chan struct{}, maxConcurrentFetches),
	}
	if f.resolver == nil {
		f.resolver = net.DefaultResolver
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	for _, h := range opts.DenyHosts {
		f.deny = append(f.deny, strings.ToLower(strings.TrimSpace(h)))
	}
	for _, h := range opts.AllowHosts {
		f.allow[strings.ToLower(h)] = true
	}
	return f
}

// Client returns the client that the document at clientID describes,
// fetching it unless a fresh copy is cached (CIMD-2, CIMD-6). The result
// is the caller's to keep: ID is the URL, TokenEndpointAuthMethod is
// "none", CreatedAt is when the document was fetched. Any failure is an
// *Error (CIMD-9: the caller shows a page, or answers invalid_client).
//
// Concurrent calls for the same URL share one fetch (flights), bounded by
// Options.Timeout, which ends when no caller waits any more.
func (f *Fetcher) Client(ctx context.Context, clientID string) (*store.Client, error) {
	if err := ValidateClientIDURL(clientID); err != nil {
		return nil, err
	}
	if f.denied(clientID) {
		return nil, &Error{Reason: reasonDenied}
	}
	now := f.opts.Now()
	f.mu.Lock()
	if e, ok := f.cache[clientID]; ok {
		if now.Before(e.expires) {
			if !e.reused {
				e.reused = true
				f.cache[clientID] = e
			}
			f.mu.Unlock()
			return cloneClient(e.client), nil
		}
		delete(f.cache, clientID)
	}
	f.mu.Unlock()
	c, err := f.documents.do(ctx, clientID, func(ctx context.Context) (*store.Client, error) { return f.run(ctx, clientID) })
	if err != nil {
		if !errors.As(err, new(*Error)) { // the caller's ctx ended first
			err = documentNames.unreachable(err)
		}
		return nil, err
	}
	return cloneClient(c), nil
}

// run fetches the document at clientID, caches it when it may be, and
// logs the outcome.
func (f *Fetcher) run(ctx context.Context, clientID string) (*store.Client, error) {
	client, ttl, storable, err := f.fetch(ctx, clientID)
	if err == nil && storable {
		f.mu.Lock()
		f.put(clientID, client, f.opts.Now().Add(ttl))
		f.mu.Unlock()
	}
	switch {
	case err != nil && ctx.Err() != nil:
		f.log.Debug("cimd: fetch abandoned: no caller waits for it", "client_id", clientID)
	case err != nil:
		attrs := []any{"client_id", clientID, "err", err.Error()}
		var e *Error
		if errors.As(err, &e) {
			attrs = []any{"client_id", clientID, "reason", e.Reason}
			if e.Cause != nil {
				attrs = append(attrs, "cause", e.Cause.Error())
			}
		}
		f.log.Info("cimd: client metadata rejected", attrs...)
	default:
		f.log.Info("cimd: client metadata fetched", "client_id", clientID, "client_name", client.Name, "cache_ttl", ttl, "cached", storable)
	}
	return client, err
}

// put stores a document; f.mu is held.
func (f *Fetcher) put(clientID string, c *store.Client, expires time.Time) {
	if _, ok := f.cache[clientID]; !ok {
		evictOne(f.cache, f.opts.MaxEntries, f.opts.Now(), func(e entry) (bool, time.Time) { return e.reused, e.expires })
	}
	f.cache[clientID] = entry{client: c, expires: expires}
}

// evictOne makes room for one more entry in m, which holds at most max:
// expired entries go first, then of those never served from the cache
// the one that would expire soonest, then of the others. Anyone may have
// documents fetched, once each, with long lifetimes: those must not push
// out the documents of the clients in use (SEC-218).
func evictOne[V any](m map[string]V, max int, now time.Time, rank func(V) (reused bool, expires time.Time)) {
	if len(m) < max {
		return
	}
	for k, v := range m {
		if _, expires := rank(v); !now.Before(expires) {
			delete(m, k)
		}
	}
	for len(m) >= max {
		var victim string
		var victimReused bool
		var soonest time.Time
		for k, v := range m {
			reused, expires := rank(v)
			if victim == "" || !reused && victimReused || reused == victimReused && expires.Before(soonest) {
				victim, victimReused, soonest = k, reused, expires
			}
		}
		delete(m, victim)
	}
}

// fetch does one validated GET of clientID (already checked by
// ValidateClientIDURL) and reads the document. Its error is always an
// *Error.
func (f *Fetcher) fetch(ctx context.Context, clientID string) (_ *store.Client, ttl time.Duration, storable bool, _ error) {
	body, header, err := f.get(ctx, clientID, f.allowed(clientID), f.opts.MaxBytes, documentNames)
	if err != nil {
		return nil, 0, false, err
	}
	now := f.opts.Now()
	client, err := parseDocument(clientID, body, now)
	if err != nil {
		return nil, 0, false, err
	}
	ttl, storable = f.lifetime(header, now)
	if client.JWKS != nil || client.JWKSURI != "" {
		// The document then says where the client's keys are, or is
		// their only copy: held no longer than a jwks_uri set, for the
		// same reason (SEC-128, SEC-160).
		ttl = min(ttl, maxKeySetTTL)
	}
	return client, ttl, storable, nil
}

// names are what a Reason calls the URL fetched and the JSON it serves, and
// the one Reason of every network failure of a fetch (reasonUnreachable's
// rule).
type names struct{ url, body, failed string }

var documentNames = names{"client metadata URL", "client metadata document", reasonUnreachable}

func (n names) unreachable(cause error) *Error { return &Error{Reason: n.failed, Cause: cause} }

// denied reports whether rawURL's host is one of DenyHosts, or under one
// that begins with a dot.
func (f *Fetcher) denied(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return true
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	for _, d := range f.deny {
		if host == d || (strings.HasPrefix(d, ".") && (strings.HasSuffix(host, d) || host == d[1:])) {
			return true
		}
	}
	return false
}

// allowed reports whether rawURL's host is in AllowHosts.
func (f *Fetcher) allowed(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && (f.allow[strings.ToLower(u.Host)] || f.allow[strings.ToLower(u.Hostname())])
}

// get does one GET of rawURL, a URL that passes ValidateClientIDURL, under
// the SSRF rules (CIMD-10), and returns a 200 answer's JSON body of at most
// maxBytes with its headers. allowed skips the address checks, for a host
// in AllowHosts. Its error is always an *Error.
func (f *Fetcher) get(ctx context.Context, rawURL string, allowed bool, maxBytes int64, what names) ([]byte, http.Header, error) {
	// Past the cap a fetch waits for a slot, in turn (a channel's
	// senders are served in order), until no caller waits for it: a flood
	// of fetches from hosts that never answer delays the others by their
	// timeouts, and does not refuse them outright.
	select {
	case f.fetching <- struct{}{}:
		defer func() { <-f.fetching }()
	case <-ctx.Done():
		return nil, nil, what.unreachable(fmt.Errorf("%w: %w", errTooManyFetches, ctx.Err()))
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, invalid("the " + what.url + " cannot be parsed")
	}
	host := u.Hostname()
	port := uint16(443)
	if p := u.Port(); p != "" {
		n, _ := strconv.ParseUint(p, 10, 16)
		port = uint16(n)
	}

	// CIMD-10: resolve once, check every answer, dial only those.
	addrs, err := f.resolve(ctx, host)
	if err != nil {
		return nil, nil, what.unreachable(err)
	}
	if !allowed {
		if err := checkAddrs(host, addrs); err != nil {
			return nil, nil, what.unreachable(err)
		}
	}
	pinned := make([]netip.AddrPort, len(addrs))
	for i, a := range addrs {
		pinned[i] = netip.AddrPortFrom(a, port)
	}
	hc := f.httpClient(host, pinned, allowed)
	defer hc.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, invalid("the " + what.url + " cannot be fetched")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mcpgate-cimd")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, what.unreachable(err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, nil, invalid(fmt.Sprintf("the %s answered with a redirect (HTTP %d); redirects are not followed", what.url, resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return nil, nil, invalid(fmt.Sprintf("the %s answered HTTP %d instead of 200", what.url, resp.StatusCode))
	}
	if !jsonMediaType(resp.Header.Get("Content-Type")) {
		return nil, nil, invalid("the " + what.body + " is not served as application/json")
	}
	tooBig := invalid(fmt.Sprintf("the %s is larger than %d bytes", what.body, maxBytes))
	if resp.ContentLength > maxBytes {
		return nil, nil, tooBig
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, nil, what.unreachable(err)
	}
	if int64(len(body)) > maxBytes {
		return nil, nil, tooBig
	}
	return body, resp.Header, nil
}

// jsonMediaType accepts application/json and application/*+json (draft §4).
func jsonMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func cloneClient(c *store.Client) *store.Client {
	cp := *c
	cp.RedirectURIs = slices.Clone(c.RedirectURIs)
	cp.GrantTypes = slices.Clone(c.GrantTypes)
	cp.ResponseTypes = slices.Clone(c.ResponseTypes)
	cp.JWKS = slices.Clone(c.JWKS)
	return &cp
}
