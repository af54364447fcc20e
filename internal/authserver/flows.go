package authserver

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/cimd"
	"github.com/mcpgate/mcpgate/internal/flows"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// flowNote is what the handlers of a step tell the flow debugger
// (Options.Flows) about it, beyond what the answer says: the attempt, the
// client and user, the parameters that are not secret, and why it
// stopped, in an operator's words. The step's wrapper (counted) records
// it once the handler returns. Every method works on a nil *flowNote,
// which is what handlers get when the debugger is off.
type flowNote struct {
	step     string // overrides the endpoint's step
	attempt  string
	clientID string
	userID   string
	outcome  string // overrides the answer's outcome
	reason   string
	details  map[string]string
}

type flowNoteKey struct{}

// noteOf is the flow note of the step ctx belongs to; nil when none.
func noteOf(ctx context.Context) *flowNote {
	n, _ := ctx.Value(flowNoteKey{}).(*flowNote)
	return n
}

// attemptOf sets the attempt, the client and, when known, the user.
func (n *flowNote) attemptOf(attempt, clientID, userID string) {
	if n == nil {
		return
	}
	n.attempt, n.clientID = attempt, clientID
	if userID != "" {
		n.userID = userID
	}
}

func (n *flowNote) client(id string) {
	if n != nil {
		n.clientID = id
	}
}

func (n *flowNote) user(id string) {
	if n != nil && id != "" {
		n.userID = id
	}
}

// stop says how and why the step stopped. outcome "" keeps the one the
// answer gives (the OAuth error code).
func (n *flowNote) stop(outcome, reason string) {
	if n != nil {
		n.outcome, n.reason = outcome, reason
	}
}

// asStep records the step under another name (a metadata document's
// fetch, met at /authorize or /token).
func (n *flowNote) asStep(step string) {
	if n != nil {
		n.step = step
	}
}

func (n *flowNote) detail(k, v string) {
	if n == nil || v == "" {
		return
	}
	if n.details == nil {
		n.details = map[string]string{}
	}
	n.details[k] = v
}

// params copies the named parameters of q that are not secret; the
// recorder keeps only flows.DetailKeys whatever is passed (SEC-113).
func (n *flowNote) params(q url.Values, names ...string) {
	if n == nil {
		return
	}
	for _, k := range names {
		n.detail(k, q.Get(k))
	}
}

// pkce records the PKCE method an /authorize request asked for, never the
// challenge.
func (n *flowNote) pkce(q url.Values) {
	switch {
	case q.Get("code_challenge") == "":
		n.detail("pkce", "missing")
	case q.Get("code_challenge_method") == "":
		n.detail("pkce", "plain (no method)")
	default:
		n.detail("pkce", q.Get("code_challenge_method"))
	}
}

// record hands the step to the flow debugger once its handler returned.
func (s *Server) record(r *http.Request, n *flowNote, step string, sw *stepWriter) {
	if n.step != "" {
		step = n.step
	}
	outcome := n.outcome
	if outcome == "" {
		outcome = sw.outcome()
	}
	reason := n.reason
	if reason == "" && outcome != flows.OutcomeOK {
		reason = sw.description
	}
	if outcome == flows.OutcomeOK {
		reason = ""
	}
	e := flows.Event{Time: s.now(), Attempt: n.attempt, ClientID: n.clientID, UserID: n.userID,
		Step: step, Outcome: outcome, Reason: reason, Details: n.details}
	// A step no signed-in person vouches for can be sent by anyone, as
	// fast as they like: it is recorded up to a rate per address
	// (SEC-119), junk (no request or grant) and the start of an attempt
	// (a request no one has signed in to yet) in buckets of their own, so
	// that a flood of the one does not hide the other. The steps of an
	// attempt a person signed in to, what went through and, apart, what
	// failed (a client's retry loop when it comes again and again), are
	// its person's doing: up to the rate per person, never per attempt,
	// as signing in again makes a new attempt, so that one person's loop
	// cannot push everyone else's attempts out (SEC-127).
	switch {
	case e.Attempt == "":
		e.Attempt = tokens.NewID()
		s.opts.Flows.RecordLimited("junk from "+s.clientAddr(r), e)
	case e.UserID == "":
		s.opts.Flows.RecordLimited("attempts from "+s.clientAddr(r), e)
	default:
		s.opts.Flows.RecordSignedIn(e.UserID, e)
	}
}

// flowStep is the flow debugger's name of a step: the token endpoint's
// by its grant type.
func flowStep(step string, r *http.Request) string {
	if step != stepToken {
		return step
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		return flows.StepTokenCode
	case "refresh_token":
		return flows.StepTokenRefresh
	}
	return flows.StepToken
}

// listed is a list of URIs for a reason.
func listed(uris []string) string {
	if len(uris) == 0 {
		return "none"
	}
	return strings.Join(uris, ", ")
}

// The reasons below are the flow debugger's words for an operator: what
// stopped the attempt, and what would fix it. They quote only what a
// client registered or named, never a secret (SEC-113, SEC-117).

func unknownClientReason(clientID string) string {
	return "client_id " + clientID + " is not registered here: the registration was lost (a store reset, a removal with " +
		"mcpgate clients remove, or housekeeping after long disuse) or was made at another server; the application must " +
		"register again (remove the server from it and add it back)"
}

// redirectReason says why the redirect_uri of q matches none of the
// client's.
func redirectReason(q url.Values, registered []string) string {
	switch got := q["redirect_uri"]; {
	case len(got) > 1:
		return "redirect_uri appears more than once; registered: " + listed(registered)
	case len(got) == 0 || got[0] == "":
		return "redirect_uri is missing and the client registered several, so none can be assumed; registered: " + listed(registered)
	default:
		return "redirect_uri " + got[0] + " is not registered for this client; registered: " + listed(registered)
	}
}

// documentRefused records why a client's metadata document was refused,
// as a step of its own: for the operator the cause too (which address
// refused, which status answered), which the page shown to the person
// leaves out (CIMD-9).
func (n *flowNote) documentRefused(url string, e *cimd.Error) {
	if n == nil {
		return
	}
	n.asStep(flows.StepMetadataDocument)
	n.detail("metadata_document", url)
	reason := "the metadata document at " + url + " was refused: " + e.Reason
	if e.Cause != nil {
		reason += " (" + e.Cause.Error() + ")"
	}
	n.stop(oauth.InvalidClient, reason)
}

func (s *Server) servedResources(issuer string) []string {
	out := make([]string, 0, len(s.opts.Resources))
	for _, res := range s.opts.Resources {
		out = append(out, issuer+res.Path)
	}
	return out
}

// refusalReason says which access rule kept user out.
func refusalReason(user identity.User, rule, resource string) string {
	if rule == "access" {
		return "user " + user.ID + " is refused by the access rules (access): not a listed user, email domain or group"
	}
	if strings.HasPrefix(rule, "max_groups") {
		return "user " + user.ID + " is refused: " + rule
	}
	return "user " + user.ID + " is refused by the access rules of " + resource + " (" + rule + "): not a listed user, email domain or group"
}

// codeMismatch says which bindings of a code its redemption failed, and
// whether the code is spent: it is not when the verifier was wrong
// (SEC-176), and the client holding it may still redeem it.
func codeMismatch(c *store.Code, clientID string, b codeBindings) string {
	var why []string
	if !b.client {
		why = append(why, "the code was issued to client "+c.ClientID+", not "+clientID)
	}
	if !b.redirect {
		why = append(why, "redirect_uri "+b.redirectURI+" differs from the one sent to /authorize, "+c.RedirectURI)
	}
	if !b.pkce {
		why = append(why, "PKCE code_verifier does not match the code_challenge sent to /authorize")
	}
	if !b.resource {
		why = append(why, "resource "+b.resourceURI+" differs from the one authorized, "+c.Resource)
	}
	if !b.pkce {
		return strings.Join(why, "; ") + "; the code is left unused, for the client that holds its verifier (SEC-176)"
	}
	return strings.Join(why, "; ") + "; the code is spent: the client must start again"
}
