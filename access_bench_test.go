package mcpgate_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
)

// BenchmarkServeHTTPHealthz is the gateway's per-request frame around the
// cheapest handler: the request id, the access line (JSON, discarded) and,
// tracing off, nothing else.
func BenchmarkServeHTTPHealthz(b *testing.B) {
	st := memory.New()
	g, err := mcpgate.New(context.Background(), mcpgate.Config{
		Store:      st,
		SecretKey:  bytes.Repeat([]byte{7}, 32),
		Connectors: []upstream.Connector{local.New(st, local.Options{})},
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close(context.Background())
	r := httptest.NewRequest("GET", "/healthz", nil)
	b.ReportAllocs()
	for b.Loop() {
		g.ServeHTTP(httptest.NewRecorder(), r)
	}
}
