package cimd

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxDeltaSeconds is RFC 9111 §1.2.2's cap for delta-seconds that overflow.
const maxDeltaSeconds = 1 << 31

// lifetime is how long a validated document may be served from the cache
// (CIMD-6), and whether it may be cached at all: the RFC 9111 §4.2.1
// freshness lifetime minus the Age header, or DefaultTTL without freshness
// information, clamped to [MinTTL, MaxTTL]. no-store is never cached;
// no-cache asks for revalidation on every use, which this cache does not
// do, so it gets MinTTL like max-age=0.
func (f *Fetcher) lifetime(h http.Header, now time.Time) (time.Duration, bool) {
	ttl, known, storable := freshness(h, now)
	if !storable {
		return 0, false
	}
	if !known {
		ttl = f.opts.DefaultTTL
	}
	return min(max(ttl, f.opts.MinTTL), f.opts.MaxTTL), true
}

func freshness(h http.Header, now time.Time) (ttl time.Duration, known, storable bool) {
	var (
		noCache, haveMaxAge bool
		maxAge              int64
	)
	for _, line := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			val = strings.Trim(strings.TrimSpace(val), `"`)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store":
				return 0, true, false
			case "no-cache":
				noCache = true
			case "max-age":
				n, ok := deltaSeconds(val)
				if !ok {
					n = 0 // an invalid max-age makes the response stale (§4.2.1)
				}
				if !haveMaxAge || n < maxAge {
					maxAge = n
				}
				haveMaxAge = true
			}
		}
	}
	age, _ := deltaSeconds(h.Get("Age"))
	ageD := time.Duration(age) * time.Second
	switch {
	case noCache:
		return 0, true, true
	case haveMaxAge:
		return time.Duration(maxAge)*time.Second - ageD, true, true
	case h.Get("Expires") != "":
		exp, err := http.ParseTime(h.Get("Expires"))
		if err != nil {
			return 0, true, true // e.g. "Expires: 0" means already expired (§5.3)
		}
		base := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			base = d
		}
		return exp.Sub(base) - ageD, true, true
	}
	return 0, false, true
}

// deltaSeconds parses RFC 9111 delta-seconds (digits only), capping large
// values at 2^31.
func deltaSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxDeltaSeconds {
		return maxDeltaSeconds, true
	}
	return n, true
}
