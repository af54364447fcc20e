package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/upstream"
)

// tenantPlaceholder is how Entra ID's multi-tenant discovery documents
// name the tenant in their issuer.
const tenantPlaceholder = "{tenantid}"

// discover fetches the discovery document. With tenants, a document whose
// issuer differs from the configured one only by the {tenantid}
// placeholder is accepted, and that issuer is returned: the configured URL
// (…/common/v2.0) is not what any token will carry.
func discover(ctx context.Context, issuer string, tenants bool) (*oidc.Provider, string, error) {
	provider, err := oidc.NewProvider(ctx, issuer)
	var mm *oidc.IssuerMismatchError
	if !tenants || !errors.As(err, &mm) || !strings.Contains(mm.Discovered, tenantPlaceholder) {
		return provider, "", err
	}
	provider, err = oidc.NewProvider(oidc.InsecureIssuerURLContext(ctx, mm.Discovered), issuer)
	if err != nil {
		return nil, "", err
	}
	return provider, mm.Discovered, nil
}

// hostedDomainParam is Google's hd parameter: one domain preselects it;
// with several, "*" asks for any Workspace account and the ID token's hd
// claim decides.
func hostedDomainParam(domains []string) string {
	if len(domains) == 1 {
		return domains[0]
	}
	return "*"
}

func lower(ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, strings.ToLower(s))
	}
	return out
}

// checkRestrictions applies the hosted domain and tenant rules to a
// verified ID token's claims.
func (c *Connector) checkRestrictions(iss string, claims map[string]any) error {
	if len(c.hostedDomains) > 0 {
		hd, _ := claims["hd"].(string)
		if d, ok := identity.LowerDomain(hd); !ok || !slices.Contains(c.hostedDomains, d) {
			if hd == "" {
				return errors.New("no hosted domain (hd): not an account of an allowed Google Workspace domain")
			}
			return fmt.Errorf("hosted domain %q is not allowed", upstream.Clip(hd))
		}
	}
	if c.tenantIssuer == "" && len(c.allowedTenants) == 0 {
		return nil
	}
	tid, _ := claims["tid"].(string)
	if tid == "" || strings.ContainsAny(tid, "/{}?#") {
		return errors.New("no usable tenant (tid) claim")
	}
	// go-oidc skipped its iss check for a placeholder issuer: this is it,
	// so that one tenant's token never passes for another's.
	if c.tenantIssuer != "" && iss != strings.ReplaceAll(c.tenantIssuer, tenantPlaceholder, tid) {
		return fmt.Errorf("issuer %q is not the issuer of its tenant %q", upstream.Clip(iss), upstream.Clip(tid))
	}
	if len(c.allowedTenants) > 0 && !slices.Contains(c.allowedTenants, tid) {
		return fmt.Errorf("tenant %q is not allowed", upstream.Clip(tid))
	}
	return nil
}

// checkResponseIssuer compares the authorization response's iss with the
// provider's (RFC 9207 §2.4, SEC-65), so that a response of another
// provider is refused before its code goes to this one's token endpoint;
// without iss, it is refused when the provider says it sends one. With a
// {tenantid} issuer, any tenant's issuer matches: the ID token's check
// decides which.
func (c *Connector) checkResponseIssuer(q url.Values) error {
	iss, sent := q["iss"]
	switch {
	case !sent && c.issInResponse:
		return errors.New("the authorization response has no iss, which the provider says it sends (RFC 9207)")
	case !sent:
		return nil
	case len(iss) != 1 || !c.issuerMatches(iss[0]):
		return fmt.Errorf("the authorization response's iss %q is not the provider's (RFC 9207)", upstream.Clip(strings.Join(iss, " ")))
	}
	return nil
}

func (c *Connector) issuerMatches(iss string) bool {
	if c.tenantIssuer == "" {
		return iss == c.issuer
	}
	pre, post, _ := strings.Cut(c.tenantIssuer, tenantPlaceholder)
	tid, ok := strings.CutPrefix(iss, pre)
	if tid, ok2 := strings.CutSuffix(tid, post); ok && ok2 {
		return tid != "" && !strings.ContainsAny(tid, "/{}?#")
	}
	return false
}

// groupsScope is the scope behind which many providers put the groups
// claim (Okta, and any that lists it: loginScopes asks for it then).
const groupsScope = "groups"

// checkGrantedScopes refuses a token response that names the scopes it
// granted (RFC 6749 §5.1: it must when they differ from those asked for)
// without groups, when the login asked for it and the claims carry no
// groups claim (SEC-168). The scope is a parameter of the sign-in URL,
// which the person's browser carries: left out there, a provider that puts
// the groups claim behind the scope (Okta) grants the rest and sends none,
// and the person would be let in without their groups, past the rules
// that deny one. A provider that sends the claim whatever the scope
// (Keycloak's mappers) is not refused for leaving the scope out of its
// answer; a response that names no scopes granted what was asked.
func (c *Connector) checkGrantedScopes(tok *oauth2.Token, claims map[string]any) error {
	if !slices.Contains(c.oauth.Scopes, groupsScope) {
		return nil
	}
	var granted []string
	switch v := tok.Extra("scope").(type) {
	case nil:
		return nil
	case string:
		if v == "" {
			return nil
		}
		granted = strings.Fields(v)
	case []any: // not RFC 6749's form, but a list says the same
		for _, e := range v {
			if s, ok := e.(string); ok {
				granted = append(granted, s)
			}
		}
	default:
		return errors.New("the token response's scope is neither a string nor a list")
	}
	if _, sent := lookup(claims, c.claims.Groups); sent || slices.Contains(granted, groupsScope) {
		return nil
	}
	return fmt.Errorf("the provider granted the scopes %q, without %s, which the login asked for, and sent no %q claim: "+
		"the person's groups would be missing (if the provider gives this client no %s scope, set the connector's scopes without it)",
		upstream.Clip(strings.Join(granted, " ")), groupsScope, c.claims.Groups, groupsScope)
}
