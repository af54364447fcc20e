package flows

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/safetext"
)

// Attempt is the timeline of one authorization attempt: its steps in the
// order they were recorded.
type Attempt struct {
	ID     string  `json:"attempt"`
	Events []Event `json:"-"`
}

// Group gathers events into attempts, in the order of each attempt's
// first event.
func Group(events []Event) []Attempt {
	index := map[string]int{}
	var out []Attempt
	for _, e := range events {
		i, ok := index[e.Attempt]
		if !ok {
			i = len(out)
			index[e.Attempt] = i
			out = append(out, Attempt{ID: e.Attempt})
		}
		out[i].Events = append(out[i].Events, e)
	}
	return out
}

// ClientID is the client of the attempt's last step that names one.
func (a Attempt) ClientID() string { return a.last(func(e Event) string { return e.ClientID }) }

// UserID is the user of the attempt's last step that names one.
func (a Attempt) UserID() string { return a.last(func(e Event) string { return e.UserID }) }

func (a Attempt) last(f func(Event) string) string {
	for i := len(a.Events) - 1; i >= 0; i-- {
		if v := f(a.Events[i]); v != "" {
			return v
		}
	}
	return ""
}

// Stopped is the attempt's last step when it failed; ok is false when the
// last step went through.
func (a Attempt) Stopped() (Event, bool) {
	if len(a.Events) == 0 {
		return Event{}, false
	}
	last := a.Events[len(a.Events)-1]
	return last, last.Outcome != OutcomeOK
}

// Summary says in a line how the attempt ended: the failing step and its
// reason, or how far it went.
func (a Attempt) Summary() string {
	last, failed := a.Stopped()
	if !failed {
		return "went through, up to " + last.Step
	}
	reason := last.Reason
	if reason == "" {
		reason = "answered " + last.Outcome
	}
	return "stopped at " + last.Step + " (" + last.Outcome + "): " + reason
}

// DetailList is the event's details as key=value, sorted by key.
func DetailList(e Event) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(e.Details)) {
		out = append(out, k+"="+e.Details[k])
	}
	return out
}

// AttemptView is an attempt as `mcpgate flows --json` prints it.
type AttemptView struct {
	Attempt  string      `json:"attempt"`
	ClientID string      `json:"client_id"`
	UserID   string      `json:"user_id,omitempty"`
	Result   string      `json:"result"` // "ok" or "failed"
	Summary  string      `json:"summary"`
	Steps    []EventView `json:"steps"`
}

// EventView is one step in an AttemptView.
type EventView struct {
	Time     string            `json:"time"`
	Step     string            `json:"step"`
	Outcome  string            `json:"outcome"`
	Reason   string            `json:"reason,omitempty"`
	ClientID string            `json:"client_id,omitempty"`
	UserID   string            `json:"user_id,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
}

// View is a's JSON form.
func (a Attempt) View() AttemptView {
	_, failed := a.Stopped()
	v := AttemptView{Attempt: a.ID, ClientID: a.ClientID(), UserID: a.UserID(), Result: "ok", Summary: a.Summary(), Steps: []EventView{}}
	if failed {
		v.Result = "failed"
	}
	for _, e := range a.Events {
		v.Steps = append(v.Steps, EventView{Time: e.Time.UTC().Format(time.RFC3339Nano), Step: e.Step, Outcome: e.Outcome,
			Reason: e.Reason, ClientID: e.ClientID, UserID: e.UserID, Details: e.Details})
	}
	return v
}

// WriteText prints attempts for a terminal, one block each: a heading
// with the client and user, the steps in time order with their details,
// and how the attempt ended, last. What a client sent is printed with
// every non-printable character replaced, so that it cannot drive the
// operator's terminal (SEC-116).
func WriteText(w io.Writer, attempts []Attempt) error {
	var b strings.Builder
	if len(attempts) == 0 {
		b.WriteString("No authorization attempts recorded that match.\n")
	}
	for i, a := range attempts {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "attempt %s  client %s", safetext.Printable(a.ID), orDash(safetext.Printable(a.ClientID())))
		if u := a.UserID(); u != "" {
			fmt.Fprintf(&b, "  user %s", safetext.Printable(u))
		}
		b.WriteByte('\n')
		for _, e := range a.Events {
			fmt.Fprintf(&b, "  %s  %-17s %s", e.Time.UTC().Format("2006-01-02 15:04:05.000"), safetext.Printable(e.Step), safetext.Printable(e.Outcome))
			if e.Reason != "" {
				fmt.Fprintf(&b, ": %s", safetext.Printable(e.Reason))
			}
			b.WriteByte('\n')
			if d := DetailList(e); len(d) > 0 {
				fmt.Fprintf(&b, "      %s\n", safetext.Printable(strings.Join(d, " ")))
			}
		}
		fmt.Fprintf(&b, "  => %s\n", safetext.Printable(a.Summary()))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
