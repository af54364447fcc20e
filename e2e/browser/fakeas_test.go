package browser_test

import (
	"crypto/rand"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
)

// The redirect URI of the fake flow: nothing listens there, so a walk that requested it
// would fail.
const (
	callback   = "http://127.0.0.1:1/cb"
	fakeIssuer = "https://issuer.test"
	fakeCode   = "X"
)

// fakeAS imitates mcpgate's authorization flow with forms and no JavaScript:
//
//	GET  /authorize   → 200 consent page, csrf cookie + hidden field, decision buttons
//	POST /consent     → checks Origin, cookie and field; deny → callback?error=access_denied,
//	                    allow → 303 /login?req=…
//	GET  /login       → 200 page with a language form, then the login form (empty action)
//	POST /login?req=… → wrong password: 200 the form again with an error;
//	                    a user the policy refuses: callback?error=access_denied;
//	                    else 302 callback?code=X&state=…&iss=…
type fakeAS struct {
	*httptest.Server
	users  map[string]string // username → password
	denied string            // a user whom the policy refuses

	mu         sync.Mutex
	loginPosts int
	loops      int
}

func newFakeAS() *fakeAS {
	as := &fakeAS{users: map[string]string{"alice": "wonderland", "mallory": "pw"}, denied: "mallory"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", as.authorize)
	mux.HandleFunc("POST /consent", as.consent)
	mux.HandleFunc("GET /login", as.loginPage)
	mux.HandleFunc("POST /login", as.login)
	mux.HandleFunc("GET /loop", as.loop)
	mux.HandleFunc("GET /json-error", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_request","error_description":"missing code_challenge"}`)
	})
	as.Server = httptest.NewServer(mux)
	return as
}

func (as *fakeAS) authURL(state string) string {
	return as.URL + "/authorize?client_id=good&state=" + url.QueryEscape(state)
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html><head><title>Authorize</title><style>body { font: 14px sans-serif }</style>
<script>console.log("no JavaScript runs here")</script></head>
<body>
  <h1>Allow <b>e2e client</b> to use your MCP server?</h1>
  <form method="post" action="consent">
    <input type="hidden" name="csrf" value="{{.CSRF}}">
    <input type="hidden" name="req" value="{{.Req}}">
    <button type="submit" name="decision" value="deny">Deny</button>
    <button type="submit" name="decision" value="allow">Allow</button>
  </form>
</body></html>`))

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>Sign in</title></head>
<body>
  <form method="get" action="/lang"><select name="lang"><option>en</option><option>fr</option></select><button>Change</button></form>
  <h1>Sign in</h1>
  {{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
  <form method="post" action="">
    <input type="hidden" name="csrf" value="{{.CSRF}}">
    <label>Username <input name="username" autocomplete="username"></label>
    <label>Password <input type="password" name="password"></label>
    <input type="submit" value="Sign in">
  </form>
</body></html>`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html><head><title>Error</title></head><body><h1>{{.}}</h1><p>Ask the client's developer to register it.</p></body></html>`))

func (as *fakeAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != "good" {
		w.WriteHeader(http.StatusBadRequest)
		errorPage.Execute(w, "Unknown client "+q.Get("client_id"))
		return
	}
	csrf := rand.Text()
	http.SetCookie(w, &http.Cookie{Name: "csrf", Value: csrf, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	consentPage.Execute(w, map[string]string{"CSRF": csrf, "Req": q.Get("state")})
}

func (as *fakeAS) consent(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") != as.URL {
		http.Error(w, "cross-origin form post from "+r.Header.Get("Origin"), http.StatusForbidden)
		return
	}
	c, err := r.Cookie("csrf")
	if err != nil || c.Value == "" || c.Value != r.PostFormValue("csrf") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		errorPage.Execute(w, "CSRF check failed")
		return
	}
	state := r.PostFormValue("req")
	switch r.PostFormValue("decision") {
	case "deny":
		as.redirectError(w, r, state, "the user denied the request")
	case "allow":
		http.Redirect(w, r, "/login?req="+url.QueryEscape(state), http.StatusSeeOther)
	default:
		http.Error(w, "bad decision "+strconv.Quote(r.PostFormValue("decision")), http.StatusBadRequest)
	}
}

func (as *fakeAS) loginPage(w http.ResponseWriter, r *http.Request) {
	loginPage.Execute(w, map[string]string{"CSRF": rand.Text()})
}

func (as *fakeAS) login(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	as.loginPosts++
	as.mu.Unlock()
	state := r.URL.Query().Get("req") // kept because the form's action is empty
	if state == "" || r.PostFormValue("csrf") == "" || r.PostForm.Has("lang") {
		http.Error(w, "bad login post: "+r.PostForm.Encode(), http.StatusBadRequest)
		return
	}
	user, pw := r.PostFormValue("username"), r.PostFormValue("password")
	if want, ok := as.users[user]; !ok || pw != want {
		loginPage.Execute(w, map[string]string{"CSRF": rand.Text(), "Error": "Invalid username or password."})
		return
	}
	if user == as.denied {
		as.redirectError(w, r, state, user+" is not on the allow-list")
		return
	}
	v := url.Values{"code": {fakeCode}, "state": {state}, "iss": {fakeIssuer}}
	http.Redirect(w, r, callback+"?"+v.Encode(), http.StatusFound)
}

func (as *fakeAS) redirectError(w http.ResponseWriter, r *http.Request, state, desc string) {
	v := url.Values{"error": {"access_denied"}, "error_description": {desc}, "state": {state}, "iss": {fakeIssuer}}
	http.Redirect(w, r, callback+"?"+v.Encode(), http.StatusFound)
}

func (as *fakeAS) loop(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	as.loops++
	n := as.loops
	as.mu.Unlock()
	http.Redirect(w, r, "/loop?n="+strconv.Itoa(n), http.StatusFound)
}

func (as *fakeAS) counts() (loginPosts, loops int) {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.loginPosts, as.loops
}
