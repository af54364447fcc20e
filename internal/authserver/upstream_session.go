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

// claimRecheck returns the grant's upstream session once this process
// holds its recheck (claimed), or once none is needed any more: the
// session was renewed within UpstreamRecheck, by another process or an
// earlier flight.
func (s *Server) claimRecheck(ctx context.Context, grantID string) (sess *store.UpstreamSession, claimed bool, err error) {
	tick := time.NewTicker(recheckPoll)
	defer tick.Stop()
	for {
		sess, err := s.store.GetUpstreamSession(ctx, grantID)
		if err == nil {
			now := s.now()
			if now.Sub(sess.CheckedAt) < s.opts.UpstreamRecheck {
				return sess, false, nil
			}
			claimed, err = s.store.ClaimUpstreamRecheck(ctx, grantID, sess.CheckedAt, now, now.Add(upstreamTimeout))
			if err == nil && claimed {
				return sess, true, nil
			}
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, false, errUpstreamDown
		case err != nil:
			return nil, false, err
		}
		select {
		case <-ctx.Done():
			return nil, false, errUpstreamDown
		case <-tick.C:
		}
	}
}

// recheckAtProvider refreshes sess at its provider and returns the user
// as the provider now describes them, and the refresh token to keep,
// sealed for the session.
func (s *Server) recheckAtProvider(ctx context.Context, grant *store.Grant, sess *store.UpstreamSession) (identity.User, []byte, error) {
	rc, token, err := s.openUpstream(grant.ID, sess)
	if err != nil {
		return identity.User{}, nil, err
	}
	if len(token) == 0 {
		return identity.User{}, nil, errNoUpstreamToken
	}
	user, next, err := rc.Refresh(ctx, string(token))
	switch {
	case errors.Is(err, upstream.ErrSessionEnded):
		return identity.User{}, nil, err
	case err != nil:
		s.log.Warn("upstream refresh failed", "connector", sess.Connector, "grant", grant.ID, "err", err.Error())
		return identity.User{}, nil, errUpstreamDown
	case user.ID != grant.User.ID:
		return identity.User{}, nil, errors.Join(upstream.ErrSessionEnded, errors.New("the provider answered for another user"))
	}
	return user, s.opts.Sealer.Seal([]byte(next), upstreamAD(grant.ID, sess.Connector, rc)), nil
}

// recheckPoll is how often a process waiting for another's recheck of an
// upstream session reads it again.
const recheckPoll = 50 * time.Millisecond

// renewUpstream refreshes the grant's upstream session at its provider and
// stores the outcome. It reads the session again: a flight that finished
// just before this one started has renewed it already.
//
// One process of those sharing the store rechecks a session at a time
// (store.ClaimUpstreamRecheck); the others read it again every
// recheckPoll until it is renewed, or claim it once the claim ended (its
// holder failed, or its time lapsed). Another that sent the provider the
// same refresh token would look to a provider that rotates them like its
// thief, and end the person's session there (a client's duplicate refresh
// sent to two replicas, RT-1). The wait ends with ctx (the recheck's
// time): errUpstreamDown, and the client retries.
func (s *Server) renewUpstream(ctx context.Context, grant *store.Grant) (identity.User, error) {
	sess, claimed, err := s.claimRecheck(ctx, grant.ID)
	switch {
	case err != nil:
		return identity.User{}, err
	case !claimed:
		return sess.User, nil
	}
	user, sealed, err := s.recheckAtProvider(ctx, grant, sess)
	if err != nil {
		// The claim ends, the session unchanged: the next refresh, here
		// or elsewhere, rechecks.
		if perr := s.store.PutUpstreamSession(context.WithoutCancel(ctx), sess); perr != nil {
			s.log.Warn("upstream session: ending the recheck's claim failed; it lapses", "grant", grant.ID, "err", perr)
		}
		return identity.User{}, err
	}
	user = storableUser(user)
	sess.User, sess.CheckedAt, sess.Token = user, s.now(), sealed
	// Whatever time the recheck has left: the provider has rotated its
	// refresh token, and the store would keep the spent one.
	if err := s.store.PutUpstreamSession(context.WithoutCancel(ctx), sess); err != nil {
		return identity.User{}, err
	}
	s.log.Info("upstream session renewed", "connector", sess.Connector, "user", user.ID, "grant", grant.ID)
	return user, nil
}
