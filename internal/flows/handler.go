package flows

import (
	"bytes"
	"context"
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
)

// Lister is the part of store.Store that reads the events.
type Lister interface {
	ListFlowEvents(ctx context.Context, f store.FlowFilter) ([]store.FlowEvent, error)
}

// PageAttempts is how many attempts the page shows at most, the latest.
const PageAttempts = 200

//go:embed flows.html
var pageHTML string

var page = template.Must(template.New("flows").Parse(pageHTML))

type pageData struct {
	Client, User, Outcome string
	Attempts              []pageAttempt
	Limit                 int
	Error                 string
}

type pageAttempt struct {
	Attempt
	Failed  bool
	Summary string
}

// Handler serves the flow debugger's page: the attempts of the last 24
// hours, latest first, each a timeline of its steps with the reason it
// stopped, and a search form by client, user and outcome (query
// parameters client, user, outcome; "failed" for any failure).
//
// It does no authentication or authorization of its own: whoever reaches
// it sees every user's attempts. Mount it only behind the admin check
// (the admin console's /admin/flows). It answers GET and HEAD only, and
// its page, like the gateway's others, may not be framed (SEC-116).
func Handler(st Lister, log *slog.Logger, now func() time.Time) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		data := pageData{Client: cut(q.Get("client")), User: cut(q.Get("user")), Outcome: cut(q.Get("outcome")), Limit: PageAttempts}
		status := http.StatusOK
		events, err := st.ListFlowEvents(r.Context(), store.FlowFilter{ClientID: data.Client, UserID: UserFilter(data.User),
			Outcome: data.Outcome, Since: now().Add(-Retention), Limit: PageAttempts})
		if err != nil {
			log.Error("flow debugger: list events", "err", err)
			status, data.Error = http.StatusInternalServerError, "The events could not be read. Try again later."
		}
		attempts := Group(printableEvents(events))
		data.Client, data.User, data.Outcome = safetext.Printable(data.Client), safetext.Printable(data.User), safetext.Printable(data.Outcome)
		slices.Reverse(attempts) // latest first
		for _, a := range attempts {
			_, failed := a.Stopped()
			data.Attempts = append(data.Attempts, pageAttempt{Attempt: a, Failed: failed, Summary: a.Summary()})
		}
		var buf bytes.Buffer
		if err := page.Execute(&buf, data); err != nil {
			log.Error("flow debugger: render", "err", err)
			http.Error(w, "something went wrong", http.StatusInternalServerError)
			return
		}
		web.SetSecurityHeaders(w.Header())
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
	})
}

// printableEvents is events with every non-printable character of what a
// client sent replaced, as WriteText does: html/template escapes markup
// but keeps a bidi override or an escape sequence, which would reorder or
// hide what the operator reads (SEC-116).
func printableEvents(events []Event) []Event {
	out := make([]Event, len(events))
	for i, e := range events {
		e.Attempt, e.ClientID, e.UserID = safetext.Printable(e.Attempt), safetext.Printable(e.ClientID), safetext.Printable(e.UserID)
		e.Step, e.Outcome, e.Reason = safetext.Printable(e.Step), safetext.Printable(e.Outcome), safetext.Printable(e.Reason)
		if e.Details != nil {
			d := make(map[string]string, len(e.Details))
			for k, v := range e.Details {
				d[safetext.Printable(k)] = safetext.Printable(v)
			}
			e.Details = d
		}
		out[i] = e
	}
	return out
}
