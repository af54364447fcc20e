package flows

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
)

var at = time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)

func seeded(t *testing.T) *memory.Store {
	t.Helper()
	st := memory.New()
	err := st.AppendFlowEvents(context.Background(), []store.FlowEvent{
		{Time: at, Attempt: "a1", ClientID: "<script>alert(1)</script>", Step: StepAuthorize, Outcome: "invalid_redirect_uri",
			Reason:  "redirect_uri http://127.0.0.1:33418/cb<script>x</script> is not registered for this client; registered: http://127.0.0.1:1/cb",
			Details: map[string]string{"redirect_uri": "http://127.0.0.1:33418/cb\"><script>y</script>"}},
		{Time: at.Add(time.Second), Attempt: "a2", ClientID: "good", Step: StepAuthorize, Outcome: OutcomeOK},
		{Time: at.Add(2 * time.Second), Attempt: "a2", ClientID: "good", UserID: "local:alice", Step: StepLogin, Outcome: OutcomeOK},
		{Time: at.Add(3 * time.Second), Attempt: "a2", ClientID: "good", UserID: "local:alice", Step: StepTokenCode, Outcome: OutcomeOK},
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func get(t *testing.T, h http.Handler, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(body)
}

// SEC-116: what clients sent is escaped on the page, which may not be
// framed; the search form filters by client, user and outcome.
func TestSEC116_HandlerEscapesAndSearches(t *testing.T) {
	h := Handler(seeded(t), nil, func() time.Time { return at.Add(time.Hour) })
	resp, body := get(t, h, "/admin/flows")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if strings.Contains(body, "<script>") {
		t.Fatalf("a client's <script> reached the page unescaped:\n%s", body)
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "is not registered for this client; registered: http://127.0.0.1:1/cb",
		"&#34;&gt;&lt;script&gt;y&lt;/script&gt;", "local:alice", "went through, up to token_code", `name="client"`, `name="user"`, `name="outcome"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("page may be framed: %v", resp.Header)
	}
	// Latest first.
	if strings.Index(body, "local:alice") > strings.Index(body, "alert(1)") {
		t.Error("attempts not latest first")
	}

	for target, want := range map[string][2]bool{ // [shows a1, shows a2]
		"/admin/flows?user=local:alice":   {false, true},
		"/admin/flows?user=alice":         {false, true}, // a local account by its name, as mcpgate flows --user
		"/admin/flows?user=github:alice":  {false, false},
		"/admin/flows?outcome=failed":     {true, false},
		"/admin/flows?client=good":        {false, true},
		"/admin/flows?client=nobody":      {false, false},
		"/admin/flows?outcome=token_code": {false, false},
	} {
		_, body := get(t, h, target)
		if got := [2]bool{strings.Contains(body, "alert(1)"), strings.Contains(body, "local:alice")}; got != want {
			t.Errorf("%s: shows [a1 a2] = %v, want %v", target, got, want)
		}
	}
	_, body = get(t, h, "/admin/flows?client=%3Cb%3E")
	if strings.Contains(body, "<b>") {
		t.Error("the search field's value is not escaped")
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/admin/flows", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}
}

// Events older than the retention are not shown.
func TestHandlerShowsTheLastDay(t *testing.T) {
	h := Handler(seeded(t), nil, func() time.Time { return at.Add(25 * time.Hour) })
	if _, body := get(t, h, "/"); !strings.Contains(body, "No authorization attempts recorded") || strings.Contains(body, "local:alice") {
		t.Error("events older than 24 h shown")
	}
}

// SEC-116: the terminal rendering replaces control characters, prints the
// steps in order and the reason the attempt stopped last.
func TestWriteText(t *testing.T) {
	events, err := seeded(t).ListFlowEvents(context.Background(), store.FlowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	events[0].ClientID = "evil\x1b]0;owned\x07"
	var b bytes.Buffer
	if err := WriteText(&b, Group(events)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("control characters printed: %q", out)
	}
	blocks := strings.Split(strings.TrimSpace(out), "\n\n")
	if len(blocks) != 2 {
		t.Fatalf("%d blocks, want 2:\n%s", len(blocks), out)
	}
	lines := strings.Split(blocks[0], "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "stopped at authorize (invalid_redirect_uri): redirect_uri http://127.0.0.1:33418/cb") {
		t.Errorf("last line of a failed attempt: %q", last)
	}
	if i, j := strings.Index(blocks[1], "login"), strings.Index(blocks[1], "token_code"); i < 0 || j < i {
		t.Errorf("steps out of order:\n%s", blocks[1])
	}
}

// SEC-116: a bidi override or a control character a client sent (here in
// a made-up client_id, a redirect URI and the search) cannot reorder or
// hide what the page shows: it is replaced, as mcpgate flows replaces it.
func TestSEC116_HandlerReplacesBidiAndControls(t *testing.T) {
	st := memory.New()
	err := st.AppendFlowEvents(context.Background(), []store.FlowEvent{{Time: at, Attempt: "a\u202e1", ClientID: "evil\u202egood\u2066",
		Step: StepAuthorize, Outcome: "invalid_client", Reason: "client_id evil\u202egood\x1b[2K is not registered here",
		Details: map[string]string{"redirect_uri": "http://127.0.0.1:1/\u200fcb\x00"}}})
	if err != nil {
		t.Fatal(err)
	}
	h := Handler(st, nil, func() time.Time { return at.Add(time.Hour) })
	_, body := get(t, h, "/admin/flows")
	_, searched := get(t, h, "/admin/flows?user=%E2%80%AEx%1B")
	body += searched
	for _, bad := range []string{"\u202e", "\u2066", "\u200f", "\x1b", "\x00"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page holds %+q", bad)
		}
	}
	if !strings.Contains(body, "evil\uFFFDgood") {
		t.Errorf("the client id is not shown with its controls replaced:\n%s", body)
	}
}
