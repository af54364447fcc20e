package authserver

import (
	"errors"
	"html/template"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
)

// loginFailed shows the page of a login that failed at connector's
// provider, as admitted shows a refusal: what happened, in words the
// person can act on, and a link that takes the OAuth error to the client
// (req's redirect URI, which requestClient has just verified: REDIR-1,
// SEC-6). The page tells three cases apart by upstream's kinds of err:
//
//   - ErrRefused, 403 and access_denied: the person declined, or the
//     provider would not sign them in; they may try again or use another
//     account.
//   - ErrUnavailable, 502 and temporarily_unavailable: the provider was
//     out of reach or failed; the gateway, the provider's client, could not
//     get an answer from its upstream, which is what 502 says, and the
//     client may retry.
//   - anything else, 403 and access_denied: the provider's answer failed a
//     check (a forged ID token, a hosted domain or tenant not allowed, no
//     usable identity). The browser's request was well formed, so not 400:
//     the gateway understood it and refuses to let it sign anyone in.
//     Trying again will not help; the operator's log says why.
//
// Neither err's text nor the provider's error_description is shown: the
// first is for the operator; the second is unsigned text in the URL the
// browser brings back, written for developers (and in one language), and
// the gateway's page must not speak words it cannot vouch for. The log
// has both, clipped.
func (s *Server) loginFailed(w http.ResponseWriter, issuer, connector string, req *store.AuthRequest, err error) {
	name := connector
	if c, ok := s.connectors[connector]; ok {
		name = c.DisplayName()
	}
	status := http.StatusForbidden
	var data web.Error
	var oerr *oauth.Error
	switch {
	case errors.Is(err, upstream.ErrRefused):
		data.Title = name + " did not sign you in"
		data.Message = "The sign-in at " + name + " was cancelled or refused, so you are not signed in. " +
			"To try again, or to use another account, go back to the application and connect again."
		oerr = oauth.Errorf(oauth.AccessDenied, "the user was not signed in at the identity provider")
	case errors.Is(err, upstream.ErrUnavailable):
		status = http.StatusBadGateway
		data.Title = name + " could not be reached"
		data.Message = name + " did not answer, or failed, while signing you in. Wait a moment, then go back to the application and connect again."
		oerr = oauth.Errorf(oauth.TemporarilyUnavailable, "the identity provider could not be reached")
	default:
		data.Title = "The sign-in could not be verified"
		data.Message = "The answer from " + name + " could not be verified, so you are not signed in. " +
			"Trying again will likely fail the same way: tell your administrator, who will find the reason in mcpgate's log."
		oerr = oauth.Errorf(oauth.AccessDenied, "the identity provider's answer could not be verified")
	}
	data.BackText = "Back to the application"
	if back, err := oauth.ErrorRedirectURL(req.RedirectURI, req.State, issuer, oerr); err == nil {
		data.Back = template.URL(back) // a verified redirect URI (REDIR-1)
	}
	web.Render(w, s.log, status, "error.html", data)
}
