package authserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

const maxRegistrationBody = 64 << 10

// RegistrationRequest is the RFC 7591 §2 client metadata mcpgate reads.
// Unknown fields are ignored, as §2 requires.
type RegistrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	Scope                   string   `json:"scope"`
	ApplicationType         string   `json:"application_type"`
	SoftwareID              string   `json:"software_id"`
	SoftwareVersion         string   `json:"software_version"`
}

// RegistrationResponse is the RFC 7591 §3.2.1 answer.
type RegistrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	ApplicationType         string   `json:"application_type"`
}

// DecodeRegistration parses and validates a registration body. Every
// failure is an *oauth.Error with an RFC 7591 §3.2.2 code.
func DecodeRegistration(body []byte) (*RegistrationRequest, *oauth.Error) {
	var req RegistrationRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, oauth.Errorf(oauth.InvalidClientMetadata, "the body is not a JSON object of client metadata")
	}
	if dec.More() {
		return nil, oauth.Errorf(oauth.InvalidClientMetadata, "the body has data after the JSON object")
	}
	if len(req.RedirectURIs) == 0 {
		return nil, oauth.Errorf(oauth.InvalidRedirectURI, "redirect_uris is required")
	}
	if len(req.RedirectURIs) > 20 {
		return nil, oauth.Errorf(oauth.InvalidRedirectURI, "at most 20 redirect_uris are allowed")
	}
	for _, u := range req.RedirectURIs {
		if err := oauth.ValidateRedirectURI(u); err != nil {
			return nil, oauth.Errorf(oauth.InvalidRedirectURI, "%s", err.Error())
		}
	}
	switch req.TokenEndpointAuthMethod {
	case "":
		req.TokenEndpointAuthMethod = "client_secret_basic" // RFC 7591 §2 default
	case "none", "client_secret_basic", "client_secret_post":
	default:
		return nil, oauth.Errorf(oauth.InvalidClientMetadata, "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
	}
	if len(req.GrantTypes) == 0 {
		req.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range req.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return nil, oauth.Errorf(oauth.InvalidClientMetadata, "grant type %q is not supported", truncate(g, 64))
		}
	}
	if !slices.Contains(req.GrantTypes, "authorization_code") {
		return nil, oauth.Errorf(oauth.InvalidClientMetadata, "grant_types must include authorization_code")
	}
	if len(req.ResponseTypes) == 0 {
		req.ResponseTypes = []string{"code"}
	}
	for _, rt := range req.ResponseTypes {
		if rt != "code" {
			return nil, oauth.Errorf(oauth.InvalidClientMetadata, "only the code response type is supported")
		}
	}
	switch req.ApplicationType {
	case "native", "web": // DCR-2: either is accepted with any valid redirect URI (Cursor sends web with cursor://)
	case "":
		req.ApplicationType = oauth.InferApplicationType(req.RedirectURIs)
	default:
		return nil, oauth.Errorf(oauth.InvalidClientMetadata, "application_type must be native or web")
	}
	if _, ok := oauth.ParseScope(req.Scope); !ok {
		return nil, oauth.Errorf(oauth.InvalidClientMetadata, "scope is not a valid scope string")
	}
	name, ok := oauth.CleanClientName(req.ClientName)
	if !ok {
		return nil, oauth.Errorf(oauth.InvalidClientMetadata, "client_name must be at most 200 printable characters")
	}
	req.ClientName = name
	for _, u := range []string{req.ClientURI, req.LogoURI} {
		if u != "" && !oauth.IsWebURL(u) {
			return nil, oauth.Errorf(oauth.InvalidClientMetadata, "client_uri and logo_uri must be http or https URLs")
		}
	}
	return &req, nil
}

// servedScope is scope without the scopes this server does not serve, in
// the client's order; scope is already known to parse.
func (s *Server) servedScope(scope string) string {
	asked, _ := oauth.ParseScope(scope)
	supported := s.supportedScopes()
	return strings.Join(slices.DeleteFunc(asked, func(sc string) bool { return !slices.Contains(supported, sc) }), " ")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// registrationWait says how long the request's address must wait before
// it may register again, zero if it may now. Two limits of
// RegistrationRate a minute: this process's token bucket first, which
// turns a flood away without a write; then the address's count in the
// store for the current minute, which every replica sharing the store
// adds to, so that spreading registrations over replicas gains nothing.
func (s *Server) registrationWait(r *http.Request) (time.Duration, error) {
	addr := s.clientAddr(r)
	if _, ok := s.regLimit.take(addr); !ok {
		return time.Minute, nil
	}
	now := s.now()
	window := now.Truncate(time.Minute)
	n, err := s.store.AddRateHit(r.Context(), "register "+addr, window, window.Add(time.Minute))
	if err != nil {
		return 0, err
	}
	if n <= s.opts.RegistrationRate {
		return 0, nil
	}
	return max(window.Add(time.Minute).Sub(now).Round(time.Second), time.Second), nil
}

// register implements RFC 7591 §3 (DCR-1..3).
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	if wait, err := s.registrationWait(r); err != nil || wait > 0 {
		if err == nil {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
			err = &oauth.Error{Code: oauth.TemporarilyUnavailable, Description: "too many registrations from this address; try again later", Status: http.StatusTooManyRequests}
		}
		oauth.WriteJSON(w, r, s.log, err)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		oauth.WriteJSON(w, r, s.log, oauth.Errorf(oauth.InvalidClientMetadata, "the body must be application/json"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			oauth.WriteJSON(w, r, s.log, &oauth.Error{Code: oauth.InvalidClientMetadata, Description: fmt.Sprintf("the body is larger than %d bytes", maxRegistrationBody), Status: http.StatusRequestEntityTooLarge})
			return
		}
		oauth.WriteJSON(w, r, s.log, oauth.Errorf(oauth.InvalidRequest, "could not read the body"))
		return
	}
	req, oerr := DecodeRegistration(body)
	if oerr != nil {
		if note := noteOf(r.Context()); note != nil {
			// What the client asked for, for the operator, as far as it
			// reads as JSON.
			var asked RegistrationRequest
			if json.Unmarshal(body, &asked) == nil {
				note.detail("client_name", asked.ClientName)
				note.detail("redirect_uris", strings.Join(asked.RedirectURIs, " "))
			}
		}
		oauth.WriteJSON(w, r, s.log, oerr)
		return
	}
	// RFC 7591 §3.2.1 lets the server replace what it will not honour: the
	// registered scope keeps only scopes served here, so the answer never
	// promises one that no grant would carry (/authorize drops the others).
	req.Scope = s.servedScope(req.Scope)
	now := s.now()
	c := &store.Client{
		ID:                      tokens.NewID(),
		Name:                    req.ClientName,
		RedirectURIs:            req.RedirectURIs,
		GrantTypes:              req.GrantTypes,
		ResponseTypes:           req.ResponseTypes,
		TokenEndpointAuthMethod: req.TokenEndpointAuthMethod,
		ApplicationType:         req.ApplicationType,
		Scope:                   req.Scope,
		ClientURI:               req.ClientURI,
		LogoURI:                 req.LogoURI,
		CreatedAt:               now,
	}
	var secret string
	if !c.Public() {
		secret = tokens.NewSecret()
		c.SecretHash = tokens.Hash(secret)
	}
	if err := s.store.CreateClient(r.Context(), c); err != nil {
		oauth.WriteJSON(w, r, s.log, fmt.Errorf("register client: %w", err))
		return
	}
	s.log.Info("client registered", "client_id", c.ID, "client_name", c.Name, "auth_method", c.TokenEndpointAuthMethod, "application_type", c.ApplicationType)
	if note := noteOf(r.Context()); note != nil {
		note.client(c.ID)
		note.detail("client_name", c.Name)
		note.detail("redirect_uris", strings.Join(c.RedirectURIs, " "))
	}
	resp := RegistrationResponse{
		ClientID:                c.ID,
		ClientSecret:            secret,
		ClientIDIssuedAt:        now.Unix(),
		RedirectURIs:            c.RedirectURIs,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		GrantTypes:              c.GrantTypes,
		ResponseTypes:           c.ResponseTypes,
		ClientName:              c.Name,
		ClientURI:               c.ClientURI,
		LogoURI:                 c.LogoURI,
		Scope:                   c.Scope,
		ApplicationType:         c.ApplicationType,
	}
	if secret != "" {
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	writeJSON(w, http.StatusCreated, resp)
}
