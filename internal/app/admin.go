package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/flows"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream/local"
)

// AdminCommand is one of the operator's commands on the store that serve
// uses: `mcpgate users|clients|grants VERB [ARG] [flags] [serve flags]`.
// They change the store only, which every running gateway follows within a
// second (SEC-80, SEC-85, SEC-93, SEC-94), so they are safe while serve runs.
type AdminCommand struct {
	Noun, Verb string   // "users", "add"
	Arg        string   // the NAME or ID of the verbs that take one
	Groups     []string // users add --groups
	User       string   // grants list --user: a user ID, or a local account's name
	All        bool     // grants list --all: revoked grants too
	JSON       bool     // answer in JSON on stdout
	// Password asks for a new password (users add, users passwd): from
	// stdin or a terminal, never from the command line (SEC-95).
	Password func() (string, error)
}

// openExistingStore opens the store of a running or stopped mcpgate serve
// for a command: the memory store is refused with onMemory (it lives
// inside one serve), a SQLite file that does not exist is never made a
// new, empty store in a mistyped directory (SEC-95), and a schema older
// than this binary's is not upgraded under the gateways of the older
// version that serve on it (SEC-178).
func openExistingStore(ctx context.Context, cfg *config.Config, onMemory string) (store.Store, error) {
	dsn := cfg.StoreDSN()
	if dsn == "memory" {
		return nil, errors.New(onMemory)
	}
	if path, missing := missingSQLite(dsn); missing {
		return nil, fmt.Errorf("no store at %s: give the --data-dir (or --store) that mcpgate serve uses", path)
	}
	st, err := openStoreFor(ctx, cfg, false)
	if errors.Is(err, store.ErrNoSchema) {
		// A new database: no gateway serves on it, so its tables may be
		// made here (accounts made before the first serve).
		st, err = openStoreFor(ctx, cfg, true)
	}
	if errors.Is(err, store.ErrSchemaBehind) {
		return nil, fmt.Errorf("%w: %s: stop the older gateways, start this version's, then run the command; or run the command with the mcpgate that serves it now", err, schemaUpgrade)
	}
	return st, err
}

// schemaUpgrade says what becomes of a store of an older schema.
const schemaUpgrade = "this version's mcpgate serve upgrades it at its start, and the older version cannot run on it after"

// missingSQLite reports a SQLite store whose file does not exist yet, and
// its path.
func missingSQLite(dsn string) (string, bool) {
	path, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		return "", false
	}
	_, err := os.Stat(path)
	return path, errors.Is(err, fs.ErrNotExist)
}

// Admin runs cmd on the store cfg names and writes its answer to stdout.
func Admin(ctx context.Context, cfg *config.Config, cmd AdminCommand, stdout io.Writer) error {
	// The command's line names it ("mcpgate: users list: …").
	st, err := openExistingStore(ctx, cfg, "the memory store lives inside one mcpgate serve: nothing outside it can read or change it (its admin console can)")
	if err != nil {
		return err
	}
	defer st.Close()
	// A revocation, a disabling, a removal is written at this machine's
	// time, which the replicas' reloads compare with theirs (SEC-80).
	if err := mcpgate.CheckClock(ctx, st); err != nil {
		return err
	}
	if cmd.Password == nil {
		cmd.Password = func() (string, error) { return "", errors.New("no way to ask for a password") }
	}
	a := &admin{st: st, cfg: cfg, cmd: cmd, out: stdout, now: time.Now()}
	run, ok := map[string]func(context.Context) error{
		"users add":      a.addUser,
		"users list":     a.listUsers,
		"users passwd":   a.passwd,
		"users disable":  a.disable,
		"users enable":   a.enable,
		"clients list":   a.listClients,
		"clients remove": a.removeClient,
		"grants list":    a.listGrants,
		"grants revoke":  a.revoke,
	}[cmd.Noun+" "+cmd.Verb]
	if !ok {
		return fmt.Errorf("unknown command %s %s", cmd.Noun, cmd.Verb)
	}
	return run(ctx)
}

type admin struct {
	st  store.Store
	cfg *config.Config
	cmd AdminCommand
	out io.Writer
	now time.Time
}

// configured reports whether local_users holds an account name.
func (a *admin) configured(name string) bool {
	for _, spec := range a.cfg.LocalUsers {
		if n, _, _, err := local.ParseUserSpecGroups(spec); err == nil && n == name {
			return true
		}
	}
	return false
}

// answer writes v as JSON with --json, or text otherwise. The JSON has
// the characters a terminal would act on (C1 controls, bidi overrides,
// which encoding/json leaves as they are) escaped: a name a provider or a
// client sent may hold them, and could rewrite the operator's screen
// (SEC-95, SEC-116).
func (a *admin) answer(v any, text func(w io.Writer)) error {
	if a.cmd.JSON {
		out, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = a.out.Write(append(safetext.EscapeJSON(out), '\n'))
		return err
	}
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

// stamp is t for a list: RFC 3339 in UTC, or nothing for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type userView struct {
	Name       string   `json:"name"`
	Groups     []string `json:"groups"`
	CreatedAt  string   `json:"created_at"`
	DisabledAt string   `json:"disabled_at,omitempty"`
	// Configured: local_users holds the account, and sets its password
	// and groups at every start of serve.
	Configured bool `json:"configured"`
}

func (a *admin) listUsers(ctx context.Context) error {
	users, err := a.st.ListLocalUsers(ctx)
	if err != nil {
		return err
	}
	views := []userView{}
	for _, u := range users {
		views = append(views, userView{Name: u.Name, Groups: nonNil(u.Groups), CreatedAt: stamp(u.CreatedAt),
			DisabledAt: stamp(u.DisabledAt), Configured: u.Configured || a.configured(u.Name)})
	}
	return a.answer(views, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tGROUPS\tCREATED\tSTATE\tFROM")
		for _, v := range views {
			state, from := "active", "store"
			if v.DisabledAt != "" {
				state = "disabled " + v.DisabledAt
			}
			if v.Configured {
				from = "local_users"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", v.Name, orDash(strings.Join(v.Groups, ",")), v.CreatedAt, state, from)
		}
	})
}

// The configuration's accounts are written at every start of serve
// (setConfiguredUsers): a password or groups set here would not last.
// They are the ones this command's settings list, and those the store
// marks as set by serve's configuration at its last start.
func (a *admin) refuseConfigured(ctx context.Context, name string) error {
	configured := a.configured(name)
	if !configured {
		u, err := a.st.GetLocalUser(ctx, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		configured = err == nil && u.Configured
	}
	if configured {
		return fmt.Errorf("%s is one of the configuration's local_users (or --local-user), which mcpgate serve sets again, password and groups, at every start: change it there", name)
	}
	return nil
}

func (a *admin) addUser(ctx context.Context) error {
	name := a.cmd.Arg
	if !local.ValidName(name) {
		return fmt.Errorf("invalid user name %q: want 1-64 characters of A-Z a-z 0-9 . _ @ -", safetext.Printable(name))
	}
	if err := a.refuseConfigured(ctx, name); err != nil {
		return err
	}
	switch _, err := a.st.GetLocalUser(ctx, name); {
	case err == nil:
		return fmt.Errorf("local user %s exists already: mcpgate users passwd %s sets a new password", name, name)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	if err := a.refuseNamesake(ctx, name); err != nil {
		return err
	}
	pw, err := a.newPassword()
	if err != nil {
		return err
	}
	if err := local.New(a.st, local.Options{}).SetUser(ctx, name, pw, a.cmd.Groups...); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "local: "))
	}
	note := ""
	if !localAccountsOn(a.cfg) {
		note = "local accounts are off in this configuration (another identity provider is configured and local_users is empty): " +
			"they log in once local_users lists at least one account"
	}
	return a.answer(struct {
		Added  string   `json:"added"`
		Groups []string `json:"groups"`
		Note   string   `json:"note,omitempty"`
	}{name, nonNil(a.cmd.Groups), note}, func(w io.Writer) {
		fmt.Fprintf(w, "Added local user %s", name)
		if len(a.cmd.Groups) > 0 {
			fmt.Fprintf(w, " in groups %s", strings.Join(a.cmd.Groups, ", "))
		}
		fmt.Fprintln(w, ".")
		if note != "" {
			fmt.Fprintf(w, "Note: %s.\n", note)
		}
	})
}

// minPasswordLen is the fewest characters a password chosen with users
// add or users passwd may have (SEC-143), as NIST SP 800-63B asks of
// passwords people choose. The configuration's local_users are the
// operator's own choice and are not held to it: serve warns of a shorter
// one.
const minPasswordLen = 8

// newPassword asks for the account's new password and refuses one too
// short to resist guessing.
func (a *admin) newPassword() (string, error) {
	pw, err := a.cmd.Password()
	if err != nil {
		return "", err
	}
	if utf8.RuneCountInString(pw) < minPasswordLen {
		return "", fmt.Errorf("the password has %d characters: choose one of at least %d", utf8.RuneCountInString(pw), minPasswordLen)
	}
	return pw, nil
}

// refuseNamesake refuses a new account whose name differs from an
// existing one's only in case: two people would sign in under names that
// read the same, and share the failed-login pause, which folds case.
func (a *admin) refuseNamesake(ctx context.Context, name string) error {
	users, err := a.st.ListLocalUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if strings.EqualFold(u.Name, name) {
			return fmt.Errorf("local user %s exists already, and %s differs from it only in case: choose another name", u.Name, name)
		}
	}
	return nil
}

func (a *admin) passwd(ctx context.Context) error {
	name := a.cmd.Arg
	if err := a.refuseConfigured(ctx, name); err != nil {
		return err
	}
	u, err := a.st.GetLocalUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no local user %s: mcpgate users list shows them", safetext.Printable(name))
	}
	if err != nil {
		return err
	}
	pw, err := a.newPassword()
	if err != nil {
		return err
	}
	if local.SamePassword(u.PasswordHash, pw) {
		// Kept, it would keep the account's sign-ins too (SEC-130), which
		// whoever runs this has often come to end.
		return fmt.Errorf("that is %s's password already: nothing changed, and its sign-ins to the gateway's pages stay; set another to end them", name)
	}
	if err := local.New(a.st, local.Options{}).SetUser(ctx, name, pw, u.Groups...); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "local: "))
	}
	return a.answer(struct {
		Updated string `json:"password_set"`
	}{name}, func(w io.Writer) {
		fmt.Fprintf(w, "Set a new password for %s: its sign-ins to the gateway's pages have ended (SEC-130). The grants the account holds stay; mcpgate users disable %s would end them.\n", name, name)
	})
}

func (a *admin) disable(ctx context.Context) error {
	name := a.cmd.Arg
	revoked, err := a.st.DisableLocalUser(ctx, name, a.now)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no local user %s: mcpgate users list shows them", safetext.Printable(name))
	}
	if err != nil {
		return err
	}
	return a.answer(struct {
		Disabled string   `json:"disabled"`
		Revoked  []string `json:"revoked_grants"`
	}{name, revoked}, func(w io.Writer) {
		fmt.Fprintf(w, "Disabled local user %s: their logins are refused, their browser sessions ended, and %d grants revoked: "+
			"every gateway on this store refuses those grants' access and refresh tokens within 1 s.\n", name, len(revoked))
		if a.configured(name) {
			fmt.Fprintln(w, "The account stays disabled although local_users lists it.")
		}
	})
}

func (a *admin) enable(ctx context.Context) error {
	name := a.cmd.Arg
	err := a.st.EnableLocalUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no local user %s: mcpgate users list shows them", safetext.Printable(name))
	}
	if err != nil {
		return err
	}
	return a.answer(struct {
		Enabled string `json:"enabled"`
	}{name}, func(w io.Writer) {
		fmt.Fprintf(w, "Enabled local user %s: they may log in again; the grants disabling revoked stay revoked.\n", safetext.Printable(name))
	})
}

type clientView struct {
	ID           string   `json:"client_id"`
	Name         string   `json:"client_name"`
	RedirectURIs []string `json:"redirect_uris"`
	AuthMethod   string   `json:"token_endpoint_auth_method"`
	CreatedAt    string   `json:"created_at"`
	LastUsedAt   string   `json:"last_used_at,omitempty"`
}

func (a *admin) listClients(ctx context.Context) error {
	clients, err := a.st.ListClients(ctx, 0)
	if err != nil {
		return err
	}
	views := []clientView{}
	for _, c := range clients {
		views = append(views, clientView{ID: c.ID, Name: c.Name, RedirectURIs: nonNil(c.RedirectURIs),
			AuthMethod: c.TokenEndpointAuthMethod, CreatedAt: stamp(c.CreatedAt), LastUsedAt: stamp(c.LastUsedAt)})
	}
	return a.answer(views, func(w io.Writer) {
		fmt.Fprintln(w, "CLIENT ID\tNAME\tCREATED\tLAST USED\tREDIRECT URIS")
		for _, v := range views {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", safetext.Printable(v.ID), orDash(safetext.Printable(v.Name)), v.CreatedAt, orDash(v.LastUsedAt), safetext.Printable(strings.Join(v.RedirectURIs, " ")))
		}
	})
}

func (a *admin) removeClient(ctx context.Context) error {
	id := a.cmd.Arg
	if slices.ContainsFunc(a.cfg.Clients, func(c config.StaticClient) bool { return c.ID == id }) {
		return fmt.Errorf("client %s is pre-registered in the configuration (clients): remove it there and restart mcpgate serve", safetext.Printable(id))
	}
	if strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://") {
		return fmt.Errorf("client %s is a client metadata document: such clients are not stored, there is nothing to remove; "+
			"mcpgate grants list shows its grants and mcpgate grants revoke ends them", safetext.Printable(id))
	}
	revoked, err := a.st.DeleteClient(ctx, id, a.now)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no registered client %s: mcpgate clients list shows them", safetext.Printable(id))
	}
	if err != nil {
		return err
	}
	return a.answer(struct {
		Removed string   `json:"removed"`
		Revoked []string `json:"revoked_grants"`
	}{id, revoked}, func(w io.Writer) {
		fmt.Fprintf(w, "Removed client %s and revoked its %d grants: every gateway on this store refuses it at /authorize, /token and refresh, "+
			"and its access tokens, within 1 s.\n", id, len(revoked))
	})
}

type grantView struct {
	ID        string   `json:"grant_id"`
	ClientID  string   `json:"client_id"`
	UserID    string   `json:"user_id"`
	Username  string   `json:"username,omitempty"`
	Resource  string   `json:"resource"`
	Scopes    []string `json:"scopes"`
	CreatedAt string   `json:"created_at"`
	RevokedAt string   `json:"revoked_at,omitempty"`
}

func (a *admin) listGrants(ctx context.Context) error {
	userID := flows.UserFilter(a.cmd.User) // a local account's name stands for its ID
	if userID != a.cmd.User {
		// One mistyped would list nothing, as if the account held no grant.
		if _, err := a.st.GetLocalUser(ctx, a.cmd.User); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no local user %s: mcpgate users list shows them; name another provider's user by its ID, like github:583231", safetext.Printable(a.cmd.User))
		}
	}
	grants, err := a.st.ListGrants(ctx, store.GrantQuery{UserID: userID, Live: !a.cmd.All})
	if err != nil {
		return err
	}
	views := []grantView{}
	for _, g := range grants {
		views = append(views, grantView{ID: g.ID, ClientID: g.ClientID, UserID: g.User.ID, Username: g.User.Username,
			Resource: g.Resource, Scopes: nonNil(g.Scopes), CreatedAt: stamp(g.CreatedAt), RevokedAt: stamp(g.RevokedAt)})
	}
	return a.answer(views, func(w io.Writer) {
		fmt.Fprintln(w, "GRANT\tCLIENT ID\tUSER\tRESOURCE\tSCOPES\tCREATED\tSTATE")
		for _, v := range views {
			state := "active"
			if v.RevokedAt != "" {
				state = "revoked " + v.RevokedAt
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safetext.Printable(v.ID), safetext.Printable(v.ClientID), safetext.Printable(v.UserID), safetext.Printable(v.Resource),
				orDash(safetext.Printable(strings.Join(v.Scopes, " "))), v.CreatedAt, state)
		}
	})
}

func (a *admin) revoke(ctx context.Context) error {
	id := a.cmd.Arg
	g, err := a.st.GetGrant(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no grant %s: mcpgate grants list shows them", safetext.Printable(id))
	}
	if err != nil {
		return err
	}
	// The store's revocation, as /revoke's, announced to every gateway
	// (NOTIFY on PostgreSQL) and read by their reload (SEC-80), with the
	// person's approval of the client forgotten (SEC-109).
	if err := store.EndGrant(ctx, a.st, g, a.now); err != nil {
		return err
	}
	at := a.now
	if !g.RevokedAt.IsZero() {
		at = g.RevokedAt // the first revocation's time stands
	}
	return a.answer(struct {
		Revoked   string `json:"revoked"`
		RevokedAt string `json:"revoked_at"`
	}{id, stamp(at)}, func(w io.Writer) {
		if !g.RevokedAt.IsZero() {
			fmt.Fprintf(w, "Grant %s was revoked already, at %s.\n", id, stamp(at))
			return
		}
		fmt.Fprintf(w, "Revoked grant %s: every gateway on this store refuses its access and refresh tokens within 1 s.\n", id)
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
