package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to read the clients table: see orphans

	"github.com/mcpgate/mcpgate/internal/tokens"
)

const (
	faultWorkers = 4
	// faultCodeTTL is internal/authserver's codeTTL: a code older than
	// this at its check may have expired, and is not held against the
	// gateway.
	faultCodeTTL = 60 * time.Second
)

// SEC-50: kill -9 of the built binary during a burst of registrations,
// authorization flows, code redemptions, refreshes and revocations from
// concurrent clients, a restart on the same data directory, and every
// answer a client read before the kill still holds. Four rounds, each
// killing right after an answer of another kind (faultKind). The
// restarts but the last keep the longest refresh grace window (5m), so
// that a superseded refresh token must bring back the very pair its
// rotation answered (RT-1); the last turns the window off, so that it must
// end its family instead.
func TestBinaryKill9KeepsAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	dir := t.TempDir()
	port := freePort(t)
	const pw = "fault password 1"
	args := func(grace string) []string {
		return append([]string{"--data-dir", dir, "--refresh-grace", grace}, faultUserFlags(faultWorkers, pw)...)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	p := startBinary(t, port, args("5m")...)
	workers := make([]*faultWorker, faultWorkers)
	for i := range workers {
		workers[i] = newFaultWorker(i+1, pw, p.base, seed)
	}
	check := &faultCheck{t: t, hc: &http.Client{}, base: p.base, db: filepath.Join(dir, "mcpgate.db"), orphanIDs: map[string]bool{}}
	kinds := rng.Perm(int(faultKinds))
	for round, kind := range kinds {
		faultBurst(ctx, t, p, workers, rng, faultKind(kind))
		grace := "5m"
		if round == len(kinds)-1 {
			grace = "off"
		}
		p = startBinary(t, port, args(grace)...)
		check.grace = grace != "off"
		check.all(ctx, workers)
	}
	p.stop(t)
	for _, w := range workers {
		for _, msg := range w.problems {
			t.Error(msg)
		}
	}
	check.summary()
}

// faultBurst runs the workers against p and kills p (SIGKILL) at a random
// moment: right after an answer of the kind given, once they have read a
// random number of answers between them (or 60 more of any kind), not
// after some time, which a slow machine might spend before the burst gets
// going. It returns when every worker has stopped.
func faultBurst(ctx context.Context, t *testing.T, p *process, workers []*faultWorker, rng *rand.Rand, kind faultKind) {
	t.Helper()
	target := int64(20 + rng.IntN(60))
	var answered atomic.Int64
	var once sync.Once
	reached := make(chan struct{})
	var after faultKind // the answer the kill came right after
	afterN := int64(0)
	stopped := make([]time.Time, len(workers))
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		w.answered = func(k faultKind) {
			if n := answered.Add(1); n >= target && (k == kind || n >= target+60) {
				once.Do(func() { after, afterN = k, n; close(reached) })
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.run(ctx)
			stopped[i] = time.Now()
		}()
	}
	allStopped := make(chan struct{})
	go func() { wg.Wait(); close(allStopped) }()
	select {
	case <-reached:
	case <-allStopped:
	case <-time.After(20 * time.Second):
		t.Logf("no kill point within 20 s (%d answers read): killing now", answered.Load())
	}
	killed := time.Now()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	<-allStopped
	if afterN > 0 {
		t.Logf("killed right after answer %d (%v)", afterN, after)
	}
	for i, at := range stopped {
		if at.Before(killed) {
			t.Errorf("worker %d stopped before the kill: %v", i+1, errs[i])
		}
	}
}

// faultCheck holds a restarted gateway to what its predecessors answered.
type faultCheck struct {
	t     *testing.T
	hc    *http.Client
	base  string
	db    string
	grace bool // the restarted gateway's refresh grace window is on (5m)

	// What was checked, over every round.
	apps, codes, expired, superseded, newest, revoked, reused, inflight, lostRegs int
	orphanIDs                                                                     map[string]bool
}

func (c *faultCheck) all(ctx context.Context, workers []*faultWorker) {
	for _, w := range workers { // first: a code lives a minute
		c.redeemCodes(ctx, w)
	}
	for _, w := range workers {
		for i, f := range w.families {
			c.family(ctx, f, i == len(w.families)-1)
		}
	}
	for _, w := range workers {
		for _, a := range w.apps {
			c.app(ctx, a)
		}
	}
	c.orphans(ctx, workers)
	c.lostRegs = 0
	for _, w := range workers {
		c.lostRegs += len(w.lostRegs)
	}
	// The probe of c.app can fail: an unknown client is refused.
	if a := c.form(ctx, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {"fault-unknown"}}); a.status != http.StatusUnauthorized {
		c.t.Errorf("token request of an unknown client: %v, want 401", a)
	}
}

func (c *faultCheck) form(ctx context.Context, path string, v url.Values) faultAnswer {
	c.t.Helper()
	a, err := faultForm(ctx, c.hc, c.base+path, v)
	if err != nil {
		c.t.Fatalf("POST %s after the restart: %v", path, err)
	}
	return a
}

func (c *faultCheck) refresh(ctx context.Context, f *faultFamily, rt string) faultAnswer {
	return c.form(ctx, "/token", f.app.auth(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}))
}

// mcp is the status of an MCP initialize at /mcp with the access token.
func (c *faultCheck) mcp(ctx context.Context, access string) int {
	c.t.Helper()
	a, err := faultDo(ctx, c.hc, http.MethodPost, c.base+"/mcp", "application/json",
		[]byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fault-e2e","version":"1"}}}`), access)
	if err != nil {
		c.t.Fatalf("POST /mcp after the restart: %v", err)
	}
	return a.status
}

// redeemCodes redeems every code answered before the kill: each works
// exactly once. A code whose redemption was in flight worked then or
// works now: either way it is whole.
func (c *faultCheck) redeemCodes(ctx context.Context, w *faultWorker) {
	for i, code := range w.codes {
		a := c.form(ctx, "/token", w.codeForm(code))
		p, ok := a.pair()
		if !ok {
			if age := time.Since(code.at); age > faultCodeTTL-5*time.Second {
				c.t.Logf("a code answered %v before its check may have expired (%v): not checked", age.Round(time.Millisecond), a)
				c.expired++
				continue
			}
			c.t.Errorf("SEC-50: a code answered before the kill, redeemed after the restart: %v, want 200 with tokens", a)
			continue
		}
		c.codes++
		f := &faultFamily{app: code.app, user: w.user, pairs: []tokenPair{p}}
		w.families = append(w.families, f)
		if i%2 == 0 {
			// Exactly once: again, it is refused, and its grant ends (PKCE-3).
			if a := c.form(ctx, "/token", w.codeForm(code)); a.status != http.StatusBadRequest || a.oauthError() != "invalid_grant" {
				c.t.Errorf("PKCE-3: a code redeemed a second time after the restart: %v, want 400 invalid_grant", a)
			}
			f.revoked = true
		}
	}
	w.codes = nil
	for _, code := range w.lostCodes {
		a := c.form(ctx, "/token", w.codeForm(code))
		c.inflight++
		if p, ok := a.pair(); ok {
			w.families = append(w.families, &faultFamily{app: code.app, user: w.user, pairs: []tokenPair{p}})
		} else if a.status != http.StatusBadRequest || a.oauthError() != "invalid_grant" {
			c.t.Errorf("SEC-50: a code whose redemption was in flight at the kill: %v, want 200 with tokens, or 400 invalid_grant (redeemed before the kill)", a)
		}
	}
	w.lostCodes = nil
}

// family holds a grant to what was answered for it: revoked stays revoked;
// the newest refresh token refreshes; a superseded one brings back its
// successor (grace on) or ends the family (grace off); and, when probe is
// set, the newest access token is accepted at /mcp.
func (c *faultCheck) family(ctx context.Context, f *faultFamily, probe bool) {
	last := f.last()
	switch {
	case f.revoked:
		c.wantRevoked(ctx, f, last, "revoked before the kill")
		c.revoked++
		return
	case f.inflight == inflightRevoke:
		c.revokeInFlight(ctx, f)
		return
	}
	if c.grace {
		c.supersededGrace(ctx, f)
	}
	wasInflight := f.inflight == inflightRefresh
	f.inflight = inflightNone
	a := c.refresh(ctx, f, last.Refresh)
	p, ok := a.pair()
	switch {
	case ok:
		f.pairs = append(f.pairs, p)
		c.newest++
	case wasInflight && !c.grace && a.status == http.StatusBadRequest:
		// The rotation in flight committed and its answer was lost: with no
		// grace window the retry is a reuse, and ends the family (RT-1).
		c.inflight++
		f.revoked = true
		c.wantRevoked(ctx, f, last, "reused after a rotation in flight at the kill")
		return
	default:
		c.t.Errorf("SEC-50: the newest refresh token answered before the kill: %v, want 200 with a new pair", a)
		return
	}
	if wasInflight {
		// What just came back may be the pair the rotation in flight issued
		// and never delivered (grace on): it is whole, its token refreshes.
		c.inflight++
		a := c.refresh(ctx, f, f.last().Refresh)
		if p, ok := a.pair(); ok {
			f.pairs = append(f.pairs, p)
		} else {
			c.t.Errorf("SEC-50: the pair of a rotation in flight at the kill does not refresh: %v, want 200", a)
		}
	}
	if !c.grace {
		c.supersededNoGrace(ctx, f)
		return
	}
	if probe {
		if m := c.mcp(ctx, f.last().Access); m != http.StatusOK {
			c.t.Errorf("the newest access token of a live grant at /mcp after the restart: %d, want 200", m)
		}
	}
}

// supersededGrace: within the grace window, a superseded refresh token
// gets the very pair its rotation answered (RT-1), and changes nothing.
// The last three are tried.
func (c *faultCheck) supersededGrace(ctx context.Context, f *faultFamily) {
	for i := max(0, len(f.pairs)-4); i < len(f.pairs)-1; i++ {
		a := c.refresh(ctx, f, f.pairs[i].Refresh)
		if p, ok := a.pair(); !ok || p != f.pairs[i+1] {
			c.t.Errorf("SEC-50, RT-1: a refresh token superseded before the kill, presented within the grace window: %v, want 200 with the pair its rotation answered", a)
			return
		}
		c.superseded++
	}
}

// supersededNoGrace: with no grace window, the token just superseded,
// presented again, is a reuse: refused, and its family ends (RT-1).
func (c *faultCheck) supersededNoGrace(ctx context.Context, f *faultFamily) {
	if a := c.refresh(ctx, f, f.pairs[len(f.pairs)-2].Refresh); a.status != http.StatusBadRequest || a.oauthError() != "invalid_grant" {
		c.t.Errorf("RT-1: a superseded refresh token with no grace window: %v, want 400 invalid_grant", a)
	}
	f.revoked = true
	c.wantRevoked(ctx, f, f.last(), "ended by a reused refresh token")
	c.reused++
}

// revokeInFlight: a revocation in flight at the kill happened or did not,
// but not by half: the refresh token and the access token agree.
func (c *faultCheck) revokeInFlight(ctx context.Context, f *faultFamily) {
	c.inflight++
	f.inflight = inflightNone
	last := f.last()
	m := c.mcp(ctx, last.Access)
	a := c.refresh(ctx, f, last.Refresh)
	p, ok := a.pair()
	switch {
	case ok && m == http.StatusOK:
		f.pairs = append(f.pairs, p)
	case a.status == http.StatusBadRequest && m == http.StatusUnauthorized:
		f.revoked = true
	default:
		c.t.Errorf("SEC-50: a grant whose revocation was in flight at the kill: refresh %v, access token at /mcp %d; want both to work or both refused", a, m)
	}
}

func (c *faultCheck) wantRevoked(ctx context.Context, f *faultFamily, last tokenPair, why string) {
	c.t.Helper()
	if a := c.refresh(ctx, f, last.Refresh); a.status != http.StatusBadRequest || a.oauthError() != "invalid_grant" {
		c.t.Errorf("SEC-50: the refresh token of a grant %s, after the restart: %v, want 400 invalid_grant", why, a)
	}
	if m := c.mcp(ctx, last.Access); m != http.StatusUnauthorized {
		c.t.Errorf("SEC-50: an access token of a grant %s, at /mcp after the restart: %d, want 401", why, m)
	}
}

// app: a registration answered 201 is still there: the client
// authenticates at /token, where a made-up code is then refused as a code
// (invalid_grant), not the client (invalid_client).
func (c *faultCheck) app(ctx context.Context, app *faultApp) {
	probe := func(a *faultApp) faultAnswer {
		return c.form(ctx, "/token", a.auth(url.Values{"grant_type": {"authorization_code"}, "code": {"fault-probe"},
			"redirect_uri": {a.redirect}, "code_verifier": {tokens.NewSecret()}}))
	}
	if a := probe(app); a.status != http.StatusBadRequest || a.oauthError() != "invalid_grant" {
		c.t.Errorf("SEC-50: a client registered before the kill, at /token after the restart: %v, want 400 invalid_grant", a)
	}
	if app.secret != "" {
		wrong := *app
		wrong.secret = tokens.NewSecret()
		if a := probe(&wrong); a.status != http.StatusUnauthorized || a.oauthError() != "invalid_client" {
			c.t.Errorf("a registered confidential client with a wrong secret: %v, want 401 invalid_client", a)
		}
	}
	c.apps++
}

// orphans checks the clients stored that no client was told of: each must
// come from a registration in flight at a kill, and be whole (what that
// request sent; a public one authenticates at /token). The id of such a
// client was never answered, so the database is where to find it.
func (c *faultCheck) orphans(ctx context.Context, workers []*faultWorker) {
	db, err := sql.Open("sqlite", "file:"+c.db+"?mode=ro")
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	answered := map[string]bool{}
	lost := map[string]faultReg{}
	for _, w := range workers {
		for _, a := range w.apps {
			answered[a.id] = true
		}
		for _, r := range w.lostRegs {
			lost[r.name] = r
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT id, name, redirect_uris, token_endpoint_auth_method, secret_hash IS NOT NULL FROM clients`)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	var whole []*faultApp // stored clients of registrations in flight
	for rows.Next() {
		var id, name, redirects, method string
		var hasSecret bool
		if err := rows.Scan(&id, &name, &redirects, &method, &hasSecret); err != nil {
			c.t.Fatal(err)
		}
		if answered[id] {
			continue
		}
		var uris []string
		json.Unmarshal([]byte(redirects), &uris)
		r, ok := lost[name]
		switch {
		case !ok:
			c.t.Errorf("SEC-50: client %q is stored, but no registration of that name was in flight at a kill", name)
		case !slices.Equal(uris, []string{r.redirect}) || (method == "none") != r.public || hasSecret == r.public:
			c.t.Errorf("SEC-50: client %q, registered in flight at a kill, is stored half: redirect URIs %q, method %s, secret %v", name, uris, method, hasSecret)
		default:
			c.orphanIDs[id] = true
			if r.public { // its secret, if any, reached no one
				whole = append(whole, &faultApp{id: id, redirect: r.redirect})
			}
		}
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	rows.Close()
	for _, a := range whole {
		c.app(ctx, a)
	}
}

// summary fails a run that left some kind of answer unchecked: it would
// prove nothing about it.
func (c *faultCheck) summary() {
	c.t.Logf("checks after the restarts: %d registrations, %d codes (%d expired), %d superseded and %d newest refresh tokens, %d revoked grants, %d reuses with no grace, %d other requests in flight, %d registrations in flight (%d of them stored)",
		c.apps, c.codes, c.expired, c.superseded, c.newest, c.revoked, c.reused, c.inflight, c.lostRegs, len(c.orphanIDs))
	for _, k := range []struct {
		n    int
		what string
	}{{c.apps, "registration"}, {c.codes, "code"}, {c.superseded, "superseded refresh token"}, {c.newest, "newest refresh token"}, {c.revoked, "revoked grant"}, {c.reused, "reuse with no grace window"}} {
		if k.n == 0 {
			c.t.Errorf("no %s was checked after a restart: the bursts answered none", k.what)
		}
	}
}
