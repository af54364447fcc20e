package console

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/appname"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authserver"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
)

// Browser is the authorization server's side of the pages: its browser
// session and form tokens. *authserver.Server implements it.
type Browser interface {
	PageSession(r *http.Request) *store.Session
	PageCSRF(w http.ResponseWriter, r *http.Request, sess *store.Session) string
	CheckPageCSRF(r *http.Request, sess *store.Session) bool
	GuardPage(post bool, h http.HandlerFunc) http.HandlerFunc
}

var _ Browser = (*authserver.Server)(nil)

// RecentCalls is how many tools/call events the console keeps to show,
// per replica (SEC-112).
const RecentCalls = 200

// Options configure a Console. Store and Browser are required.
type Options struct {
	Store   store.Store
	Browser Browser
	// Revoked is told of every grant revoked here, so that its access
	// tokens are refused at once on this replica (the deny list).
	Revoked func(grantIDs []string)
	// AdminGroups: a member of any of them is an administrator.
	AdminGroups []string
	// LocalAdmin: the local connector is configured, and its account
	// named "admin" (user ID "local:admin") is an administrator.
	LocalAdmin bool
	// StaticClients names the pre-registered clients, by ID.
	StaticClients map[string]string
	// Recent holds the recent tool calls; nil shows none.
	Recent *audit.Recent
	Logger *slog.Logger
	Now    func() time.Time
}

// Console serves /account and /admin.
type Console struct {
	opts Options
	log  *slog.Logger
	// reserved are the pre-registered clients' names, which a client that
	// registered itself is shown not to be.
	reserved appname.Reserved

	mu      sync.Mutex
	mounted []mount
	mux     *http.ServeMux
}

type mount struct{ Path, Title string }

// New returns a Console.
func New(opts Options) *Console {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Revoked == nil {
		opts.Revoked = func([]string) {}
	}
	return &Console{opts: opts, log: opts.Logger, reserved: appname.Reserve(slices.Collect(maps.Values(opts.StaticClients))...)}
}

// Paths are the console's own paths, which no resource may take.
var Paths = []string{"/signin", "/signout", "/account", "/account/revoke", "/admin", "/admin/users",
	"/admin/users/disable", "/admin/users/enable", "/admin/clients", "/admin/clients/remove",
	"/admin/grants", "/admin/grants/revoke", "/admin/calls"}

// Register adds the console's routes to mux: exact paths, so that a
// resource under /admin (README's /admin/mcp) keeps its own.
func (c *Console) Register(mux *http.ServeMux) {
	b := c.opts.Browser
	mux.HandleFunc("GET /account", b.GuardPage(false, c.account))
	mux.HandleFunc("POST /account/revoke", b.GuardPage(true, c.accountRevoke))
	for path, page := range map[string]func(http.ResponseWriter, *http.Request, *store.Session){
		"/admin": c.adminIndex, "/admin/users": c.adminUsers, "/admin/clients": c.adminClients,
		"/admin/grants": c.adminGrants, "/admin/calls": c.adminCalls,
	} {
		mux.HandleFunc("GET "+path, b.GuardPage(false, c.admin(page)))
	}
	for path, action := range map[string]func(context.Context, string) ([]string, error){
		"/admin/users/disable": c.disableUser, "/admin/users/enable": c.enableUser,
		"/admin/clients/remove": c.removeClient, "/admin/grants/revoke": c.revokeGrant,
	} {
		mux.HandleFunc("POST "+path, b.GuardPage(true, c.adminAction(path, action)))
	}
	c.mu.Lock()
	c.mux = mux
	c.mu.Unlock()
}

var mountPath = regexp.MustCompile(`^/admin/[a-z0-9][a-z0-9_-]{0,62}$`)

// Mount serves h at path (and under path+"/") as a page of the admin
// console, behind its administrator check, listed in its navigation as
// title. A GET without a session is sent to sign in; any other method
// must carry the form token FormToken gives (field csrf_token), else it
// gets 403 without reaching h. The console's headers (no framing, no
// caching) are set before h runs. path is /admin/NAME, lowercase; Mount
// fails for another, for one mounted already, or after Register only if
// the mux refuses it.
func (c *Console) Mount(path, title string, h http.Handler) error {
	if !mountPath.MatchString(path) || slices.Contains(Paths, path) || title == "" {
		return fmt.Errorf("console: mount %q: want /admin/NAME (lowercase, not one of the console's own) and a title", path)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.ContainsFunc(c.mounted, func(m mount) bool { return m.Path == path }) {
		return fmt.Errorf("console: %s is mounted already", path)
	}
	if c.mux == nil {
		return fmt.Errorf("console: mount %s: Register the console first", path)
	}
	page := c.mountedPage(h)
	read, write := c.opts.Browser.GuardPage(false, page), c.opts.Browser.GuardPage(true, page)
	wrapped := func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			read(w, r)
			return
		}
		write(w, r) // a form posted from another origin is refused too (SEC-5)
	}
	if err := handle(c.mux, path, wrapped); err != nil {
		return err
	}
	if err := handle(c.mux, path+"/", wrapped); err != nil {
		return err
	}
	c.mounted = append(c.mounted, mount{Path: path, Title: title})
	return nil
}

// handle registers h, turning the mux's panic at a conflicting pattern
// (a resource at that path) into an error.
func handle(mux *http.ServeMux, pattern string, h http.HandlerFunc) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("console: mount %s: %v", pattern, r)
		}
	}()
	mux.HandleFunc(pattern, h)
	return nil
}

func (c *Console) nav() []mount {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.mounted)
}

type tokenKey struct{}

// FormToken returns the form token that a mounted page's forms must post
// as csrf_token; "" outside a mounted page's request.
func FormToken(r *http.Request) string {
	s, _ := r.Context().Value(tokenKey{}).(string)
	return s
}

// mountedPage guards a mounted handler: an administrator's session, and
// the form token on anything but GET and HEAD.
func (c *Console) mountedPage(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, ok := c.adminSession(w, r)
		if !ok {
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !c.checkForm(w, r, sess) {
			return
		}
		web.SetSecurityHeaders(w.Header())
		token := c.opts.Browser.PageCSRF(w, r, sess)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, token)))
	}
}

// IsAdmin is the administrator rule (SEC-111): a member of one of the
// admin groups, or, when the local connector is configured, its account
// named "admin".
func (c *Console) IsAdmin(u identity.User) bool {
	if c.opts.LocalAdmin && u.ID == "local:admin" {
		return true
	}
	for _, g := range u.Groups {
		if slices.Contains(c.opts.AdminGroups, g) {
			return true
		}
	}
	return false
}

// session returns the browser's session; without one, a GET is sent to
// sign in and come back, anything else refused, and ok is false.
func (c *Console) session(w http.ResponseWriter, r *http.Request) (*store.Session, bool) {
	sess := c.opts.Browser.PageSession(r)
	if sess != nil {
		return sess, true
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		web.SetSecurityHeaders(w.Header())
		http.Redirect(w, r, authserver.SignInURL(r.URL.RequestURI()), http.StatusSeeOther)
		return nil, false
	}
	web.RenderError(w, c.log, http.StatusForbidden, "You are not signed in", "Sign in again, then repeat what you did.")
	return nil, false
}

// adminSession is session for an administrator: anyone else signed in
// gets a 403 page.
func (c *Console) adminSession(w http.ResponseWriter, r *http.Request) (*store.Session, bool) {
	sess, ok := c.session(w, r)
	if !ok {
		return nil, false
	}
	if authserver.StaleForAdmin(sess, c.opts.Now()) {
		// SEC-144: the groups are the login's; an old login signs in again.
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			web.SetSecurityHeaders(w.Header())
			http.Redirect(w, r, authserver.SignInURL(r.URL.RequestURI()), http.StatusSeeOther)
			return nil, false
		}
		web.RenderError(w, c.log, http.StatusForbidden, "Sign in again",
			"The admin console asks for a sign-in of the last hour. Open the page again to sign in, then repeat what you did.")
		return nil, false
	}
	if !c.IsAdmin(sess.User) {
		c.log.Warn("admin console refused", "user", sess.User.ID, "path", safetext.Clip(r.URL.Path, 512))
		web.RenderError(w, c.log, http.StatusForbidden, "Not an administrator",
			"You are signed in as "+displayName(sess.User)+", who may not use the admin console. Your own account page is at /account.")
		return nil, false
	}
	return sess, true
}

// checkForm reads a posted form and checks its token (SEC-108); on
// failure it answers 403 and returns false.
func (c *Console) checkForm(w http.ResponseWriter, r *http.Request, sess *store.Session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if r.ParseForm() != nil {
		web.RenderError(w, c.log, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return false
	}
	if !c.opts.Browser.CheckPageCSRF(r, sess) {
		c.log.Warn("console: CSRF check failed", "user", sess.User.ID, "path", safetext.Clip(r.URL.Path, 512))
		web.RenderError(w, c.log, http.StatusForbidden, "Request refused",
			"This form was not submitted from this server's own pages. Open the page again and repeat what you did.")
		return false
	}
	return true
}

// displayName is how a page names u: its username or name, as a provider
// gave them, with invisible and direction-changing characters shown as
// such, so that one cannot read as another.
func displayName(u identity.User) string {
	for _, s := range []string{u.Username, u.Name} {
		if s != "" {
			return safetext.Printable(s)
		}
	}
	return safetext.Printable(u.ID)
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// short is an ID clipped for a table; the full one is in the form.
func short(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

func joinScopes(s []string) string { return strings.Join(s, " ") }
