package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpgate/mcpgate/internal/safetext"
)

// Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707 §2,
// RFC 6750 §3.1 and RFC 7009.
const (
	InvalidRequest          = "invalid_request"
	InvalidClient           = "invalid_client"
	InvalidGrant            = "invalid_grant"
	UnauthorizedClient      = "unauthorized_client"
	UnsupportedGrantType    = "unsupported_grant_type"
	UnsupportedResponseType = "unsupported_response_type"
	InvalidScope            = "invalid_scope"
	AccessDenied            = "access_denied"
	ServerError             = "server_error"
	TemporarilyUnavailable  = "temporarily_unavailable"
	InvalidTarget           = "invalid_target"
	InvalidRedirectURI      = "invalid_redirect_uri"
	InvalidClientMetadata   = "invalid_client_metadata"
	InvalidToken            = "invalid_token"
	InsufficientScope       = "insufficient_scope"
	UnsupportedTokenType    = "unsupported_token_type"
)

// Error is an OAuth error. Description goes to the client; Cause goes only
// to the log.
type Error struct {
	Code        string
	Description string
	Status      int // HTTP status for JSON responses; 0 means the code's default
	Cause       error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Description, e.Cause)
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf builds an *Error with a formatted description.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// HTTPStatus is the status for a JSON error response (RFC 6749 §5.2).
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	switch e.Code {
	case InvalidClient:
		return http.StatusUnauthorized
	case ServerError:
		return http.StatusInternalServerError
	case TemporarilyUnavailable:
		return http.StatusServiceUnavailable
	case InvalidToken:
		return http.StatusUnauthorized
	case InsufficientScope:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// AsError turns any error into an *Error. Anything that is not already an
// *Error becomes server_error with a generic description, so that internal
// error text never reaches a client.
func AsError(err error) *Error {
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	return &Error{Code: ServerError, Description: "internal error", Cause: err}
}

// logError records the cause of an error for operators.
func logError(log *slog.Logger, r *http.Request, e *Error) {
	if log == nil {
		return
	}
	level := slog.LevelInfo
	if e.Code == ServerError {
		level = slog.LevelError
	}
	attrs := []any{"error", e.Code, "description", e.Description, "path", safetext.Clip(r.URL.Path, 512)}
	if e.Cause != nil {
		attrs = append(attrs, "cause", e.Cause.Error())
	}
	log.Log(r.Context(), level, "oauth error", attrs...)
}

// ErrorNoter is a ResponseWriter that wants the code of the OAuth error
// answered through it: the metrics of the OAuth steps count it as the
// step's outcome. WriteJSON and WriteRedirect tell it.
type ErrorNoter interface {
	NoteOAuthError(code string)
}

// ErrorDescriptionNoter is an ErrorNoter that wants the description
// answered too: the flow debugger records it as the reason of a step that
// names none of its own. A description is written for the client, so it
// holds no internal detail and no secret.
type ErrorDescriptionNoter interface {
	NoteOAuthErrorDescription(description string)
}

func noteError(w http.ResponseWriter, e *Error) {
	if n, ok := w.(ErrorNoter); ok {
		n.NoteOAuthError(e.Code)
	}
	if n, ok := w.(ErrorDescriptionNoter); ok {
		n.NoteOAuthErrorDescription(e.Description)
	}
}

// AttemptedBasic reports whether r's Authorization header names the Basic
// scheme, whether or not what follows is valid: RFC 6749 §5.2 asks for
// the challenge from a client that "attempted to authenticate via the
// Authorization request header field", and a header that fails is never
// to be passed over for the body's client_id.
func AttemptedBasic(r *http.Request) bool {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "Basic")
}

// WriteJSON writes err as an RFC 6749 §5.2 JSON error body, with
// Cache-Control: no-store. An invalid_client answer to a request that used
// HTTP Basic gets a WWW-Authenticate: Basic challenge (§5.2).
func WriteJSON(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := AsError(err)
	logError(log, r, e)
	noteError(w, e)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	status := e.HTTPStatus()
	if e.Code == InvalidClient && AttemptedBasic(r) {
		h.Set("WWW-Authenticate", `Basic realm="mcpgate"`)
	}
	w.WriteHeader(status)
	body := map[string]string{"error": e.Code}
	if e.Description != "" {
		body["error_description"] = e.Description
	}
	_ = json.NewEncoder(w).Encode(body)
}

// WriteRedirect sends err to a redirect URI that has already been verified
// against the client's registration: error, error_description, the client's
// state verbatim and iss (RFC 9207, ISS-1). An error found before the
// redirect URI was verified must not come here: the caller renders a page
// instead (REDIR-2).
func WriteRedirect(w http.ResponseWriter, r *http.Request, log *slog.Logger, redirectURI, state, issuer string, err error) {
	Redirect(w, redirectURI, errorParams(Report(w, r, log, err), state, issuer))
}

// Report logs err and tells w its code, as WriteJSON and WriteRedirect do,
// for an error answered some other way (a page that links to where
// WriteRedirect would send it); it returns err as an *Error.
func Report(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) *Error {
	e := AsError(err)
	logError(log, r, e)
	noteError(w, e)
	return e
}

// ErrorRedirectURL is where WriteRedirect would send err, for a page that
// explains the error before the person goes back to the client (the same
// rules apply: only a verified redirect URI). err is not logged.
func ErrorRedirectURL(redirectURI, state, issuer string, err error) (string, error) {
	return RedirectURL(redirectURI, errorParams(AsError(err), state, issuer))
}

func errorParams(e *Error, state, issuer string) url.Values {
	q := url.Values{}
	q.Set("error", e.Code)
	if e.Description != "" {
		q.Set("error_description", e.Description)
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", issuer)
	return q
}

// Redirect sends a 302 to base with params added to its query. Existing
// query parameters of a registered redirect URI are kept (RFC 6749 §3.1.2).
func Redirect(w http.ResponseWriter, base string, params url.Values) {
	loc, err := RedirectURL(base, params)
	if err != nil {
		http.Error(w, "bad redirect", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Location", loc)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// RedirectURL is base with params added to its query, keeping the query
// base has.
func RedirectURL(base string, params url.Values) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
