package web

import (
	"bytes"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
)

//go:embed templates/*.html
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

// App names the application a page is about and where its code will go:
// the consent page (DEP-3) and the login page (SEC-3) say the same.
type App struct {
	ClientName    string
	ClientID      string
	ClientHost    string // host of a URL client_id (CIMD), else ""
	RedirectHost  string // where the code will be sent (CIMD-11, DEP-3)
	LocalhostOnly bool   // warn: only loopback redirects (CIMD-11)
	// Where the client comes from (SEC-126): registered by the operator,
	// or by itself at /register, its name then its own claim; and, for one
	// not the operator's, whether it bears the name of one that is, and
	// whether its name mixes alphabets as a look-alike of another does.
	Preregistered  bool
	SelfRegistered bool
	Namesake       bool
	MixedScripts   bool
}

// Consent is the data of the consent page.
type Consent struct {
	App
	Scopes         []string
	Resource       string
	User           string // the logged-in user, if any
	Elsewhere      bool   // warn: approved in another browser, its link opened here (SEC-1)
	SignIn         bool   // the client asked the person to sign in again (prompt=login, SEC-162)
	RequestID      string
	CSRF           string
	Connectors     []Choice
	FormAction     string
	ShowConnectors bool
}

// Choice is an upstream the person can log in with.
type Choice struct{ ID, Name string }

// Login is the data of the local login form.
type Login struct {
	App
	FormAction string
	State      string
	CSRF       string
	Username   string
	Error      string
}

// SignIn is the data of the page that starts a login for the gateway's
// own pages: one form per connector, each going back to Return.
type SignIn struct {
	Return     string
	CSRF       string
	Connectors []Choice
}

// Error is the data of an error page: a message for the person, never
// internal detail.
type Error struct {
	Title   string
	Message string
	// Back, when set, is a link back to the application with an error
	// response (only ever a redirect URI the client registered, which
	// refuses javascript: and the like); BackText is its text.
	Back     template.URL
	BackText string
}

// SetSecurityHeaders marks a response as an uncacheable page that no other
// site may frame (DEP-3). No Referer leaves for another origin (the pages'
// URLs carry a request's state); a form the page posts to the gateway
// keeps its Origin, which the gateway checks (SEC-5), where no-referrer
// would make browsers send "Origin: null".
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
}

// Render writes the named page with status.
func Render(w http.ResponseWriter, log *slog.Logger, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		if log != nil {
			log.Error("render page", "page", name, "err", err)
		}
		SetSecurityHeaders(w.Header())
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<!doctype html><title>Error</title><p>Something went wrong.</p>"))
		return
	}
	SetSecurityHeaders(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// RenderError writes an error page.
func RenderError(w http.ResponseWriter, log *slog.Logger, status int, title, message string) {
	Render(w, log, status, "error.html", Error{Title: title, Message: message})
}
