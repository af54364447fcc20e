package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// runBinaryWith runs `mcpgate args…` with env added to the environment and
// stdin as its standard input (none when empty), and returns its exit
// status, stdout and stderr.
func runBinaryWith(t *testing.T, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("mcpgate %v: %v", args, err)
	return 0, "", ""
}

// adminRun is how a command ended.
type adminRun struct {
	code           int
	stdout, stderr string
}

// ok fails the test unless r succeeded, and returns its stdout.
func ok(t *testing.T, what string, r adminRun) string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// refusedRun fails the test unless r failed (exit 1) saying why.
func refusedRun(t *testing.T, what string, r adminRun, why string) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.stderr, why) {
		t.Fatalf("%s: exit %d, stderr %q, want 1 and %q", what, r.code, r.stderr, why)
	}
}

// refusedWithin polls check until it holds, and fails the test when that
// takes more than a second from since (SEC-80, SEC-85).
func refusedWithin(t *testing.T, what string, since time.Time, check func() bool) {
	t.Helper()
	for !check() {
		if d := time.Since(since); d > time.Second {
			t.Errorf("%s: still accepted %v after the command ended, want refused within 1 s", what, d.Round(time.Millisecond))
			return
		}
		time.Sleep(5 * time.Millisecond) // the poll's pace
	}
	t.Logf("%s: refused after %v", what, time.Since(since).Round(time.Millisecond))
}

// authorizeStatus is the status of a GET /authorize for clientID, not
// followed: 200 (the consent page) while the client is known, 400 (an
// error page, never a redirect) once it is not.
func authorizeStatus(t *testing.T, base, clientID string) int {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {callback}, "state": {"s"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}, "resource": {base + "/mcp"}}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func tokenOf(t *testing.T, ctx context.Context, h *auth.AuthorizationCodeHandler) *oauth2.Token {
	t.Helper()
	ts, err := h.TokenSource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("token: %v, want one with a refresh token", err)
	}
	return tok
}

func decode[T any](t *testing.T, what, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s --json: %v\n%s", what, err, out)
	}
	return v
}

type listedUser struct {
	Name       string   `json:"name"`
	Groups     []string `json:"groups"`
	DisabledAt string   `json:"disabled_at"`
	Configured bool     `json:"configured"`
}

type listedGrant struct {
	ID        string `json:"grant_id"`
	ClientID  string `json:"client_id"`
	UserID    string `json:"user_id"`
	RevokedAt string `json:"revoked_at"`
}

// Each admin command against the data directory of a running `mcpgate
// serve`, on SQLite: what it changes takes effect in the gateway within a
// second (SEC-93, SEC-94, SEC-95).
func TestBinaryAdminCLI(t *testing.T) { adminCLI(t, nil) }

// The same on PostgreSQL, where the revocations also travel by NOTIFY.
func TestBinaryAdminCLIPostgres(t *testing.T) {
	adminCLI(t, []string{"MCPGATE_STORE=" + pgtest.Start(t)})
}

func adminCLI(t *testing.T, env []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	settings := []string{"--data-dir", dir, "--local-user", user + ":" + password}
	p := startBinaryWith(t, freePort(t), binaryOpts{env: env}, settings...)
	cli := func(stdin string, args ...string) adminRun {
		t.Helper()
		code, out, errOut := runBinaryWith(t, env, stdin, append(args, settings...)...)
		return adminRun{code, out, errOut}
	}

	// users add and list; the running gateway lets the new account in.
	ok(t, "users add bob", cli("bob pw 1\n", "users", "add", "bob", "--groups", "devs,ops", "--password-stdin"))
	users := decode[[]listedUser](t, "users list", ok(t, "users list", cli("", "users", "list", "--json")))
	if len(users) != 2 || users[0].Name != user || !users[0].Configured || users[1].Name != "bob" || users[1].Configured ||
		!slices.Equal(users[1].Groups, []string{"devs", "ops"}) || users[1].DisabledAt != "" {
		t.Fatalf("users list: %+v, want alice from local_users and bob in devs and ops", users)
	}
	refusedRun(t, "users add of a local_users account", cli("x\n", "users", "add", user, "--password-stdin"), "local_users")
	refusedRun(t, "users add of an existing account", cli("x\n", "users", "add", "bob", "--password-stdin"), "exists already")
	refusedRun(t, "users add of a name that differs from an account's only in case", cli("x\n", "users", "add", "Bob", "--password-stdin"), "only in case")
	refusedRun(t, "users add with no terminal and no --password-stdin", cli("", "users", "add", "carol"), "--password-stdin")
	refusedRun(t, "SEC-143: users add with a password of 7 characters", cli("bob pw1\n", "users", "add", "carol", "--password-stdin"), "at least 8")
	if r := cli("", "users", "add", "carol", "--password", "pw"); r.code != 2 || !strings.Contains(r.stderr, "--password: no such flag") {
		t.Fatalf("users add --password: exit %d %q, want 2: a password is never taken from the command line", r.code, r.stderr)
	}

	refusedRun(t, "SEC-143: users passwd with a password of 7 characters", cli("bob pw2\n", "users", "passwd", "bob", "--password-stdin"), "at least 8")
	ok(t, "users passwd bob", cli("bob pw 2\n", "users", "passwd", "bob", "--password-stdin"))
	bobH, _ := oauthClientAs(t, "bob", "bob pw 2")
	if m := whoami(t, ctx, mcpStreamable{p.base + "/mcp", bobH}.transport()); m["user"].(map[string]any)["sub"] != "local:bob" {
		t.Fatalf("whoami as bob: %v", m)
	}
	bobTok := tokenOf(t, ctx, bobH)

	// grants list and revoke.
	aliceH, _ := oauthClient(t)
	whoami(t, ctx, mcpStreamable{p.base + "/mcp", aliceH}.transport())
	aliceTok := tokenOf(t, ctx, aliceH)
	aliceClient := clientIDOf(t, aliceTok.AccessToken)
	grants := decode[[]listedGrant](t, "grants list", ok(t, "grants list --user", cli("", "grants", "list", "--user", user, "--json")))
	if len(grants) != 1 || grants[0].ClientID != aliceClient || grants[0].UserID != "local:alice" {
		t.Fatalf("grants list --user alice: %+v, want her one grant to %s", grants, aliceClient)
	}
	if all := decode[[]listedGrant](t, "grants list", ok(t, "grants list", cli("", "grants", "list", "--json"))); len(all) != 2 {
		t.Fatalf("grants list: %+v, want alice's and bob's", all)
	}
	ok(t, "grants revoke", cli("", "grants", "revoke", grants[0].ID))
	done := time.Now()
	refusedWithin(t, "SEC-80: the revoked grant's access token", done, func() bool {
		return guardStatus(t, p.base, aliceTok.AccessToken) == http.StatusUnauthorized
	})
	if status, m := refresh(t, p.base, aliceClient, aliceTok.RefreshToken); status != http.StatusBadRequest {
		t.Fatalf("refresh of the revoked grant: %d %v, want 400", status, m)
	}
	if left := decode[[]listedGrant](t, "grants list", ok(t, "grants list", cli("", "grants", "list", "--user", "local:alice", "--json"))); len(left) != 0 {
		t.Errorf("grants list after the revocation: %+v, want no active grant", left)
	}
	if all := decode[[]listedGrant](t, "grants list --all", ok(t, "grants list --all", cli("", "grants", "list", "--user", user, "--all", "--json"))); len(all) != 1 || all[0].RevokedAt == "" {
		t.Errorf("grants list --all: %+v, want the revoked grant with its time", all)
	}
	refusedRun(t, "grants revoke of an unknown grant", cli("", "grants", "revoke", "no-such-grant"), "no grant no-such-grant")
	// An id is base64url: it may start with "-", and is still the id.
	refusedRun(t, "grants revoke of an id that starts with -", cli("", "grants", "revoke", "-no-such-grant"), "no grant -no-such-grant")

	// clients list and remove.
	h2, _ := oauthClient(t)
	whoami(t, ctx, mcpStreamable{p.base + "/mcp", h2}.transport())
	tok2 := tokenOf(t, ctx, h2)
	client2 := clientIDOf(t, tok2.AccessToken)
	clients := decode[[]struct {
		ID string `json:"client_id"`
	}](t, "clients list", ok(t, "clients list", cli("", "clients", "list", "--json")))
	var ids []string
	for _, c := range clients {
		ids = append(ids, c.ID)
	}
	if !slices.Contains(ids, aliceClient) || !slices.Contains(ids, client2) {
		t.Fatalf("clients list: %v, want %s and %s among them", ids, aliceClient, client2)
	}
	if got := authorizeStatus(t, p.base, client2); got != http.StatusOK {
		t.Fatalf("/authorize before the removal: %d, want 200", got)
	}
	out := ok(t, "clients remove", cli("", "clients", "remove", client2, "--json"))
	done = time.Now()
	if r := decode[struct {
		Revoked []string `json:"revoked_grants"`
	}](t, "clients remove", out); len(r.Revoked) != 1 {
		t.Errorf("clients remove: %s, want its one grant revoked", out)
	}
	refusedWithin(t, "SEC-94: the removed client's access token", done, func() bool {
		return guardStatus(t, p.base, tok2.AccessToken) == http.StatusUnauthorized
	})
	refusedWithin(t, "SEC-85: the removed client at /authorize", done, func() bool {
		return authorizeStatus(t, p.base, client2) == http.StatusBadRequest
	})
	if status, m := refresh(t, p.base, client2, tok2.RefreshToken); status == http.StatusOK {
		t.Fatalf("refresh of the removed client: %d %v, want refused", status, m)
	}
	refusedRun(t, "clients remove again", cli("", "clients", "remove", client2), "no registered client")
	refusedRun(t, "clients remove of a metadata document", cli("", "clients", "remove", "https://app.example/client.json"), "not stored")

	// users disable: bob's grant ends, and so does his next login.
	out = ok(t, "users disable", cli("", "users", "disable", "bob", "--json"))
	done = time.Now()
	if r := decode[struct {
		Revoked []string `json:"revoked_grants"`
	}](t, "users disable", out); len(r.Revoked) != 1 {
		t.Errorf("users disable: %s, want his one grant revoked", out)
	}
	refusedWithin(t, "SEC-93: the disabled user's access token", done, func() bool {
		return guardStatus(t, p.base, bobTok.AccessToken) == http.StatusUnauthorized
	})
	if status, m := refresh(t, p.base, clientIDOf(t, bobTok.AccessToken), bobTok.RefreshToken); status != http.StatusBadRequest {
		t.Fatalf("refresh of the disabled user: %d %v, want 400", status, m)
	}
	again, _ := oauthClientAs(t, "bob", "bob pw 2")
	lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
	defer lcancel()
	if sess, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(lctx, mcpStreamable{p.base + "/mcp", again}.transport(), nil); err == nil {
		sess.Close()
		t.Fatal("SEC-93: the disabled user logged in again")
	}
	if !p.stderrHas(`"reason":"disabled account"`) {
		t.Errorf("the log does not say the login was refused for a disabled account:\n%s", p.Stderr())
	}
	users = decode[[]listedUser](t, "users list", ok(t, "users list", cli("", "users", "list", "--json")))
	if len(users) != 2 || users[1].Name != "bob" || users[1].DisabledAt == "" {
		t.Fatalf("users list after disable: %+v, want bob disabled", users)
	}

	// users enable: bob logs in again; the grant disabling revoked stays revoked.
	ok(t, "users enable", cli("", "users", "enable", "bob", "--json"))
	back, _ := oauthClientAs(t, "bob", "bob pw 2")
	ectx, ecancel := context.WithTimeout(ctx, 30*time.Second)
	defer ecancel()
	sess, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ectx, mcpStreamable{p.base + "/mcp", back}.transport(), nil)
	if err != nil {
		t.Fatalf("the enabled user's login and MCP session: %v", err)
	}
	sess.Close()
	if got := guardStatus(t, p.base, bobTok.AccessToken); got != http.StatusUnauthorized {
		t.Errorf("the token of the grant disabling revoked: %d after users enable, want 401", got)
	}
	users = decode[[]listedUser](t, "users list", ok(t, "users list", cli("", "users", "list", "--json")))
	if len(users) != 2 || users[1].DisabledAt != "" {
		t.Fatalf("users list after enable: %+v, want bob enabled", users)
	}
	refusedRun(t, "users enable of nobody", cli("", "users", "enable", "nobody"), "no local user")

	if env == nil {
		// SEC-95: a mistyped data directory is not made a new store.
		code, out, errOut := runBinaryWith(t, nil, "", "users", "list", "--data-dir", filepath.Join(dir, "nope"))
		refusedRun(t, "users list in a directory with no store", adminRun{code, out, errOut}, "no store at")
		if _, err := os.Stat(filepath.Join(dir, "nope")); err == nil {
			t.Error("users list created the directory it was wrongly given")
		}
	}
	p.stop(t)
	for _, secret := range []string{"bob pw 1", "bob pw 2", aliceTok.AccessToken, bobTok.RefreshToken} {
		if strings.Contains(p.Stderr(), secret) {
			t.Errorf("a password or token reached the log")
		}
	}
}

// The admin commands and mcpgate flows refuse the memory store, which only
// a running serve holds, saying so once under the command's name.
func TestBinaryAdminRefusesMemory(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "list"}, "mcpgate: users list: the memory store lives inside one mcpgate serve: nothing outside it can read or change it (its admin console can)\n"},
		{[]string{"grants", "revoke", "g1"}, "mcpgate: grants revoke: the memory store lives inside one mcpgate serve: nothing outside it can read or change it (its admin console can)\n"},
		{[]string{"flows"}, "mcpgate: flows: the memory store lives inside one mcpgate serve: its flows are on its admin console\n"},
	} {
		code, _, stderr := runBinary(t, append(tc.args, "--store", "memory", "--data-dir", t.TempDir())...)
		if code == 0 || stderr != tc.want {
			t.Errorf("mcpgate %s --store memory: exit %d, stderr %q; want a failure and %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
}

// mcpgate help lists the commands, and exits 0; serve -h lists the settings.
func TestBinaryHelp(t *testing.T) {
	code, stdout, _ := runBinary(t, "help")
	if code != 0 || !strings.Contains(stdout, "mcpgate check [serve flags]") || !strings.Contains(stdout, "mcpgate users|clients|grants") || !strings.Contains(stdout, "mcpgate serve -h lists every setting") {
		t.Errorf("mcpgate help: exit %d, stdout %q; want 0 and the list of commands", code, stdout)
	}
	code, stdout, _ = runBinary(t, "serve", "-h")
	if code != 0 || !strings.Contains(stdout, "--public-url") {
		t.Errorf("mcpgate serve -h: exit %d; want 0 and the settings\n%s", code, stdout)
	}
}
