package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Header is the response header that carries the id.
const Header = "X-Request-Id"

// New returns a fresh id: 32 lowercase hex digits, 128 random bits.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	var s [32]byte
	hex.Encode(s[:], b[:])
	return string(s[:])
}

type key struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the id ctx carries, or "" outside a request.
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// Client returns the client's own X-Request-Id when it is short and plain
// (at most 64 letters, digits, '-', '_' or '.'), for the log beside the
// gateway's; anything else is "" and not logged, since it could forge
// lines or fill the log.
func Client(h string) string {
	if len(h) == 0 || len(h) > 64 {
		return ""
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	return h
}
