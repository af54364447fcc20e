package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
)

// adminPage is the data of every admin page: the section shown and its
// rows, the navigation and the form token.
type adminPage struct {
	Section string
	User    string
	CSRF    string
	Nav     []mount
	Done    string

	Local   []localRow
	Seen    []seenRow
	Clients []clientRow
	Static  []clientRow
	Grants  []grantRow
	Calls   []callRow
	Recent  int
	More    bool // the store holds more grants, or registered clients, than the page shows
}

// maxGrantRows bounds the grants page, maxClientRows the clients page,
// which anyone may fill through /register, and maxSeenGrants the grants
// whose users the users page lists: each reads the newest from the store,
// never the whole table (the admin CLI lists them all).
const (
	maxGrantRows  = 500
	maxClientRows = 500
	maxSeenGrants = 5000
)

// shown cuts rows, read from the store with a limit of max+1, to the max a
// page shows, and says whether the store held more.
func shown[T any](rows []T, max int) ([]T, bool) {
	return rows[:min(len(rows), max)], len(rows) > max
}

type localRow struct {
	Name, Groups, Created, Disabled string
}

type seenRow struct {
	ID, Name string
	Live     int
}

type clientRow struct {
	ID, Name, From, Redirects, Created, LastUsed string
	Warn                                         string // see Console.nameWarning
}

type callRow struct {
	At, User, Client, Resource, Tool, Outcome, Duration string
}

// admin guards a page of the console: an administrator's session, then
// page writes the section.
func (c *Console) admin(page func(http.ResponseWriter, *http.Request, *store.Session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if sess, ok := c.adminSession(w, r); ok {
			page(w, r, sess)
		}
	}
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, sess *store.Session, data adminPage) {
	data.User = displayName(sess.User)
	data.CSRF = c.opts.Browser.PageCSRF(w, r, sess)
	data.Nav = c.nav()
	if d := r.URL.Query().Get("done"); d != "" {
		data.Done = map[string]string{"revoked": "The grant was revoked.", "disabled": "The account was disabled, its grants revoked.",
			"enabled": "The account may sign in again.", "removed": "The client was removed, its grants revoked."}[d]
	}
	web.Render(w, c.log, http.StatusOK, "admin.html", data)
}

func (c *Console) adminIndex(w http.ResponseWriter, r *http.Request, sess *store.Session) {
	c.render(w, r, sess, adminPage{Section: "index"})
}

// adminUsers lists the local accounts and the users that hold grants.
func (c *Console) adminUsers(w http.ResponseWriter, r *http.Request, sess *store.Session) {
	users, err := c.opts.Store.ListLocalUsers(r.Context())
	if err != nil {
		c.storeFailed(w, "admin: list local users", err)
		return
	}
	grants, err := c.opts.Store.ListGrants(r.Context(), store.GrantQuery{Limit: maxSeenGrants + 1})
	if err != nil {
		c.storeFailed(w, "admin: list grants", err)
		return
	}
	data := adminPage{Section: "users"}
	grants, data.More = shown(grants, maxSeenGrants)
	for _, u := range users {
		data.Local = append(data.Local, localRow{Name: u.Name, Groups: strings.Join(u.Groups, ", "), Created: when(u.CreatedAt), Disabled: when(u.DisabledAt)})
	}
	index := map[string]int{}
	for _, g := range grants {
		i, ok := index[g.User.ID]
		if !ok {
			i = len(data.Seen)
			index[g.User.ID] = i
			// The ID is a provider's subject, its text: shown as the
			// recent calls show it (SEC-116).
			data.Seen = append(data.Seen, seenRow{ID: safetext.Printable(g.User.ID), Name: displayName(g.User)})
		}
		if g.RevokedAt.IsZero() {
			data.Seen[i].Live++
		}
	}
	slices.SortFunc(data.Seen, func(a, b seenRow) int { return strings.Compare(a.ID, b.ID) })
	c.render(w, r, sess, data)
}

// adminClients lists the stored clients, which may be removed, and the
// pre-registered ones, which live in the configuration.
func (c *Console) adminClients(w http.ResponseWriter, r *http.Request, sess *store.Session) {
	clients, err := c.opts.Store.ListClients(r.Context(), maxClientRows+1)
	if err != nil {
		c.storeFailed(w, "admin: list clients", err)
		return
	}
	data := adminPage{Section: "clients"}
	clients, data.More = shown(clients, maxClientRows)
	for _, cl := range clients {
		data.Clients = append(data.Clients, clientRow{ID: cl.ID, Name: cl.Name, From: "registered", Warn: c.nameWarning(cl.Name),
			Redirects: strings.Join(cl.RedirectURIs, " "), Created: when(cl.CreatedAt), LastUsed: when(cl.LastUsedAt)})
	}
	for id, name := range c.opts.StaticClients {
		data.Static = append(data.Static, clientRow{ID: id, Name: name, From: "pre-registered"})
	}
	slices.SortFunc(data.Static, func(a, b clientRow) int { return strings.Compare(a.ID, b.ID) })
	c.render(w, r, sess, data)
}

// adminGrants lists every grant, newest first; live ones may be revoked.
func (c *Console) adminGrants(w http.ResponseWriter, r *http.Request, sess *store.Session) {
	grants, err := c.opts.Store.ListGrants(r.Context(), store.GrantQuery{Limit: maxGrantRows + 1})
	if err != nil {
		c.storeFailed(w, "admin: list grants", err)
		return
	}
	data := adminPage{Section: "grants"}
	grants, data.More = shown(grants, maxGrantRows)
	seen := map[string]clientInfo{}
	for _, g := range grants {
		data.Grants = append(data.Grants, c.row(r.Context(), seen, g))
	}
	c.render(w, r, sess, data)
}

// adminCalls shows the last tools/call events this replica recorded.
func (c *Console) adminCalls(w http.ResponseWriter, r *http.Request, sess *store.Session) {
	data := adminPage{Section: "calls", Recent: RecentCalls}
	if c.opts.Recent != nil {
		for _, e := range c.opts.Recent.Last() {
			// The tool's name is the caller's text, the user's a provider's:
			// no invisible or direction-changing character may make a row
			// read as another (as the flow debugger's, SEC-116).
			data.Calls = append(data.Calls, callRow{At: e.At.UTC().Format("2006-01-02 15:04:05 UTC"), User: safetext.Printable(e.User),
				Client: safetext.Printable(e.Client), Resource: e.Resource, Tool: safetext.Printable(e.Tool), Outcome: string(e.Outcome), Duration: e.Duration.String()})
		}
	}
	c.render(w, r, sess, data)
}

// adminAction runs one of the console's changes for an administrator's
// checked form (SEC-108, SEC-111): arg is the form's "id". The grants it
// revoked are refused at once on this replica; the page it came from is
// shown again.
func (c *Console) adminAction(path string, action func(context.Context, string) ([]string, error)) http.HandlerFunc {
	back, verb, _ := strings.Cut(strings.TrimPrefix(path, "/admin/"), "/")
	done := map[string]string{"disable": "disabled", "enable": "enabled", "remove": "removed", "revoke": "revoked"}[verb]
	return func(w http.ResponseWriter, r *http.Request) {
		sess, ok := c.adminSession(w, r)
		if !ok || !c.checkForm(w, r, sess) {
			return
		}
		id := r.PostForm.Get("id")
		revoked, err := action(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			web.RenderError(w, c.log, http.StatusNotFound, "Not found", "There is no such "+strings.TrimSuffix(back, "s")+". Open the page again.")
			return
		case err != nil:
			c.storeFailed(w, "admin: "+back+" "+verb, err)
			return
		}
		c.opts.Revoked(revoked)
		c.log.Info("admin console: "+back+" "+verb, "admin", sess.User.ID, "id", id, "grants_revoked", len(revoked))
		http.Redirect(w, r, "/admin/"+back+"?done="+done, http.StatusSeeOther)
	}
}

func (c *Console) disableUser(ctx context.Context, name string) ([]string, error) {
	return c.opts.Store.DisableLocalUser(ctx, name, c.opts.Now())
}

func (c *Console) enableUser(ctx context.Context, name string) ([]string, error) {
	return nil, c.opts.Store.EnableLocalUser(ctx, name)
}

func (c *Console) removeClient(ctx context.Context, id string) ([]string, error) {
	return c.opts.Store.DeleteClient(ctx, id, c.opts.Now())
}

// revokeGrant revokes a live grant; one revoked already is not found.
func (c *Console) revokeGrant(ctx context.Context, id string) ([]string, error) {
	g, err := c.opts.Store.GetGrant(ctx, id)
	if err != nil {
		return nil, err
	}
	if !g.RevokedAt.IsZero() {
		return nil, store.ErrNotFound
	}
	if err := store.EndGrant(ctx, c.opts.Store, g, c.opts.Now()); err != nil {
		return nil, err
	}
	return []string{id}, nil
}
