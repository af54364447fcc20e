package flows

import (
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream/local"
)

// Event is one step of an attempt (see store.FlowEvent).
type Event = store.FlowEvent

// The steps of an attempt, in the order a client meets them.
const (
	StepRegister         = "register"          // POST /register
	StepMetadataDocument = "metadata_document" // a Client ID Metadata Document fetched at /authorize or /token
	StepAuthorize        = "authorize"
	StepConsent          = "consent"
	StepLogin            = "login"    // a password login
	StepCallback         = "callback" // an identity provider's redirect back
	StepTokenCode        = "token_code"
	StepTokenRefresh     = "token_refresh"
	StepToken            = "token" // a token request of another or no grant type
	StepRevoke           = "revoke"
	StepResource         = "resource" // an access token refused at an MCP endpoint
)

// OutcomeOK is the outcome of a step that went through.
const OutcomeOK = "ok"

// Bounds of what is kept.
const (
	// Retention is how long the store keeps an event.
	Retention = 24 * time.Hour
	// MaxEvents is how many events the store keeps at most, the latest.
	MaxEvents = 100_000
	// MaxField is the longest string an event keeps, in bytes; a longer
	// one is cut at a rune boundary and ends with "…".
	MaxField = 512
)

// Steps that anyone can repeat as fast as they like are recorded per key
// at most KeyBurst at once and then one every KeyEvery (Recorder.
// RecordLimited): a step of no known authorization request or grant (a
// registration, /authorize or /token naming an unknown client, a junk
// code, an expired sign-in link) per client address, and a step of an
// attempt nobody has signed in to yet per address too. Without a bound
// one caller could fill the store's MaxEvents between two housekeeping
// runs and push every real attempt out (SEC-119). At most MaxKeys keys
// are tracked at once. The steps of an attempt after a sign-in, and a
// token refused at an MCP endpoint (which a client that does not read the
// 401 sends again and again), are recorded per person instead, at the
// same rate (Recorder.RecordSignedIn, SEC-127; Recorder.RecordRefusedToken,
// SEC-207).
const (
	KeyBurst = 120
	KeyEvery = 5 * time.Second
	MaxKeys  = 10_000
)

// DetailKeys are the only details an event keeps: parameters of a step
// that are never secret (SEC-113). A code, a code_verifier or
// code_challenge, a token, a client_secret, a state, a password or a
// cookie has no key here, so a caller that passes one loses it.
var DetailKeys = map[string]bool{
	"redirect_uri":       true, // as the request named it
	"redirect_uris":      true, // as a registration or a metadata document named them
	"resource":           true,
	"scope":              true,
	"pkce":               true, // the code_challenge_method, or "missing"
	"prompt":             true,
	"response_type":      true,
	"grant_type":         true,
	"client_name":        true,
	"connector":          true, // the identity provider chosen
	"metadata_document":  true, // the URL of a client's metadata document
	"token_type_hint":    true,
	"resource_requested": true, // the resource a refused token was presented at
}

// clean makes e fit for the store: details outside DetailKeys dropped,
// every string copied and cut to MaxField, the time set if missing.
func clean(e Event, now time.Time) Event {
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Attempt, e.ClientID, e.UserID = cut(e.Attempt), cut(e.ClientID), cut(e.UserID)
	e.Step, e.Outcome, e.Reason = cut(e.Step), cut(e.Outcome), cut(e.Reason)
	var d map[string]string
	for k, v := range e.Details {
		if DetailKeys[k] && v != "" {
			if d == nil {
				d = make(map[string]string, len(e.Details))
			}
			d[k] = cut(v)
		}
	}
	e.Details = d
	return e
}

// cut copies s, so that an event never keeps alive the request it was
// taken from (a form value may be a slice of a whole request body).
func cut(s string) string {
	if len(s) <= MaxField {
		return strings.Clone(s)
	}
	return safetext.Clip(s, MaxField-len("…"))
}

// UserFilter is the user ID a search for user means: the name of a local
// account ("alice") stands for its user ID ("local:alice"), as people know
// their accounts by name; an ID with its provider is taken as it is.
func UserFilter(user string) string {
	if user != "" && !strings.Contains(user, ":") {
		return local.ID + ":" + user
	}
	return user
}
