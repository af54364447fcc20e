package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
)

// upstreamTimeout bounds one refresh at the identity provider: it runs
// detached from the request that started it, as other requests wait on it.
const upstreamTimeout = 30 * time.Second

var errUpstreamDown = oauth.Errorf(oauth.TemporarilyUnavailable, "the identity provider could not be reached; try again later")

// upstreamAD binds a sealed upstream token to its grant (copied to another
// grant's row, it does not open) and to where it is valid: the connector's
// name, its provider and the gateway's client there (SEC-72). After the
// operator points the name at another provider or client, the token no
// longer opens: it is never sent there, and the user the new provider
// describes under the old ID is never taken for the old one's. Sessions
// sealed as v1 (the grant alone) end at their next refresh; the user logs
// in again.
func upstreamAD(grantID, connector string, rc upstream.RefreshingConnector) []byte {
	issuer, clientID := rc.TokenIssuer()
	// JSON: no field can run into the next.
	ad, _ := json.Marshal([]string{"mcpgate upstream session v2", grantID, connector, issuer, clientID})
	return ad
}

// openUpstream returns the connector of grantID's session sess and its
// token, opened; a connector no longer configured, or a token sealed for
// another provider, client or secret key, is upstream.ErrSessionEnded.
func (s *Server) openUpstream(grantID string, sess *store.UpstreamSession) (upstream.RefreshingConnector, []byte, error) {
	rc, ok := s.connectors[sess.Connector].(upstream.RefreshingConnector)
	if !ok {
		return nil, nil, errors.Join(upstream.ErrSessionEnded, errors.New("its connector is no longer configured"))
	}
	token, err := s.opts.Sealer.Open(sess.Token, upstreamAD(grantID, sess.Connector, rc))
	if err != nil {
		return nil, nil, errors.Join(upstream.ErrSessionEnded,
			errors.New("its provider token was sealed for another provider, client or secret key"), err)
	}
	return rc, token, nil
}

// errNoUpstreamToken is why a grant whose login brought no refresh token
// ends when its recheck is due: for the log, and the operator. It is an
// upstream.ErrSessionEnded, which ends the grant.
var errNoUpstreamToken error = noUpstreamToken{}

type noUpstreamToken struct{}

func (noUpstreamToken) Error() string {
	return "the provider gave no refresh token at login, so the user cannot be rechecked there: " +
		"let the provider's app use refresh tokens (with scopes of your own, include offline_access where the provider needs it), " +
		"or set upstream_recheck off to keep the login's groups for the grant's life"
}

func (noUpstreamToken) Is(target error) bool { return target == upstream.ErrSessionEnded }

// errNoUpstreamSession is why a grant of a rechecked provider without an
// upstream session ends at its recheck (SEC-77).
var errNoUpstreamSession = errors.New("the grant was made while upstream_recheck was off, so its user cannot be rechecked at the provider")

// uncheckable reports whether grant, which has no upstream session, is
// due a recheck it cannot have: its user's provider is rechecked now, so
// the grant was made while the recheck was off (keepUpstream gives every
// other grant of such a provider a session), and it is older than
// UpstreamRecheck. Taken for a checked grant, it would keep the login's
// groups for its life (SEC-77).
func (s *Server) uncheckable(grant *store.Grant) bool {
	_, rc := s.connectors[connectorID(grant.User)].(upstream.RefreshingConnector)
	return rc && s.now().Sub(grant.CreatedAt) >= s.opts.UpstreamRecheck
}

// keepUpstream stores the provider's refresh token, sealed, with the grant
// that the code being issued will create (RT-3). A rechecked provider that
// gave none still gets a session, without a token: the grant holds until
// its recheck is due and then ends, so that a person the provider no
// longer lets in (or no longer puts in a group) never keeps the login's
// access for the grant's life. Connectors that cannot refresh (local
// accounts) keep the login's identity.
func (s *Server) keepUpstream(ctx context.Context, grantID, connector string, user identity.User, token string) error {
	if s.opts.UpstreamRecheck <= 0 {
		return nil
	}
	rc, ok := s.connectors[connector].(upstream.RefreshingConnector)
	if !ok {
		return nil
	}
	if token == "" {
		s.log.Warn(errNoUpstreamToken.Error()+"; this grant ends when its recheck is due",
			"connector", connector, "user", user.ID, "grant", grantID, "upstream_recheck", s.opts.UpstreamRecheck.String())
	}
	return s.store.PutUpstreamSession(ctx, &store.UpstreamSession{
		GrantID: grantID, Connector: connector, User: user,
		Token: s.opts.Sealer.Seal([]byte(token), upstreamAD(grantID, connector, rc)), CheckedAt: s.now(),
	})
}

// currentUser is the user a refresh of grant issues tokens for (RT-3): the
// login's, or the provider's latest description, renewed at the provider
// when older than UpstreamRecheck. Concurrent refreshes of one grant share
// one upstream refresh. When the provider has ended the session (or it can
// no longer be checked) the grant is revoked and the refresh fails with
// invalid_grant, so the user logs in again.
func (s *Server) currentUser(ctx context.Context, grant *store.Grant, pre upstreamRead) (identity.User, *oauth.Error) {
	if s.opts.UpstreamRecheck <= 0 {
		return grant.User, nil
	}
	sess, err := s.upstreamSession(ctx, grant.ID, pre)
	switch {
	case errors.Is(err, store.ErrNotFound) && s.uncheckable(grant):
		s.log.Info("upstream session ended: grant revoked", "user", grant.User.ID, "grant", grant.ID, "err", errNoUpstreamSession.Error())
		s.endGrant(ctx, grant.ID)
		return identity.User{}, errBadRefresh
	case errors.Is(err, store.ErrNotFound):
		return grant.User, nil
	case err != nil:
		return identity.User{}, oauth.AsError(err)
	}
	user, err := s.upstreamUser(ctx, grant, sess)
	if err == nil {
		return user, nil
	}
	if errors.Is(err, errUpstreamDown) {
		return identity.User{}, errUpstreamDown
	}
	if errors.Is(err, upstream.ErrSessionEnded) {
		s.log.Info("upstream session ended: grant revoked", "user", grant.User.ID, "grant", grant.ID, "err", err.Error())
		s.endGrant(ctx, grant.ID)
		return identity.User{}, errBadRefresh
	}
	return identity.User{}, oauth.AsError(err)
}

// upstreamSession is the grant's upstream session: the one read with its
// refresh token, else read now; ErrNotFound when it has none.
func (s *Server) upstreamSession(ctx context.Context, grantID string, pre upstreamRead) (*store.UpstreamSession, error) {
	switch {
	case !pre.read:
		return s.store.GetUpstreamSession(ctx, grantID)
	case pre.sess == nil:
		return nil, store.ErrNotFound
	}
	return pre.sess, nil
}

// upstreamUser is the user of grant's upstream session sess: as stored
// while the recheck is not due, renewed at the provider once it is.
func (s *Server) upstreamUser(ctx context.Context, grant *store.Grant, sess *store.UpstreamSession) (identity.User, error) {
	// The binding is checked at every refresh, not only at the recheck:
	// the session of a connector since repointed ends at once (SEC-72).
	if _, _, err := s.openUpstream(grant.ID, sess); err != nil {
		return identity.User{}, err
	}
	if s.now().Sub(sess.CheckedAt) < s.opts.UpstreamRecheck {
		return sess.User, nil
	}
	v, err, _ := s.recheck.Do(grant.ID, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), upstreamTimeout)
		defer cancel()
		return s.renewUpstream(ctx, grant)
	})
	if err != nil {
		return identity.User{}, err
	}
	return v.(identity.User), nil
}

// renewUpstream refreshes the grant's upstream session at its provider and
// stores the outcome. It reads the session again: a flight that finished
// just before this one started has renewed it already.
func (s *Server) renewUpstream(ctx context.Context, grant *store.Grant) (identity.User, error) {
	sess, err := s.store.GetUpstreamSession(ctx, grant.ID)
	if err != nil {
		return identity.User{}, err
	}
	if s.now().Sub(sess.CheckedAt) < s.opts.UpstreamRecheck {
		return sess.User, nil
	}
	rc, token, err := s.openUpstream(grant.ID, sess)
	if err != nil {
		return identity.User{}, err
	}
	if len(token) == 0 {
		return identity.User{}, errNoUpstreamToken
	}
	user, next, err := rc.Refresh(ctx, string(token))
	switch {
	case errors.Is(err, upstream.ErrSessionEnded):
		return identity.User{}, err
	case err != nil:
		s.log.Warn("upstream refresh failed", "connector", sess.Connector, "grant", grant.ID, "err", err.Error())
		return identity.User{}, errUpstreamDown
	case user.ID != grant.User.ID:
		return identity.User{}, errors.Join(upstream.ErrSessionEnded, errors.New("the provider answered for another user"))
	}
	user = storableUser(user)
	sess.User, sess.CheckedAt = user, s.now()
	sess.Token = s.opts.Sealer.Seal([]byte(next), upstreamAD(grant.ID, sess.Connector, rc))
	if err := s.store.PutUpstreamSession(ctx, sess); err != nil {
		return identity.User{}, err
	}
	s.log.Info("upstream session renewed", "connector", sess.Connector, "user", user.ID, "grant", grant.ID)
	return user, nil
}
