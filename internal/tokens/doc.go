// Package tokens owns the gateway's secrets and access tokens: random
// bearer secrets (authorization codes, refresh tokens, ids) and their
// SHA-256 at rest, PKCE S256 (RFC 7636), AES-256-GCM sealing of secrets at
// rest, the Ed25519 signing keys kept sealed in the store and published as a
// JWKS (rotated: Keyset.Rotate, RotateIfDue, and reloads that pick up
// another process's rotation), and RFC 9068 JWT access tokens: Keyset.Mint issues them and
// Keyset.Verify checks them at a given time, without the database (but for
// a token with a kid the Keyset does not know yet, which makes it read the
// keys again). It caches no token: the resource guard caches the tokens it
// verified.
package tokens
