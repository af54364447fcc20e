package cimd

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// CIMD-10: addresses that are not public unicast are refused, in every
// spelling netip understands.
func TestPublicAddr(t *testing.T) {
	public := []string{
		"8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.0",
		"2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
		"::ffff:8.8.8.8",   // IPv4-mapped public
		"64:ff9b::808:808", // NAT64 (DNS64) of 8.8.8.8
		"2002:808:808::1",  // 6to4 of 8.8.8.8
	}
	blocked := []string{
		"127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "192.168.1.1",
		"169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0", "0.1.2.3",
		"255.255.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1",
		"192.0.0.8", "192.0.2.1", "198.51.100.1", "203.0.113.1", "198.18.0.1", "192.88.99.1",
		"::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "100::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
		"::7f00:1",           // IPv4-compatible 127.0.0.1
		"::a00:1",            // IPv4-compatible 10.0.0.1
		"64:ff9b::7f00:1",    // NAT64 of 127.0.0.1
		"64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
		"64:ff9b:1::808:808", // local-use NAT64
		"2002:7f00:1::1",     // 6to4 of 127.0.0.1
		"2002:a00:1::1",      // 6to4 of 10.0.0.1
		"2001::1",            // Teredo
		"2001:db8::1", "3fff::1", "5f00::1",
		"fe80::1%eth0", "2606:4700:4700::1111%eth0", // zones
	}
	for _, s := range public {
		if !publicAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s refused, want allowed", s)
		}
	}
	for _, s := range blocked {
		if publicAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s allowed, want refused", s)
		}
	}
	if publicAddr(netip.Addr{}) {
		t.Error("the zero Addr is allowed, want refused")
	}
}

// noDial fails the test if the fetcher tries to connect anywhere.
func noDial(t *testing.T, f *Fetcher) {
	f.testDial = func(_ context.Context, ap netip.AddrPort) (net.Conn, error) {
		t.Errorf("dialed %s", ap)
		return nil, errors.New("test: no dialing")
	}
}

// CIMD-10: a name resolving to an internal address is refused before any
// connection is attempted.
func TestClientRefusesInternalAnswers(t *testing.T) {
	for _, answer := range [][]string{
		{"127.0.0.1"}, {"10.0.0.1"}, {"169.254.169.254"}, {"::1"}, {"::ffff:127.0.0.1"},
		{"0.0.0.0"}, {"fe80::1"}, {"100.64.0.1"}, {"fc00::1"}, {"192.168.0.10"},
		{"255.255.255.255"}, {"224.0.0.1"}, {"::"}, {"::7f00:1"}, {"64:ff9b::a00:1"},
		{"2002:a9fe:a9fe::1"}, {"fe80::1%eth0"},
		{"93.184.215.14", "10.0.0.1"}, // one public, one private
		{"10.0.0.1", "93.184.215.14"},
		{"2606:4700:4700::1111", "::1"},
	} {
		t.Run(answer[0]+"+", func(t *testing.T) {
			res := staticResolver(answer...)
			f := New(Options{Resolver: res})
			noDial(t, f)
			_, err := f.Client(context.Background(), "https://victim.example/client.json")
			if err == nil {
				t.Fatal("accepted, want the address refused")
			}
			ce := asError(t, err)
			if !errors.Is(err, errBlockedAddress) || ce.Reason != reasonUnreachable {
				t.Errorf("err = %v, want errBlockedAddress with Reason %q", err, reasonUnreachable)
			}
			if res.count() != 1 {
				t.Errorf("resolver asked %d times, want 1", res.count())
			}
		})
	}
}

// CIMD-10: IP-literal hosts get the same check, with no lookup and no
// connection.
func TestClientRefusesInternalLiterals(t *testing.T) {
	for _, id := range []string{
		"https://[::ffff:7f00:1]/x",
		"https://[::ffff:127.0.0.1]:8443/x",
		"https://[::1]/x",
		"https://127.0.0.1/x",
		"https://169.254.169.254/latest/meta-data",
		"https://0.0.0.0/x",
		"https://10.1.2.3/x",
		"https://[fc00::1]/x",
		"https://[::7f00:1]/x",
		"https://[64:ff9b::7f00:1]/x",
	} {
		t.Run(id, func(t *testing.T) {
			res := staticResolver("93.184.215.14")
			f := New(Options{Resolver: res})
			noDial(t, f)
			_, err := f.Client(context.Background(), id)
			if !errors.Is(err, errBlockedAddress) {
				t.Fatalf("err = %v, want errBlockedAddress", err)
			}
			if n := res.count(); n != 0 {
				t.Errorf("resolver asked %d times for an IP literal, want never", n)
			}
		})
	}
}

// CIMD-10 with the real dialer: a document server on loopback is never
// contacted unless its host is allow-listed.
func TestClientLoopbackServerNotContacted(t *testing.T) {
	e := newEnv(t, docHandler, func(o *Options) { o.AllowHosts = nil })
	for _, id := range []string{
		e.url("/client.json"),                            // example.com → 127.0.0.1
		"https://127.0.0.1:" + e.port() + "/client.json", // literal
		"https://[::ffff:127.0.0.1]:" + e.port() + "/client.json",
	} {
		if _, err := e.f.Client(context.Background(), id); !errors.Is(err, errBlockedAddress) {
			t.Errorf("%s: err = %v, want errBlockedAddress", id, err)
		}
	}
	// The server accepts connections in order and counts each before
	// serving it; after one allowed fetch the count shows any earlier one.
	ok := New(Options{AllowHosts: []string{"example.com:" + e.port()}, RootCAs: e.f.opts.RootCAs, Resolver: e.res})
	if _, err := ok.Client(context.Background(), e.url("/client.json")); err != nil {
		t.Fatalf("allow-listed host:port: %v, want the document", err)
	}
	if n := e.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want only the allow-listed one", n)
	}
}

// CIMD-10: the connection goes to the address that was checked. The
// resolver answers a public address first and loopback afterwards (DNS
// rebinding); the fetch asks it once and dials the first answer.
func TestClientDialsTheCheckedAddress(t *testing.T) {
	e := newEnv(t, docHandler, func(o *Options) { o.AllowHosts = nil })
	e.res.answer = func(_ string, call int) ([]net.IPAddr, error) {
		if call == 1 {
			return ipAddrs("93.184.215.14"), nil
		}
		return ipAddrs("127.0.0.1"), nil
	}
	var mu sync.Mutex
	var dialed []netip.AddrPort
	e.f.testDial = func(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, ap)
		mu.Unlock()
		// Stand in for the public host: the test server answers it.
		var d net.Dialer
		return d.DialContext(ctx, "tcp", e.srv.Listener.Addr().String())
	}
	id := e.url("/client.json")
	if _, err := e.f.Client(context.Background(), id); err != nil {
		t.Fatalf("first fetch: %v, want the document", err)
	}
	want := netip.MustParseAddrPort("93.184.215.14:" + e.port())
	if len(dialed) != 1 || dialed[0] != want {
		t.Errorf("dialed %v, want [%v]", dialed, want)
	}
	if n := e.res.count(); n != 1 {
		t.Errorf("resolver asked %d times during one fetch, want 1", n)
	}

	// Once the cache expires, the next fetch resolves again, sees the
	// rebinding answer and refuses it without dialing.
	e.clock.advance(DefaultMaxTTL + time.Second)
	if _, err := e.f.Client(context.Background(), id); !errors.Is(err, errBlockedAddress) {
		t.Errorf("after rebinding: err = %v, want errBlockedAddress", err)
	}
	if len(dialed) != 1 {
		t.Errorf("dialed %v after rebinding, want only the first dial", dialed)
	}
}

// CIMD-10: the dialer's Control hook refuses any remote address that was
// not checked, and internal ones unless the host is allow-listed.
func TestControlRechecksRemoteAddress(t *testing.T) {
	pub := []netip.AddrPort{netip.MustParseAddrPort("93.184.215.14:443")}
	loop := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:443")}
	for _, c := range []struct {
		pinned  []netip.AddrPort
		allowed bool
		addr    string
		ok      bool
	}{
		{pub, false, "93.184.215.14:443", true},
		{pub, false, "[::ffff:93.184.215.14]:443", true},
		{pub, false, "93.184.215.15:443", false}, // not the checked address
		{pub, false, "93.184.215.14:444", false}, // not the checked port
		{pub, false, "127.0.0.1:443", false},
		{loop, false, "127.0.0.1:443", false}, // pinned but internal
		{loop, true, "127.0.0.1:443", true},   // allow-listed host
		{loop, true, "10.0.0.1:443", false},   // allow-listed, but not checked
		{pub, false, "garbage", false},
	} {
		err := control(c.pinned, c.allowed)("tcp4", c.addr, nil)
		if (err == nil) != c.ok {
			t.Errorf("control(%v, allowed=%v)(%s) = %v, want ok=%v", c.pinned, c.allowed, c.addr, err, c.ok)
		}
		if err != nil && !errors.Is(err, errBlockedAddress) {
			t.Errorf("control(%v, allowed=%v)(%s) = %v, want errBlockedAddress", c.pinned, c.allowed, c.addr, err)
		}
	}
}

// A resolver failure is a fetch failure, and not cached.
func TestClientResolverError(t *testing.T) {
	res := &stubResolver{answer: func(string, int) ([]net.IPAddr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "victim.example", IsNotFound: true}
	}}
	f := New(Options{Resolver: res})
	noDial(t, f)
	for range 2 {
		_, err := f.Client(context.Background(), "https://victim.example/client.json")
		if asError(t, err).Reason != reasonUnreachable {
			t.Errorf("err = %v, want Reason %q", err, reasonUnreachable)
		}
	}
	if res.count() != 2 {
		t.Errorf("resolver asked %d times, want 2 (failures are not cached)", res.count())
	}
}
