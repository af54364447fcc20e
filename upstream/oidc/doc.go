// Package oidc is the upstream connector for any OpenID Connect provider
// (Keycloak, Okta, Entra ID, Google, GitLab, Auth0, …), found by discovery
// from its issuer URL.
//
// A login is the authorization code flow of OpenID Connect Core §3.1 with
// PKCE S256 (RFC 7636): LoginURL sends state, nonce and the code challenge;
// HandleCallback redeems the code with the verifier (and the client secret,
// if there is one: a public client relies on PKCE alone), then verifies the
// ID token with go-oidc: signature against the provider's published keys,
// iss, aud (a string or an array holding the client ID), exp, and the nonce.
//
// The verifier and the nonce are derived from the state with an HMAC under
// the connector's key rather than kept server-side. The state is random,
// single-use and bound by the authorization server to one authorization
// request, so values derived from it are as fresh and unique as random
// ones, and the connector needs no storage and no expiry sweep between
// LoginURL and HandleCallback: the authorization server's state already
// expires. The key keeps both secret although the state crosses the
// browser: a stolen code cannot be redeemed without the verifier, and an ID
// token minted for another login carries another nonce. Replicas that share
// no sticky sessions must share the key (Config.Key).
//
// Claims come from the ID token; when it lacks one the connector maps
// (username, email, groups, name), the userinfo response fills it in, and
// only when userinfo's sub equals the ID token's (Core §5.3.2). A claim name
// may be a path into nested objects ("realm_access.roles"); a name that
// exists as it is at the top level wins, so namespaced claims such as
// "https://example.com/groups" work too. The email is kept only when
// email_verified is true: downstream servers may trust it.
//
// Two provider-specific checks apply to the verified ID token when
// configured. HostedDomains (Google) requires its hd claim to be one of the
// domains: the hd authorization parameter is only a hint the person can
// edit. TenantIssuer (Entra ID) accepts a discovery issuer with a
// {tenantid} placeholder, as the common and organizations endpoints
// publish. That issuer is no token's iss, so go-oidc's issuer check gives
// way to the connector's own: iss must be the placeholder filled with the
// token's tid, and tid one of AllowedTenants when that list is set.
//
// The connector is an upstream.RefreshingConnector: a login hands back the
// provider's refresh token, and Refresh redeems it to read the user again
// (RT-3). Many providers issue one only when asked: OfflineAccess adds the
// offline_access scope (Core §11) for them, always or when discovery lists
// it; Google's way, access_type=offline with prompt=consent, is a pair of
// AuthParams. Without a prompt of consent, Core §11 lets a provider drop
// the scope; Okta, Entra ID and Auth0 do not, and a strict one that does
// makes the login one without a refresh token, which the gateway treats
// as a grant it cannot recheck.
//
// Users are "<name>:<sub>", so two providers' subjects never collide.
package oidc
