// Package cimd resolves OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document, CIMD-1..12). A client whose
// client_id is an https URL publishes its RFC 7591 §2 metadata at that URL;
// the authorization server fetches the document instead of keeping a
// registration (CIMD-2).
//
// Fetcher.Client turns such a client_id into a *store.Client, or fails with
// an *Error whose Reason may be shown to a person and whose Cause is for the
// log. What the caller still does:
//
//   - Order: static clients first, then CIMD for IsClientIDURL ids, then
//     the store (REG-1).
//   - /authorize: on *Error render a page and never redirect, because the
//     redirect URI cannot be verified (CIMD-9); then check redirect_uri with
//     oauth.MatchRedirectURI against the returned RedirectURIs (CIMD-5); the
//     consent page shows the client_id host and the redirect host and warns
//     on loopback-only redirects (CIMD-11, CIMD-12).
//   - /token: on *Error answer invalid_client.
//   - Metadata: advertise client_id_metadata_document_supported: true once a
//     Fetcher is wired in (ASM-5).
//
// # Validation
//
// The URL (ValidateClientIDURL, draft §3, CIMD-7): https, a host, a path
// other than "/", no "." or ".." segments (also percent-encoded), no
// fragment, no userinfo, ASCII only. A query is refused although the draft
// only says SHOULD NOT: a query makes the identifier easy to vary per request
// (cache busting, one URL per victim) and no known client needs one.
//
// The response: exactly 200 (a 3xx is a failure, redirects are never
// followed), a JSON media type (application/json or application/*+json),
// at most Options.MaxBytes (the draft recommends 5 KB).
//
// The document (CIMD-3, CIMD-4, CIMD-8): one JSON object with no duplicate
// members; client_id equal to the URL by simple string comparison; a
// client_name; redirect_uris that each pass oauth.ValidateRedirectURI (at
// most 20, as for DCR). No client_secret or client_secret_expires_at; the
// token_endpoint_auth_method is absent, "none", or "private_key_jwt" (SEC-128)
// with the client's public keys named by jwks_uri (an https URL under the
// client_id's rules) or jwks, not both; Fetcher.Keys reads them, fetching
// jwks_uri like a document (package assertion checks the client's signed
// assertions). grant_types ⊆ {authorization_code,
// refresh_token} and must include authorization_code (default: both);
// response_types ⊆ {code}; application_type native or web, inferred like DCR
// when absent; scope, client_uri and logo_uri follow the DCR rules. Unknown
// members are ignored (RFC 7591 §2).
//
// # SSRF (CIMD-10)
//
// The host is resolved once with Options.Resolver; the fetch is refused when
// any answer (or an IP-literal host) is not a public unicast address:
// loopback, RFC 1918 and fc00::/7, link-local, CGNAT, multicast, broadcast,
// unspecified, 0.0.0.0/8, documentation and benchmarking ranges, other
// IANA special-purpose blocks, IPv6 outside 2000::/3, IPv4-compatible
// (::/96) addresses, and NAT64 (64:ff9b::/96) or 6to4 (2002::/16) addresses
// whose embedded IPv4 address is any of these. IPv4-mapped addresses are
// unmapped before the check; all checks use net/netip, never strings.
// The connection then goes to exactly the checked addresses: the transport's
// dialer ignores DNS, so a rebinding answer between check and use is never
// seen, and a net.Dialer Control function checks the socket's remote address
// again before connect. TLS still verifies the certificate for the URL's
// host. No proxy, no keep-alives, no compression, a 16 KiB header limit and
// one Options.Timeout for the whole fetch. Network failures of any kind,
// refused addresses included, carry the same generic Reason so that the
// error page is no oracle for internal DNS names; the Cause says which.
// Options.AllowHosts lifts the address check for named hosts (testing only).
//
// # Caching (CIMD-6)
//
// Valid documents are cached per RFC 9111 freshness: Cache-Control max-age
// (minus Age), else Expires relative to Date. no-store is not cached at all;
// no-cache and max-age=0 mean "revalidate", which this cache cannot do, so
// they get Options.MinTTL, the lower bound the draft lets an AS impose. A
// response without freshness information gets Options.DefaultTTL (5 min).
// Every lifetime is clamped to [MinTTL, MaxTTL] (default 1 min, 1 h).
// Failures are never cached: the next call fetches again. Concurrent calls
// for one URL share a single fetch, which ends when no caller waits for it
// any more; a key set's fetches too (SEC-159). At most 64 fetches run at
// once; the others wait for a slot, in turn. The cache holds at most
// Options.MaxEntries documents; when full, expired entries go first, then
// the one closest to expiry.
package cimd
