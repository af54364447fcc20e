package browser

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"
)

func TestFormSubmit(t *testing.T) {
	page, _ := url.Parse("https://as.test/flow/login?req=abc")
	b := &Browser{Username: "alice", Password: "pw"}
	tests := []struct {
		name       string
		html       string
		decision   string
		wantMethod string
		wantURL    string // for POST, without the body
		wantBody   string // urlencoded, keys sorted
		wantErr    string
	}{{
		name:       "login form, empty action posts to the page",
		html:       `<form method=POST><input type=hidden name=csrf value=t1><input name=username value=ignored><input type=password name=password><input type=submit value="Sign in"></form>`,
		wantMethod: "POST", wantURL: "https://as.test/flow/login?req=abc",
		wantBody: "csrf=t1&password=pw&username=alice",
	}, {
		name:       "consent form, decision button picked by value",
		html:       `<form method=post action="../consent#frag"><input type=hidden name=csrf value=c><button name=decision value=deny>No</button><button name=decision value=allow>Yes</button></form>`,
		wantMethod: "POST", wantURL: "https://as.test/consent",
		wantBody: "csrf=c&decision=allow",
	}, {
		name:       "deny",
		html:       `<form method=post action="/consent"><button name=decision value=allow>Yes</button><button name=decision value=deny>No</button></form>`,
		decision:   "deny",
		wantMethod: "POST", wantURL: "https://as.test/consent",
		wantBody: "decision=deny",
	}, {
		name:    "no button for the decision",
		html:    `<form method=post><button name=decision value=allow>Yes</button></form>`,
		wantErr: `no decision="deny" button (it offers allow)`, decision: "deny",
	}, {
		name:       "decision as a radio group is sent once",
		html:       `<form method=post><input type=radio name=decision value=allow><input type=radio name=decision value=deny checked><button>Go</button></form>`,
		wantMethod: "POST", wantURL: page.String(),
		wantBody: "decision=allow",
	}, {
		name:       "the login form is preferred over an earlier form",
		html:       `<form action=/search><input name=q value=x></form><form method=post action=/login><input name=username><input name=password type=password></form>`,
		wantMethod: "POST", wantURL: "https://as.test/login",
		wantBody: "password=pw&username=alice",
	}, {
		name: "GET form replaces the action's query; checkboxes, selects, textareas",
		html: `<form action="next?old=1">
			<input type=checkbox name=remember checked><input type=checkbox name=spam value=yes>
			<select name=lang><option value=en>English</option><option selected>fr</option></select>
			<select name=tags multiple><option selected>a</option><option>b</option><option selected value=c>C</option></select>
			<textarea name=note>hi there</textarea>
			<input name=off disabled value=1><fieldset disabled><input name=off2 value=1></fieldset>
			<input type=button name=js value=1><input type=reset name=r><input name=noval>
		</form>`,
		wantMethod: "GET", wantURL: "https://as.test/flow/next?lang=fr&note=hi+there&noval=&remember=on&tags=a&tags=c",
	}, {
		name:       "formaction and formmethod on the clicked button; controls owned by form=",
		html:       `<form id=f method=get action=/a><button formaction=/b formmethod=post name=go value=1>Go</button></form><input form=f name=outside value=o>`,
		wantMethod: "POST", wantURL: "https://as.test/b",
		wantBody: "go=1&outside=o",
	}, {
		name:       "image button sends coordinates",
		html:       `<form method=post action=/x><input type=image name=pic src=a.png></form>`,
		wantMethod: "POST", wantURL: "https://as.test/x",
		wantBody: "pic.x=0&pic.y=0",
	}, {
		name:    "multipart is refused",
		html:    `<form method=post enctype="multipart/form-data"><input name=a></form>`,
		wantErr: "enctype",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := html.Parse(strings.NewReader(tt.html))
			if err != nil {
				t.Fatal(err)
			}
			f := chooseForm(doc)
			if f == nil {
				t.Fatal("no form chosen, want one")
			}
			bb := *b
			bb.Decision = tt.decision
			req, err := f.submit(page, bb.fill)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.method != tt.wantMethod || req.url.String() != tt.wantURL || string(req.body) != tt.wantBody {
				t.Errorf("got %s %s body %q\nwant %s %s body %q", req.method, req.url, req.body, tt.wantMethod, tt.wantURL, tt.wantBody)
			}
			if req.method == "POST" && req.origin != "https://as.test" {
				t.Errorf("Origin = %q, want the page's origin", req.origin)
			}
		})
	}
}

func TestNoForm(t *testing.T) {
	doc, _ := html.Parse(strings.NewReader(`<p>Something went wrong</p>`))
	if f := chooseForm(doc); f != nil {
		t.Fatalf("chooseForm found %+v on a page without a form", f)
	}
}

func TestPageText(t *testing.T) {
	doc, _ := html.Parse(strings.NewReader(`<html><head><title>T</title><style>p{}</style></head><body>
		<script>var x = 1</script><p hidden>secret</p><template><p>tpl</p></template>
		<h1>  Sign
		in </h1><div class="flash form-error">Bad password</div><input type=submit value="Go on"><input value=typed></body></html>`))
	if got, want := pageText(doc), "Bad password | Sign in Bad password Go on"; got != want {
		t.Errorf("pageText = %q, want %q", got, want)
	}
	long, _ := html.Parse(strings.NewReader("<p>" + strings.Repeat("é ", 400) + "</p>"))
	if got := pageText(long); utf8.RuneCountInString(got) != maxTextRunes || !strings.HasSuffix(got, "…") {
		t.Errorf("long text: %d runes, ends %q; want %d ending in …", utf8.RuneCountInString(got), got[len(got)-5:], maxTextRunes)
	}
}

func TestRedirected(t *testing.T) {
	target, _ := url.Parse("https://as.test/next")
	post := &request{method: http.MethodPost, body: []byte("a=1"), origin: "https://as.test"}
	for status, want := range map[int]string{301: "GET", 302: "GET", 303: "GET", 307: "POST", 308: "POST"} {
		r := redirected(post, status, target)
		if r.method != want || (want == "POST") != (string(r.body) == "a=1") || r.url != target {
			t.Errorf("%d: got %s body %q, want %s", status, r.method, r.body, want)
		}
	}
}

// FuzzFormSubmit feeds arbitrary pages to the form logic: whatever a server renders,
// reading, choosing and submitting a form must not panic.
func FuzzFormSubmit(f *testing.F) {
	for _, seed := range []string{
		`<form method=post><input type=hidden name=csrf value=t><input name=username><input type=password name=password></form>`,
		`<form method=post action="/consent"><button name=decision value=deny>No</button><button name=decision value=allow>Yes</button></form>`,
		`<form id=f action="?a=b"><select name=s multiple><option selected>x</select></form><textarea form=f name=t>z</textarea>`,
		`<table><form method=post><tr><td><input name=a></td></tr></form></table>`,
		`<form action="http://[::1]:namedport"><button formaction="%zz">x</button></form>`,
	} {
		f.Add(seed)
	}
	page, _ := url.Parse("https://as.test/login?req=1")
	b := New("alice", "pw")
	f.Fuzz(func(t *testing.T, s string) {
		doc, err := html.Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		if text := pageText(doc); utf8.RuneCountInString(text) > maxTextRunes {
			t.Fatalf("pageText has %d runes, want at most %d", utf8.RuneCountInString(text), maxTextRunes)
		}
		form := chooseForm(doc)
		if form == nil {
			return
		}
		_ = form.fingerprint(page, doc)
		if req, err := form.submit(page, b.fill); err == nil && req.url == nil {
			t.Fatal("submit returned a request without a URL, want a URL with every request")
		}
	})
}

// InputValue finds an input by name wherever its attributes stand and
// decodes entities; a missing input is "".
func TestInputValue(t *testing.T) {
	page := `<form><input type="hidden" value="a&amp;b" name="csrf_token"><input name="other" value="x"></form>`
	if got := InputValue(page, "csrf_token"); got != "a&b" {
		t.Errorf("csrf_token = %q, want a&b", got)
	}
	if got := InputValue(page, "missing"); got != "" {
		t.Errorf("missing = %q, want empty", got)
	}
}
