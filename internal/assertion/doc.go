// Package assertion checks the JWTs with which a private_key_jwt client
// authenticates at the token, revocation and introspection endpoints
// (RFC 7521 §4.2, RFC 7523 §2.2 and §3, OpenID Connect Core §9;
// SEC-128). ChatGPT's client metadata document names this method.
//
// An assertion is accepted when:
//
//   - it is a compact JWS signed with an asymmetric algorithm (Algorithms),
//     the client's token_endpoint_auth_signing_alg if it named one; never
//     "none" nor a shared-secret HMAC, which a metadata document cannot
//     share (CIMD-8);
//   - a key of the client's set verifies it: the one its kid names (the
//     set's keys without a kid if none has it), or, without a kid, any key
//     of the algorithm's type (the TypeScript SDK sends none); a key whose own alg is another is not tried, and no
//     more keys than MaxKeys, fewer of the kinds costly to verify with;
//   - iss and sub are both the client_id;
//   - aud holds one of the values the caller passes: the issuer, or the URL
//     of the token endpoint or of the endpoint called;
//   - exp is present and not past, and at most MaxLifetime ahead, which
//     bounds how long its jti is remembered; nbf and iat, when present, are
//     not in the future; Leeway allows for clocks that differ;
//   - jti is present, and the assertion was not used before: Use names
//     each (client, jti) for a count kept in the store, which every
//     replica shares (SEC-129), past the assertion's expiry.
//
// ParseKeySet reads a client's JWK Set, leaving out the keys it cannot use
// (RFC 7517 §5: an unknown type, another use than "sig", RSA under 2048
// bits or with an exponent over 65537), and refuses one that holds private
// or symmetric key material (published, such a key is no longer secret).
// It keeps each key's public key, kid, alg and use, not its x5c
// certificates, which nothing checks.
//
// The count is shared because a replay is worth most on another replica:
// a refresh request copied whole (its refresh token and its assertion)
// and sent again within the refresh grace window would get the first
// request's new tokens (RT-1) if only the assertion stood in its way.
package assertion
