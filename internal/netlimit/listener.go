package netlimit

import (
	"container/list"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Options are a Listener's caps; zero leaves one off.
type Options struct {
	Max        int // connections open at once
	PerAddress int // connections open at once from one client address
	// WriteStall bounds how long one write to a client may wait for it to
	// take bytes (DefaultWriteStall when 0): a client that stops reading
	// holds its connection, served and so never closed for another, only
	// this long (SEC-139).
	WriteStall time.Duration
	// Logger gets a warning, at most once a minute, with the connections
	// refused and evicted since the last one.
	Logger *slog.Logger
}

// Listener is a net.Listener that caps its open connections (see the
// package documentation for what happens at a cap). Serve it with
// http.Server.ConnContext set to ConnContext and the handler wrapped in
// Handler, which tell it which connections are being served.
type Listener struct {
	net.Listener
	opts Options

	mu      sync.Mutex
	conns   list.List // of *conn, oldest first
	perAddr map[netip.Addr]int
	report  report
}

// NewListener wraps ln.
func NewListener(ln net.Listener, opts Options) *Listener {
	if opts.WriteStall <= 0 {
		opts.WriteStall = DefaultWriteStall
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: ln, opts: opts, perAddr: map[netip.Addr]int{}}
}

// Accept returns the next connection within the caps; connections over
// them are closed here and never returned.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := l.admit(c); tc != nil {
			return tc, nil
		}
	}
}

// admit tracks c, making room for it at the overall cap, or closes it
// and returns nil.
func (l *Listener) admit(c net.Conn) net.Conn {
	addr := clientKey(c.RemoteAddr())
	l.mu.Lock()
	victim, ok := l.makeRoom(addr)
	var tc *conn
	if ok {
		tc = &conn{Conn: c, l: l, addr: addr}
		tc.elem = l.conns.PushBack(tc)
		l.perAddr[addr]++
	}
	l.logLocked()
	l.mu.Unlock()
	if victim != nil {
		victim.Conn.Close()
	}
	if !ok {
		c.Close()
		return nil
	}
	return tc
}

// makeRoom decides whether a new connection from addr may open: ok, maybe
// once victim is closed, or not. l.mu is held.
func (l *Listener) makeRoom(addr netip.Addr) (victim *conn, ok bool) {
	switch {
	case l.opts.PerAddress > 0 && l.perAddr[addr] >= l.opts.PerAddress:
		l.report.refused++
		l.report.why = "max_connections_per_address"
		return nil, false
	case l.opts.Max > 0 && l.conns.Len() >= l.opts.Max:
		if victim = l.oldestUnserved(); victim == nil {
			l.report.refused++
			l.report.why = "max_connections, every connection being served"
			return nil, false
		}
		l.forget(victim)
		l.report.evicted++
		l.report.why = "max_connections"
	}
	return victim, true
}

// oldestUnserved is the oldest connection that is not between a request
// read whole and its response's end.
func (l *Listener) oldestUnserved() *conn {
	for e := l.conns.Front(); e != nil; e = e.Next() {
		if c := e.Value.(*conn); c.serving.Load() == 0 {
			return c
		}
	}
	return nil
}

// forget stops counting c; l.mu is held.
func (l *Listener) forget(c *conn) {
	if c.elem == nil {
		return
	}
	l.conns.Remove(c.elem)
	c.elem = nil
	if l.perAddr[c.addr]--; l.perAddr[c.addr] <= 0 {
		delete(l.perAddr, c.addr)
	}
}

// Open returns the number of connections open.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns.Len()
}

// report counts what the caps did since the last warning: a flood of
// connections must not become a flood of log lines.
type report struct {
	refused, evicted int
	why              string
	last             time.Time
}

// logLocked warns of refusals and evictions at most once a minute;
// l.mu is held.
func (l *Listener) logLocked() {
	r := &l.report
	if r.refused+r.evicted == 0 || time.Since(r.last) < time.Minute {
		return
	}
	l.opts.Logger.Warn("connections refused or closed at the connection caps",
		"refused", r.refused, "evicted", r.evicted, "last_reason", r.why,
		"open", l.conns.Len(), "max_connections", l.opts.Max, "max_connections_per_address", l.opts.PerAddress)
	*r = report{last: time.Now()}
}

// clientKey is the address a per-address cap counts: the peer's IP, an
// IPv6 one by its /64.
func clientKey(a net.Addr) netip.Addr {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	default:
		ap, _ := netip.ParseAddrPort(a.String())
		ip = ap.Addr()
	}
	return Client(ip)
}

// Client is what counts as one client of address ip: an IPv4 address
// (also one mapped into IPv6), or the /64 of an IPv6 one, which one host
// usually holds whole and may spend address by address. Every limit per
// client address counts this, so that none is escaped by another address
// of the same /64.
func Client(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// conn is a tracked connection.
type conn struct {
	net.Conn
	l    *Listener
	addr netip.Addr
	elem *list.Element // nil once forgotten; under l.mu
	// serving counts requests read whole whose responses are not done:
	// at most one on HTTP/1.1.
	serving atomic.Int32
	once    sync.Once
}

// DefaultWriteStall is Options.WriteStall's default: a client must take
// a writePiece of its answer in that time, 2 KB/s.
const DefaultWriteStall = 30 * time.Second

// writePiece is how much of one Write must reach the client within
// WriteStall: a large write (a tool's answer of many MB, written at once)
// gets the time again for each piece, so that a slow client that keeps
// reading is never cut, only one that stops.
const writePiece = 64 << 10

// Write writes to the client, giving up once it has taken nothing for
// WriteStall: net/http's server sets no write deadline of its own (an
// event stream may last hours), so without one a client that never reads
// its answer keeps its connection served for good, and enough of them
// fill the cap with connections nothing may close (SEC-139).
func (c *conn) Write(p []byte) (n int, err error) {
	for len(p) > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.l.opts.WriteStall)); err != nil {
			return n, err
		}
		m, err := c.Conn.Write(p[:min(len(p), writePiece)])
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.forget(c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite half-closes c, as net/http does before closing a connection
// whose client may still be sending: the client reads the answer, then
// the end of the stream, rather than a reset.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type connKey struct{}

// ConnContext is http.Server.ConnContext for a server on a Listener: it
// lets Handler find the connection of a request.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*conn); ok {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}
