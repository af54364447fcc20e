package authserver

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
)

// The upstream state binds every step after consent to the browser that
// consented (SEC-1). An approved request travels in a link (the login page
// of a password connector, the provider's page and our callback for the
// others), and a link can be sent to someone else: signing in there would
// give the sender a code for that person's account, and record that
// person's consent. So the state is "random.mac": the store keeps only the
// hash of random, as before (DEP-6), and mac is an HMAC of random under
// the CSRF key and the consenting browser's CSRF cookie. Each step
// recomputes it from the cookie of the browser it runs in; the cookie
// lasts across flows, so one browser may run several at once.

// A flow's kind is bound into its state's MAC, so that the step that
// finishes it knows, unforgeably, how it began.
type flowKind string

const (
	// flowLogin began with a person who allowed before anyone was known
	// here: the login records their consent (SEC-2).
	flowLogin flowKind = "flow"
	// flowRelogin began in a browser logged in through a provider whose
	// grants are rechecked there (RT-3): every grant needs a login of its
	// own at the provider, normally a silent round trip. The consent it
	// stands on was recorded before, for the user logged in then; a login
	// that comes back as another user has not approved the client and is
	// asked to (SEC-2).
	flowRelogin flowKind = "reflow"
	// flowReconsent is a flowRelogin that began with the browser's user
	// allowing on the consent page. Who allowed is known only once the
	// provider says who came back: the consent is recorded then, for that
	// user if they are the one the page named (SEC-75).
	flowReconsent flowKind = "reconsent"
)

// newFlowState returns a new upstream state of kind, bound to the browser
// whose CSRF cookie is secret, and the hash the store keeps.
func (s *Server) newFlowState(secret string, kind flowKind) (state string, hash []byte) {
	random := tokens.NewSecret()
	return random + "." + s.csrfMAC(string(kind), random, secret), tokens.Hash(random)
}

// checkFlow returns the stored hash of state and its kind, "" when state
// is not bound to this browser; the MACs are compared in constant time.
func (s *Server) checkFlow(r *http.Request, issuer, state string) (hash []byte, kind flowKind) {
	random, mac, ok := strings.Cut(state, ".")
	hash = tokens.Hash(random)
	secret, hasCookie := csrfSecret(r, issuer)
	if !ok || !hasCookie {
		return hash, ""
	}
	for _, k := range []flowKind{flowLogin, flowRelogin, flowReconsent, flowPage} {
		if tokens.Equal(mac, s.csrfMAC(string(k), random, secret)) {
			kind = k
		}
	}
	return hash, kind
}

// flowRequest finds, without consuming it, the request of a login step's
// upstream state at connector, and the state's stored hash. When the step
// must not go on it answers itself and returns nil: an unknown or expired
// state gets an error page, and so does another connector's; a state this
// browser did not consent to gets the request's consent page, so that
// whoever opened the link decides for themselves, and allowing there moves
// the flow to their browser (SEC-1). A step that did not arrive the way
// the consent page sends a browser (arrived false) is treated the same,
// whatever its cookie says (SEC-5). It returns the flow's kind too.
func (s *Server) flowRequest(w http.ResponseWriter, r *http.Request, issuer, connector, state string, arrived bool) (*store.AuthRequest, []byte, flowKind) {
	hash, kind := s.checkFlow(r, issuer, state)
	req, err := s.store.GetAuthRequestByUpstreamState(r.Context(), hash, s.now())
	note := noteOf(r.Context())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("upstream: find request", "err", err)
		}
		note.stop("expired", "the sign-in link is unknown, expired (a request lives 10 minutes) or already used: the person must start again from the application")
		web.RenderError(w, s.log, http.StatusBadRequest, "This sign-in request has expired or was already used",
			"Go back to the application and start connecting again.")
		return nil, nil, ""
	}
	note.attemptOf(req.ID, req.ClientID, "")
	note.detail("connector", connector)
	if kind == "" || !arrived {
		note.stop("reconsent", "the sign-in link was opened in a browser that did not consent, or not from the consent page: the consent page was shown there again (SEC-1)")
		s.log.Warn("sign-in link opened in a browser that did not consent, or not from its consent page: asking for consent there",
			"client_id", req.ClientID, "connector", connector, "bound", kind != "")
		s.restartConsent(w, r, issuer, req)
		return nil, nil, ""
	}
	if req.Connector != connector {
		note.stop("refused", "the sign-in came back at provider "+connector+", but started with "+req.Connector+": a link or callback of another provider's sign-in")
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "This sign-in did not start with this provider.")
		return nil, nil, ""
	}
	if (kind == flowPage) != pageRequest(req) {
		// Both are the server's own: never expected, never followed.
		s.log.Error("sign-in state and request disagree on whether it is a page login", "client_id", req.ClientID)
		note.stop("refused", "the sign-in link's state and its request disagree on whether it signs in to the gateway's pages or authorizes a client: never followed")
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "This sign-in link is not valid. Start again.")
		return nil, nil, ""
	}
	return req, hash, kind
}

// fromConsentPage reports whether a login link was reached the way the
// consent page sends a browser to it: by a same-origin redirect (a
// browser that sends Sec-Fetch-Site says same-origin) to a URL that
// carries the state alone. A link clicked in a mail, on another site or on
// a page at another loopback port is not, nor a client's redirect URI
// that names the login page, to which the gateway adds iss. On plain http
// the CSRF cookie that binds the state may have been planted by a page
// at another port (SEC-5), so only the browser's word about where the
// navigation came from tells the consenting browser from a tricked one.
// Callbacks come from the provider's site and cannot be told apart so.
func fromConsentPage(r *http.Request) bool {
	q := r.URL.Query()
	if len(q) != 1 || len(q["state"]) != 1 {
		return false
	}
	f := r.Header.Values("Sec-Fetch-Site")
	return len(f) == 0 || (len(f) == 1 && f[0] == "same-origin")
}

// restartConsent shows this browser the consent page of req, which was
// approved in another browser.
func (s *Server) restartConsent(w http.ResponseWriter, r *http.Request, issuer string, req *store.AuthRequest) {
	if pageRequest(req) {
		// A page login has no consent to ask again: it starts over here.
		web.RenderError(w, s.log, http.StatusForbidden, "This sign-in link was not opened from this browser's sign-in page",
			"Open the page you wanted again to sign in.")
		return
	}
	c := s.requestClient(w, r, req)
	if c == nil {
		return
	}
	s.consentPage(w, r, issuer, c, req, s.session(r, issuer), true)
}

// sendToLogin creates the request's upstream state of kind, bound to this
// browser, only now that the person allowed (DEP-6, DEP-7), and sends the
// browser to log in with con.
func (s *Server) sendToLogin(w http.ResponseWriter, r *http.Request, issuer string, req *store.AuthRequest, con upstream.Connector, kind flowKind) {
	// After the consent post the browser has its CSRF cookie; a
	// remembered consent at /authorize may find none.
	upstreamState, hash := s.newFlowState(browserSecret(w, r, issuer), kind)
	var err error
	if req.UpstreamStateHash == nil {
		err = s.store.AttachUpstreamState(r.Context(), req.ID, con.ID(), hash, s.now())
	} else {
		// Allowed again, in this browser, after the login link was opened
		// here (or the person came back to the consent page): the flow
		// moves to this browser and the earlier link dies (SEC-1).
		err = s.store.ReplaceUpstreamState(r.Context(), req.ID, con.ID(), req.UpstreamStateHash, hash, s.now())
	}
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			s.log.Error("consent: attach upstream state", "err", err)
		}
		web.RenderError(w, s.log, http.StatusBadRequest, "This sign-in request was already used", "Go back to the application and start again.")
		return
	}
	switch c := con.(type) {
	case upstream.PasswordConnector:
		oauth.Redirect(w, "/login/"+url.PathEscape(c.ID()), url.Values{"state": {upstreamState}})
	case upstream.CallbackConnector:
		w.Header().Set("Location", c.LoginURL(upstreamState, callbackURL(issuer, c.ID())))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusFound)
	}
}
