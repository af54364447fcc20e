package tracing

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/internal/audit"
)

// Scope is the instrumentation scope of the gateway's spans.
const Scope = "github.com/mcpgate/mcpgate"

// MaxAttributeLength bounds a span attribute's value unless
// OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT or OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT
// says otherwise: a tool name is the client's text, and a span is not the
// place for a megabyte of it.
const MaxAttributeLength = 256

// Enabled reports whether getenv names an OTLP endpoint for traces, the
// condition for tracing to be on.
func Enabled(getenv func(string) string) bool {
	if getenv("OTEL_SDK_DISABLED") == "true" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// FromEnv returns a tracer provider that exports spans over OTLP/HTTP as
// the standard OTEL_* variables say (endpoint, headers, timeout, batch
// delay, sampler), with the service name OTEL_SERVICE_NAME or "mcpgate";
// nil when tracing is off (Enabled). Shut it down at exit: it flushes the
// spans it holds.
func FromEnv(ctx context.Context, version string) (*sdktrace.TracerProvider, error) {
	if !Enabled(os.Getenv) {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", cmp.Or(os.Getenv("OTEL_SERVICE_NAME"), "mcpgate")),
			attribute.String("service.version", version),
		),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	limits := sdktrace.NewSpanLimits() // the OTEL_*_LIMIT variables
	if limits.AttributeValueLengthLimit < 0 {
		limits.AttributeValueLengthLimit = MaxAttributeLength
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithRawSpanLimits(limits)}
	if os.Getenv("OTEL_TRACES_SAMPLER") == "" { // else the SDK reads the operator's
		opts = append(opts, sdktrace.WithSampler(Sampler))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// Sampler samples every request, whatever the caller's traceparent says:
// its sampled flag is the caller's to set, and the SDK's default
// (parentbased_always_on) would let a caller that sends 00 hide its tool
// calls from the traces, and the upstream's too. Spans the gateway starts
// under its own follow their parent.
var Sampler = sdktrace.ParentBased(sdktrace.AlwaysSample(),
	sdktrace.WithRemoteParentSampled(sdktrace.AlwaysSample()),
	sdktrace.WithRemoteParentNotSampled(sdktrace.AlwaysSample()))

// Extract returns ctx with the remote parent h's traceparent names, if
// any and well-formed, without the caller's tracestate: that is the
// caller's text, which the spans would export and Inject would pass to
// the upstream as if the gateway had written it (SEC-104).
func Extract(ctx context.Context, h http.Header) context.Context {
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(h)))
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc.WithTraceState(trace.TraceState{}))
}

// Inject replaces h's trace context with ctx's span's, when ctx holds
// one: the upstream then sees its request as a child of the gateway's.
// Without a span (tracing off) h keeps the client's traceparent, written
// again from its IDs and flags alone, or none if it is not one; the
// client's tracestate, its own text, goes in neither case (SEC-104).
func Inject(ctx context.Context, h http.Header) {
	delete(h, "Tracestate")
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if _, sent := h["Traceparent"]; !sent {
			return // nothing to write: a request without costs nothing
		}
		ctx = Extract(ctx, h)
	}
	delete(h, "Traceparent")
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
}

// StartRequest starts the server span of r, whose parent is the caller's
// trace context if it sent one. Its name is the method until EndRequest
// knows the route.
func StartRequest(ctx context.Context, tracer trace.Tracer, r *http.Request, id string) (context.Context, trace.Span) {
	m := method(r.Method)
	return tracer.Start(Extract(ctx, r.Header), m,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", m),
			attribute.String("mcpgate.request_id", id),
		))
}

// EndRequest names span by route (low cardinality: the pattern that
// served the request, or "unmatched"), records the status and ends it.
// A 5xx is an error of the gateway's; a 4xx is the client's (the server
// span convention).
func EndRequest(span trace.Span, route, pattern string, status int) {
	span.SetName(route)
	attrs := []attribute.KeyValue{attribute.Int("http.response.status_code", status)}
	if pattern != "" {
		attrs = append(attrs, attribute.String("http.route", pattern))
	}
	span.SetAttributes(attrs...)
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// ToolCall records e as a span from start to now, a child of ctx's span;
// nothing when ctx's span is not recorded (tracing off, or not sampled).
func ToolCall(ctx context.Context, start time.Time, e audit.Event) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return
	}
	_, span := parent.TracerProvider().Tracer(Scope).Start(ctx, "tools/call",
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithTimestamp(start),
		trace.WithAttributes(
			attribute.String("mcp.method.name", "tools/call"),
			attribute.String("user.id", e.User),
			attribute.String("mcpgate.client_id", e.Client),
			attribute.String("mcpgate.resource", e.Resource),
			attribute.String("mcp.tool.name", e.Tool),
			attribute.String("mcpgate.outcome", string(e.Outcome)),
			attribute.String("mcpgate.request_id", e.RequestID),
		))
	if e.Outcome != audit.OK {
		span.SetStatus(codes.Error, string(e.Outcome))
	}
	span.End(trace.WithTimestamp(start.Add(e.Duration)))
}

// method is r's method when HTTP defines it, else _OTHER: a made-up
// method is the client's text (the semantic conventions' rule).
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodPut, http.MethodPatch:
		return m
	}
	return "_OTHER"
}
