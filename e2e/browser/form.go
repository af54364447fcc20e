package browser

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// form is an HTML form and the controls it owns, in tree order (HTML §4.10.21).
type form struct {
	node     *html.Node
	controls []control
}

type control struct {
	name, value string
	typ         string // input type, "button" type for buttons, "select", "textarea"
	submit      bool   // a submit button: sent only when it is the one clicked
	include     bool   // for non-submit controls: part of the form data set
	formAction  string // a submit button's formaction, if it has one
	formMethod  string
	hasAction   bool
}

// chooseForm returns the form a person would fill on this page: the first with a
// password input or a "decision" control (login or consent), else the first form.
func chooseForm(doc *html.Node) *form {
	forms := collectForms(doc)
	for _, f := range forms {
		for _, c := range f.controls {
			if c.name == "password" || c.typ == "password" || c.name == "decision" {
				return f
			}
		}
	}
	if len(forms) > 0 {
		return forms[0]
	}
	return nil
}

// collectForms finds every form and assigns controls to their owner: the form named by
// their form attribute, or else their nearest form ancestor.
func collectForms(doc *html.Node) []*form {
	var forms []*form
	byNode := map[*html.Node]*form{}
	byID := map[string]*form{}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.DataAtom == atom.Form {
			f := &form{node: n}
			forms = append(forms, f)
			byNode[n] = f
			if id, ok := attr(n, "id"); ok && byID[id] == nil {
				byID[id] = f
			}
		}
	}
	var walk func(n *html.Node, owner *form, disabled bool)
	walk = func(n *html.Node, owner *form, disabled bool) {
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.Form:
				owner = byNode[n]
			case atom.Fieldset:
				_, d := attr(n, "disabled")
				disabled = disabled || d
			case atom.Input, atom.Button, atom.Select, atom.Textarea:
				f := owner
				if id, ok := attr(n, "form"); ok {
					f = byID[id]
				}
				_, d := attr(n, "disabled")
				if f != nil && !disabled && !d {
					if c, ok := toControl(n); ok {
						f.controls = append(f.controls, c)
					}
				}
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, owner, disabled)
		}
	}
	walk(doc, nil, false)
	return forms
}

func toControl(n *html.Node) (control, bool) {
	name, _ := attr(n, "name")
	c := control{name: name}
	switch n.DataAtom {
	case atom.Input:
		typ, _ := attr(n, "type")
		c.typ = strings.ToLower(strings.TrimSpace(typ))
		if c.typ == "" {
			c.typ = "text"
		}
		c.value, _ = attr(n, "value")
		switch c.typ {
		case "submit", "image":
			c.submit = true
		case "button", "reset", "file":
			return c, false
		case "checkbox", "radio":
			_, c.include = attr(n, "checked")
			if _, ok := attr(n, "value"); !ok {
				c.value = "on"
			}
		default:
			c.include = true
		}
	case atom.Button:
		typ, _ := attr(n, "type")
		c.typ = strings.ToLower(strings.TrimSpace(typ))
		if c.typ != "" && c.typ != "submit" {
			return c, false // type=button and type=reset submit nothing
		}
		c.typ, c.submit = "submit", true
		c.value, _ = attr(n, "value")
	case atom.Select:
		c.typ, c.include = "select", true
		_, multiple := attr(n, "multiple")
		var first *html.Node
		var selected []string
		for o := range n.Descendants() {
			if o.Type != html.ElementNode || o.DataAtom != atom.Option {
				continue
			}
			if _, d := attr(o, "disabled"); d {
				continue
			}
			if first == nil {
				first = o
			}
			if _, ok := attr(o, "selected"); ok {
				selected = append(selected, optionValue(o))
			}
		}
		switch {
		case len(selected) > 0 && multiple:
			c.value = strings.Join(selected, "\x00") // split again in values()
		case len(selected) > 0:
			c.value = selected[len(selected)-1] // the last selected one wins
		case first != nil && !multiple:
			c.value = optionValue(first)
		default:
			c.include = false
		}
	case atom.Textarea:
		c.typ, c.include = "textarea", true
		c.value = textContent(n)
	}
	if c.submit {
		c.formAction, c.hasAction = attr(n, "formaction")
		c.formMethod, _ = attr(n, "formmethod")
	}
	return c, c.name != "" || c.submit
}

func optionValue(o *html.Node) string {
	if v, ok := attr(o, "value"); ok {
		return v
	}
	return strings.Join(strings.Fields(textContent(o)), " ")
}

// submit builds the request that clicking the form's submit button sends, with the
// fields fill knows (credentials, decision) filled in.
func (f *form) submit(page *url.URL, fill func(name, typ string) (string, bool)) (*request, error) {
	// The button clicked: the "decision" button whose value is our decision, or else
	// the first submit button (pressing Enter).
	var clicked *control
	var offered []string
	for i := range f.controls {
		c := &f.controls[i]
		if !c.submit || c.name != "decision" {
			continue
		}
		offered = append(offered, c.value)
		if want, _ := fill(c.name, c.typ); c.value == want && clicked == nil {
			clicked = c
		}
	}
	if len(offered) > 0 && clicked == nil {
		want, _ := fill("decision", "")
		return nil, fmt.Errorf("form has no decision=%q button (it offers %s)", want, strings.Join(offered, ", "))
	}
	if clicked == nil {
		for i := range f.controls {
			if f.controls[i].submit {
				clicked = &f.controls[i]
				break
			}
		}
	}

	values := url.Values{}
	filled := map[string]bool{}
	for i := range f.controls {
		c := &f.controls[i]
		switch {
		case c.submit:
			if c == clicked && c.name != "" {
				if c.typ == "image" {
					values.Add(c.name+".x", "0")
					values.Add(c.name+".y", "0")
				} else {
					values.Add(c.name, c.value)
				}
			}
		case c.name == "":
		default:
			if v, ok := fill(c.name, c.typ); ok {
				// What the person enters replaces the control's value; a radio group
				// or repeated field named so is sent once.
				if !filled[c.name] {
					values.Add(c.name, v)
					filled[c.name] = true
				}
			} else if c.include {
				if c.typ == "select" && strings.Contains(c.value, "\x00") {
					for _, v := range strings.Split(c.value, "\x00") {
						values.Add(c.name, v)
					}
				} else {
					values.Add(c.name, c.value)
				}
			}
		}
	}

	action, hasAction := attr(f.node, "action")
	method, _ := attr(f.node, "method")
	if clicked != nil {
		if clicked.hasAction {
			action, hasAction = clicked.formAction, true
		}
		if clicked.formMethod != "" {
			method = clicked.formMethod
		}
	}
	target := page
	if action = strings.TrimSpace(action); hasAction && action != "" {
		var err error
		if target, err = page.Parse(action); err != nil {
			return nil, fmt.Errorf("form action %q: %v", action, err)
		}
	}
	target = &url.URL{Scheme: target.Scheme, User: target.User, Host: target.Host, Path: target.Path, RawPath: target.RawPath, RawQuery: target.RawQuery}

	switch strings.ToLower(strings.TrimSpace(method)) {
	case "post":
		if enc, ok := attr(f.node, "enctype"); ok && enc != "" {
			if mt, _, _ := mime.ParseMediaType(enc); mt != "application/x-www-form-urlencoded" {
				return nil, fmt.Errorf("form enctype %q is not supported", enc)
			}
		}
		origin := page.Scheme + "://" + page.Host
		return &request{method: http.MethodPost, url: target, body: []byte(values.Encode()), origin: origin}, nil
	case "", "get":
		target.RawQuery = values.Encode() // a GET form replaces the action's query
		return &request{method: http.MethodGet, url: target}, nil
	default:
		return nil, fmt.Errorf("form method %q is not supported", method)
	}
}

// fingerprint identifies what the person sees: where the form goes, which fields it
// has and the page's visible text (hidden CSRF values may change; messages do not).
func (f *form) fingerprint(page *url.URL, doc *html.Node) string {
	var b strings.Builder
	action, _ := attr(f.node, "action")
	method, _ := attr(f.node, "method")
	target := page
	if u, err := page.Parse(strings.TrimSpace(action)); err == nil {
		target = u
	}
	fmt.Fprintf(&b, "%s %s://%s%s\n", strings.ToLower(method), target.Scheme, target.Host, target.Path)
	for _, c := range f.controls {
		fmt.Fprintf(&b, "%s=%s;", c.name, c.typ)
	}
	b.WriteString("\n")
	b.WriteString(visibleText(doc))
	return b.String()
}

// pageText is what a person reads on the page, an error message first when the page
// marks one (role="alert", or a class naming "error"), truncated to maxTextRunes.
func pageText(doc *html.Node) string {
	text := visibleText(doc)
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || !isAlert(n) {
			continue
		}
		if msg := visibleText(n); msg != "" {
			text = msg + " | " + text
			break
		}
	}
	return truncate(text)
}

func isAlert(n *html.Node) bool {
	if role, _ := attr(n, "role"); role == "alert" {
		return true
	}
	class, _ := attr(n, "class")
	for _, c := range strings.Fields(class) {
		if strings.Contains(strings.ToLower(c), "error") {
			return true
		}
	}
	return false
}

// visibleText is the text a browser renders under n, whitespace collapsed: no head,
// scripts, styles, templates or hidden elements.
func visibleText(n *html.Node) string {
	var words []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			words = append(words, strings.Fields(n.Data)...)
			return
		case html.ElementNode:
			switch n.DataAtom {
			case atom.Head, atom.Script, atom.Style, atom.Template, atom.Noscript:
				return
			}
			if _, hidden := attr(n, "hidden"); hidden {
				return
			}
			if n.DataAtom == atom.Input {
				// Buttons show their value; other inputs show what is typed in them.
				if typ, _ := attr(n, "type"); strings.EqualFold(typ, "submit") {
					if v, ok := attr(n, "value"); ok {
						words = append(words, strings.Fields(v)...)
					}
				}
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(words, " ")
}

func textContent(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

func truncate(s string) string {
	if utf8.RuneCountInString(s) <= maxTextRunes {
		return s
	}
	r := []rune(s)
	return string(r[:maxTextRunes-1]) + "…"
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// InputValue returns the value of the first input called name on page, as
// a browser would submit it (entities decoded); "" when there is none.
func InputValue(page, name string) string {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return ""
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.DataAtom != atom.Input {
			continue
		}
		if got, _ := attr(n, "name"); got == name {
			v, _ := attr(n, "value")
			return v
		}
	}
	return ""
}
