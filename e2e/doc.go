// Package e2e holds end-to-end tests: real MCP clients (the go-sdk client
// with its OAuth handler, the official conformance suite) against the
// gateway in process and as the built binary, walking the login and
// consent pages with the headless form follower in e2e/browser, and the
// same pages in a real headless Chromium driven through e2e/cdp.
package e2e
