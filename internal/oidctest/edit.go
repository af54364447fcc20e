package oidctest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// EditAnswers is an http.RoundTripper to the provider that changes its
// JSON answers on their way back, for a test of what a provider may
// answer and this one never does (no refresh token, fewer scopes granted):
// Edit, when it is set and Match(r) holds, changes the answer to r in
// place. Requests go out through http.DefaultTransport.
type EditAnswers struct {
	Match func(r *http.Request) bool
	Edit  func(r *http.Request, answer map[string]any)
}

func (e *EditAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || e.Edit == nil || !e.Match(r) {
		return resp, err
	}
	var answer map[string]any
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	e.Edit(r, answer)
	b, err := json.Marshal(answer)
	if err != nil {
		return nil, err
	}
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}
