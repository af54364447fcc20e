package app

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/logbuf"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// testHandler stands in for the gateway: a route that reads its body
// whole, and event streams answering a GET and a POST, as /mcp does.
func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /body", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
		}
	})
	stream := func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
	}
	mux.HandleFunc("GET /stream", stream)
	mux.HandleFunc("POST /stream", stream)
	return mux
}

// serveForTest serves testHandler as run serves the gateway, with lim.
func serveForTest(t *testing.T, lim limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	srv := newServer(testHandler(), lim, log)
	go srv.Serve(lim.listener(ln, log))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// SEC-40: a client that sends its headers or its body slowly is cut off
// at the header timeout, or at the read timeout for the whole request,
// however steadily it sends.
func TestSEC40_SlowRequestsCut(t *testing.T) {
	lim := limits{headerTimeout: time.Second, readTimeout: 2 * time.Second}
	addr := serveForTest(t, lim)
	for _, tc := range []struct {
		name, head string
		limit      time.Duration
	}{
		{"slow headers", "POST /body HTTP/1.1\r\nHost: x\r\nX-Pad: ", lim.headerTimeout},
		{"slow body", "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n", lim.readTimeout},
		{"slow body of a stream", "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n", lim.readTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			closed := make(chan struct{})
			go func() { io.Copy(io.Discard, c); close(closed) }()
			io.WriteString(c, tc.head)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			// The margin is for a loaded machine; an uncut client sends on
			// for ever.
			giveUp := time.After(tc.limit + 10*time.Second)
			for {
				select {
				case <-closed:
					if took := time.Since(start); took < tc.limit*9/10 {
						t.Fatalf("cut after %v, want not before the limit %v", took, tc.limit)
					}
					return
				case <-giveUp:
					t.Fatalf("still sending after %v, want the connection closed at %v", time.Since(start), tc.limit)
				case <-tick.C:
					c.Write([]byte("a"))
				}
			}
		})
	}
}

// SEC-40: the read timeout bounds reading the request, not the response:
// an event stream answering a GET, or a POST whose body came at once,
// goes on well past it.
func TestSEC40_StreamsOutliveReadTimeout(t *testing.T) {
	lim := limits{headerTimeout: time.Second, readTimeout: time.Second}
	addr := serveForTest(t, lim)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*lim.readTimeout+20*time.Second)
			defer cancel()
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`)
			}
			req, _ := http.NewRequestWithContext(ctx, method, "http://"+addr+"/stream", body)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if time.Since(start) > 3*lim.readTimeout {
					return
				}
			}
			t.Fatalf("the stream ended after %v (%v), want it going past %v", time.Since(start), sc.Err(), 3*lim.readTimeout)
		})
	}
}

// SEC-41: the overall cap defaults to below the open-file limit, the
// per-address cap to a few hundred; off is no cap.
func TestSEC41_LimitDefaults(t *testing.T) {
	cfg := config.Defaults()
	lim := limitsOf(&cfg, slog.New(slog.DiscardHandler))
	files, known := openFileLimit()
	if !known || lim.maxConns <= 0 || uint64(lim.maxConns) >= files || lim.perAddress != 256 {
		t.Fatalf("defaults: max %d, per address %d, file limit %d (known %v); want 0 < max < the file limit, and 256",
			lim.maxConns, lim.perAddress, files, known)
	}
	if lim.readTimeout != 30*time.Second || lim.headerTimeout != 10*time.Second {
		t.Fatalf("defaults: read %v, header %v; want 30s and 10s", lim.readTimeout, lim.headerTimeout)
	}
	// An upstream takes a connection of the gateway's per client request
	// in flight: the clients get half (SEC-210). Fails before: the same
	// three quarters, 30,000 descriptors at a limit of 20,000.
	for _, set := range []func(*config.Config){
		func(c *config.Config) { c.Upstream = "http://127.0.0.1:9/mcp" },
		func(c *config.Config) {
			c.Resources = []config.Resource{{Path: "/a"}, {Path: "/b", Backend: config.Backend{Upstream: "http://127.0.0.1:9/mcp"}}}
		},
	} {
		up := config.Defaults()
		set(&up)
		if got := limitsOf(&up, slog.New(slog.DiscardHandler)).maxConns; got != lim.maxConns/2 {
			t.Errorf("with an upstream: max %d, want half of %d", got, lim.maxConns)
		}
	}
	cfg.MaxConnections, cfg.MaxConnectionsPerAddress = -1, -1
	if lim := limitsOf(&cfg, slog.New(slog.DiscardHandler)); lim.maxConns != 0 || lim.perAddress != 0 {
		t.Fatalf("off: max %d, per address %d; want 0 and 0 (no cap)", lim.maxConns, lim.perAddress)
	}
}

// A connection cap that is off is logged as off, not as 0.
func TestSEC41_LimitsLoggedAsSet(t *testing.T) {
	cfg := config.Defaults()
	cfg.MaxConnections, cfg.MaxConnectionsPerAddress = -1, -1
	cfg.RequestReadTimeout = config.Duration(time.Hour)
	var out strings.Builder
	limitsOf(&cfg, slog.New(slog.NewTextHandler(&out, nil)))
	for _, want := range []string{"max_connections=off", "max_connections_per_address=off", "request_read_timeout=1h "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the start log lacks %s:\n%s", want, out.String())
		}
	}
}

// The admin password notice says what becomes of the password: kept
// hashed in the data directory, or, in the memory store, gone at exit,
// with a new one at every start; and, where kept, how to set another
// when it is lost.
func TestAdminNoticeFollowsTheStore(t *testing.T) {
	for _, tc := range []struct {
		store     string
		want, not string
	}{
		{"memory", "a new one is made at every start", "stored hashed"},
		{"sqlite:" + t.TempDir() + "/db", "it is stored hashed in", "every start"},
		{"sqlite:" + t.TempDir() + "/db", "Lost it? mcpgate users passwd admin sets another (with the same --data-dir)", "every start"},
		{pgtest.Start(t), "it is stored hashed in the PostgreSQL database", "every start"},
		{pgtest.Start(t), "Lost it? mcpgate users passwd admin sets another (with the same --store)", "every start"},
	} {
		cfg := config.Defaults()
		cfg.Store, cfg.DataDir = tc.store, t.TempDir()
		st, err := openStore(t.Context(), &cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		if err := ensureAdmin(t.Context(), &cfg, st, slog.New(slog.DiscardHandler), &out); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if !strings.Contains(out.String(), "Created local user \"admin\"") || !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), tc.not) {
			t.Errorf("store %s: the notice is\n%s\nwant it to say %q, and not %q", tc.store, out.String(), tc.want, tc.not)
		}
	}
}

// The OIDC provider is found at start; a wrong issuer stops mcpgate there,
// with a message that says what to fix, not at the first login.
func TestOIDCDiscoveryAtStart(t *testing.T) {
	doc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"issuer":"http://%s/other","authorization_endpoint":"http://%[1]s/a","token_endpoint":"http://%[1]s/t","jwks_uri":"http://%[1]s/k"}`, r.Host)
	}))
	defer doc.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for issuer, want := range map[string]string{
		doc.URL:            `names issuer "` + doc.URL + `/other"`,
		doc.URL + "/other": "",
		gone.URL:           "oidc: discovery at " + gone.URL,
	} {
		cfg := config.Defaults()
		cfg.OIDCIssuer, cfg.OIDCClientID = issuer, "mcpgate"
		cons, err := setupConnectors(t.Context(), &cfg, memory.New(), slog.New(slog.DiscardHandler), make([]byte, 32))
		switch {
		case want == "" && (err != nil || len(cons) != 1 || cons[0].ID() != "oidc"):
			t.Errorf("issuer %s: %v, %d connectors; want only oidc", issuer, err, len(cons))
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("issuer %s: %v; want an error saying %q", issuer, err, want)
		}
	}
}

// The flags' provider and the file's oidc_providers are all connectors, in
// that order, each under its own name and display name; with them only,
// there are no local accounts. A provider's problem at start names it.
func TestOIDCProvidersAreConnectors(t *testing.T) {
	doc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss, ok := strings.CutSuffix(r.URL.Path, "/.well-known/openid-configuration")
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"issuer":"http://%s%s","authorization_endpoint":"http://%[1]s/a","token_endpoint":"http://%[1]s/t","jwks_uri":"http://%[1]s/k"}`, r.Host, iss)
	}))
	defer doc.Close()
	cfg := config.Defaults()
	cfg.OIDCIssuer, cfg.OIDCClientID = doc.URL+"/flags", "mcpgate"
	cfg.OIDCProviders = []config.OIDCProvider{
		{Name: "corp-a", DisplayName: "Corp A", Issuer: doc.URL + "/a", ClientID: "a"},
		{Name: "corp-b", DisplayName: "Corp B", Issuer: doc.URL + "/b", ClientID: "b", ClientSecret: "s"},
	}
	cons, err := setupConnectors(t.Context(), &cfg, memory.New(), slog.New(slog.DiscardHandler), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cons {
		got = append(got, c.ID()+"="+c.DisplayName())
	}
	if want := "oidc=127.0.0.1 corp-a=Corp A corp-b=Corp B"; strings.Join(got, " ") != want {
		t.Fatalf("connectors %q, want %q", strings.Join(got, " "), want)
	}

	cfg.OIDCProviders[1].AuthParams = map[string]string{"state": "x"}
	if _, err := setupConnectors(t.Context(), &cfg, memory.New(), slog.New(slog.DiscardHandler), make([]byte, 32)); err == nil ||
		!strings.Contains(err.Error(), "oidc_providers[1]") || !strings.Contains(err.Error(), `"state"`) {
		t.Fatalf("a flow parameter in auth_params: %v, want an error naming oidc_providers[1] and the parameter", err)
	}
}

// Local users get their groups from each form of the setting: the flag
// with commas or pluses, the variable (whose commas separate accounts, so
// with pluses), and the file.
func TestLocalUserGroupsFromConfig(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/mcpgate.yaml"
	if err := os.WriteFile(file, []byte("local_users:\n  - \"dora[ops]:pw4\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want map[string][]string // user -> groups, each with the password "pw" + its number
	}{
		{args: []string{"--local-user", "alice[admins,devs]:pw1", "--local-user", "bob[admins+acme/platform]:pw2"},
			want: map[string][]string{"alice": {"admins", "devs"}, "bob": {"admins", "acme/platform"}}},
		{env: map[string]string{"MCPGATE_LOCAL_USERS": "alice[admins+devs]:pw1"},
			want: map[string][]string{"alice": {"admins", "devs"}}},
		{args: []string{"--config", file}, want: map[string][]string{"dora": {"ops"}}},
	} {
		cfg, err := config.Load(append(tc.args, "--store", "memory", "--data-dir", dir), func(k string) string { return tc.env[k] })
		if err != nil {
			t.Fatalf("%q %q: %v", tc.args, tc.env, err)
		}
		st, err := openStore(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		conns, err := setupConnectors(t.Context(), cfg, st, slog.New(slog.DiscardHandler), make([]byte, 32))
		if err != nil {
			t.Fatalf("%q %q: setupConnectors: %v", tc.args, tc.env, err)
		}
		lc := conns[0].(*local.Connector)
		for name, groups := range tc.want {
			pw := map[string]string{"alice": "pw1", "bob": "pw2", "dora": "pw4"}[name]
			u, err := lc.Login(t.Context(), name, pw)
			if err != nil || !slices.Equal(u.Groups, groups) {
				t.Errorf("%q %q: login %s = groups %q, %v; want %q", tc.args, tc.env, name, u.Groups, err, groups)
			}
		}
		st.Close()
	}
	cfg := config.Defaults()
	cfg.Store, cfg.DataDir, cfg.LocalUsers = "memory", dir, []string{"alice[bad group]:pw"}
	st, err := openStore(t.Context(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := setupConnectors(t.Context(), &cfg, st, slog.New(slog.DiscardHandler), make([]byte, 32)); err == nil || !strings.Contains(err.Error(), "invalid group") || strings.Contains(err.Error(), ":pw") {
		t.Errorf("a bad group: %v, want an error naming the invalid group and not the password", err)
	}
}

// --oidc-preset reaches the flags' connector: with entra, the common
// endpoint's discovery issuer, whose tenant is the {tenantid} placeholder,
// is accepted (each token is then checked against its tid), which the
// generic connector refuses; and the display name is the preset's.
func TestOIDCFlagsPresetReachesConnector(t *testing.T) {
	doc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/common/v2.0/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"issuer":"http://%s/{tenantid}/v2.0","authorization_endpoint":"http://%[1]s/a","token_endpoint":"http://%[1]s/t","jwks_uri":"http://%[1]s/k"}`, r.Host)
	}))
	defer doc.Close()
	cfg := config.Defaults()
	cfg.OIDCIssuer, cfg.OIDCClientID = doc.URL+"/common/v2.0", "mcpgate"
	if _, err := setupConnectors(t.Context(), &cfg, memory.New(), slog.New(slog.DiscardHandler), make([]byte, 32)); err == nil {
		t.Fatal("without the preset, a {tenantid} issuer was accepted; the test proves nothing")
	}
	cfg.OIDCPreset = "entra"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cons, err := setupConnectors(t.Context(), &cfg, memory.New(), slog.New(slog.DiscardHandler), make([]byte, 32))
	if err != nil || len(cons) != 1 || cons[0].ID() != "oidc" || cons[0].DisplayName() != "Microsoft" {
		t.Fatalf("--oidc-preset entra: %v, %d connectors; want the one connector oidc, shown as Microsoft", err, len(cons))
	}
}

// A setting that starts fine but likely does not do what was meant is
// warned about: a loopback public_url on a port mcpgate does not listen
// on, and an Entra ID provider open to every tenant.
func TestSetupWarnings(t *testing.T) {
	openKey, privateKey := filepath.Join(t.TempDir(), "open.key"), filepath.Join(t.TempDir(), "private.key")
	// And each as DATA-DIR/secret.key (SEC-171).
	openDataKey, privateDataKey := filepath.Join(filepath.Dir(openKey), "secret.key"), filepath.Join(filepath.Dir(privateKey), "secret.key")
	// Group-readable: by this process's own group (a Kubernetes Secret,
	// root:fsGroup 0440), or by another's.
	ownGroupKey, otherGroupKey := filepath.Join(t.TempDir(), "own-group.key"), filepath.Join(t.TempDir(), "other-group.key")
	for path, mode := range map[string]os.FileMode{openKey: 0o644, privateKey: 0o600, ownGroupKey: 0o440, otherGroupKey: 0o640, openDataKey: 0o644, privateDataKey: 0o600} {
		if err := os.WriteFile(path, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	// SEC-198: a key typed by hand, and a random one, both private.
	typedKey, randomKey := filepath.Join(t.TempDir(), "typed.key"), filepath.Join(t.TempDir(), "random.key")
	for path, text := range map[string]string{typedKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", randomKey: tokens.NewKeyText()} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A group none of this process's (the tests run as root, who may
	// give a file away).
	if err := os.Chown(otherGroupKey, -1, 54321); err != nil {
		t.Fatalf("giving the key file to another group: %v (the tests run as root)", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		addr string
		want []string // one substring per warning, in order
	}{
		{"defaults", func(*config.Config) {}, "127.0.0.1:8080", nil},
		{"public url on the listen port", func(c *config.Config) { c.PublicURL = "http://127.0.0.1:8080" }, "127.0.0.1:8080", nil},
		{"public url on another port", func(c *config.Config) { c.PublicURL = "http://127.0.0.1:54023" }, "127.0.0.1:8080",
			[]string{"public_url http://127.0.0.1:54023 is on port 54023 of this machine, but mcpgate listens on 127.0.0.1:8080"}},
		{"localhost without a port", func(c *config.Config) { c.PublicURL = "http://localhost" }, "127.0.0.1:8080",
			[]string{"is on port 80 of this machine"}},
		{"public host elsewhere", func(c *config.Config) { c.PublicURL = "https://mcp.example.com" }, "127.0.0.1:8080", nil},
		{"entra common", func(c *config.Config) {
			c.OIDCProviders = []config.OIDCProvider{{Name: "ms", Preset: "entra", Tenant: "common", ClientID: "x"}}
		}, "127.0.0.1:8080", []string{"provider ms lets in an account of any Microsoft Entra ID tenant"}},
		{"entra common, tenants listed", func(c *config.Config) {
			c.OIDCProviders = []config.OIDCProvider{{Name: "ms", Preset: "entra", Tenant: "common", ClientID: "x", AllowedTenants: []string{"t1"}}}
		}, "127.0.0.1:8080", nil},
		{"entra one tenant", func(c *config.Config) {
			c.OIDCProviders = []config.OIDCProvider{{Name: "ms", Preset: "entra", Tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47", ClientID: "x"}}
		}, "127.0.0.1:8080", nil},
		{"entra through the flags", func(c *config.Config) {
			c.OIDCPreset, c.OIDCIssuer = "entra", "https://login.microsoftonline.com/organizations/v2.0"
		}, "127.0.0.1:8080", []string{"provider oidc lets in an account of any Microsoft Entra ID tenant"}},
		// SEC-111: the providers share one namespace of groups, and anyone
		// can create a GitHub organization named as an admin group.
		{"admin groups with github groups", func(c *config.Config) {
			c.GitHubClientID, c.GitHubClientSecret, c.GitHubGroups, c.AdminGroups = "id", "secret", true, []string{"admins", "acme/ops"}
		}, "127.0.0.1:8080", []string{`admin_groups ["admins" "acme/ops"]: with github_groups on, every member of a GitHub organization or team of that name is an administrator`}},
		{"admin groups without github groups", func(c *config.Config) {
			c.GitHubClientID, c.GitHubClientSecret, c.AdminGroups = "id", "secret", []string{"admins"}
		}, "127.0.0.1:8080", nil},
		{"a secret key file others may read", func(c *config.Config) { c.SecretKeyFile = openKey }, "127.0.0.1:8080",
			[]string{"secret_key_file " + openKey + " is readable by others (mode 0644)"}},
		{"a private secret key file", func(c *config.Config) { c.SecretKeyFile = privateKey }, "127.0.0.1:8080", nil},
		{"a secret key file its own group may read", func(c *config.Config) { c.SecretKeyFile = ownGroupKey }, "127.0.0.1:8080", nil},
		{"a secret key file another group may read", func(c *config.Config) { c.SecretKeyFile = otherGroupKey }, "127.0.0.1:8080",
			[]string{"secret_key_file " + otherGroupKey + " is readable by others (mode 0640)"}},
		// SEC-171: DATA-DIR/secret.key as secret_key_file.
		{"a data directory key others may read", func(c *config.Config) { c.DataDir = filepath.Dir(openDataKey) }, "127.0.0.1:8080",
			[]string{openDataKey + " is readable by others (mode 0644)"}},
		{"a private data directory key", func(c *config.Config) { c.DataDir = filepath.Dir(privateDataKey) }, "127.0.0.1:8080", nil},
		{"postgres without a public url", func(c *config.Config) { c.Store = "postgres://mcpgate@127.0.0.1/mcpgate" }, "127.0.0.1:8080",
			[]string{"the store is PostgreSQL, which replicas share, and public_url is not set"}},
		{"postgres with a public url", func(c *config.Config) {
			c.Store, c.PublicURL = "postgres://mcpgate@127.0.0.1/mcpgate", "https://mcp.example.com"
		}, "127.0.0.1:8080", nil},
		{"a secret key typed by hand", func(c *config.Config) { c.SecretKeyFile = typedKey }, "127.0.0.1:8080",
			[]string{"the secret key in " + typedKey + " was typed by hand, not drawn at random"}},
		{"a random secret key", func(c *config.Config) { c.SecretKeyFile = randomKey }, "127.0.0.1:8080", nil},
		// SEC-198: a pre-registered client's secret of less than 128 bits.
		{"short client secrets", func(c *config.Config) {
			c.Clients = []config.StaticClient{{ID: "svc", Secret: "x"}, {ID: "long", Secret: strings.Repeat("s", 22)}, {ID: "public"}}
		}, "127.0.0.1:8080", []string{"client svc has a secret of 1 characters, which is quickly guessed: give it at least 22"}},
		// SEC-143: a configured password shorter than users add allows.
		{"short local user passwords", func(c *config.Config) {
			c.LocalUsers = []string{"alice:pw", "bob[devs]:short", "carol:long-enough", "dave:$2a$10$ao2L2.4gt8.uffJOmniEj.yzAMeWwmG16KBNXubGr7sKAsvlMDGFK", "eve:ééééééé"}
		}, "127.0.0.1:8080", []string{"local user alice has a password of 2 characters", "local user bob has a password of 5 characters",
			"local user eve has a password of 7 characters, which is quickly guessed: give it at least 8"}},
		{"github groups without admin groups", func(c *config.Config) {
			c.GitHubClientID, c.GitHubClientSecret, c.GitHubGroups = "id", "secret", true
		}, "127.0.0.1:8080", nil},
	} {
		cfg := config.Defaults()
		tc.edit(&cfg)
		got := setupWarnings(&cfg, tc.addr)
		ok := len(got) == len(tc.want)
		for i := 0; ok && i < len(got); i++ {
			ok = strings.Contains(got[i], tc.want[i])
		}
		if !ok {
			t.Errorf("%s: warnings %q; want %q", tc.name, got, tc.want)
		}
	}
}

// SEC-166: the GitHub connector's PKCE verifiers are derived from the
// secret key, as the OIDC connectors' login keys are: two replicas (or a
// process before and after a restart) send the same challenge for one
// state, so a login that starts on one completes on the other. Fails
// before this change: each process made a random key, and GitHub refused
// the verifier of a login that came back to another replica.
func TestSEC166_GitHubLoginCompletesOnAnotherReplica(t *testing.T) {
	cfg := config.Defaults()
	cfg.GitHubClientID, cfg.GitHubClientSecret = "gh-client", "gh-secret"
	challenge := func(secretKey []byte) string {
		cons, err := setupConnectors(t.Context(), &cfg, memory.New(), slog.New(slog.DiscardHandler), secretKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cons {
			if gh, ok := c.(upstream.CallbackConnector); ok && c.ID() == "github" {
				u, err := url.Parse(gh.LoginURL("one-state", "https://gw.example/callback/github"))
				if err != nil {
					t.Fatal(err)
				}
				return u.Query().Get("code_challenge")
			}
		}
		t.Fatal("no github connector")
		return ""
	}
	key, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a, b := challenge(key), challenge(key)
	if a == "" || a != b {
		t.Errorf("two replicas with one secret key: challenges %q and %q, want one, not empty", a, b)
	}
	if c := challenge(other); c == a {
		t.Errorf("another secret key gives the same challenge %q, want another", c)
	}
}

// SEC-116: with log_format json, the log's strings and errors, text from
// outside (a path, a tool's name, a server's stderr), hold no bidi
// override or C1 control, which the JSON handler would write raw and a
// terminal act on; the text format quotes them. Fails before this change.
func TestSEC116_JSONLogInert(t *testing.T) {
	var out bytes.Buffer
	w := logbuf.New(&out, 0)
	cfg := config.Defaults()
	cfg.LogFormat = "json"
	newLogger(&cfg, w).Info("request", "path", "/x\u202eevil\u009b2J", "err", errors.New("stderr: \u2066hidden"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []rune{'\u202e', '\u009b', '\u2066'} {
		if strings.ContainsRune(out.String(), r) {
			t.Errorf("the JSON log holds %U raw: %q", r, out.String())
		}
	}
	if !strings.Contains(out.String(), `"path":"/x`+"\ufffd"+`evil`) {
		t.Errorf("the JSON log %q, want the path with U+FFFD in place of the override", out.String())
	}
}

// A first start that fails (its address taken) creates no admin account,
// so the password shown once is shown by the start that serves, and says
// how to choose another address. Fails before: the account was made, its
// password printed above the error, and the next start showed none.
func TestFailedFirstStartKeepsTheAdminPasswordForTheNext(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := config.Defaults()
	cfg.DataDir, cfg.Listen = t.TempDir(), taken.Addr().String()
	var out strings.Builder
	err = Serve(t.Context(), &cfg, &out, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "--listen") || strings.Contains(out.String(), "Created local user") {
		t.Fatalf("serve on a taken address: %v, printed %q; want it refused, naming --listen, and no password shown", err, out.String())
	}
	cfg.Listen = "127.0.0.1:0"
	second := &countingWriter{}
	serveAWhile(t, &cfg, second)
	if printed, _ := second.state(); !strings.Contains(printed, "Created local user \"admin\" with password: ") {
		t.Errorf("the start that serves printed %q, want the admin password", printed)
	}
}

// serveAWhile runs Serve on cfg until it is ready, then stops it and
// waits for it to return.
func serveAWhile(t *testing.T, cfg *config.Config, stdout io.Writer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, stdout, io.Discard, ready) }()
	select {
	case <-ready:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	cancel()
	<-served
}

// The memory store keeps nothing past the process, as the README says, its
// secret key included: serve on it writes no DATA-DIR/secret.key. Fails
// before: the key was written to ./mcpgate-data.
func TestMemoryStoreWritesNoKey(t *testing.T) {
	cfg := config.Defaults()
	cfg.Store, cfg.DataDir, cfg.Listen = "memory", filepath.Join(t.TempDir(), "data"), "127.0.0.1:0"
	serveAWhile(t, &cfg, io.Discard)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "secret.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("serve on the memory store left %s: %v", filepath.Join(cfg.DataDir, "secret.key"), err)
	}
}

// serve names a data directory it made, whole: started from another
// directory, or with a typo, it would otherwise seem to have lost every
// registration. One that was there is not named.
func TestNewDataDirNamed(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dir := filepath.Join(t.TempDir(), "x", "mcpgate-data")
	note := noteNewDataDir(log, dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	note()
	if !strings.Contains(logs.String(), "a new data directory was made") || !strings.Contains(logs.String(), "dir="+dir) {
		t.Errorf("log after making %s:\n%s\nwant it named", dir, logs.String())
	}
	logs.Reset()
	noteNewDataDir(log, dir)()
	if logs.Len() != 0 {
		t.Errorf("log for a data directory that was there:\n%s\nwant nothing", logs.String())
	}
}

// SEC-198: a configuration file others may read, which holds secrets as
// written there, is warned of with the keys that hold them; one that
// takes them from the environment, or that only mcpgate reads, is not.
// Fails before: no warning.
func TestSEC198_ConfigFileWithSecretsReadableByOthers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcpgate.yaml")
	write := func(text string, mode os.FileMode) *config.Config {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		cfg, err := config.Load([]string{"--config", path, "--data-dir", dir}, func(name string) string {
			return map[string]string{"SVC_SECRET": strings.Repeat("v", 30)}[name]
		})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	const text = `github_client_id: gh
github_client_secret: literal-github-secret-000000
local_users: ["alice:long-enough-pw", "bob:$$2b$$10$$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"]
clients:
  - {id: svc, secret: "${SVC_SECRET}", redirect_uris: ["https://svc.example.com/cb"]}
`
	var found []string
	for _, w := range setupWarnings(write(text, 0o644), "127.0.0.1:8080") {
		if strings.Contains(w, "the configuration file") {
			found = append(found, w)
		}
	}
	if len(found) != 1 || !strings.Contains(found[0], "(mode 0644) and holds secrets (github_client_secret, local_users[0])") {
		t.Errorf("warnings about the file %q, want one naming github_client_secret and local_users[0] alone", found)
	}
	for _, w := range setupWarnings(write(text, 0o600), "127.0.0.1:8080") {
		if strings.Contains(w, "the configuration file") {
			t.Errorf("a file mcpgate alone reads: %q, want no warning", w)
		}
	}
}

// A second serve on an address in use fails before it makes anything:
// started from another directory, it left a new data directory there.
// Fails before: the data directory was made, then the listen failed.
func TestServeOnAnAddressInUseMakesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := config.Defaults()
	cfg.Listen, cfg.DataDir = busy.Addr().String(), filepath.Join(t.TempDir(), "mcpgate-data")
	err = Serve(t.Context(), &cfg, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "listen:") {
		t.Fatalf("serve on an address in use: %v, want the listen error", err)
	}
	if _, err := os.Stat(cfg.DataDir); err == nil {
		t.Error("serve made its data directory before finding the address in use")
	}
}
