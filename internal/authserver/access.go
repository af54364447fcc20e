package authserver

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
)

// Access says who may log in at all, or get a token for one resource. A
// person is let in when any rule matches: a listed user ID, OR a verified
// email at a listed domain, OR membership in a listed group. The zero
// Access lets in everyone who can log in.
type Access struct {
	// Users are user IDs, "<provider>:<subject>" ("local:alice",
	// "github:583231", "oidc:<sub>"), compared exactly. Usernames are not
	// accepted: they are unique within one provider only (anyone can take
	// "alice" at GitHub), an ID names one person everywhere.
	Users []string
	// EmailDomains match a user whose email the provider verified and
	// whose domain, lowercased, is exactly one of them ("example.com"
	// matches alice@example.com, not bob@eng.example.com). An unverified
	// email matches nothing: anyone can type one.
	EmailDomains []string
	// Groups match a user in any of them, whichever provider reported the
	// group (local accounts' groups, GitHub organizations and teams, an
	// OIDC groups claim). Names are compared exactly.
	Groups []string
}

// Open reports whether a lets in everyone.
func (a Access) Open() bool {
	return len(a.Users) == 0 && len(a.EmailDomains) == 0 && len(a.Groups) == 0
}

// Validate returns every malformed rule of a at once: a user ID without
// its provider prefix (a bare "alice" would read as a username, which
// Users does not accept), an email domain that is not a lowercase host
// name without "@", an empty group.
func (a Access) Validate() error {
	var errs []error
	for _, u := range a.Users {
		if p, sub, ok := strings.Cut(u, ":"); !ok || p == "" || sub == "" {
			errs = append(errs, fmt.Errorf("users: %q is not a user ID like local:alice or github:583231", u))
		}
	}
	for _, d := range a.EmailDomains {
		if !validDomain(d) {
			errs = append(errs, fmt.Errorf("email_domains: %q is not a lowercase domain name like example.com (no @)", d))
		}
	}
	for _, g := range a.Groups {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, errors.New("groups: a group name is empty"))
		}
	}
	return errors.Join(errs...)
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	for _, c := range d {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// Allows reports whether user matches a.
func (a Access) Allows(user identity.User) bool {
	if a.Open() || slices.Contains(a.Users, user.ID) {
		return true
	}
	if user.EmailVerified {
		if at := strings.LastIndexByte(user.Email, '@'); at > 0 {
			if d, ok := identity.LowerDomain(user.Email[at+1:]); ok && slices.Contains(a.EmailDomains, d) {
				return true
			}
		}
	}
	for _, g := range user.Groups {
		if g != "" && slices.Contains(a.Groups, g) {
			return true
		}
	}
	return false
}

// refusal names the rule that keeps user from a token for resource (a
// resource URL; its path names it, whatever origin it was issued under): "access" (who may log in), "resources[PATH].access", or ""
// when both let the user in. Both are read from the configuration on
// every call, so that a narrower rule after a restart applies to grants
// made before it (RT-3).
func (s *Server) refusal(user identity.User, resource string) string {
	if problem, _ := s.groupsProblem(user); problem != "" {
		return "max_groups: " + problem // SEC-70, SEC-71
	}
	// resource is canonical (resourceFor): its path is the configured one
	// as written, which url.Parse would decode ("%41" to "A"), and a rule
	// looked up under another spelling would let everyone in (SEC-64).
	path := ""
	if _, rest, ok := strings.Cut(resource, "://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			path = rest[i:]
		}
	}
	if !s.opts.Access.Allows(user) {
		return "access"
	}
	if !s.opts.ResourceAccess[path].Allows(user) {
		return "resources[" + path + "].access"
	}
	return ""
}

// admitted reports whether user may get a code for req. When not, the
// person gets a page that says so and names the account they used, so
// that they can go back and log in with another, and a link that takes
// access_denied to the client (its redirect URI is verified by now); the
// log names the rule. Nothing is remembered for the account: no consent,
// and finishLogin starts no browser session, which would hold the browser
// to the refused account.
func (s *Server) admitted(w http.ResponseWriter, r *http.Request, issuer string, req *store.AuthRequest, user identity.User) bool {
	rule := s.refusal(user, req.Resource)
	if rule == "" {
		return true
	}
	s.log.Warn("access refused", "user", user.ID, "rule", rule, "client_id", req.ClientID, "resource", req.Resource)
	note := noteOf(r.Context())
	note.attemptOf(req.ID, req.ClientID, user.ID)
	note.stop(oauth.AccessDenied, refusalReason(user, rule, req.Resource))
	what := "this server"
	if rule != "access" {
		what = req.Resource
	}
	data := web.Error{
		Title: "This account may not use " + what,
		Message: "You signed in as " + displayName(user) + " (" + s.providerName(user) + "), and this account is not allowed to use " + what +
			". To use another account, go back to the application and connect again.",
		BackText: "Back to the application",
	}
	back, err := oauth.ErrorRedirectURL(req.RedirectURI, req.State, issuer, oauth.Errorf(oauth.AccessDenied, "this user is not allowed to use this resource"))
	if err == nil {
		data.Back = template.URL(back) // a verified redirect URI (REDIR-1)
	}
	web.Render(w, s.log, http.StatusForbidden, "error.html", data)
	return false
}

// providerName is the display name of the provider user logged in with.
func (s *Server) providerName(user identity.User) string {
	id := user.Upstream
	if id == "" {
		id, _, _ = strings.Cut(user.ID, ":")
	}
	if c, ok := s.connectors[id]; ok {
		return c.DisplayName()
	}
	return id
}
