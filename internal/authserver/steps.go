package authserver

import (
	"context"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/oauth"
)

// stepToken is the token endpoint's step, counted per grant type.
const stepToken = "token"

// counted counts each request to h as one step of the OAuth flow, with
// its outcome (Options.Metrics): "ok", the OAuth error code answered,
// "rate_limited" for a 429 (its body's temporarily_unavailable would
// hide an operator's limit among outages), "refused" for a page that said
// no (a wrong password, a request from another site) or server_error; and
// records it for the flow debugger (Options.Flows) with what the handler
// noted (flowNote). Without either h is served as it is.
func (s *Server) counted(step string, h http.HandlerFunc) http.HandlerFunc {
	m := s.opts.Metrics
	if m == nil && s.opts.Flows == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &stepWriter{ResponseWriter: w, status: http.StatusOK}
		var note *flowNote
		// Introspection is a resource server's question about a token,
		// asked per request, not a step of a client's attempt.
		if s.opts.Flows != nil && step != "introspect" {
			note = &flowNote{}
			r = r.WithContext(context.WithValue(r.Context(), flowNoteKey{}, note))
		}
		h(sw, r)
		if m != nil {
			name := step
			if step == stepToken {
				name = tokenStep(r.PostForm.Get("grant_type"))
			}
			m.OAuthStep(name, sw.outcome())
		}
		if note != nil {
			s.record(r, note, flowStep(step, r), sw)
		}
	}
}

// tokenStep names the step of a token request by its grant type; one
// the server does not support is token_other, so that the label stays
// bounded whatever a client sends.
func tokenStep(grantType string) string {
	switch grantType {
	case "authorization_code":
		return "token_authorization_code"
	case "refresh_token":
		return "token_refresh_token"
	}
	return "token_other"
}

// stepWriter records what a step answered.
type stepWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	code   string // the OAuth error code, if one was answered
	// description is the OAuth error's description, for the flow
	// debugger.
	description string
}

var (
	_ oauth.ErrorNoter            = (*stepWriter)(nil)
	_ oauth.ErrorDescriptionNoter = (*stepWriter)(nil)
)

func (w *stepWriter) NoteOAuthError(code string) { w.code = code }

func (w *stepWriter) NoteOAuthErrorDescription(d string) { w.description = d }

func (w *stepWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *stepWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *stepWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *stepWriter) outcome() string {
	switch {
	case w.status == http.StatusTooManyRequests:
		return "rate_limited"
	case w.code != "":
		return w.code
	case w.status >= 500:
		return oauth.ServerError
	case w.status >= 400:
		return "refused"
	}
	return "ok"
}
