package tracing

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mcpgate/mcpgate/internal/audit"
)

func TestEnabled(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false},
	} {
		if got := Enabled(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("Enabled(%v) = %v, want %v", c.env, got, c.want)
		}
	}
}

func TestFromEnvOff(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tp, err := FromEnv(context.Background(), "v1")
	if tp != nil || err != nil {
		t.Fatalf("FromEnv without an endpoint = %v, %v; want nil, nil", tp, err)
	}
}

func TestFromEnvServiceName(t *testing.T) {
	for _, name := range []string{"", "gw-eu"} {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		t.Setenv("OTEL_SERVICE_NAME", name)
		tp, err := FromEnv(context.Background(), "v1.2.3")
		if err != nil || tp == nil {
			t.Fatalf("FromEnv: %v, %v", tp, err)
		}
		_, span := tp.Tracer(Scope).Start(context.Background(), "x")
		span.SetAttributes(attribute.String("long", strings.Repeat("a", 1000)))
		span.End()
		ro := span.(sdktrace.ReadOnlySpan)
		attrs := map[attribute.Key]string{}
		for _, kv := range ro.Resource().Attributes() {
			attrs[kv.Key] = kv.Value.String()
		}
		want := name
		if want == "" {
			want = "mcpgate"
		}
		if attrs["service.name"] != want || attrs["service.version"] != "v1.2.3" {
			t.Errorf("OTEL_SERVICE_NAME=%q: resource %v, want service.name %s, version v1.2.3", name, attrs, want)
		}
		if v := ro.Attributes()[0].Value.AsString(); len(v) != MaxAttributeLength {
			t.Errorf("an attribute of 1000 bytes kept %d, want %d", len(v), MaxAttributeLength)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = tp.Shutdown(ctx) // nothing listens at :1; the bound is what matters
		cancel()
	}
}

// With tracing off there is no span in the context, and neither the
// upstream's headers of a request without a trace context nor the
// tools/call cost anything; a client's traceparent passes, written again
// from its IDs and flags (SEC-104).
func TestOffCostsNothing(t *testing.T) {
	ctx := context.Background()
	h := http.Header{"Accept": {"application/json"}}
	e := audit.Event{User: "local:alice", Tool: "echo", Outcome: audit.OK}
	start := time.Now()
	if n := testing.AllocsPerRun(100, func() {
		Inject(ctx, h)
		ToolCall(ctx, start, e)
	}); n != 0 {
		t.Errorf("%v allocations with tracing off, want 0", n)
	}
	const sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if n := testing.AllocsPerRun(100, func() {
		h.Set("Traceparent", sent)
		Inject(ctx, h)
	}); n > 16 {
		t.Errorf("%v allocations to write a client's traceparent again with tracing off, want at most 16 (10 measured)", n)
	}
	if got := h.Get("Traceparent"); got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Errorf("the client's traceparent became %q with tracing off", got)
	}
}

func TestRequestSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	r, _ := http.NewRequest("BREW", "http://gw/mcp?code=secret", nil)
	r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	r.Header.Set("Tracestate", "client=chosen")
	ctx, span := StartRequest(context.Background(), tp.Tracer(Scope), r, "0123")
	out := http.Header{"Traceparent": {"client's"}, "Tracestate": {"client=chosen"}}
	Inject(ctx, out)
	ToolCall(ctx, time.Now().Add(-time.Millisecond), audit.Event{User: "local:alice", Client: "c1", Resource: "/mcp", Tool: "echo", Outcome: audit.Denied, Duration: time.Millisecond, RequestID: "0123"})
	EndRequest(span, "unmatched", "", 502)
	ended := rec.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans, want 2", len(ended))
	}
	call, req := ended[0], ended[1]
	if req.Name() != "unmatched" || req.Status().Code.String() != "Error" || req.Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("request span %q status %v parent %v", req.Name(), req.Status(), req.Parent())
	}
	for _, kv := range req.Attributes() {
		if kv.Key == "http.request.method" && kv.Value.AsString() != "_OTHER" {
			t.Errorf("method %q, want _OTHER for a made-up one", kv.Value.AsString())
		}
		if strings.Contains(kv.Value.String(), "secret") {
			t.Errorf("%s = %q carries the query", kv.Key, kv.Value.String())
		}
	}
	if call.Name() != "tools/call" || call.Parent().SpanID() != req.SpanContext().SpanID() || call.EndTime().Sub(call.StartTime()) != time.Millisecond {
		t.Errorf("tools/call span %q parent %v duration %v", call.Name(), call.Parent(), call.EndTime().Sub(call.StartTime()))
	}
	want := "00-" + req.SpanContext().TraceID().String() + "-" + req.SpanContext().SpanID().String() + "-01"
	if out.Get("Traceparent") != want || len(out["Traceparent"]) != 1 {
		t.Errorf("upstream traceparent %q, want %q", out["Traceparent"], want)
	}
}

// SEC-104: a caller's tracestate is its own text; it is neither kept in
// the gateway's spans (their exported trace state) nor passed to the
// upstream, where a tracing vendor would read it as the gateway's. The
// caller's traceparent still makes the request's span its child.
func TestSEC104_CallerTracestateDropped(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	r, _ := http.NewRequest(http.MethodPost, "http://gw/mcp", nil)
	r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	r.Header.Set("Tracestate", "vendor=caller-chosen,dd=s:2")
	ctx, span := StartRequest(context.Background(), tp.Tracer(Scope), r, "0123")
	out := http.Header{"Tracestate": {"vendor=caller-chosen"}}
	Inject(ctx, out)
	ToolCall(ctx, time.Now().Add(-time.Millisecond), audit.Event{User: "local:alice", Tool: "echo", Outcome: audit.OK, Duration: time.Millisecond})
	EndRequest(span, "POST /mcp", "/mcp", 200)
	if got := out.Values("Tracestate"); len(got) != 0 {
		t.Errorf("upstream tracestate %q, want none", got)
	}
	ended := rec.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans, want 2", len(ended))
	}
	for _, s := range ended {
		if ts := s.SpanContext().TraceState().String(); ts != "" {
			t.Errorf("span %q trace state %q, want empty", s.Name(), ts)
		}
		if s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("span %q trace %s, want the caller's", s.Name(), s.SpanContext().TraceID())
		}
	}
}

// SEC-104: without tracing (no span), the upstream still gets no
// tracestate of the caller's, and its traceparent as it came. Fails
// before this change: Inject left both as the client sent them.
func TestSEC104_CallerTracestateDroppedUntraced(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	out := http.Header{"Traceparent": {parent}, "Tracestate": {"vendor=user.id:local:admin"}}
	Inject(context.Background(), out)
	if got := out.Values("Tracestate"); len(got) != 0 || out.Get("Traceparent") != parent {
		t.Errorf("upstream tracestate %q, traceparent %q; want no tracestate, the traceparent as it came", got, out.Get("Traceparent"))
	}
}

// SEC-104: a caller's traceparent that says "not sampled" does not keep
// its request, and its tool calls, out of the traces: the gateway's
// sampler decides for a remote parent. Fails with the SDK's default
// sampler (parentbased_always_on): no span was recorded.
func TestSEC104_CallerCannotUnsample(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(Sampler))
	r, _ := http.NewRequest(http.MethodPost, "http://gw/mcp", nil)
	r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	ctx, span := StartRequest(context.Background(), tp.Tracer(Scope), r, "0123")
	ToolCall(ctx, time.Now().Add(-time.Millisecond), audit.Event{User: "local:alice", Tool: "echo", Outcome: audit.OK, Duration: time.Millisecond})
	EndRequest(span, "POST /mcp", "/mcp", 200)
	if n := len(rec.Ended()); n != 2 {
		t.Errorf("%d spans recorded for a request whose caller said not sampled, want 2 (the request, its tools/call)", n)
	}
}
