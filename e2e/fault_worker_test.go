package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// The ledger of TestBinaryKill9KeepsAnswers: what each client was answered
// (a complete HTTP response read), and what it sent without reading an
// answer before the gateway died.

// faultApp is a client whose registration was answered 201.
type faultApp struct {
	id, secret, redirect string
}

// auth adds the client's credentials (client_secret_post for a
// confidential client, client_id alone for a public one) to v.
func (a *faultApp) auth(v url.Values) url.Values {
	v.Set("client_id", a.id)
	if a.secret != "" {
		v.Set("client_secret", a.secret)
	}
	return v
}

// faultReg is a registration request, kept when no answer came back.
type faultReg struct {
	name, redirect string
	public         bool
}

// faultCode is an authorization code the client was redirected with.
type faultCode struct {
	app            *faultApp
	code, verifier string
	at             time.Time // when the redirect was read
}

// tokenPair is the part of a token response that is checked.
type tokenPair struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

// In flight at the kill: what a family's last request was, sent and never
// answered.
const (
	inflightNone = iota
	inflightRefresh
	inflightRevoke
)

// faultFamily is one grant: the token pairs answered for it, in order;
// pairs[i+1] is what rotating pairs[i].Refresh answered.
type faultFamily struct {
	app      *faultApp
	user     string
	pairs    []tokenPair
	revoked  bool // a 200 at /revoke, or a replayed code (PKCE-3)
	inflight int  // what the last request, unanswered, was
}

func (f *faultFamily) last() tokenPair { return f.pairs[len(f.pairs)-1] }

// faultAnswer is a complete HTTP response: its status and whole body.
type faultAnswer struct {
	status int
	body   []byte
}

// pair reads a token response.
func (a faultAnswer) pair() (tokenPair, bool) {
	var p tokenPair
	if a.status != http.StatusOK || json.Unmarshal(a.body, &p) != nil || p.Access == "" || p.Refresh == "" {
		return tokenPair{}, false
	}
	return p, true
}

// oauthError is the "error" member of a JSON error body.
func (a faultAnswer) oauthError() string {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(a.body, &e)
	return e.Error
}

func (a faultAnswer) String() string {
	return fmt.Sprintf("%d %.200s", a.status, strings.Join(strings.Fields(string(a.body)), " "))
}

// faultDo sends a request and reads the whole answer. An error means the
// client did not read a complete response: the request was in flight.
func faultDo(ctx context.Context, hc *http.Client, method, u, contentType string, body []byte, bearer string) (faultAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return faultAnswer{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return faultAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return faultAnswer{}, err
	}
	return faultAnswer{resp.StatusCode, b}, nil
}

func faultForm(ctx context.Context, hc *http.Client, u string, v url.Values) (faultAnswer, error) {
	return faultDo(ctx, hc, http.MethodPost, u, "application/x-www-form-urlencoded", []byte(v.Encode()), "")
}

// faultKind is what an answer was to: a kill comes right after an answer
// of one kind, in each round another, so that a bug that answers before
// its commit has a window to be caught in.
type faultKind int

const (
	faultRegistration  faultKind = iota // POST /register
	faultAuthorization                  // the authorization response (the redirect with the code)
	faultToken                          // POST /token: a code redeemed, or a refresh
	faultRevocation                     // POST /revoke
	faultKinds                          // how many
)

func (k faultKind) String() string {
	return [...]string{"registration", "authorization request", "token request", "revocation"}[k]
}

// faultRegsPerRound keeps every worker's registrations together under the
// gateway's limit per address (20 a minute), which a restart resets.
const faultRegsPerRound = 4

// faultWorker is one client of the burst: it registers clients, walks
// authorization flows as its own user, redeems codes, refreshes and
// revokes, one request at a time, so that at most one is in flight when
// the gateway dies. Only its goroutine touches it during a burst; the test
// reads it once the burst is over.
type faultWorker struct {
	n        int
	user     string
	base     string
	hc       *http.Client
	br       *browser.Browser
	rng      *rand.Rand
	answered func(faultKind) // called after each answer read

	apps      []*faultApp
	codes     []*faultCode // answered and not redeemed
	families  []*faultFamily
	lostRegs  []faultReg   // registrations sent, never answered
	lostCodes []*faultCode // redemptions sent, never answered
	problems  []string     // wrong answers during the burst

	seq, regs, step int
}

// faultCycle is the order of a worker's operations; each round starts at
// a random place in it.
var faultCycle = []func(*faultWorker, context.Context) error{
	(*faultWorker).flow, (*faultWorker).refresh, (*faultWorker).refresh, (*faultWorker).flow,
	(*faultWorker).refresh, (*faultWorker).revoke, (*faultWorker).refresh, (*faultWorker).register,
	(*faultWorker).refresh, (*faultWorker).flow,
}

// run works until a request gets no complete answer (the gateway died)
// and returns that error.
func (w *faultWorker) run(ctx context.Context) error {
	w.regs = 0
	w.step = w.rng.IntN(len(faultCycle))
	for {
		op := faultCycle[w.step%len(faultCycle)]
		w.step++
		if len(w.apps) == 0 {
			op = (*faultWorker).register
		}
		if err := op(w, ctx); err != nil {
			return err
		}
	}
}

func (w *faultWorker) problem(format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf("worker %d: ", w.n)+fmt.Sprintf(format, args...))
}

func (w *faultWorker) live() []*faultFamily {
	var out []*faultFamily
	for _, f := range w.families {
		if !f.revoked {
			out = append(out, f)
		}
	}
	return out
}

// register registers a public or a confidential client (DCR).
func (w *faultWorker) register(ctx context.Context) error {
	if w.regs >= faultRegsPerRound && len(w.apps) > 0 {
		return w.flow(ctx)
	}
	w.seq++
	w.regs++
	reg := faultReg{
		name:     fmt.Sprintf("fault w%d n%d", w.n, w.seq),
		redirect: fmt.Sprintf("http://127.0.0.1:33419/cb/w%d/n%d", w.n, w.seq),
		public:   w.rng.IntN(2) == 0,
	}
	method := "client_secret_post"
	if reg.public {
		method = "none"
	}
	body, _ := json.Marshal(map[string]any{"client_name": reg.name, "redirect_uris": []string{reg.redirect},
		"token_endpoint_auth_method": method, "grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"}})
	a, err := faultDo(ctx, w.hc, http.MethodPost, w.base+"/register", "application/json", body, "")
	if err != nil {
		w.lostRegs = append(w.lostRegs, reg)
		return err
	}
	w.answered(faultRegistration)
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	switch {
	case a.status == http.StatusTooManyRequests:
		// Refused, and said so: nothing to check.
	case a.status != http.StatusCreated || json.Unmarshal(a.body, &c) != nil || c.ClientID == "" || (c.ClientSecret == "") != reg.public:
		w.problem("register %s: %v, want 201 with a client_id (and a secret for a confidential client)", reg.name, a)
	default:
		w.apps = append(w.apps, &faultApp{id: c.ClientID, secret: c.ClientSecret, redirect: reg.redirect})
	}
	return nil
}

// flow walks an authorization flow (consent and login the first time,
// silent later: the browser keeps its session and the consent is saved)
// and keeps the code; past two codes waiting, it redeems the oldest.
func (w *faultWorker) flow(ctx context.Context) error {
	app := w.apps[w.rng.IntN(len(w.apps))]
	c := &faultCode{app: app, verifier: tokens.NewSecret()}
	state := tokens.NewID()
	q := url.Values{"response_type": {"code"}, "client_id": {app.id}, "redirect_uri": {app.redirect}, "state": {state},
		"code_challenge": {tokens.S256(c.verifier)}, "code_challenge_method": {"S256"}, "resource": {w.base + "/mcp"}}
	code, gotState, _, err := w.br.Authorize(ctx, w.base+"/authorize?"+q.Encode(), app.redirect)
	var pageErr *browser.PageError
	var authErr *browser.AuthorizationError
	switch {
	case errors.As(err, &pageErr) || errors.As(err, &authErr):
		w.problem("authorization flow of %s: %v, want a code", app.id, err)
		return nil
	case err != nil:
		return err // no answer: the gateway is gone
	}
	w.answered(faultAuthorization)
	if gotState != state {
		w.problem("authorization flow of %s: state %q, want %q", app.id, gotState, state)
		return nil
	}
	c.code, c.at = code, time.Now()
	w.codes = append(w.codes, c)
	if len(w.codes) <= 2 {
		return nil
	}
	oldest := w.codes[0]
	w.codes = w.codes[1:]
	return w.redeem(ctx, oldest)
}

func (w *faultWorker) codeForm(c *faultCode) url.Values {
	return c.app.auth(url.Values{"grant_type": {"authorization_code"}, "code": {c.code}, "redirect_uri": {c.app.redirect},
		"code_verifier": {c.verifier}, "resource": {w.base + "/mcp"}})
}

// redeem exchanges a code for the first pair of a new family.
func (w *faultWorker) redeem(ctx context.Context, c *faultCode) error {
	a, err := faultForm(ctx, w.hc, w.base+"/token", w.codeForm(c))
	if err != nil {
		w.lostCodes = append(w.lostCodes, c)
		return err
	}
	w.answered(faultToken)
	p, ok := a.pair()
	if !ok {
		w.problem("redeem a code of %s: %v, want 200 with an access and a refresh token", c.app.id, a)
		return nil
	}
	w.families = append(w.families, &faultFamily{app: c.app, user: w.user, pairs: []tokenPair{p}})
	return nil
}

// refresh rotates the newest refresh token of a live family.
func (w *faultWorker) refresh(ctx context.Context) error {
	live := w.live()
	if len(live) == 0 {
		return w.flow(ctx)
	}
	f := live[w.rng.IntN(len(live))]
	a, err := faultForm(ctx, w.hc, w.base+"/token", f.app.auth(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {f.last().Refresh}}))
	if err != nil {
		f.inflight = inflightRefresh
		return err
	}
	w.answered(faultToken)
	p, ok := a.pair()
	if !ok {
		w.problem("refresh the newest token of a family of %s: %v, want 200 with a new pair", f.app.id, a)
		return nil
	}
	f.pairs = append(f.pairs, p)
	return nil
}

// revoke ends a live family at /revoke, with its refresh token or its
// newest access token.
func (w *faultWorker) revoke(ctx context.Context) error {
	live := w.live()
	if len(live) < 2 { // keep one family alive to refresh
		return w.flow(ctx)
	}
	f := live[w.rng.IntN(len(live))]
	tok := f.last().Refresh
	if w.rng.IntN(2) == 0 {
		tok = f.last().Access
	}
	a, err := faultForm(ctx, w.hc, w.base+"/revoke", f.app.auth(url.Values{"token": {tok}}))
	if err != nil {
		f.inflight = inflightRevoke
		return err
	}
	w.answered(faultRevocation)
	if a.status != http.StatusOK {
		w.problem("revoke a family of %s: %v, want 200", f.app.id, a)
		return nil
	}
	f.revoked = true
	return nil
}

// newFaultWorker returns worker n, which logs in as local user wn.
func newFaultWorker(n int, pw, base string, seed uint64) *faultWorker {
	user := fmt.Sprintf("w%d", n)
	return &faultWorker{n: n, user: user, base: base, hc: &http.Client{}, br: browser.New(user, pw),
		rng: rand.New(rand.NewPCG(seed, uint64(n)))}
}

// faultUserFlags are the --local-user flags of the workers' users.
func faultUserFlags(workers int, pw string) []string {
	var out []string
	for i := 1; i <= workers; i++ {
		out = append(out, "--local-user", fmt.Sprintf("w%d:%s", i, pw))
	}
	return out
}
