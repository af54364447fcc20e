package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

var requestID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// otlpReceiver is a local OTLP/HTTP collector: it keeps the spans of every
// POST /v1/traces with the service name of their resource.
type otlpReceiver struct {
	mu      sync.Mutex
	spans   []*tracepb.Span
	service []string // service.name of each span's resource
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(io.LimitReader(body, 16<<20))
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(raw, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		name := attr(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				o.spans = append(o.spans, s)
				o.service = append(o.service, name)
			}
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (o *otlpReceiver) received() ([]*tracepb.Span, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*tracepb.Span(nil), o.spans...), append([]string(nil), o.service...)
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			if s, ok := kv.Value.Value.(*commonpb.AnyValue_StringValue); ok {
				return s.StringValue
			}
			return fmt.Sprint(kv.Value.Value)
		}
	}
	return ""
}

// idRecorder keeps the X-Request-Id of every answer and the bearer token
// of every request it carries.
type idRecorder struct {
	mu     sync.Mutex
	ids    []string
	tokens []string
}

func (rt *idRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		rt.tokens = append(rt.tokens, t)
	}
	if err == nil {
		rt.ids = append(rt.ids, resp.Header.Get("X-Request-Id"))
	}
	return resp, err
}

// The binary with OTEL_EXPORTER_OTLP_ENDPOINT (SEC-103, SEC-104): a go-sdk
// client's flow and a tools/call reach a local OTLP receiver as spans
// named by route with the request id, and a tools/call span with the
// user, client, resource and tool; the upstream got a traceparent of the
// same trace; the tools/call's X-Request-Id is in the access log line,
// the audit line and the span; and no span holds the token or the code.
func TestBinaryTracing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()

	server := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "read_notes"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
	})
	var upMu sync.Mutex
	var traceparents []string
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upMu.Lock()
		traceparents = append(traceparents, r.Header.Get("Traceparent"))
		upMu.Unlock()
		mcpHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)

	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	cfgPath := filepath.Join(dir, "mcpgate.yaml")
	cfg := "local_users: [\"bob:" + password + "\"]\nupstream: " + up.URL + "/mcp\naudit_log: " + auditPath + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinaryWith(t, freePort(t), binaryOpts{env: []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL,
		"OTEL_BSP_SCHEDULE_DELAY=50",
		"OTEL_SERVICE_NAME=mcpgate-e2e",
	}}, "--data-dir", filepath.Join(dir, "data"), "--config", cfgPath)

	var codeMu sync.Mutex
	var code string
	b := browser.New("bob", password)
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		RedirectURL: callback,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			c, state, iss, err := b.Authorize(ctx, args.URL, callback)
			codeMu.Lock()
			code = c
			codeMu.Unlock()
			return &auth.AuthorizationResult{Code: c, State: state, Iss: iss}, err
		},
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "e2e tracing", RedirectURIs: []string{callback}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &idRecorder{}
	sess, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-tracing", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: p.base + "/mcp", OAuthHandler: h, HTTPClient: &http.Client{Transport: rec},
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, p.Stderr())
	}
	rec.mu.Lock()
	before := len(rec.ids)
	rec.mu.Unlock()
	if res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "read_notes"}); err != nil || res.IsError {
		t.Fatalf("read_notes: %v %+v", err, res)
	}
	rec.mu.Lock()
	callIDs := append([]string(nil), rec.ids[before:]...)
	tokens := append([]string(nil), rec.tokens...)
	rec.mu.Unlock()
	if len(callIDs) != 1 || !requestID.MatchString(callIDs[0]) {
		t.Fatalf("X-Request-Id of the tools/call's answer: %q, want one of 32 hex digits", callIDs)
	}
	callID := callIDs[0]
	sess.Close()

	// The spans arrive within OTEL_BSP_SCHEDULE_DELAY of their end: poll.
	var spans []*tracepb.Span
	var services []string
	var call *tracepb.Span
	for deadline := time.Now().Add(20 * time.Second); call == nil; time.Sleep(20 * time.Millisecond) {
		spans, services = recv.received()
		for _, s := range spans {
			if s.Name == "tools/call" {
				call = s
			}
		}
		if call == nil && time.Now().After(deadline) {
			t.Fatalf("no tools/call span in 20 s; %d spans\nstderr: %s", len(spans), p.Stderr())
		}
	}
	names := map[string]*tracepb.Span{}
	for i, s := range spans {
		names[s.Name] = s
		if services[i] != "mcpgate-e2e" {
			t.Errorf("span %q from service %q, want OTEL_SERVICE_NAME's mcpgate-e2e", s.Name, services[i])
		}
	}
	for _, route := range []string{"POST /register", "GET /authorize", "POST /token", "POST /mcp"} {
		s := names[route]
		if s == nil {
			t.Errorf("no span named %q", route)
			continue
		}
		if s.Kind != tracepb.Span_SPAN_KIND_SERVER || !requestID.MatchString(attr(s.Attributes, "mcpgate.request_id")) || attr(s.Attributes, "http.response.status_code") == "" {
			t.Errorf("span %q: kind %v attributes %v, want a server span with the request id and status code", route, s.Kind, s.Attributes)
		}
	}
	clientID := ""
	if len(tokens) > 0 {
		clientID = clientIDOf(t, tokens[len(tokens)-1])
	}
	for k, want := range map[string]string{"user.id": "local:bob", "mcpgate.client_id": clientID, "mcpgate.resource": "/mcp", "mcp.tool.name": "read_notes", "mcpgate.outcome": "ok", "mcpgate.request_id": callID} {
		if got := attr(call.Attributes, k); got != want || want == "" {
			t.Errorf("tools/call span %s = %q, want %q", k, got, want)
		}
	}

	// The upstream's request for the call carries the call's trace.
	traceID := hex.EncodeToString(call.TraceId)
	upMu.Lock()
	got := append([]string(nil), traceparents...)
	upMu.Unlock()
	found := false
	for _, tp := range got {
		found = found || strings.HasPrefix(tp, "00-"+traceID+"-")
	}
	if !found {
		t.Errorf("upstream traceparents %q, none of trace %s", got, traceID)
	}

	// The same id in the access log line and the audit line. Both may
	// reach their files a moment after the answer: poll.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		auditData, _ := os.ReadFile(auditPath)
		inLog := strings.Contains(p.Stderr(), `"request_id":"`+callID+`"`)
		inAudit := bytes.Contains(auditData, []byte(`"request_id":"`+callID+`"`))
		if inLog && inAudit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request id %s in the access log: %v, in the audit log: %v\naudit: %s\nstderr: %s", callID, inLog, inAudit, auditData, p.Stderr())
		}
	}

	codeMu.Lock()
	secrets := append([]string{code, password}, tokens...)
	codeMu.Unlock()
	if code == "" || len(tokens) == 0 {
		t.Fatalf("code %q, %d tokens: the secrets to look for are missing", code, len(tokens))
	}
	for _, s := range spans {
		text := s.Name + " " + fmt.Sprint(s.Attributes)
		for _, secret := range secrets {
			if secret != "" && strings.Contains(text, secret) {
				t.Errorf("span %q holds a secret: %s", s.Name, text)
			}
		}
	}
	p.stop(t)
}

// The spans still in the batch when the binary is stopped reach the
// collector before it exits: with a batch delay of ten minutes, only the
// flush at shutdown can send them (SEC-104).
func TestBinaryTracingFlushedAtExit(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	p := startBinaryWith(t, freePort(t), binaryOpts{env: []string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + collector.URL + "/v1/traces",
		"OTEL_BSP_SCHEDULE_DELAY=600000",
	}}, "--data-dir", t.TempDir())
	resp, err := http.Get(p.base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if spans, _ := recv.received(); len(spans) != 0 {
		t.Fatalf("%d spans before the exit, with a batch delay of 10 minutes", len(spans))
	}
	p.stop(t)
	spans, services := recv.received()
	found := false
	for i, s := range spans {
		found = found || s.Name == "GET /.well-known/oauth-authorization-server" && attr(s.Attributes, "mcpgate.request_id") == id && services[i] == "mcpgate"
	}
	if !found {
		t.Errorf("no span of the request %s (service mcpgate) after exit; %d spans", id, len(spans))
	}
}
