package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxToolNames bounds the tool names that become a label value, per
// resource: a backend that lists more (or answers calls to any name) has
// the rest counted as "other".
const MaxToolNames = 100

// maxToolName is the longest tool name kept as a label (the MCP
// specification's limit for a tool name is 128 characters).
const maxToolName = 128

// Outcomes of a tool call, as the label says them.
const (
	ToolOK     = "ok"     // a result
	ToolError  = "error"  // a result with isError, a JSON-RPC error, or no answer
	ToolDenied = "denied" // refused by the tool policy, never sent to the backend
	// ToolRateLimited: over a rate limit, never sent to the backend.
	ToolRateLimited = "rate_limited"
)

// OtherTool is the tool label of a name that is not one of the resource's
// known tools.
const OtherTool = "other"

// Unmatched is the route label of a request that no route served.
const Unmatched = "unmatched"

// latencyBuckets cover a token check answered from memory (well under a
// millisecond) to a slow tool (tens of seconds); an event stream, which
// lasts as long as its client, lands in +Inf.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics holds the gateway's collectors on their own registry. A nil
// *Metrics counts nothing.
type Metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	oauthSteps    *prometheus.CounterVec
	tokenChecks   *prometheus.CounterVec
	tokenOK       prometheus.Counter // tokenChecks' ok, looked up once: the check of every request
	toolCalls     *prometheus.CounterVec
	toolLatency   *prometheus.HistogramVec
	backendErrors *prometheus.CounterVec
	stdio         *prometheus.GaugeVec
	streams       *prometheus.GaugeVec

	tools sync.Map // resource → *toolNames
}

// New returns Metrics on a registry of their own, with the Go runtime's
// and the process's collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpgate_http_requests_total",
		Help: "HTTP requests answered, by route (the pattern that served it) and status code.",
	}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcpgate_http_request_duration_seconds",
		Help:    "Time from a request's arrival to the end of its answer, by route; an event stream counts until it ends.",
		Buckets: latencyBuckets,
	}, []string{"route"})
	m.oauthSteps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpgate_oauth_steps_total",
		Help: "Steps of the OAuth flow (register, authorize, login, consent, callback, token_<grant type>, revoke, introspect), by outcome: ok, the OAuth error code, refused (a page) or server_error.",
	}, []string{"step", "outcome"})
	m.tokenChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpgate_token_checks_total",
		Help: "Access token checks at the protected resources, by outcome.",
	}, []string{"outcome"})
	m.toolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpgate_tool_calls_total",
		Help: "tools/call requests, by resource, tool (a name the backend listed or answered, else other) and outcome: ok, error, denied or rate_limited.",
	}, []string{"resource", "tool", "outcome"})
	m.toolLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcpgate_tool_call_duration_seconds",
		Help:    "Time from a tools/call's arrival to its answer, by resource.",
		Buckets: latencyBuckets,
	}, []string{"resource"})
	m.backendErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpgate_backend_errors_total",
		Help: "Failures to reach or keep an MCP backend, by resource and kind.",
	}, []string{"resource", "kind"})
	m.stdio = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mcpgate_stdio_processes",
		Help: "stdio MCP server processes running, by resource.",
	}, []string{"resource"})
	m.streams = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mcpgate_event_streams_open",
		Help: "Event streams (GET on a protected resource) open, by resource.",
	}, []string{"resource"})
	m.tokenOK = m.tokenChecks.WithLabelValues("ok")
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency, m.oauthSteps, m.tokenChecks, m.toolCalls, m.toolLatency,
		m.backendErrors, m.stdio, m.streams,
	)
	return m
}

// FlowEventsLost exports the flow debugger's counts of events it did not
// keep (internal/flows.Recorder): dropped (its queue full, a write failed)
// and limited (a caller over the recording rate, SEC-119), read at each
// scrape. Call it once, with the gateway's recorder.
func (m *Metrics) FlowEventsLost(dropped, limited func() uint64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mcpgate_flow_events_dropped_total",
			Help: "Flow debugger events dropped: its queue was full (the store slow or down) or their write failed.",
		}, func() float64 { return float64(dropped()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mcpgate_flow_events_limited_total",
			Help: "Flow debugger events left out because their caller (an address, an attempt, a grant) was over the recording rate.",
		}, func() float64 { return float64(limited()) }),
	)
}

// Handler serves the metrics in the Prometheus exposition format; on nil,
// 404. Serve it on the metrics listener only (SEC-89).
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the registry the collectors are on, for tests and for a
// library user who serves it with collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Request counts an answered request. r must have been through the
// gateway's mux, which set r.Pattern.
func (m *Metrics) Request(r *http.Request, code int, d time.Duration) {
	if m == nil {
		return
	}
	route := RouteOf(r)
	m.requests.WithLabelValues(route, statusLabel(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// RouteOf is the route label of r: the pattern that served it, led by its
// method when the pattern has none (a resource's path serves GET, POST
// and DELETE, whose times differ by far), or Unmatched.
func RouteOf(r *http.Request) string {
	p := r.Pattern
	switch {
	case p == "":
		return Unmatched
	case strings.IndexByte(p, ' ') >= 0:
		return p
	}
	return methodLabel(r.Method) + " " + p
}

// methodLabel keeps the methods HTTP defines; a made-up one is OTHER.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodPut, http.MethodPatch:
		return m
	}
	return "OTHER"
}

// statusCodes are the labels of the status codes, made once.
var statusCodes = func() (out [1000]string) {
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}()

func statusLabel(code int) string {
	if code < 0 || code >= len(statusCodes) {
		return "other"
	}
	return statusCodes[code]
}

// OAuthStep counts one request to a step of the OAuth flow; outcome is
// "ok" or the OAuth error code (a constant of package oauth).
func (m *Metrics) OAuthStep(step, outcome string) {
	if m == nil {
		return
	}
	m.oauthSteps.WithLabelValues(step, outcome).Inc()
}

// TokenCheck counts one check of a request's access token at a resource.
func (m *Metrics) TokenCheck(outcome string) {
	switch {
	case m == nil:
	case outcome == "ok":
		m.tokenOK.Inc()
	default:
		m.tokenChecks.WithLabelValues(outcome).Inc()
	}
}

// ListedTool records that the backend of resource listed a tool named
// name: its calls are counted under that name.
func (m *Metrics) ListedTool(resource, name string) {
	if m == nil {
		return
	}
	m.toolsOf(resource).add(name)
}

// ToolCall counts one tools/call of tool at resource, and its time.
// answered says that the backend answered it with a result that is no
// error, which shows that the tool exists: its name may then become a
// label. A result with isError shows nothing: some servers answer a call
// to any name with one (SEC-90). outcome is ToolOK, ToolError or ToolDenied.
func (m *Metrics) ToolCall(resource, tool, outcome string, answered bool, d time.Duration) {
	if m == nil {
		return
	}
	names := m.toolsOf(resource)
	if answered {
		names.add(tool)
	}
	m.toolCalls.WithLabelValues(resource, names.label(tool), outcome).Inc()
	m.toolLatency.WithLabelValues(resource).Observe(d.Seconds())
}

// Backend makes resource's backend series at zero, one per kind of
// failure its backend reports, and the stdio processes' gauge when stdio:
// a series that is there before its first failure shows that failure to
// rate() and to an alert, and a scrape shows every backend from the start.
func (m *Metrics) Backend(resource string, stdio bool, kinds ...string) {
	if m == nil {
		return
	}
	for _, k := range kinds {
		m.backendErrors.WithLabelValues(resource, k)
	}
	if stdio {
		m.stdio.WithLabelValues(resource)
	}
}

// BackendError counts a failure to reach or keep resource's backend;
// kind is a constant of the reporting package.
func (m *Metrics) BackendError(resource, kind string) {
	if m == nil {
		return
	}
	m.backendErrors.WithLabelValues(resource, kind).Inc()
}

// StdioProcesses adds n (negative when they exit) to the stdio server
// processes running for resource.
func (m *Metrics) StdioProcesses(resource string, n int) {
	if m == nil {
		return
	}
	m.stdio.WithLabelValues(resource).Add(float64(n))
}

// EventStreams adds n (negative when they end) to the event streams open
// at resource.
func (m *Metrics) EventStreams(resource string, n int) {
	if m == nil {
		return
	}
	m.streams.WithLabelValues(resource).Add(float64(n))
}

func (m *Metrics) toolsOf(resource string) *toolNames {
	if t, ok := m.tools.Load(resource); ok {
		return t.(*toolNames)
	}
	t, _ := m.tools.LoadOrStore(resource, &toolNames{names: map[string]bool{}})
	return t.(*toolNames)
}

// toolNames are the tool names of one resource that are label values.
type toolNames struct {
	mu    sync.RWMutex
	names map[string]bool
}

func (t *toolNames) add(name string) {
	if name == "" || len(name) > maxToolName || !utf8.ValidString(name) || name == OtherTool {
		return
	}
	t.mu.RLock()
	known, full := t.names[name], len(t.names) >= MaxToolNames
	t.mu.RUnlock()
	if known || full {
		return
	}
	t.mu.Lock()
	if len(t.names) < MaxToolNames {
		t.names[name] = true
	}
	t.mu.Unlock()
}

func (t *toolNames) label(name string) string {
	t.mu.RLock()
	known := t.names[name]
	t.mu.RUnlock()
	if known {
		return name
	}
	return OtherTool
}
