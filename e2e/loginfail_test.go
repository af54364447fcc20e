package e2e

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

// pageRecorder keeps the body of the last response a browser received:
// a walk that stops at a page reports only its text, not its link.
type pageRecorder struct {
	mu   sync.Mutex
	body string
}

func (p *pageRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	p.mu.Lock()
	p.body = string(b)
	p.mu.Unlock()
	return resp, nil
}

// failedSignIn walks b from the provider's answer (back) through mcpgate
// and expects the page of a failed sign-in: status, title and message.
// Its link back must take code to a's redirect URI with a's state and
// mcpgate's issuer, never a code.
func failedSignIn(t *testing.T, ctx context.Context, b *browser.Browser, back string, a *chromiumAuthz, status int, title, message, code string) {
	t.Helper()
	rec := &pageRecorder{}
	b.Client.Transport = rec
	done, err := b.Walk(ctx, back, a.redirect)
	var pe *browser.PageError
	if !errors.As(err, &pe) {
		t.Fatalf("callback at mcpgate ended at %v (%v); want the page %q", done, err, title)
	}
	if pe.Status != status || !strings.Contains(pe.Text, title) || !strings.Contains(pe.Text, message) {
		t.Fatalf("page %d %q; want %d titled %q, saying %q", pe.Status, pe.Text, status, title, message)
	}
	rec.mu.Lock()
	body := rec.body
	rec.mu.Unlock()
	href := ""
	if _, rest, ok := strings.Cut(body, `id="back" href="`); ok {
		href, _, _ = strings.Cut(rest, `"`)
	}
	link, err := url.Parse(html.UnescapeString(href))
	if err != nil || !strings.HasPrefix(link.String(), a.redirect+"?") {
		t.Fatalf("the page's link back %q (%v); want one to %s", href, err, a.redirect)
	}
	if q := link.Query(); q.Get("error") != code || q.Get("state") != a.state || q.Get("iss") != a.base || q.Has("code") {
		t.Fatalf("the link back gives the client %v; want %s with state and iss, no code", q, code)
	}
}
