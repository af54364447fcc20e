package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/mcpgate/mcpgate/identity"
)

// ErrInvalidCredentials is what a PasswordConnector returns for a wrong
// username or password. The login form shows one generic message for it.
var ErrInvalidCredentials = errors.New("upstream: invalid username or password")

// ErrThrottled is what a PasswordConnector returns, wrapping
// ErrInvalidCredentials, while a username is locked after repeated failed
// logins, without looking at the password. The login form then says to
// wait: that tells nothing of whether the name is an account, since every
// name typed is locked alike.
var ErrThrottled = fmt.Errorf("upstream: too many failed logins, try again later: %w", ErrInvalidCredentials)

// LogName is what a log may say about a name typed into a login form's
// username field: the name itself only when the connector found an account
// by it (known), otherwise a placeholder, because people do type their
// password there (SEC-4). Whoever cannot tell passes known false.
func LogName(typed string, known bool) string {
	if known {
		return typed
	}
	return "(withheld)"
}

// ValidID reports whether id may name a connector: it is a path segment
// of its callback URL and the prefix of its users' IDs, so nothing that
// needs escaping and no ":" (user IDs split at the first one): lowercase
// letters, digits and "-", at most 63, starting with a letter or digit.
// Two connectors "corp" and "corp:eng" would give "corp:eng:1" to two
// people (SEC-190).
func ValidID(id string) bool { return validID.MatchString(id) }

var validID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Connector is an identity provider. ID names it in URLs and user IDs
// ("local", "github"), as ValidID allows; DisplayName is shown on buttons.
type Connector interface {
	ID() string
	DisplayName() string
}

// PasswordConnector checks credentials typed into mcpgate's login form.
type PasswordConnector interface {
	Connector
	Login(ctx context.Context, username, password string) (identity.User, error)
}

// KnownDeviceConnector is a PasswordConnector that throttles failed logins
// per username and tells apart a browser that signed in as the username
// before (SEC-125): failures typed into other browsers, anyone's, lock the
// name there, never in that browser, whose own failures are throttled on a
// budget of their own. Without it, anyone could keep a person out of every
// browser by failing logins under their name.
type KnownDeviceConnector interface {
	PasswordConnector
	// LoginKnownDevice is Login from the browser device, which the caller
	// verified has signed in as username before.
	LoginKnownDevice(ctx context.Context, username, password, device string) (identity.User, error)
}

// CallbackConnector logs people in at the provider's own site.
type CallbackConnector interface {
	Connector
	// LoginURL is where to send the browser. state must come back unchanged
	// at callbackURL.
	LoginURL(state, callbackURL string) string
	// HandleCallback completes the login from the request that arrived at
	// callbackURL (after mcpgate checked state) and returns the user.
	HandleCallback(ctx context.Context, callbackURL string, r *http.Request) (identity.User, error)
}

// ErrSessionEnded is returned by RefreshingConnector.Refresh when the
// provider refuses the refresh token (invalid_grant): the user's session at
// the provider is over, and so is their grant at the gateway (RT-3).
var ErrSessionEnded = errors.New("upstream: the provider ended the session")

// SessionChecker is a Connector whose logins a browser session is checked
// against at each use: an account an operator disables, or whose groups
// change, ends the sessions the change finds, and a login under way at
// that moment may store one just after (SEC-93, SEC-130).
type SessionChecker interface {
	// SessionValid reports whether user, as a login through the connector
	// made them, may still be signed in.
	SessionValid(ctx context.Context, user identity.User) (bool, error)
}

// RefreshingConnector is a CallbackConnector whose provider issues refresh
// tokens (or, as GitHub, a token that serves as one), so the gateway can
// recheck a user while their grant lives (RT-3). Connectors without one
// (local accounts) keep the identity of the login for the grant's life.
type RefreshingConnector interface {
	CallbackConnector
	// HandleCallbackSession is HandleCallback that also returns the
	// provider's refresh token ("" when the provider issued none). The
	// token is a secret: the caller stores it sealed and never logs it.
	HandleCallbackSession(ctx context.Context, callbackURL string, r *http.Request) (identity.User, string, error)
	// Refresh redeems refreshToken at the provider and returns the user as
	// the provider now describes them, and the refresh token to keep (a new
	// one if the provider rotated it). The caller must check that the
	// user's ID is the grant's. A refused token is ErrSessionEnded.
	Refresh(ctx context.Context, refreshToken string) (identity.User, string, error)
	// TokenIssuer names where the connector's refresh tokens come from:
	// the provider (an OpenID issuer as configured; GitHub's API URL) and
	// the gateway's client ID there. The gateway binds each token it keeps
	// to them (SEC-72), so that a connector pointed at another provider,
	// or another client, under the same name is never handed a token of
	// the old one, nor its users taken for the old one's.
	TokenIssuer() (issuer, clientID string)
}
