package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// SESS-3: the binding of an upstream's Mcp-Session-Id to its opener, by
// the id's hash and per resource, that every replica reads.
func testMCPSession(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := &store.MCPSession{Resource: "/mcp", Hash: hash("session-1"), UserID: "github:1", ExpiresAt: t0.Add(24 * time.Hour)}
	if err := s.PutMCPSession(ctx, a, t0); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := s.GetMCPSession(ctx, "/mcp", hash("session-1"), t0)
	if err != nil || got.Resource != "/mcp" || !bytes.Equal(got.Hash, a.Hash) || got.UserID != "github:1" || !got.ExpiresAt.Equal(a.ExpiresAt) {
		t.Fatalf("get: %+v, %v; want %+v", got, err, a)
	}
	for name, get := range map[string]func() error{
		"another resource": func() error { _, err := s.GetMCPSession(ctx, "/other/mcp", hash("session-1"), t0); return err },
		"another id":       func() error { _, err := s.GetMCPSession(ctx, "/mcp", hash("session-2"), t0); return err },
		"expired":          func() error { _, err := s.GetMCPSession(ctx, "/mcp", hash("session-1"), a.ExpiresAt); return err },
	} {
		if err := get(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get, %s: %v, want ErrNotFound", name, err)
		}
	}

	// Another user cannot take a live binding; its opener moves its expiry.
	b := &store.MCPSession{Resource: "/mcp", Hash: hash("session-1"), UserID: "github:2", ExpiresAt: t0.Add(48 * time.Hour)}
	if err := s.PutMCPSession(ctx, b, t0.Add(time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("put of another user over a live binding: %v, want ErrConflict", err)
	}
	moved := *a
	moved.ExpiresAt = t0.Add(30 * time.Hour)
	if err := s.PutMCPSession(ctx, &moved, t0.Add(6*time.Hour)); err != nil {
		t.Fatalf("put again by its opener: %v", err)
	}
	if got, err := s.GetMCPSession(ctx, "/mcp", hash("session-1"), t0.Add(25*time.Hour)); err != nil || got.UserID != "github:1" {
		t.Fatalf("get after the move: %+v, %v; want github:1's, live", got, err)
	}
	// The same id at another resource is another binding.
	other := &store.MCPSession{Resource: "/other/mcp", Hash: hash("session-1"), UserID: "github:2", ExpiresAt: t0.Add(time.Hour)}
	if err := s.PutMCPSession(ctx, other, t0); err != nil {
		t.Fatalf("put at another resource: %v", err)
	}
	// Once expired, the id may be bound anew.
	if err := s.PutMCPSession(ctx, b, moved.ExpiresAt); err != nil {
		t.Fatalf("put of another user over an expired binding: %v", err)
	}
	if got, err := s.GetMCPSession(ctx, "/mcp", hash("session-1"), moved.ExpiresAt); err != nil || got.UserID != "github:2" {
		t.Fatalf("get after rebinding: %+v, %v; want github:2's", got, err)
	}

	if err := s.DeleteMCPSession(ctx, "/mcp", hash("session-1")); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.GetMCPSession(ctx, "/mcp", hash("session-1"), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteMCPSession(ctx, "/mcp", hash("session-1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete again: %v, want ErrNotFound", err)
	}
	if _, err := s.GetMCPSession(ctx, "/other/mcp", hash("session-1"), t0); err != nil {
		t.Fatalf("the other resource's binding after the delete: %v", err)
	}

	// Housekeeping removes expired bindings only.
	live := &store.MCPSession{Resource: "/mcp", Hash: hash("session-3"), UserID: "github:3", ExpiresAt: t0.Add(3 * time.Hour)}
	if err := s.PutMCPSession(ctx, live, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteExpired(ctx, t0.Add(2*time.Hour), time.Time{}, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMCPSession(ctx, "/other/mcp", hash("session-1")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an expired binding after DeleteExpired: %v, want ErrNotFound (deleted)", err)
	}
	if err := s.DeleteMCPSession(ctx, "/mcp", hash("session-3")); err != nil {
		t.Errorf("a live binding after DeleteExpired: %v, want it kept", err)
	}
}
