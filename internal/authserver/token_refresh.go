package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

var errBadRefresh = oauth.Errorf(oauth.InvalidGrant, "the refresh token is invalid, expired, revoked or already used")

// refresh implements the refresh_token grant (OAuth 2.1 §4.3) with
// rotation and reuse detection (RT-1): each refresh token is replaced on
// use. Presented again within the grace window (a retry after a lost
// response, or the same token sent from two places at once, as Claude.ai
// does), it gets the very pair its rotation issued; later, it revokes its
// whole family.
//
// The new pair is minted and sealed before the rotation, so that the store
// records it with the rotated token in the same step: whichever of racing
// requests wins, the others answer with the winner's pair.
func (s *Server) refresh(ctx context.Context, issuer string, client *store.Client, form url.Values) (*TokenResponse, *oauth.Error) {
	old := form.Get("refresh_token")
	if old == "" || len(old) > 128 {
		return nil, oauth.Errorf(oauth.InvalidRequest, "refresh_token is required")
	}
	requested, ok := oauth.ParseScope(form.Get("scope"))
	if !ok {
		return nil, oauth.Errorf(oauth.InvalidScope, "scope is not a valid scope string")
	}
	var resource string
	if raw := form.Get("resource"); raw != "" {
		_, canon, ok := s.resourceFor(issuer, raw)
		if !ok {
			return nil, oauth.Errorf(oauth.InvalidTarget, "the resource is not served by this authorization server")
		}
		resource = canon
	}
	now := s.now()
	oldHash := tokens.Hash(old)
	cur, grant, pre, err := s.readRefresh(ctx, oldHash, now)
	note := noteOf(ctx)
	if err == nil {
		note.attemptOf(grant.ID, client.ID, grant.User.ID)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		note.stop("", "refresh token unknown or expired (or its grant was deleted, or the store reset): the client must authorize again")
		return nil, errBadRefresh
	case err != nil:
		return nil, oauth.AsError(err)
	case !grant.RevokedAt.IsZero():
		note.stop("", "the refresh token's grant "+grant.ID+" was revoked at "+grant.RevokedAt.UTC().Format(time.RFC3339)+": the client must authorize again")
		return nil, errBadRefresh
	case s.opts.Denied(grant.ID):
		// Revoked here, its store write not yet taken (revokeUntilStored).
		note.stop("", "the refresh token's grant "+grant.ID+" was revoked: the client must authorize again")
		return nil, errBadRefresh
	}
	if !s.mayRefresh(ctx, client, grant) {
		return nil, errBadRefresh
	}
	// The resource as the gateway names it now: a grant stored while the
	// issuer was written in capitals (before SEC-177) names it so, and
	// its tokens would not pass the guard.
	var implies oauth.Hierarchy
	if res, canon, ok := s.resourceFor(issuer, grant.Resource); ok && grant.Resource != "" {
		grant.Resource, implies = canon, res.Implies
	}
	if resource != "" && resource != grant.Resource {
		note.stop("", "the refresh token was issued for resource "+grant.Resource+", not "+resource)
		return nil, oauth.Errorf(oauth.InvalidTarget, "the refresh token was not issued for this resource")
	}
	scopes, oerr := refreshScopes(grant, cur, requested, implies)
	if oerr != nil {
		return nil, oerr
	}
	user := grant.User
	if cur.RotatedAt.IsZero() { // a retry within grace gets its successor below
		if user, oerr = s.refreshUser(ctx, client, grant, pre); oerr != nil {
			return nil, oerr
		}
	}

	resp := &TokenResponse{TokenType: "Bearer", RefreshToken: tokens.NewSecret(), Scope: oauth.JoinScope(scopes)}
	resp.AccessToken, resp.ExpiresIn, err = s.mint(issuer, grant.ID, client.ID, grant.Resource, user, scopes)
	if err != nil {
		return nil, oauth.AsError(err)
	}
	return s.rotate(ctx, client, grant, cur, resp, now)
}

// rotate replaces the refresh token cur of grant by resp's, with resp
// sealed beside it so that a retry within the grace window gets the same
// pair again, and answers what the rotation found: resp, that pair, or
// invalid_grant when the token was reused later or ended meanwhile.
func (s *Server) rotate(ctx context.Context, client *store.Client, grant *store.Grant, cur *store.RefreshToken, resp *TokenResponse, now time.Time) (*TokenResponse, *oauth.Error) {
	note := noteOf(ctx)
	oldHash := cur.Hash
	plain, err := json.Marshal(resp)
	if err != nil {
		return nil, oauth.AsError(err)
	}
	next := &store.RefreshToken{Hash: tokens.Hash(resp.RefreshToken), CreatedAt: now, ExpiresAt: now.Add(s.opts.RefreshTokenTTL)}
	// The old token's hash is the additional data: a successor copied to
	// another row does not open.
	sealed := s.opts.Sealer.Seal(plain, oldHash)
	_, prev, err := s.store.RotateRefresh(ctx, oldHash, next, sealed, now, s.opts.RefreshGrace)
	switch {
	case err == nil:
		s.log.Info("tokens issued", "grant_type", "refresh_token", "client_id", client.ID, "user", grant.User.ID, "grant", grant.ID, "generation", next.Generation)
		return resp, nil
	case errors.Is(err, store.ErrRefreshRotated):
		// The caller is the grant's client: checked above, before anything
		// changed (a token's grant and a grant's client never change).
		again, err := s.openSuccessor(prev, oldHash)
		if err != nil {
			// Rotated without a successor we can open (by an older version,
			// or under another secret key): the pair cannot be repeated.
			s.log.Warn("refresh token rotated moments ago, but its successor does not open", "client_id", client.ID, "grant", grant.ID, "err", err.Error())
			note.stop("", "refresh token retried within the grace window, but the pair its rotation issued cannot be opened (another secret key?)")
			return nil, errBadRefresh
		}
		s.log.Info("refresh token retried within the grace window: same tokens again", "client_id", client.ID, "grant", grant.ID)
		return again, nil
	case errors.Is(err, store.ErrRefreshReused):
		s.log.Warn("refresh token reused: family revoked", "client_id", client.ID, "grant", grant.ID)
		note.stop("", "refresh token reused after the grace window ("+s.opts.RefreshGrace.String()+"): family revoked (grant "+grant.ID+"); the client must authorize again")
		s.opts.Revoked(grant.ID)
		return nil, errBadRefresh
	case errors.Is(err, store.ErrNotFound):
		note.stop("", "refresh token expired, or its grant was revoked, while it was being used")
		return nil, errBadRefresh
	default:
		// As the store decides: with the window off, any rotated token,
		// also one rotated by a replica whose clock is ahead.
		grace := s.opts.RefreshGrace
		if reused := !cur.RotatedAt.IsZero() && (grace <= 0 || !now.Before(cur.RotatedAt.Add(grace))); reused {
			// SEC-187: the store could not take the family's revocation
			// that reuse makes (RT-1); it is not forgotten for that.
			s.log.Warn("refresh token reused: family revoked; its store write failed, retried", "client_id", client.ID, "grant", grant.ID)
			s.endGrant(ctx, grant.ID)
		}
		return nil, oauth.AsError(err)
	}
}

// upstreamRead is a grant's upstream session as read with its refresh
// token: sess is nil when the grant has none; read is false when it was not
// read (then currentUser reads it).
type upstreamRead struct {
	sess *store.UpstreamSession
	read bool
}

// readRefresh reads a refresh token and its grant and, when the recheck is
// on and the store can, the grant's upstream session in the same read
// (RT-3): one statement fewer per refresh on PostgreSQL.
func (s *Server) readRefresh(ctx context.Context, hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, upstreamRead, error) {
	if rs, ok := s.store.(store.RefreshSessionGetter); ok && s.opts.UpstreamRecheck > 0 {
		cur, grant, sess, err := rs.GetRefreshSession(ctx, hash, now)
		return cur, grant, upstreamRead{sess: sess, read: true}, err
	}
	cur, grant, err := s.store.GetRefresh(ctx, hash, now)
	return cur, grant, upstreamRead{}, err
}

// refreshScopes is the scope of a refresh's access token: it may narrow,
// never widen (RFC 6749 §6), a scope the grant holds counting as the
// narrower ones it implies (SCOPE-5); the new refresh token keeps the old
// one's scope, as §6 requires.
func refreshScopes(grant *store.Grant, cur *store.RefreshToken, requested []string, implies oauth.Hierarchy) ([]string, *oauth.Error) {
	if len(requested) == 0 {
		return cur.Scopes, nil
	}
	requested = withoutOfflineAccess(requested)
	if !implies.Satisfies(grant.Scopes, requested) {
		return nil, oauth.Errorf(oauth.InvalidScope, "the requested scope exceeds what was granted")
	}
	if len(requested) == 0 {
		return cur.Scopes, nil
	}
	return requested, nil
}

// mayRefresh reports whether client may refresh grant, and ends the grant
// when not: the token came from another client, or the access rules no
// longer let the user in (a narrower rule since a restart, a group they
// left), who so loses access at their next refresh (RT-3).
func (s *Server) mayRefresh(ctx context.Context, client *store.Client, grant *store.Grant) bool {
	if !tokens.Equal(grant.ClientID, client.ID) {
		noteOf(ctx).stop("", "refresh token of client "+grant.ClientID+" presented by client "+client.ID+": family revoked")
		s.stolen(ctx, client, grant.ID, "refresh token presented by another client: family revoked")
		return false
	}
	if rule := s.refusal(grant.User, grant.Resource); rule != "" {
		noteOf(ctx).stop("", refusalReason(grant.User, rule, grant.Resource)+": grant ended")
		s.log.Warn("refresh refused: the user is no longer allowed: grant ended", "user", grant.User.ID, "rule", rule, "client_id", client.ID, "grant", grant.ID)
		s.endGrant(ctx, grant.ID)
		return false
	}
	return true
}

// refreshUser is the user a refresh issues tokens for: as the identity
// provider describes them now (RT-3), and still let in by the access rules
// with the groups it gives now; when not, the grant ends.
func (s *Server) refreshUser(ctx context.Context, client *store.Client, grant *store.Grant, pre upstreamRead) (identity.User, *oauth.Error) {
	user, oerr := s.currentUser(ctx, grant, pre)
	if oerr != nil {
		return identity.User{}, oerr
	}
	if rule := s.refusal(user, grant.Resource); rule != "" {
		noteOf(ctx).stop("", refusalReason(user, rule, grant.Resource)+": grant ended")
		s.log.Warn("refresh refused: the user is no longer allowed: grant ended", "user", user.ID, "rule", rule, "client_id", client.ID, "grant", grant.ID)
		s.endGrant(ctx, grant.ID)
		return identity.User{}, errBadRefresh
	}
	return user, nil
}

// openSuccessor returns the token response that rotating prev issued.
func (s *Server) openSuccessor(prev *store.RefreshToken, oldHash []byte) (*TokenResponse, error) {
	if prev == nil || prev.Successor == nil {
		return nil, errors.New("no successor recorded")
	}
	plain, err := s.opts.Sealer.Open(prev.Successor, oldHash)
	if err != nil {
		return nil, err
	}
	var resp TokenResponse
	if err := json.Unmarshal(plain, &resp); err != nil {
		return nil, fmt.Errorf("successor: %w", err)
	}
	return &resp, nil
}

// stolen ends a grant whose token came from a client other than its own:
// whoever holds it, the family is done.
func (s *Server) stolen(ctx context.Context, client *store.Client, grantID, msg string) {
	s.log.Warn(msg, "client_id", client.ID, "grant", grantID)
	s.endGrant(ctx, grantID)
}

// endGrant revokes a grant in the store and its access tokens at once.
func (s *Server) endGrant(ctx context.Context, grantID string) {
	s.opts.Revoked(grantID)
	s.revokeUntilStored(ctx, grantID, "token misused", func(ctx context.Context) error {
		if err := s.store.RevokeGrant(ctx, grantID, s.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
}

func withoutOfflineAccess(scopes []string) []string {
	out := scopes[:0:0]
	for _, s := range scopes {
		if s != "offline_access" {
			out = append(out, s)
		}
	}
	return out
}
