package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/mcpgate/mcpgate/internal/appname"
	"github.com/mcpgate/mcpgate/internal/cimd"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
)

// grantRow is one grant as the pages show it: one row per live grant.
type grantRow struct {
	ID, ShortID string
	User        string
	Client      string // its name, or its ID when it has none
	ClientID    string
	From        string // "pre-registered", "registered", "metadata document at HOST"
	Warn        string // what is wrong with a self-registered client's name, if anything
	Resource    string
	Scopes      string
	FirstUse    string // the grant's creation
	LastUse     string // the last token issued for it
	Revoked     string
	CanRevoke   bool
}

type accountPage struct {
	User   string
	Admin  bool
	CSRF   string
	Grants []grantRow
	Done   string
	More   bool // the person holds more grants than the page read
}

// maxAccountGrants bounds the live grants the account page reads, newest
// first: a person can make one with every sign-in. Revoking an
// application ends the older ones too.
const maxAccountGrants = 500

// account shows the signed-in person's live grants, each with a revoke
// form (SEC-109).
func (c *Console) account(w http.ResponseWriter, r *http.Request) {
	sess, ok := c.session(w, r)
	if !ok {
		return
	}
	grants, err := c.opts.Store.ListGrants(r.Context(), store.GrantQuery{UserID: sess.User.ID, Live: true, Limit: maxAccountGrants + 1})
	if err != nil {
		c.log.Error("account: list grants", "err", err)
		web.RenderError(w, c.log, http.StatusServiceUnavailable, "The page could not be shown", "Try again later.")
		return
	}
	data := accountPage{User: displayName(sess.User), Admin: c.IsAdmin(sess.User), CSRF: c.opts.Browser.PageCSRF(w, r, sess)}
	grants, data.More = shown(grants, maxAccountGrants)
	clients := map[string]clientInfo{}
	for _, g := range grants {
		data.Grants = append(data.Grants, c.row(r.Context(), clients, g))
	}
	if r.URL.Query().Get("revoked") != "" {
		data.Done = "The application's access was revoked."
	}
	web.Render(w, c.log, http.StatusOK, "account.html", data)
}

// accountRevoke revokes the application of one of the signed-in person's
// grants: every grant of theirs its client holds, and their approval of
// it (SEC-155). A grant of anyone else is answered as one that does not
// exist, and nothing changes (SEC-110).
func (c *Console) accountRevoke(w http.ResponseWriter, r *http.Request) {
	sess, ok := c.session(w, r)
	if !ok || !c.checkForm(w, r, sess) {
		return
	}
	id := r.PostForm.Get("grant_id")
	g, err := c.opts.Store.GetGrant(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && g.User.ID != sess.User.ID):
		if err == nil {
			c.log.Warn("account: revoke of another user's grant refused", "user", sess.User.ID, "grant", id)
		}
		web.RenderError(w, c.log, http.StatusNotFound, "No such application access",
			"This access does not exist, or is not yours. Open your account page again.")
		return
	case err != nil:
		c.storeFailed(w, "account: get grant", err)
		return
	}
	ended, err := store.EndClientGrants(r.Context(), c.opts.Store, sess.User.ID, g.ClientID, c.opts.Now())
	c.opts.Revoked(ended) // at once on this replica
	if err != nil {
		c.storeFailed(w, "account: revoke grants", err)
		return
	}
	c.log.Info("application revoked on the account page", "user", sess.User.ID, "client_id", g.ClientID, "grants", len(ended))
	http.Redirect(w, r, "/account?revoked=1", http.StatusSeeOther)
}

func (c *Console) storeFailed(w http.ResponseWriter, what string, err error) {
	c.log.Error(what, "err", err)
	web.RenderError(w, c.log, http.StatusServiceUnavailable, "Nothing was changed",
		"The change could not be saved. Try again later.")
}

// clientInfo is what the pages say about a client.
type clientInfo struct{ Name, From, Warn string }

// describe names the client id and says where it comes from, without
// fetching a metadata document: its host is what a person can check.
func (c *Console) describe(ctx context.Context, seen map[string]clientInfo, id string) clientInfo {
	if ci, ok := seen[id]; ok {
		return ci
	}
	ci := clientInfo{Name: id}
	switch name, static := c.opts.StaticClients[id]; {
	case static:
		ci.From = "pre-registered"
		if name != "" {
			ci.Name = name
		}
	case cimd.IsClientIDURL(id):
		u, _ := url.Parse(id)
		ci.From = "metadata document at " + u.Host
	default:
		ci.From = "registered"
		cl, err := c.opts.Store.GetClient(ctx, id)
		switch {
		case err == nil && cl.Name != "":
			ci.Name, ci.Warn = cl.Name, c.nameWarning(cl.Name)
		case errors.Is(err, store.ErrNotFound):
			ci.From = "registered (removed since)"
		}
	}
	seen[id] = ci
	return ci
}

// nameWarning says what is wrong with the name a client registered
// itself under, as the consent page does (SEC-126, SEC-165): a name that
// reads as a pre-registered client's, or one that mixes alphabets; "" for
// neither.
func (c *Console) nameWarning(name string) string {
	switch {
	case c.reserved.Taken(name):
		return "Not the pre-registered application of this name."
	case appname.MixedScripts(name):
		return "Its name mixes alphabets, as names made to look like another do."
	}
	return ""
}

func (c *Console) row(ctx context.Context, seen map[string]clientInfo, g *store.Grant) grantRow {
	ci := c.describe(ctx, seen, g.ClientID)
	last := g.LastIssuedAt
	if last.Before(g.CreatedAt) {
		last = g.CreatedAt
	}
	return grantRow{
		ID: g.ID, ShortID: short(g.ID), User: safetext.Printable(g.User.ID), Client: ci.Name, ClientID: g.ClientID, From: ci.From, Warn: ci.Warn,
		Resource: g.Resource, Scopes: joinScopes(g.Scopes), FirstUse: when(g.CreatedAt), LastUse: when(last),
		Revoked: when(g.RevokedAt), CanRevoke: g.RevokedAt.IsZero(),
	}
}
