package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"go.yaml.in/yaml/v3"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

// The deployment examples of docs/deploy.md (SEC-99): each snippet there
// is one of the files under deploy/, byte for byte, and the tests below
// run those files.

// repoFile reads a file of the repository (the tests run in e2e/).
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustReplace replaces old in s, which must hold it: a test whose edit no
// longer finds its target would test something else than the file.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q is not in the file any more: update the test with it", old)
	}
	return strings.ReplaceAll(s, old, new)
}

// needTool is the path of a program from a Debian package, or fails t
// with what to install: these tests never skip.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("%s not found: install Debian's %s package (make tools does, as root: apt-get install %s)", name, pkg, pkg)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// snippet is a code block of docs/deploy.md with the file it shows.
var snippet = regexp.MustCompile("(?s)<!-- (deploy/[^ ]+) -->\n```([a-z]*)\n(.*?)```\n")

var update = flag.Bool("update", false, "rewrite docs/deploy.md's code blocks from the files of deploy/")

// SEC-99: every code block of docs/deploy.md is a file of deploy/, the
// same bytes, and every file of deploy/ is shown there. With -update the
// blocks are written again from the files.
func TestSEC99_DeployDocShowsTheTestedFiles(t *testing.T) {
	doc := repoFile(t, "docs/deploy.md")
	if *update {
		doc = snippet.ReplaceAllStringFunc(doc, func(block string) string {
			m := snippet.FindStringSubmatch(block)
			return "<!-- " + m[1] + " -->\n```" + m[2] + "\n" + repoFile(t, m[1]) + "```\n"
		})
		if err := os.WriteFile("../docs/deploy.md", []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shown := map[string]bool{}
	for _, m := range snippet.FindAllStringSubmatch(doc, -1) {
		shown[m[1]] = true
		if want := repoFile(t, m[1]); m[3] != want {
			t.Errorf("docs/deploy.md shows %s other than it is: copy the file into the doc again", m[1])
		}
	}
	fences := regexp.MustCompile("(?m)^```").FindAllStringIndex(doc, -1)
	if len(fences) != 2*len(snippet.FindAllStringIndex(doc, -1)) {
		t.Errorf("docs/deploy.md has %d code fences for %d file snippets: every code block there must be a file of deploy/, marked <!-- deploy/NAME -->", len(fences), len(shown))
	}
	err := filepath.WalkDir("../deploy", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("..", p)
		if !shown[filepath.ToSlash(rel)] {
			t.Errorf("docs/deploy.md does not show %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// execArgs is the ExecStart= command line of a unit, split into words.
func execArgs(t *testing.T, unit string) []string {
	t.Helper()
	for _, l := range strings.Split(unit, "\n") {
		if rest, ok := strings.CutPrefix(l, "ExecStart="); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("the unit has no ExecStart=")
	return nil
}

// The systemd unit passes `systemd-analyze verify` (with the binary where
// ExecStart= names it), its hardening rates OK with `systemd-analyze
// security`, and its command line starts a gateway that answers /readyz.
func TestDeploySystemdUnit(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	unit := repoFile(t, "deploy/mcpgate.service")
	for _, want := range []string{"\nDynamicUser=yes\n", "\nProtectSystem=strict\n", "\nStateDirectory=mcpgate\n", "\nNoNewPrivileges=yes\n", "\nCapabilityBoundingSet=\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "mcpgate.service")
	if err := os.WriteFile(path, []byte(mustReplace(t, unit, "ExecStart=/usr/local/bin/mcpgate ", "ExecStart="+binPath+" ")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v, want no output\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--no-pager", path).CombinedOutput()
	level := regexp.MustCompile(`Overall exposure level for mcpgate.service: ([0-9.]+) (\S+)`).FindSubmatch(out)
	if err != nil || level == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if score, _ := strconv.ParseFloat(string(level[1]), 64); score > 2.5 {
		t.Errorf("systemd-analyze security rates the unit %s %s, want at most 2.5:\n%s", level[1], level[2], out)
	}

	// The command line, with the credentials and state directories where
	// systemd would make them.
	args := execArgs(t, unit)
	if args[0] != "/usr/local/bin/mcpgate" {
		t.Fatalf("ExecStart= runs %s, want /usr/local/bin/mcpgate", args[0])
	}
	creds, state := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(creds, "mcpgate.yaml"), []byte(fmt.Sprintf("local_users: [%q]\n", user+":"+password)), 0o600)
	port := freePort(t)
	line := strings.Join(args[1:], " ")
	line = mustReplace(t, line, "%d/", creds+"/")
	line = mustReplace(t, line, "--data-dir /var/lib/mcpgate", "--data-dir "+state)
	line = mustReplace(t, line, "--listen 127.0.0.1:8080", fmt.Sprintf("--listen 127.0.0.1:%d", port))
	p := startCommand(t, fmt.Sprintf("http://127.0.0.1:%d", port), append([]string{binPath}, strings.Fields(line)...), nil)
	wantReady(t, p.base)
	p.stop(t)
	if !fileExists(filepath.Join(state, "secret.key")) {
		t.Errorf("the gateway did not keep its secret key in the state directory")
	}
}

// wantReady fails t unless base's /readyz answers 200.
func wantReady(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz: %d, want 200", resp.StatusCode)
	}
}

// No Docker engine runs here: the Dockerfile's build command is run as it
// is written and must make a static binary, and its final stage must run
// that binary as a non-root user with its data in /data.
func TestDeployDockerfile(t *testing.T) {
	df := repoFile(t, "deploy/Dockerfile")
	stages := strings.Split(df, "\nFROM ")
	final := stages[len(stages)-1]
	for _, want := range []string{"gcr.io/distroless/static-debian12:nonroot\n", "\nUSER 65532:65532\n", "\nVOLUME /data\n", "\nEXPOSE 8080\n",
		`"--listen", "0.0.0.0:8080"`, `"--data-dir", "/data"`, "--chown=65532:65532 /out/data /data\n"} {
		if !strings.Contains(final, want) {
			t.Errorf("the final stage lacks %q", want)
		}
	}
	var build string
	for _, l := range strings.Split(df, "\n") {
		if cmd, ok := strings.CutPrefix(l, "RUN "); ok && strings.Contains(cmd, " go build ") {
			build = cmd
		}
	}
	if !strings.HasPrefix(build, "CGO_ENABLED=0 ") {
		t.Fatalf("the build command %q does not turn cgo off", build)
	}
	bin := filepath.Join(t.TempDir(), "mcpgate")
	cmd := exec.Command("sh", "-c", mustReplace(t, build, "-o /out/mcpgate", "-o "+bin))
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION=deploy-test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build: %v\n%s", err, out)
	}
	out, _ := exec.Command(needTool(t, "ldd", "libc-bin"), bin).CombinedOutput()
	if !strings.Contains(string(out), "not a dynamic executable") {
		t.Errorf("ldd on the built binary: %s, want \"not a dynamic executable\"", out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "mcpgate deploy-test" {
		t.Errorf("the built binary's version: %v %q, want \"mcpgate deploy-test\" (the VERSION build argument)", err, out)
	}
}

// The Kubernetes objects, as much of them as the test reads.
type (
	k8sMeta struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
	}
	k8sSecret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	k8sService struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	k8sProbe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	k8sContainer struct {
		Args []string `yaml:"args"`
		Env  []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		LivenessProbe  k8sProbe `yaml:"livenessProbe"`
		ReadinessProbe k8sProbe `yaml:"readinessProbe"`
		VolumeMounts   []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	k8sDeployment struct {
		Spec struct {
			Template struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
				Spec struct {
					Containers []k8sContainer `yaml:"containers"`
					Volumes    []struct {
						Name   string `yaml:"name"`
						Secret *struct {
							SecretName  string `yaml:"secretName"`
							DefaultMode int    `yaml:"defaultMode"`
							Items       []struct {
								Key  string `yaml:"key"`
								Path string `yaml:"path"`
							} `yaml:"items"`
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
)

// k8sObject decodes deploy/k8s/NAME, after checking its kind.
func k8sObject(t *testing.T, name, kind string, v any) string {
	t.Helper()
	src := repoFile(t, "deploy/k8s/"+name)
	var meta k8sMeta
	if err := yaml.Unmarshal([]byte(src), &meta); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if meta.Kind != kind {
		t.Fatalf("%s is a %q, want a %s", name, meta.Kind, kind)
	}
	if err := yaml.Unmarshal([]byte(src), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return meta.Metadata.Name
}

// argValue is the value after flag in args.
func argValue(t *testing.T, args []string, flag string) string {
	t.Helper()
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("the container's args lack %s", flag)
	return ""
}

// The Kubernetes manifests fit together and fit mcpgate: the probes ask
// /healthz and /readyz on the port the container listens on, the Secret's
// key file is mounted where --secret-key-file reads it, the Service sends
// to that port; and the container's args and environment, run here (on
// loopback, with a key file and the memory store), make a gateway whose
// probes answer 200.
func TestDeployKubernetesManifests(t *testing.T) {
	var secret k8sSecret
	var svc k8sService
	var dep k8sDeployment
	secretName := k8sObject(t, "secret.yaml", "Secret", &secret)
	k8sObject(t, "service.yaml", "Service", &svc)
	k8sObject(t, "deployment.yaml", "Deployment", &dep)
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Ports) != 1 {
		t.Fatalf("%d container ports, want 1", len(c.Ports))
	}
	portName, port := c.Ports[0].Name, c.Ports[0].ContainerPort
	if argValue(t, c.Args, "--max-connections-per-address") == "off" && !slices.Contains(c.Args, "--trusted-proxy") {
		t.Error("the per-address cap is off for the ingress, but --trusted-proxy does not name it: every client would share its limits")
	}
	if listen := argValue(t, c.Args, "--listen"); listen != fmt.Sprintf("0.0.0.0:%d", port) {
		t.Errorf("--listen %s, want 0.0.0.0:%d, the container port", listen, port)
	}
	if p := c.LivenessProbe.HTTPGet; p.Path != "/healthz" || p.Port != portName {
		t.Errorf("liveness probe %+v, want /healthz on port %s", p, portName)
	}
	if p := c.ReadinessProbe.HTTPGet; p.Path != "/readyz" || p.Port != portName {
		t.Errorf("readiness probe %+v, want /readyz on port %s", p, portName)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != portName {
		t.Errorf("the Service sends to %+v, want the port %s", svc.Spec.Ports, portName)
	}
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the Service selects %s=%s, which the pods lack", k, v)
		}
	}
	keyFile := argValue(t, c.Args, "--secret-key-file")
	mounted := false
	for _, v := range pod.Volumes {
		if v.Secret == nil || v.Secret.SecretName != secretName {
			continue
		}
		for _, m := range c.VolumeMounts {
			for _, it := range v.Secret.Items {
				if m.Name == v.Name && m.MountPath+"/"+it.Path == keyFile {
					mounted = true
					if _, ok := secret.StringData[it.Key]; !ok {
						t.Errorf("the Secret has no key %s", it.Key)
					}
					if v.Secret.DefaultMode&0o040 == 0 {
						t.Errorf("the key file's mode %#o: the pod's group (fsGroup) cannot read it", v.Secret.DefaultMode)
					}
				}
			}
		}
	}
	if !mounted {
		t.Errorf("no volume of the Secret %s puts a file at %s (--secret-key-file)", secretName, keyFile)
	}

	// Run what the container runs.
	env := []string{"MCPGATE_STORE=memory"}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil:
			if e.ValueFrom.SecretKeyRef.Name != secretName || secret.StringData[e.ValueFrom.SecretKeyRef.Key] == "" {
				t.Errorf("%s comes from %+v, which the Secret does not hold", e.Name, e.ValueFrom.SecretKeyRef)
			}
		default:
			env = append(env, e.Name+"="+e.Value)
		}
	}
	key, err := exec.Command(binPath, "keys", "new-secret").Output()
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(t.TempDir(), "secret.key")
	os.WriteFile(keyPath, key, 0o400)
	local := freePort(t)
	if c.Args[0] != "serve" {
		t.Fatalf("the container runs %q, want serve", c.Args[0])
	}
	args := strings.Join(c.Args, "\x00")
	args = mustReplace(t, args, fmt.Sprintf("--listen\x000.0.0.0:%d", port), fmt.Sprintf("--listen\x00127.0.0.1:%d", local))
	args = mustReplace(t, args, "--secret-key-file\x00"+keyFile, "--secret-key-file\x00"+keyPath)
	args = mustReplace(t, args, "--data-dir\x00/data", "--data-dir\x00"+t.TempDir())
	p := startCommand(t, fmt.Sprintf("http://127.0.0.1:%d", local), append([]string{binPath}, strings.Split(args, "\x00")...), env)
	wantReady(t, p.base)
	p.stop(t)
}

// testCert makes a self-signed certificate for localhost and 127.0.0.1 in
// dir and returns the paths of it and its key, and a pool that trusts it.
func testCert(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// streamingUpstream is an MCP server with one tool, "hold": it sends a
// progress notification, then holds its answer (and so its event stream)
// open until the client has seen that notification, or for 20 s. Its
// result says which came first.
func streamingUpstream(t *testing.T, seen <-chan struct{}) *httptest.Server {
	t.Helper()
	server := mcp.NewServer(&mcp.Implementation{Name: "streaming", Version: "1"}, nil)
	server.AddTool(&mcp.Tool{Name: "hold", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: 1, Message: "first event"})
		if err != nil {
			return nil, err
		}
		text := "the client saw the event while the stream was open"
		select {
		case <-seen:
		case <-time.After(20 * time.Second):
			text = "the event did not reach the client within 20 s of being sent"
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil
	})
	s := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(s.Close)
	return s
}

// eventThroughProxy logs in through the proxy at public (TLS, trusted by
// pool) with the go-sdk client, calls the streaming upstream's tool and
// fails t unless the progress event reached the client before the
// upstream ended the stream.
func eventThroughProxy(t *testing.T, public string, pool *x509.CertPool, seen chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	b := browser.New(user, password)
	b.Client.Transport = tr
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		RedirectURL: callback,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			code, state, iss, err := b.Authorize(ctx, args.URL, callback)
			if err != nil {
				return nil, err
			}
			return &auth.AuthorizationResult{Code: code, State: state, Iss: iss}, nil
		},
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "behind a proxy", RedirectURIs: []string{callback}, TokenEndpointAuthMethod: "none",
		}},
		Client: &http.Client{Transport: tr},
	})
	if err != nil {
		t.Fatal(err)
	}
	once := make(chan struct{}, 1)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			select {
			case once <- struct{}{}:
				close(seen)
			default:
			}
		},
	})
	// No standalone event stream (GET): it outlives ctx, and a proxy that
	// buffers holds back its headers, and so Connect, for good. The
	// stream under test is the tool call's.
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: public + "/mcp", HTTPClient: &http.Client{Transport: tr},
		OAuthHandler: h, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatalf("connecting through the proxy: %v", err)
	}
	defer sess.Close()
	params := &mcp.CallToolParams{Name: "hold"}
	params.SetProgressToken("p1")
	res, err := sess.CallTool(ctx, params)
	if err != nil || res.IsError || len(res.Content) != 1 {
		t.Fatalf("hold: %v %+v", err, res)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != "the client saw the event while the stream was open" {
		t.Errorf("through the proxy: %s; want the event passed on at once (the proxy buffers the stream)", got)
	}
}

// proxiedGateway starts mcpgate serve on loopback in front of a streaming
// upstream, with the public URL the proxy serves.
func proxiedGateway(t *testing.T, gwPort int, public string, seen chan struct{}) *process {
	t.Helper()
	up := streamingUpstream(t, seen)
	return startBinary(t, gwPort, "--data-dir", t.TempDir(), "--local-user", user+":"+password, "--public-url", public,
		"--upstream", up.URL+"/mcp", "--max-connections-per-address", "off")
}

// nginx runs with deploy/nginx.conf as its one server, on loopback ports
// and the test's certificate, in front of `mcpgate serve` with the public
// URL nginx serves: `nginx -t` passes, the OAuth flow works through it,
// and an event of an SSE stream reaches the client while the upstream
// still holds the stream open.
func TestDeployNginx(t *testing.T) {
	nginx := needTool(t, "nginx", "nginx")
	dir := t.TempDir()
	certPath, keyPath, pool := testCert(t, dir)
	port, gwPort := freePort(t), freePort(t)
	site := repoFile(t, "deploy/nginx.conf")
	site = mustReplace(t, site, "listen 443 ssl;", fmt.Sprintf("listen 127.0.0.1:%d ssl;", port))
	site = mustReplace(t, site, "listen [::]:443 ssl;", "")
	site = mustReplace(t, site, "/etc/letsencrypt/live/mcp.example.com/fullchain.pem", certPath)
	site = mustReplace(t, site, "/etc/letsencrypt/live/mcp.example.com/privkey.pem", keyPath)
	site = mustReplace(t, site, "proxy_pass http://127.0.0.1:8080;", fmt.Sprintf("proxy_pass http://127.0.0.1:%d;", gwPort))
	if !strings.Contains(site, "--public-url https://mcp.example.com --listen 127.0.0.1:8080") {
		t.Error("the example no longer says which --public-url and --listen mcpgate needs behind it")
	}
	os.WriteFile(filepath.Join(dir, "site.conf"), []byte(site), 0o644)
	var worker string
	if os.Geteuid() == 0 {
		// Workers otherwise run as nobody, who cannot enter the test's
		// temporary directories.
		worker = "user root;\n"
	}
	mainConf := fmt.Sprintf("%spid %[2]s/nginx.pid;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path %[2]s/body;\n  proxy_temp_path %[2]s/proxy;\n"+
		"  fastcgi_temp_path %[2]s/fastcgi;\n  uwsgi_temp_path %[2]s/uwsgi;\n  scgi_temp_path %[2]s/scgi;\n  include %[2]s/site.conf;\n}\n", worker, dir)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(mainConf), 0o644)
	base := []string{"-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf")}
	if out, err := exec.Command(nginx, append(base, "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}

	public := fmt.Sprintf("https://localhost:%d", port)
	seen := make(chan struct{})
	p := proxiedGateway(t, gwPort, public, seen)
	defer p.stop(t)
	startProxy(t, port, exec.Command(nginx, append(base, "-g", "daemon off;")...), filepath.Join(dir, "error.log"))
	eventThroughProxy(t, public, pool, seen)
}

// Caddy runs deploy/Caddyfile: `caddy validate` passes on the file as it
// is, and with its site on a loopback port and the test's certificate
// (Caddy's own certificates need a public name) it carries the OAuth flow
// and an SSE event to the client while the upstream holds the stream open.
func TestDeployCaddy(t *testing.T) {
	caddy := needTool(t, "caddy", "caddy")
	dir := t.TempDir()
	// Caddy keeps its state under these, never in the test's home.
	env := append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir)
	site := repoFile(t, "deploy/Caddyfile")
	orig := filepath.Join(dir, "Caddyfile.orig")
	os.WriteFile(orig, []byte(site), 0o644)
	validate := exec.Command(caddy, "validate", "--adapter", "caddyfile", "--config", orig)
	validate.Env = env
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}

	certPath, keyPath, pool := testCert(t, dir)
	port, gwPort := freePort(t), freePort(t)
	site = mustReplace(t, site, "\nmcp.example.com {\n", fmt.Sprintf("\nhttps://localhost:%d {\n\ttls %s %s\n", port, certPath, keyPath))
	site = mustReplace(t, site, "reverse_proxy 127.0.0.1:8080 {", fmt.Sprintf("reverse_proxy 127.0.0.1:%d {", gwPort))
	if !strings.Contains(site, "--public-url https://mcp.example.com --listen 127.0.0.1:8080") {
		t.Error("the example no longer says which --public-url and --listen mcpgate needs behind it")
	}
	global := "{\n\tadmin off\n\tauto_https disable_redirects\n}\n"
	conf := filepath.Join(dir, "Caddyfile")
	os.WriteFile(conf, []byte(global+site), 0o644)

	public := fmt.Sprintf("https://localhost:%d", port)
	seen := make(chan struct{})
	p := proxiedGateway(t, gwPort, public, seen)
	defer p.stop(t)
	run := exec.Command(caddy, "run", "--adapter", "caddyfile", "--config", conf)
	run.Env = env
	startProxy(t, port, run, "")
	eventThroughProxy(t, public, pool, seen)
}

// startProxy starts cmd, a proxy that will listen on port, and waits
// until it accepts connections; SIGTERM stops it when the test ends.
// logPath, if not empty, is its log, shown if it exits early.
func startProxy(t *testing.T, port int, cmd *exec.Cmd, logPath string) {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// Should the test binary die (a timeout), the proxy dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-exited:
			var log []byte
			if logPath != "" {
				log, _ = os.ReadFile(logPath)
			}
			t.Fatalf("%s exited: %v\n%s\n%s", cmd.Path, waitErr, out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on port %d after 30 s", cmd.Path, port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
