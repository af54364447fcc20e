package authserver

import (
	"net/http"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/upstream"
)

// callback is where a callback connector's provider sends the browser back.
// The state must be one we created after consent, unexpired and unused
// (DEP-6), and bound to this browser (SEC-1): a callback in another browser
// shows it the consent page and never redeems the provider's code there.
// Anything else is refused with a page.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	cc, ok := s.connectors[r.PathValue("connector")].(upstream.CallbackConnector)
	state := r.URL.Query().Get("state")
	if !ok || state == "" || len(state) > 128 {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "This sign-in response is not valid. Go back to the application and start again.")
		return
	}
	issuer := s.site.Issuer(r)
	// The provider sends the browser here from its own site: only the
	// cookie binds a callback to the browser that consented (SEC-5).
	req, hash, kind := s.flowRequest(w, r, issuer, cc.ID(), state, true)
	if req == nil {
		return
	}
	s.completeUpstream(w, r, issuer, cc.ID(), hash, kind, func() (identity.User, string, error) {
		// A provider that issues refresh tokens is rechecked at refreshes
		// (RT-3): its token is kept with the grant.
		if rc, ok := cc.(upstream.RefreshingConnector); ok {
			return rc.HandleCallbackSession(r.Context(), callbackURL(issuer, cc.ID()), r)
		}
		user, err := cc.HandleCallback(r.Context(), callbackURL(issuer, cc.ID()), r)
		return user, "", err
	})
}
