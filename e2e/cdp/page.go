package cdp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// NavigateError reports a navigation Chromium could not complete, such as a redirect
// to an address where nothing listens (Text "net::ERR_CONNECTION_REFUSED").
type NavigateError struct {
	URL  string
	Text string
}

func (e *NavigateError) Error() string {
	return fmt.Sprintf("cdp: navigating to %s: %s", e.URL, e.Text)
}

// Navigate loads url in the page (Page.navigate). It returns once Chromium has the
// response, not when the page has loaded: follow it with WaitFor.
func (b *Browser) Navigate(ctx context.Context, url string) error {
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.Call(ctx, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return &NavigateError{URL: url, Text: res.ErrorText}
	}
	return nil
}

// EvalError is a JavaScript exception thrown by an evaluated expression.
type EvalError struct {
	Expr string
	Text string
}

func (e *EvalError) Error() string { return fmt.Sprintf("cdp: evaluating %q: %s", e.Expr, e.Text) }

// Eval evaluates the JavaScript expression expr in the page (Runtime.evaluate, awaiting
// a promise) and decodes its value, passed by value as JSON, into out (nil to discard
// it; undefined decodes as null).
func (b *Browser) Eval(ctx context.Context, expr string, out any) error {
	return b.eval(ctx, 0, expr, out)
}

// EvalInFrame is Eval in the document of the frame frameID (see Frames), in an
// isolated world of its own (Page.createIsolatedWorld): it sees the frame's DOM
// whatever the frame's origin, but not the page's scripts.
func (b *Browser) EvalInFrame(ctx context.Context, frameID, expr string, out any) error {
	var world struct {
		ID int64 `json:"executionContextId"`
	}
	if err := b.Call(ctx, "Page.createIsolatedWorld", map[string]any{"frameId": frameID, "worldName": "cdp"}, &world); err != nil {
		return err
	}
	return b.eval(ctx, world.ID, expr, out)
}

func (b *Browser) eval(ctx context.Context, contextID int64, expr string, out any) error {
	var res struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception *struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	params := map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}
	if contextID != 0 {
		params["contextId"] = contextID
	}
	if err := b.Call(ctx, "Runtime.evaluate", params, &res); err != nil {
		return err
	}
	if d := res.ExceptionDetails; d != nil {
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text = d.Exception.Description
		}
		return &EvalError{Expr: expr, Text: text}
	}
	if out == nil {
		return nil
	}
	v := res.Result.Value
	if len(v) == 0 {
		v = json.RawMessage("null")
	}
	if err := json.Unmarshal(v, out); err != nil {
		return fmt.Errorf("cdp: evaluating %q: decoding %s (%s): %w", expr, v, res.Result.Type, err)
	}
	return nil
}

// Frame is a frame of the page (Page.getFrameTree).
type Frame struct {
	ID       string `json:"id"`
	ParentID string `json:"parentId"` // "" for the page's main frame
	Name     string `json:"name"`
	URL      string `json:"url"`
	// UnreachableURL is set when the frame shows Chromium's error page
	// (URL "chrome-error://chromewebdata/") instead of this URL's document: it could not
	// be loaded, or its response forbade showing it there (X-Frame-Options,
	// CSP frame-ancestors).
	UnreachableURL string `json:"unreachableUrl"`
	SecurityOrigin string `json:"securityOrigin"`
}

// Frames returns the page's frames, the main frame first, then its descendants depth
// first.
func (b *Browser) Frames(ctx context.Context) ([]Frame, error) {
	type tree struct {
		Frame       Frame  `json:"frame"`
		ChildFrames []tree `json:"childFrames"`
	}
	var res struct {
		FrameTree tree `json:"frameTree"`
	}
	if err := b.Call(ctx, "Page.getFrameTree", nil, &res); err != nil {
		return nil, err
	}
	var frames []Frame
	var walk func(t tree)
	walk = func(t tree) {
		frames = append(frames, t.Frame)
		for _, c := range t.ChildFrames {
			walk(c)
		}
	}
	walk(res.FrameTree)
	return frames, nil
}

// WaitFor polls the JavaScript condition cond in the page every 50 ms until it is true
// (truthy), for at most timeout (and not past ctx). An evaluation that fails, as it
// may while the page is navigating, counts as false. On timeout the error says where
// the page is and what it shows.
func (b *Browser) WaitFor(ctx context.Context, cond string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		var ok bool
		err := b.Eval(ctx, "!!("+cond+")", &ok)
		if err == nil && ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cdp: waiting for %s: %w (last error: %v); the page: %s", cond, ctx.Err(), lastErr, b.describe())
		case <-b.closed:
			return fmt.Errorf("cdp: waiting for %s: connection closed: %v", cond, b.connErr())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// describe says where the page is and what it shows, for error messages.
func (b *Browser) describe() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var s string
	err := b.Eval(ctx, `location.href + " " + JSON.stringify(document.title) + ": " + (document.body ? document.body.innerText : "").slice(0, 300)`, &s)
	if err != nil {
		return fmt.Sprintf("(unknown: %v)", err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// Screenshot saves the page's viewport as a PNG file (Page.captureScreenshot).
func (b *Browser) Screenshot(ctx context.Context, path string) error {
	var res struct {
		Data string `json:"data"`
	}
	if err := b.Call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		return fmt.Errorf("cdp: screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o644)
}

// Request is a request the page sent (Network.requestWillBeSent), including each step
// of a redirect chain.
type Request struct {
	ID      string // Chromium's requestId, shared by the steps of a redirect chain
	URL     string // without any #fragment
	Method  string
	Type    string // "Document" for a navigation of the page or of a frame
	FrameID string
	// RedirectedBy is the 30x response that led to this request, if any.
	RedirectedBy *Response
}

// Response is a response the page received (Network.responseReceived, or a redirect).
type Response struct {
	ID      string // Chromium's requestId
	URL     string
	Status  int
	Headers http.Header // as Chromium received them
	Type    string
	FrameID string
}

type cdpResponse struct {
	URL     string            `json:"url"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
}

func (r *cdpResponse) response(id, typ, frame string) *Response {
	h := http.Header{}
	for k, v := range r.Headers {
		for _, line := range strings.Split(v, "\n") { // repeated headers are joined by newlines
			h.Add(k, line)
		}
	}
	return &Response{ID: id, URL: r.URL, Status: r.Status, Headers: h, Type: typ, FrameID: frame}
}

// ExpectRequest starts watching for requests of the page whose URL starts with prefix,
// such as the redirect to an OAuth client's redirect URI. Call it before the action
// that causes them; Stop it when done.
func (b *Browser) ExpectRequest(prefix string) *Watch[Request] {
	return newWatch(b, func(ev Event) (Request, bool) {
		if ev.Method != "Network.requestWillBeSent" || ev.SessionID != "" {
			return Request{}, false
		}
		var p struct {
			RequestID string `json:"requestId"`
			Request   struct {
				URL    string `json:"url"`
				Method string `json:"method"`
			} `json:"request"`
			Type             string       `json:"type"`
			FrameID          string       `json:"frameId"`
			RedirectResponse *cdpResponse `json:"redirectResponse"`
		}
		if json.Unmarshal(ev.Params, &p) != nil || !strings.HasPrefix(p.Request.URL, prefix) {
			return Request{}, false
		}
		r := Request{ID: p.RequestID, URL: p.Request.URL, Method: p.Request.Method, Type: p.Type, FrameID: p.FrameID}
		if p.RedirectResponse != nil {
			r.RedirectedBy = p.RedirectResponse.response(p.RequestID, p.Type, p.FrameID)
		}
		return r, true
	})
}

// ExpectResponse starts watching for responses to the page, or to its frames, whose
// URL starts with prefix, with the headers as Chromium received them. Redirect
// responses are included. Call it before the action that causes them; Stop it when
// done.
func (b *Browser) ExpectResponse(prefix string) *Watch[Response] {
	return newWatch(b, func(ev Event) (Response, bool) {
		if ev.SessionID != "" {
			return Response{}, false
		}
		var p struct {
			RequestID        string       `json:"requestId"`
			Type             string       `json:"type"`
			FrameID          string       `json:"frameId"`
			Response         *cdpResponse `json:"response"`
			RedirectResponse *cdpResponse `json:"redirectResponse"`
		}
		var r *cdpResponse
		switch ev.Method {
		case "Network.responseReceived":
			if json.Unmarshal(ev.Params, &p) != nil {
				return Response{}, false
			}
			r = p.Response
		case "Network.requestWillBeSent":
			if json.Unmarshal(ev.Params, &p) != nil {
				return Response{}, false
			}
			r = p.RedirectResponse
		}
		if r == nil || !strings.HasPrefix(r.URL, prefix) {
			return Response{}, false
		}
		return *r.response(p.RequestID, p.Type, p.FrameID), true
	})
}

// LoadingFailure is a request of the page that failed (Network.loadingFailed): no
// listener (net::ERR_CONNECTION_REFUSED), or a response the browser refused to use
// (net::ERR_BLOCKED_BY_RESPONSE, as for a frame its X-Frame-Options forbids).
type LoadingFailure struct {
	ID            string // the requestId of the Request and Response
	Type          string
	ErrorText     string
	BlockedReason string
}

// ExpectLoadingFailure starts watching for failed requests of the page. Call it before
// the action that causes them; Stop it when done.
func (b *Browser) ExpectLoadingFailure() *Watch[LoadingFailure] {
	return newWatch(b, func(ev Event) (LoadingFailure, bool) {
		if ev.Method != "Network.loadingFailed" || ev.SessionID != "" {
			return LoadingFailure{}, false
		}
		var p struct {
			RequestID     string `json:"requestId"`
			Type          string `json:"type"`
			ErrorText     string `json:"errorText"`
			BlockedReason string `json:"blockedReason"`
		}
		if json.Unmarshal(ev.Params, &p) != nil {
			return LoadingFailure{}, false
		}
		return LoadingFailure{ID: p.RequestID, Type: p.Type, ErrorText: p.ErrorText, BlockedReason: p.BlockedReason}, true
	})
}
