// Package cdp is a minimal Chrome DevTools Protocol client for end-to-end tests: it
// starts a real headless Chromium and drives one page of it over the DevTools
// WebSocket (golang.org/x/net/websocket), so that a test can check what a person's
// browser does with mcpgate's pages (their Content-Security-Policy and
// X-Frame-Options, SameSite cookies, form posts, redirect chains) rather than what a
// Go HTTP client does.
//
// Launch starts the browser given by Find (the CHROMIUM environment variable, else
// /usr/bin/chromium, else chromium on the PATH) with a fresh profile in a temporary
// directory and connects to its page; Close kills the browser's whole process group
// and removes the directory. Every call takes a context and is bounded by it.
//
// A Browser offers what the tests need and nothing more:
//
//   - Navigate loads a URL in the page; Eval runs JavaScript there and returns its
//     value; WaitFor polls a JavaScript condition until it holds.
//   - ExpectRequest and ExpectResponse watch the page's network traffic, from
//     Network.requestWillBeSent and Network.responseReceived, for a URL prefix, with
//     the headers as Chromium received them. A redirect to an OAuth client's loopback
//     redirect URI is seen as a request even when nothing listens there and the page
//     then fails to load. ExpectLoadingFailure sees requests that failed, or whose
//     response Chromium refused (a frame forbidden by X-Frame-Options).
//   - Frames lists the page's frames (one showing Chromium's error page names the URL
//     it could not show); EvalInFrame runs JavaScript in one of them.
//   - Screenshot saves the page as a PNG; Call sends any other DevTools command, and
//     NewWatch collects any events.
//
// A typical use:
//
//	b, err := cdp.Launch(ctx, path)
//	...
//	defer b.Close()
//	cb := b.ExpectRequest("http://127.0.0.1:5555/callback")
//	defer cb.Stop()
//	b.Navigate(ctx, authorizeURL)
//	b.WaitFor(ctx, `document.querySelector("button[name=decision]") !== null`, 5*time.Second)
//	b.Eval(ctx, `document.querySelector("button[name=decision][value=allow]").click()`, nil)
//	req, err := cb.Wait(ctx) // req.URL carries code, state and iss
package cdp
