package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/identity"
)

// Sentinel errors. Backends wrap them with context; compare with errors.Is.
var (
	// ErrNotFound: no such record, or it expired.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a record with that key exists already, or a
	// compare-and-set lost (e.g. an upstream state was attached already).
	ErrConflict = errors.New("store: conflict")
	// ErrAccountDisabled: CreateGrant was asked for a live grant of a local
	// account that is disabled (SEC-93): a redemption that began before
	// DisableLocalUser must not end with a grant the disabling missed.
	ErrAccountDisabled = errors.New("store: the account is disabled")
	// ErrCodeReused: ConsumeCode found a code that was consumed before.
	// The returned *Code is still filled in so the caller can revoke its grant
	// (PKCE-3).
	ErrCodeReused = errors.New("store: authorization code already used")
	// ErrSchemaBehind: a store opened without upgrading (a command's open,
	// OpenCurrent) has a schema older than this binary's. Only serve
	// upgrades a schema: the mcpgate of the older version, still serving
	// on it, could no longer run there.
	ErrSchemaBehind = errors.New("store: the schema is older than this binary's")
	// ErrNoSchema: a store opened without upgrading holds no mcpgate
	// tables yet: a new database, which no gateway serves on, and which
	// serve (or an open that upgrades) makes them in.
	ErrNoSchema = errors.New("store: no mcpgate tables yet")
	// ErrCodeMismatch: ConsumeCode found a live code, not used, whose
	// code_challenge is not the one given: the code stays unused, so that
	// whoever holds a code without its PKCE verifier cannot spend it before
	// the client that has both (SEC-176). The returned *Code is filled in.
	ErrCodeMismatch = errors.New("store: authorization code's challenge does not match")
	// ErrRefreshReused: RotateRefresh found a refresh token that was rotated
	// before, longer ago than the grace window. The backend has revoked the
	// grant (the whole family) in the same transaction (RT-1); the returned
	// *Grant names it.
	ErrRefreshReused = errors.New("store: refresh token reused")
	// ErrRefreshRotated: RotateRefresh found a refresh token that was rotated
	// within the grace window (a client retrying, or sending the same token
	// from two places at once). Nothing changed; the returned old token's
	// Successor holds what its rotation issued, so the caller can answer
	// with the same pair.
	ErrRefreshRotated = errors.New("store: refresh token rotated moments ago")
)

// Client is a registered OAuth client (RFC 7591 §2 metadata).
type Client struct {
	ID                      string
	SecretHash              []byte // SHA-256 of the client secret; nil for public clients
	Name                    string
	RedirectURIs            []string
	GrantTypes              []string
	ResponseTypes           []string
	TokenEndpointAuthMethod string // "none", "client_secret_post", "client_secret_basic", "private_key_jwt"
	// JWKSURI, JWKS and SigningAlg say how a private_key_jwt client's
	// assertions are checked: the URL of its key set, or the set itself,
	// and the one JWS algorithm it signs with if it named one. Only clients
	// from a metadata document have them (registration refuses
	// private_key_jwt), and those are never stored.
	JWKSURI         string
	JWKS            []byte
	SigningAlg      string
	ApplicationType string // "native" or "web"
	Scope           string
	ClientURI       string
	LogoURI         string
	CreatedAt       time.Time
	// LastUsedAt is when the client last came to /authorize or /token, as
	// recorded by TouchClient (at most about once an hour); zero if never.
	LastUsedAt time.Time
}

// Public reports whether the client authenticates with no secret.
func (c *Client) Public() bool {
	return c.TokenEndpointAuthMethod == "none" || c.TokenEndpointAuthMethod == ""
}

// AuthRequest is a validated /authorize request waiting for consent and
// upstream login. It lives ten minutes and is used once.
type AuthRequest struct {
	ID            string // random, appears in the consent form
	ClientID      string
	RedirectURI   string
	State         string // the client's state, echoed verbatim
	CodeChallenge string // S256 only
	Resource      string
	Scopes        []string
	Connector     string // upstream chosen at consent
	// SignIn: the client asked the person to sign in again (prompt=login,
	// SEC-162): no browser session stands in for a login.
	SignIn bool
	// UpstreamStateHash is set once, only after consent (DEP-6, DEP-7).
	UpstreamStateHash []byte
	CreatedAt         time.Time
	ExpiresAt         time.Time
}

// GrantQuery selects grants for ListGrants.
type GrantQuery struct {
	// UserID selects the grants of the user whose identity.User.ID it is;
	// "" every user's.
	UserID string
	// Live leaves out revoked grants, which are kept until DeleteExpired
	// removes them.
	Live bool
	// Limit is the most to return, the newest; 0 for every one. A page
	// passes its bound: anyone may make grants.
	Limit int
}

// Consent records that a user approved a client for some scopes (DEP-2).
type Consent struct {
	UserID   string
	ClientID string
	// Resource is what the person approved the client to call: the
	// consent page names it, and an approval covers that resource only
	// (SEC-134).
	Resource string
	Scopes   []string
	// RedirectURIs are where the person was told codes would go, as
	// requested (a loopback URI matches on any port, REDIR-4): an approval
	// covers those only, never a URI the client registers later (SEC-154).
	RedirectURIs []string
	CreatedAt    time.Time
}

// Code is an issued authorization code with everything it is bound to.
type Code struct {
	Hash          []byte // SHA-256 of the code
	ClientID      string
	RedirectURI   string
	CodeChallenge string
	Resource      string
	Scopes        []string
	User          identity.User
	GrantID       string // the grant that redeeming this code creates
	ExpiresAt     time.Time
	UsedAt        time.Time // zero until consumed
}

// Grant is what one successful code exchange established: a user allowed a
// client to reach a resource with some scopes. Its refresh tokens form one
// family; revoking the grant revokes them all.
type Grant struct {
	ID        string
	ClientID  string
	User      identity.User
	Resource  string
	Scopes    []string
	CreatedAt time.Time
	RevokedAt time.Time // zero while active
	// LastIssuedAt is when the grant last issued tokens: the creation of
	// its newest refresh token still stored (its code exchange or latest
	// rotation), else zero. ListGrants fills it, from what the token
	// endpoint writes anyway, so that a use is known without a write per
	// request; other methods leave it zero.
	LastIssuedAt time.Time
}

// RefreshToken is one generation of a grant's refresh family.
type RefreshToken struct {
	Hash       []byte // SHA-256 of the token
	GrantID    string
	Generation int
	Scopes     []string // may be narrower than the grant's
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RotatedAt  time.Time // zero until replaced
	// Successor is the token response its rotation issued, sealed by the
	// caller (it holds the new refresh token); nil until rotated, and
	// again once the grace window is over (DeleteSuccessors).
	Successor []byte
}

// UpstreamSession is the identity provider's side of a grant whose user
// logged in through a connector that issues refresh tokens (RT-3): the
// provider's refresh token, sealed (AES-GCM) by the caller, and the user as
// the provider last described them.
type UpstreamSession struct {
	GrantID   string
	Connector string
	User      identity.User
	Token     []byte // sealed
	CheckedAt time.Time
}

// Session is a logged-in browser at the gateway's own pages.
type Session struct {
	Hash      []byte // SHA-256 of the cookie value
	User      identity.User
	CreatedAt time.Time
	ExpiresAt time.Time
}

// MCPSession binds an Mcp-Session-Id that a proxied MCP server handed out
// to the user whose request opened it (SESS-3), so that every replica of
// the gateway can check a session another one opened. Only the id's
// SHA-256 is stored: a session id is a bearer-like handle at the upstream.
type MCPSession struct {
	Resource  string // the protected resource's path: two upstreams may hand out the same id
	Hash      []byte // SHA-256 of the session id
	UserID    string // identity.User.ID of its opener
	ExpiresAt time.Time
}

// LocalUser is an account of the built-in local connector.
type LocalUser struct {
	Name         string
	PasswordHash []byte   // bcrypt
	Groups       []string // given to the user at login; nil for none
	CreatedAt    time.Time
	// DisabledAt is when DisableLocalUser disabled the account; zero while
	// it may log in (SEC-93).
	DisabledAt time.Time
	// Configured marks an account that mcpgate serve's configuration
	// (local_users) set at its last start, and sets again at every start:
	// the admin commands refuse to change it, whatever settings they are
	// given (SEC-93).
	Configured bool
}

// SigningKey is a key that signs access tokens. Private is sealed
// (AES-GCM) by the caller before it reaches the store.
type SigningKey struct {
	ID        string // the JWS kid
	Algorithm string // "EdDSA", the one algorithm mcpgate signs with
	Private   []byte // sealed
	Public    []byte // the public JWK, JSON
	CreatedAt time.Time
	RetiredAt time.Time // zero while it signs
}

// FlowEvent is one step of an authorization attempt, as the flow debugger
// records it (internal/flows): what a client did, how it ended and why,
// in words an operator can act on. It never holds a secret: no code,
// verifier, token, client secret, state, password or cookie.
type FlowEvent struct {
	Time time.Time
	// Attempt groups the steps of one attempt: the authorization
	// request's id from /authorize on, which the grant the attempt
	// creates takes as its id, so that its token and refresh steps join
	// it; a new id for a lone step.
	Attempt  string
	ClientID string
	UserID   string // identity.User.ID once known
	Step     string // register, authorize, login, token_code, resource…
	Outcome  string // "ok", or the OAuth error code or refusal
	Reason   string // why it stopped, for an operator; "" when ok
	// Details are the step's parameters that are not secret:
	// redirect_uri, resource, scope, the PKCE method, prompt…
	Details map[string]string
}

// FlowFilter selects attempts for ListFlowEvents. Empty fields select
// every attempt.
type FlowFilter struct {
	ClientID string
	UserID   string
	// Outcome selects attempts with a step of that outcome; "failed"
	// those with a step whose outcome is not "ok".
	Outcome string
	Since   time.Time // events before are not returned
	Limit   int       // at most this many attempts, the latest; 0: no bound
}

// RevocationFeed is implemented by a store that several processes share and
// that can tell each of them at once of a grant another revoked
// (PostgreSQL's LISTEN/NOTIFY). Every revocation made through the store is
// announced when it commits: RevokeGrant, the family RotateRefresh
// revokes on reuse (RT-1), and the grants DeleteClient and
// DisableLocalUser revoke (SEC-93, SEC-94). A gateway checks for it with a type assertion;
// a store without it is followed by RevokedGrantsSince alone (SEC-80).
// Clock is implemented by a store that processes on several machines
// share (PostgreSQL): Now is its server's time. Replicas compare the times
// they write (a revocation's, found again by RevokedGrantsSince; a key's
// creation; a rate window), so each keeps its clock near the store's, and
// a gateway checks that it does. A store on one machine has none.
type Clock interface {
	Now(ctx context.Context) (time.Time, error)
}

type RevocationFeed interface {
	// FollowRevocations calls listening once it is subscribed, then
	// revoked with the id of each grant revoked by any process from then
	// on, one call at a time, until ctx ends (it returns ctx's error) or
	// the subscription fails (it returns why). Revocations made while no
	// subscription is in place are not replayed: the caller reloads with
	// RevokedGrantsSince for those.
	FollowRevocations(ctx context.Context, listening func(), revoked func(grantID string)) error
}

// Store is implemented by every backend. Methods that take now use it for
// expiry so that tests control time. All methods are safe for concurrent use.
type Store interface {
	CreateClient(ctx context.Context, c *Client) error // ErrConflict if the id exists
	GetClient(ctx context.Context, id string) (*Client, error)
	// TouchClient records that the client was used at now: LastUsedAt
	// becomes now unless it is later already. ErrNotFound if no such
	// client is stored.
	TouchClient(ctx context.Context, id string, now time.Time) error
	// DeleteUnusedClients deletes at most limit stored clients whose last
	// use (LastUsedAt, or CreatedAt if later) is before unusedSince and
	// that hold no live grant at now: no unexpired, unused code, and no
	// unrevoked grant whose current (unrotated) refresh token is
	// unexpired. Their consents go with them. It returns how many it
	// deleted; fewer than limit means no other client qualifies. Clients
	// that are not stored (pre-registered, metadata documents) are never
	// touched (SEC-14).
	DeleteUnusedClients(ctx context.Context, unusedSince, now time.Time, limit int) (int, error)
	// ListClients returns the stored clients, newest first (ties by id),
	// at most limit of them (every one for 0: anyone may register clients,
	// so a page passes its bound). Pre-registered and metadata-document
	// clients are not stored.
	ListClients(ctx context.Context, limit int) ([]*Client, error)
	// DeleteClient deletes a stored client with its consents and unused
	// codes and, in the same transaction, revokes each of its unrevoked
	// grants at now, announced as RevokeGrant's are (RevocationFeed), with
	// those of its codes spent whose redemption has not stored the grant
	// yet (stored revoked, so that the redemption stores none: SEC-155). It
	// returns the ids of the grants it revoked, in byte order; ErrNotFound
	// when no such client is stored (SEC-94).
	DeleteClient(ctx context.Context, id string, now time.Time) ([]string, error)

	CreateAuthRequest(ctx context.Context, r *AuthRequest) error
	GetAuthRequest(ctx context.Context, id string, now time.Time) (*AuthRequest, error)
	// AttachUpstreamState sets the request's connector and upstream state
	// hash if none is set yet (ErrConflict otherwise).
	AttachUpstreamState(ctx context.Context, id, connector string, stateHash []byte, now time.Time) error
	// TakeAuthRequestByUpstreamState returns and deletes, atomically, the
	// unexpired request carrying stateHash. A second call gets ErrNotFound.
	TakeAuthRequestByUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (*AuthRequest, error)
	// GetAuthRequestByUpstreamState returns, without consuming it, the
	// unexpired request carrying stateHash (ErrNotFound otherwise): a login
	// step reached from a browser other than the one that consented shows
	// that request's consent page again instead of going on.
	GetAuthRequestByUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (*AuthRequest, error)
	// ReplaceUpstreamState swaps the request's upstream state hash oldHash
	// for newHash and sets its connector, atomically: of racing callers
	// with the same oldHash one wins, the others get ErrConflict (as does a
	// newHash that names a request already); ErrNotFound when the request
	// is gone or expired. The old state then finds nothing.
	ReplaceUpstreamState(ctx context.Context, id, connector string, oldHash, newHash []byte, now time.Time) error
	// DeleteAuthRequest removes a request; ErrNotFound when already gone, so
	// that exactly one of two racing callers proceeds.
	DeleteAuthRequest(ctx context.Context, id string) error

	PutConsent(ctx context.Context, c *Consent) error // insert or replace, by user, client and resource
	GetConsent(ctx context.Context, userID, clientID, resource string) (*Consent, error)
	// DeleteConsent forgets userID's approvals of clientID, for every
	// resource, so that the client's next authorization asks the person
	// again (SEC-109), and the codes issued under them not yet redeemed,
	// so that none makes a grant after (SEC-155); a code spent whose grant
	// is not stored yet has its grant stored revoked, so that the
	// redemption under way stores none. nil when there is none.
	DeleteConsent(ctx context.Context, userID, clientID string) error

	CreateCode(ctx context.Context, c *Code) error
	// ConsumeCode marks the code used and returns it, atomically, when
	// challenge is its CodeChallenge: of any number of concurrent callers
	// with it exactly one gets a nil error. Later callers get the code and
	// ErrCodeReused, whatever their challenge; a live unused code of
	// another challenge is left unused, ErrCodeMismatch; an unknown or
	// expired code is ErrNotFound.
	ConsumeCode(ctx context.Context, hash []byte, challenge string, now time.Time) (*Code, error)

	// CreateGrant stores a grant and its first refresh token in one
	// transaction (rt may be nil when no refresh token is issued). A live
	// grant of a disabled local account (user ID "local:NAME") is refused
	// with ErrAccountDisabled, serialised with DisableLocalUser: a grant
	// either exists when DisableLocalUser revokes the account's grants, or
	// is refused after.
	CreateGrant(ctx context.Context, g *Grant, rt *RefreshToken) error
	GetGrant(ctx context.Context, id string) (*Grant, error) // revoked grants are returned with RevokedAt set
	// RotateRefresh replaces the refresh token oldHash by next, atomically,
	// and records successor (the sealed response that carries next) on the
	// old token. The store fills next.GrantID, next.Generation (old + 1) and
	// next.Scopes (the old token's) from the old token. It returns the grant
	// and the old token. Unknown, expired or revoked: ErrNotFound. Rotated
	// less than grace ago: nothing changes, ErrRefreshRotated, and the old
	// token comes back with its Successor. Rotated longer ago: the grant is
	// revoked in the same transaction and ErrRefreshReused is returned
	// (RT-1). Of concurrent callers with the same oldHash exactly one
	// succeeds; the others get ErrRefreshRotated (within grace).
	RotateRefresh(ctx context.Context, oldHash []byte, next *RefreshToken, successor []byte, now time.Time, grace time.Duration) (*Grant, *RefreshToken, error)
	// GetRefresh returns a refresh token and its grant, for introspection
	// and revocation. Unknown or expired: ErrNotFound. A rotated token or a
	// revoked grant is returned as is; the caller decides.
	GetRefresh(ctx context.Context, hash []byte, now time.Time) (*RefreshToken, *Grant, error)
	RevokeGrant(ctx context.Context, id string, now time.Time) error
	// ListGrants returns the grants q selects, newest first (ties by id),
	// each with its LastIssuedAt.
	ListGrants(ctx context.Context, q GrantQuery) ([]*Grant, error)
	// RevokedGrantsSince lists the ids of grants revoked at or after since,
	// so that a starting process can deny their unexpired access tokens.
	RevokedGrantsSince(ctx context.Context, since time.Time) ([]string, error)

	// PutUpstreamSession inserts or replaces the upstream session of
	// u.GrantID. It is stored when the code is issued, before its grant
	// exists.
	PutUpstreamSession(ctx context.Context, u *UpstreamSession) error
	// GetUpstreamSession returns the grant's upstream session; ErrNotFound
	// when it has none.
	GetUpstreamSession(ctx context.Context, grantID string) (*UpstreamSession, error)
	// ClaimUpstreamRecheck marks the grant's upstream session as rechecked
	// by the caller until until, and reports whether it did: false when
	// another claim holds at now, or the session is no longer the one read
	// (its CheckedAt is not checkedAt). PutUpstreamSession ends the claim;
	// ErrNotFound when there is no session. Of processes that read the same
	// session, one claims its recheck and the others wait for its outcome:
	// the provider must not get the same refresh token twice (RT-3).
	ClaimUpstreamRecheck(ctx context.Context, grantID string, checkedAt, now, until time.Time) (bool, error)

	CreateSession(ctx context.Context, s *Session) error
	GetSession(ctx context.Context, hash []byte, now time.Time) (*Session, error)
	// DeleteSession ends the browser session hash (a sign-out): the
	// cookie that holds it logs no one in any more. ErrNotFound when there
	// is none.
	DeleteSession(ctx context.Context, hash []byte) error

	// PutMCPSession records s, or moves the ExpiresAt of the same
	// binding (same Resource, Hash and UserID). A binding of the id to
	// another user that is live at now stays as it is: ErrConflict (an
	// upstream that hands an id out again keeps its first owner).
	PutMCPSession(ctx context.Context, s *MCPSession, now time.Time) error
	// GetMCPSession returns the binding live at now; ErrNotFound otherwise.
	GetMCPSession(ctx context.Context, resource string, hash []byte, now time.Time) (*MCPSession, error)
	// DeleteMCPSession removes a binding; ErrNotFound when there is none.
	// DeleteExpired removes the expired ones too.
	DeleteMCPSession(ctx context.Context, resource string, hash []byte) error

	// PutLocalUser inserts or replaces an account, but for the DisabledAt
	// of an existing one, which only DisableLocalUser and EnableLocalUser change: setting a
	// password, or the configuration's accounts written at every start,
	// never enable an account an operator disabled (SEC-93). When it
	// replaces an account's password hash or groups, the same write ends
	// the account's browser sessions (SEC-130): a session keeps the groups
	// it began with, and one a stolen password opened must not outlive the
	// new password.
	PutLocalUser(ctx context.Context, u *LocalUser) error
	// CreateLocalUser inserts an account that does not exist yet;
	// ErrConflict if one of that name does, which is left as it is. Of
	// processes creating the same account at once, one does (SEC-152).
	CreateLocalUser(ctx context.Context, u *LocalUser) error
	GetLocalUser(ctx context.Context, name string) (*LocalUser, error)
	CountLocalUsers(ctx context.Context) (int, error)
	// ListLocalUsers returns every account, disabled ones included, by name.
	ListLocalUsers(ctx context.Context) ([]*LocalUser, error)
	// DisableLocalUser disables the account name at now (an earlier
	// DisabledAt stands) and, in the same transaction, ends what its user
	// (identity.User.ID "local:"+name, as the local connector names it)
	// holds: their browser sessions and unused codes are deleted and each
	// of their unrevoked grants is revoked at now, announced as RevokeGrant's are
	// (RevocationFeed). It returns the ids of the grants it revoked, in
	// byte order; ErrNotFound when there is no such account (SEC-93).
	DisableLocalUser(ctx context.Context, name string, now time.Time) ([]string, error)
	// EnableLocalUser lets a disabled account log in again; what disabling
	// ended (sessions, codes, grants) stays ended. ErrNotFound when there is
	// no such account.
	EnableLocalUser(ctx context.Context, name string) error

	CreateSigningKey(ctx context.Context, k *SigningKey) error
	ListSigningKeys(ctx context.Context) ([]*SigningKey, error) // oldest first

	// AddRateHit counts one event under key in the window that starts at
	// window and returns the window's count, this event included:
	// atomically, across every process sharing the store, so that of n
	// concurrent callers with one key and window each gets a different
	// count (a rate limit that holds across replicas). The window's record
	// is kept until expires; DeleteExpired removes it after.
	AddRateHit(ctx context.Context, key string, window, expires time.Time) (int, error)

	// Ping checks that the store takes a write now: it writes a record and
	// removes it, committed as durably as any write, and reads. It is for
	// readiness checks: cheap, and it leaves nothing behind. A store that
	// cannot write (a full disk, a read-only file, a lock held elsewhere)
	// returns an error.
	Ping(ctx context.Context) error

	// DeleteExpired deletes at most limit records that nothing needs any
	// more at now, and returns how many it deleted; fewer than limit means
	// none was left. Those are: expired auth requests, codes, sessions and
	// rate counters; refresh tokens that expired or whose grant is revoked;
	// grants left without a refresh token that were created (and, if
	// revoked, revoked) at or before grantsBefore, which the caller sets so
	// that no access token they issued is still valid (now minus the
	// access-token lifetime; the zero time keeps every grant); and upstream
	// sessions whose grant is revoked or has no refresh token left, or that
	// belong to no grant and no code. Consents, clients, local users and
	// signing keys are never touched. The bound keeps each call a short
	// write, so that housekeeping (the caller loops until fewer than limit
	// come back) never holds the store against requests for long. It is
	// never required for correctness; limit must be positive.
	DeleteExpired(ctx context.Context, now, grantsBefore time.Time, limit int) (int, error)

	// DeleteSuccessors deletes the Successor of at most limit refresh
	// tokens rotated at or before rotatedBefore, and returns how many;
	// fewer than limit means none was left. A successor answers a retry
	// within the grace window only (RotateRefresh); after that it is about
	// a kilobyte per rotation kept for nothing until the token expires,
	// and a sealed copy of live tokens (SEC-181). The tokens stay, rotated:
	// one that comes back still ends its family (RT-1). Housekeeping calls
	// it with rotatedBefore the grace window and a margin ago; limit must
	// be positive.
	DeleteSuccessors(ctx context.Context, rotatedBefore time.Time, limit int) (int, error)
	Close() error

	// AppendFlowEvents stores events in one write (one multi-row insert
	// where the backend has it). Events carry no unique key: appending the
	// same one twice stores it twice.
	AppendFlowEvents(ctx context.Context, events []FlowEvent) error
	// ListFlowEvents returns every event at or after f.Since of the
	// attempts that have, at or after f.Since, an event matching each set
	// field of f (ClientID, UserID, Outcome); of those attempts the f.Limit
	// whose last event is the latest. Events come in the order they were
	// appended, which is time order for one process's recorder.
	ListFlowEvents(ctx context.Context, f FlowFilter) ([]FlowEvent, error)
	// DeleteFlowEvents deletes at most limit events that are older than
	// before, or that are beyond the keep latest appended, and returns how
	// many; fewer than limit means none was left. limit must be positive.
	DeleteFlowEvents(ctx context.Context, before time.Time, keep, limit int) (int, error)

	// PutMetaOnce stores value under name unless a value is stored there
	// already, and returns the value stored under name: value itself, or
	// the one stored first. Of racing callers with different values, all
	// get the same one back. A stored value never changes: it records a
	// fact of the installation, such as the check value of the secret key
	// that seals its data, which every process compares with its own.
	PutMetaOnce(ctx context.Context, name string, value []byte) ([]byte, error)
}

// RefreshSessionGetter is implemented by stores that read a refresh token,
// its grant and the grant's upstream session in one step (one statement on
// PostgreSQL), so that a refresh that rechecks its user (RT-3) makes one
// read fewer. It is optional: without it the caller makes GetRefresh then
// GetUpstreamSession.
type RefreshSessionGetter interface {
	// GetRefreshSession is GetRefresh, which also returns the grant's
	// upstream session as GetUpstreamSession would: nil when it has none.
	GetRefreshSession(ctx context.Context, hash []byte, now time.Time) (*RefreshToken, *Grant, *UpstreamSession, error)
}

// MatchFlowEvent reports whether e matches every set field of f but Since
// and Limit, as ListFlowEvents selects attempts: for stores that filter in
// Go rather than in a query.
func MatchFlowEvent(e *FlowEvent, f FlowFilter) bool {
	switch {
	case f.ClientID != "" && e.ClientID != f.ClientID,
		f.UserID != "" && e.UserID != f.UserID:
		return false
	case f.Outcome == "failed":
		return e.Outcome != "ok"
	case f.Outcome != "":
		return e.Outcome == f.Outcome
	}
	return true
}

// EndGrant forgets the approval of g's user for g's client, first, so that
// no authorization after the revocation finds it and the client must ask
// the person again rather than get a code at once from a browser still
// signed in (SEC-109); then it revokes g at now.
func EndGrant(ctx context.Context, s Store, g *Grant, now time.Time) error {
	if err := s.DeleteConsent(ctx, g.User.ID, g.ClientID); err != nil {
		return err
	}
	return s.RevokeGrant(ctx, g.ID, now)
}

// EndClientGrants ends what a person gave a client: their approvals of it
// and every grant of theirs it holds (each code it redeemed made one), and
// returns the ids of the grants it revoked. A person who revokes an
// application on their account page ends all of its access, not the one
// row they clicked (SEC-155).
func EndClientGrants(ctx context.Context, s Store, userID, clientID string, now time.Time) ([]string, error) {
	if err := s.DeleteConsent(ctx, userID, clientID); err != nil {
		return nil, err
	}
	grants, err := s.ListGrants(ctx, GrantQuery{UserID: userID, Live: true})
	if err != nil {
		return nil, err
	}
	var ended []string
	for _, g := range grants {
		if g.ClientID != clientID || !g.RevokedAt.IsZero() {
			continue
		}
		if err := s.RevokeGrant(ctx, g.ID, now); err != nil && !errors.Is(err, ErrNotFound) {
			return ended, err
		}
		ended = append(ended, g.ID)
	}
	return ended, nil
}

// LiveLocalAccount names the local account whose live grant g is (user
// ID "local:NAME"): the account CreateGrant checks is not disabled. ok is
// false for a grant stored revoked, or of another provider's user.
func LiveLocalAccount(g *Grant) (name string, ok bool) {
	if !g.RevokedAt.IsZero() {
		return "", false
	}
	return strings.CutPrefix(g.User.ID, "local:")
}
