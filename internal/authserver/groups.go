package authserver

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
)

// DefaultMaxGroups is Options.MaxGroups when it is zero.
const DefaultMaxGroups = 100

// maxGroupLen bounds one group name, in bytes (SEC-71).
const maxGroupLen = 256

// maxGroupsJSON bounds the groups as an access token carries them (a JSON
// list): half of the largest token the guard takes (tokens.MaxTokenSize,
// 8 KiB once signed and encoded), so that a user in many long groups is
// refused at login, not handed tokens every request refuses (SEC-192).
const maxGroupsJSON = 4 << 10

// groupsProblem says what is wrong with user's groups, or "": more than
// MaxGroups (SEC-70), a name longer than maxGroupLen or holding a control
// character (SEC-71), names over maxGroupsJSON in all (SEC-192). Groups
// travel in every access token, the identity token, X-Forwarded-Groups
// and MCPGATE_USER_GROUPS, so they are bounded; and they are never cut to
// fit: a tool_policy rule or an upstream that denies a group would let in
// the user it was written to keep out. Such a user is refused instead,
// with the reason.
func (s *Server) groupsProblem(user identity.User) (problem string, logAttrs []any) {
	limit := s.maxGroups()
	if n := len(user.Groups); n > limit {
		return fmt.Sprintf("the account is in %d groups; this server accepts at most %d", n, limit),
			[]any{"groups", n, "max_groups", limit}
	}
	for i, g := range user.Groups {
		switch {
		case len(g) > maxGroupLen:
			return fmt.Sprintf("the account is in a group whose name is longer than %d bytes", maxGroupLen),
				[]any{"group_index", i, "group_len", len(g), "group", upstream.Clip(g)}
		case hasControl(g):
			return "the account is in a group whose name holds a control character",
				[]any{"group_index", i, "group", strconv.Quote(upstream.Clip(g))}
		}
	}
	if b, _ := json.Marshal(user.Groups); len(b) > maxGroupsJSON {
		return fmt.Sprintf("the account's %d group names take %d bytes in a token; this server accepts at most %d", len(user.Groups), len(b), maxGroupsJSON),
			[]any{"groups", len(user.Groups), "groups_bytes", len(b)}
	}
	return "", nil
}

func (s *Server) maxGroups() int {
	if s.opts.MaxGroups > 0 {
		return s.opts.MaxGroups
	}
	return DefaultMaxGroups
}

// hasControl reports whether g holds a C0 control character (tab too) or
// DEL: a group name is one line of a header and of a log.
func hasControl(g string) bool {
	for i := 0; i < len(g); i++ {
		if g[i] < 0x20 || g[i] == 0x7f {
			return true
		}
	}
	return false
}

// The longest profile fields a user's tokens carry (SEC-208), in bytes
// of their JSON form (which writes <, > and & as six): together under
// 2 KiB, so that a profile alone never takes an access token past the
// 8 KiB the guard takes. (Groups near their own bound, maxGroupsJSON,
// with such a profile still could: Mint refuses it then.)
const (
	maxProfileName  = 256 // the display name, cut to it
	maxProfileUser  = 256 // the username, left out past it
	maxProfileEmail = 254 // an address, left out past it (RFC 5321's longest path)
	maxProfileURL   = 512 // the picture and profile URLs, left out past them
)

// storableUser returns user as it can be stored and carried in tokens.
//   - Without a NUL (U+0000) in its profile, which a provider's claims may
//     hold and no store keeps alike: PostgreSQL's jsonb refuses it, and
//     every query that reads users' JSON then fails (the account pages,
//     users disable, a start that disables an account) (SEC-148). A name
//     keeps its other characters, a NUL shown as U+FFFD; an email, picture
//     or profile URL with one is dropped, being no address at all.
//   - Without a field too long for a token (SEC-208): every /token of the
//     person would fail. The display name is cut; the username, the
//     address and the URLs are left out, since cut they would name
//     something else.
//
// The ID and groups are checked elsewhere (a provider's sub, SEC-71).
func storableUser(u identity.User) identity.User {
	const nul = "\x00"
	u.Name = clipJSON(strings.ReplaceAll(u.Name, nul, "\uFFFD"), maxProfileName)
	u.Username = strings.ReplaceAll(u.Username, nul, "\uFFFD")
	if jsonLen(u.Username) > maxProfileUser {
		u.Username = ""
	}
	if strings.Contains(u.Email, nul) || jsonLen(u.Email) > maxProfileEmail {
		u.Email, u.EmailVerified = "", false
	}
	if strings.Contains(u.Picture, nul) || jsonLen(u.Picture) > maxProfileURL {
		u.Picture = ""
	}
	if strings.Contains(u.Profile, nul) || jsonLen(u.Profile) > maxProfileURL {
		u.Profile = ""
	}
	return u
}

// jsonLen is the length of s as a JSON string within a token, quotes
// left out.
func jsonLen(s string) int {
	b, _ := json.Marshal(s)
	return len(b) - 2
}

// clipJSON cuts s (safetext.Clip, which marks the cut with "…") until its
// JSON form takes at most max bytes.
func clipJSON(s string, max int) string {
	out := s
	for n := max - len("…"); jsonLen(out) > max && n > 0; n-- {
		out = safetext.Clip(s, n)
	}
	return out
}

// groupsAdmitted reports whether user's groups may be carried; when not,
// the person gets a page that says why (the count and the limit, or the
// bad name), with a link that takes access_denied to the client (its
// redirect URI is verified by now), and the log says why. Nothing is
// stored for the login: no code, no session, no upstream token.
func (s *Server) groupsAdmitted(w http.ResponseWriter, r *http.Request, issuer string, req *store.AuthRequest, user identity.User) bool {
	problem, attrs := s.groupsProblem(user)
	if problem == "" {
		return true
	}
	note := noteOf(r.Context())
	note.attemptOf(req.ID, req.ClientID, user.ID)
	note.stop(oauth.AccessDenied, "user "+user.ID+" is refused: "+problem+" (max_groups)")
	s.log.Warn("login refused: the user's groups cannot be carried (max_groups)",
		append([]any{"user", user.ID, "reason", problem, "client_id", req.ClientID}, attrs...)...)
	data := web.Error{
		Title: "This account's groups cannot be accepted here",
		Message: "You signed in as " + displayName(user) + " (" + s.providerName(user) + "), and " + problem +
			". Ask the administrator of this server, or of your identity provider, to change that; or go back to the application and connect with another account.",
		BackText: "Back to the application",
	}
	back, err := oauth.ErrorRedirectURL(req.RedirectURI, req.State, issuer, oauth.Errorf(oauth.AccessDenied, "the user's groups exceed what this server accepts"))
	if err == nil {
		data.Back = template.URL(back) // a verified redirect URI (REDIR-1)
	}
	web.Render(w, s.log, http.StatusForbidden, "error.html", data)
	return false
}
