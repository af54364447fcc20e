package cimd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"syscall"
)

var (
	globalV6  = netip.MustParsePrefix("2000::/3")
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: embeds an IPv4 address
	sixToFour = netip.MustParsePrefix("2002::/16")    // RFC 3056: embeds an IPv4 address

	// IANA special-purpose blocks that are not global unicast destinations
	// and that netip's Is* methods do not already cover.
	blockedPrefixes = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791)
		netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared space (RFC 6598)
		netip.MustParsePrefix("127.0.0.0/8"),     // loopback
		netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),    // documentation, RFC 5737 range 1
		netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
		netip.MustParsePrefix("198.51.100.0/24"), // documentation, RFC 5737 range 2
		netip.MustParsePrefix("203.0.113.0/24"),  // documentation, RFC 5737 range 3
		netip.MustParsePrefix("224.0.0.0/4"),     // multicast
		netip.MustParsePrefix("240.0.0.0/4"),     // reserved, limited broadcast
		netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments: Teredo, ORCHID, benchmarking
		netip.MustParsePrefix("2001:db8::/32"),   // documentation
		netip.MustParsePrefix("3fff::/20"),       // documentation (RFC 9637)
	}
)

// publicAddr reports whether a is a public unicast address that a metadata
// fetch may connect to (CIMD-10). IPv4-mapped addresses are unmapped first;
// NAT64 and 6to4 addresses are judged by the IPv4 address they embed; other
// IPv6 addresses must lie in 2000::/3, so IPv4-compatible (::/96),
// unique-local, site-local and the rest are refused. A zone is refused.
func publicAddr(a netip.Addr) bool {
	if !a.IsValid() || a.Zone() != "" {
		return false
	}
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case !globalV6.Contains(a):
			return false
		case sixToFour.Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// resolve returns the addresses of host, once: an IP literal as itself,
// a name through the Resolver. IPv4 answers in IPv4-mapped form are
// unmapped so that the dialer connects over IPv4; a zone is kept so that
// publicAddr can refuse it.
func (f *Fetcher) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	ips, err := f.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip.IP)
		if !ok {
			return nil, fmt.Errorf("resolve %s: invalid address %v", host, ip.IP)
		}
		out = append(out, a.Unmap().WithZone(ip.Zone))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	return out, nil
}

// checkAddrs refuses the fetch if any address of host is not public. One
// bad answer is enough: a name that also points inside is not trusted
// whichever answer would be dialed.
func checkAddrs(host string, addrs []netip.Addr) error {
	for _, a := range addrs {
		if !publicAddr(a) {
			return fmt.Errorf("%w: %s resolves to %s", errBlockedAddress, host, a)
		}
	}
	return nil
}

// control runs after the socket is created and before it connects (the
// net.Dialer Control hook): the remote address must be one that was
// checked, and public unless the host is allow-listed. With the pinned
// dialer it cannot fail; it is the second lock on the door.
func control(pinned []netip.AddrPort, allowed bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot parse %q", errBlockedAddress, address)
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if !slices.Contains(pinned, ap) {
			return fmt.Errorf("%w: %s was not checked", errBlockedAddress, ap)
		}
		if !allowed && !publicAddr(ap.Addr()) {
			return fmt.Errorf("%w: %s", errBlockedAddress, ap)
		}
		return nil
	}
}

// httpClient builds a one-fetch client that connects only to pinned, in
// order, whatever address the transport asks for, and verifies TLS for
// serverName. It follows no redirects and uses no proxy.
func (f *Fetcher) httpClient(serverName string, pinned []netip.AddrPort, allowed bool) *http.Client {
	d := &net.Dialer{Timeout: f.opts.Timeout, KeepAlive: -1, Control: control(pinned, allowed)}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var errs []error
		for _, ap := range pinned {
			var c net.Conn
			var err error
			if f.testDial != nil {
				c, err = f.testDial(ctx, ap)
			} else {
				c, err = d.DialContext(ctx, "tcp", ap.String())
			}
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		return nil, errors.Join(errs...)
	}
	tr := &http.Transport{
		Proxy:       nil,
		DialContext: dial,
		TLSClientConfig: &tls.Config{
			ServerName: serverName,
			RootCAs:    f.opts.RootCAs,
			MinVersion: tls.VersionTLS12,
		},
		TLSHandshakeTimeout:    f.opts.Timeout,
		ResponseHeaderTimeout:  f.opts.Timeout,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   f.opts.Timeout,
		// A 3xx comes back as the response and fails the status check: a
		// redirect could lead anywhere, including inside (CIMD-10).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
