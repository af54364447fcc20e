// Package netlimit caps the connections a server holds open, overall and
// per client address (SEC-41), so that clients that open connections and
// hold them cannot crowd out the others.
//
// # Connection caps
//
// Listener caps the connections open at once, overall and per client
// address (an IPv6 client by its /64, which one host usually holds
// whole). The address is the TCP peer's: behind a reverse proxy every
// connection is the proxy's, so the per-address cap there caps the proxy
// and must be raised or turned off.
//
// At the per-address cap a new connection is closed at once: the address
// over its share is the one refused, and no other address notices. At the
// overall cap (many addresses, or a low file limit) the oldest connection
// that is not in the middle of being served is closed to make room: one
// still sending its request, or idle between requests. A connection whose
// request has been read whole and whose response is under way (a logged-in
// user's tool call or event stream) is never closed for another; when
// every connection is such, the new one is closed instead. This favours
// the clients that send requests promptly over those that hold
// connections open, which is what a slow-client attack does, and it keeps
// the gateway accepting: waiting at the cap would leave new connections,
// /healthz among them, in the kernel's queue behind the attacker's.
//
// # Which connections are being served
//
// Handler tells the Listener which connections are being served. It marks
// a request as read whole where net/http itself does (when it starts its
// background read to notice a client hanging up): when the body reaches
// EOF, or at once for a request without one. How long a client may take
// to get there is the server's ReadTimeout, which net/http lifts at that
// same moment; Handler sets no deadline itself (a read deadline set from a
// handler once the request has been read fails that background read when
// it passes, which cancels the request's context: an event stream would
// end there).
package netlimit
