package cimd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// keysEnv serves a private_key_jwt document at /client.json naming the
// key set at /jwks.json, which keys serves.
func keysEnv(t *testing.T, keys http.HandlerFunc, edit func(*Options)) *env {
	t.Helper()
	return newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jwks.json" {
			keys(w, r)
			return
		}
		serveJSON(w, doc(selfURL(r), func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["token_endpoint_auth_signing_alg"] = "EdDSA"
			m["jwks_uri"] = "https://" + r.Host + "/jwks.json"
		}))
	}, edit)
}

func serveKeySet(w http.ResponseWriter, _ *http.Request) {
	b, _ := json.Marshal(testKeySet)
	serveJSON(w, string(b))
}

// SEC-128, CIMD-8: ChatGPT's kind of document (private_key_jwt, a signing
// algorithm, a jwks_uri) gives a confidential client whose keys Keys
// fetches from the jwks_uri.
func TestKeysFromJWKSURI(t *testing.T) {
	e := keysEnv(t, serveKeySet, nil)
	c, err := e.f.Client(context.Background(), e.url("/client.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TokenEndpointAuthMethod != "private_key_jwt" || c.Public() || c.SigningAlg != "EdDSA" || c.JWKSURI != e.url("/jwks.json") || c.JWKS != nil {
		t.Fatalf("client = %+v, want a confidential private_key_jwt client with EdDSA and the document's jwks_uri", c)
	}
	set, err := e.f.Keys(context.Background(), c, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != "k1" {
		t.Fatalf("keys = %+v, want the one key k1 of the served set", set.Keys)
	}
}

// SEC-128: the set is cached as documents are (CIMD-6); a caller that asks
// for a fresh copy gets one at most every 30 s, so made-up assertions
// cannot make the gateway fetch for them.
func TestKeysCachedAndRefetchedAtMostEvery30s(t *testing.T) {
	e := keysEnv(t, serveKeySet, nil)
	c, err := e.f.Client(context.Background(), e.url("/client.json"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(fresh bool) {
		t.Helper()
		if _, err := e.f.Keys(context.Background(), c, fresh); err != nil {
			t.Fatal(err)
		}
	}
	get(false)
	get(false)
	get(true)
	if n := e.hitCount("/jwks.json"); n != 1 {
		t.Fatalf("the key set was fetched %d times, want 1 (cached, and a fresh copy was fetched under 30 s ago)", n)
	}
	e.clock.advance(31 * time.Second)
	get(false)
	if n := e.hitCount("/jwks.json"); n != 1 {
		t.Fatalf("the key set was fetched %d times, want 1: a set within its lifetime is served from the cache", n)
	}
	get(true)
	if n := e.hitCount("/jwks.json"); n != 2 {
		t.Fatalf("the key set was fetched %d times, want 2: a fresh copy asked for 31 s after the last fetch", n)
	}
	e.clock.advance(DefaultTTL)
	get(false)
	if n := e.hitCount("/jwks.json"); n != 3 {
		t.Fatalf("the key set was fetched %d times, want 3: the cached copy expired", n)
	}
}

// SEC-128: a document's own jwks is read without any fetch.
func TestKeysInline(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, doc(selfURL(r), func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["jwks"] = testKeySet
		}))
	}, nil)
	c, err := e.f.Client(context.Background(), e.url("/client.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.JWKSURI != "" || c.JWKS == nil {
		t.Fatalf("client = %+v, want its inline jwks and no jwks_uri", c)
	}
	set, err := e.f.Keys(context.Background(), c, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != "k1" {
		t.Fatalf("keys = %+v, want the document's key k1", set.Keys)
	}
}

// SEC-128, CIMD-10: a jwks_uri answer is held to the rules of documents,
// and a refused set is not cached.
func TestKeysResponseRules(t *testing.T) {
	private, _ := json.Marshal(testPrivateKeySet)
	big := fmt.Sprintf(`{"keys":[],"pad":%q}`, strings.Repeat("x", DefaultMaxKeyBytes))
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/jwks.json", http.StatusFound)
		}, "the client's jwks_uri answered with a redirect (HTTP 302); redirects are not followed"},
		{"404", http.NotFound, "the client's jwks_uri answered HTTP 404 instead of 200"},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>"))
		}, "the client's key set is not served as application/json"},
		{"too big", func(w http.ResponseWriter, _ *http.Request) { serveJSON(w, big) }, "the client's key set is larger than 32768 bytes"},
		{"private key", func(w http.ResponseWriter, _ *http.Request) { serveJSON(w, string(private)) },
			"the client's key set at jwks_uri: key 1 of the key set is private or symmetric key material"},
		{"not a key set", func(w http.ResponseWriter, _ *http.Request) { serveJSON(w, `{"keys":"no"}`) },
			"the client's key set at jwks_uri: the key set is not a valid JWK Set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := keysEnv(t, tc.h, nil)
			c, err := e.f.Client(context.Background(), e.url("/client.json"))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				_, err = e.f.Keys(context.Background(), c, false)
				if got := asError(t, err).Reason; !strings.Contains(got, tc.want) {
					t.Fatalf("Reason = %q, want it to contain %q", got, tc.want)
				}
				if n := e.hitCount("/jwks.json"); n != i+1 {
					t.Fatalf("after %d calls the key set was fetched %d times, want %d: a refused set is not cached", i+1, n, i+1)
				}
			}
		})
	}
}

// SEC-128, CIMD-10: a jwks_uri that resolves to a private address is not
// fetched; the Reason is the generic one.
func TestKeysSSRFRefused(t *testing.T) {
	e := keysEnv(t, serveKeySet, nil)
	c, err := e.f.Client(context.Background(), e.url("/client.json"))
	if err != nil {
		t.Fatal(err)
	}
	c.JWKSURI = "https://internal.example:" + e.port() + "/jwks.json" // not allow-listed, resolves to 127.0.0.1
	_, err = e.f.Keys(context.Background(), c, false)
	if got := asError(t, err).Reason; got != reasonKeysUnreachable {
		t.Fatalf("Reason = %q, want the generic %q", got, reasonKeysUnreachable)
	}
	if n := e.hitCount("/jwks.json"); n != 0 {
		t.Fatalf("the key set was fetched %d times from a loopback address, want 0", n)
	}
}

// SEC-128: a set served with no-store is fetched for each assertion, as
// its owner asks, but a fresh copy asked for right after that fetch (an
// assertion no key verified) is not fetched again before 30 s: made-up
// assertions cost one fetch each, not two. Fails before this change: the
// set was fetched twice.
func TestKeysNoStoreRefetchedAtMostEvery30s(t *testing.T) {
	e := keysEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		serveKeySet(w, r)
	}, nil)
	c, err := e.f.Client(context.Background(), e.url("/client.json"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(fresh bool, want int) {
		t.Helper()
		if _, err := e.f.Keys(context.Background(), c, fresh); err != nil {
			t.Fatal(err)
		}
		if n := e.hitCount("/jwks.json"); n != want {
			t.Fatalf("Keys(fresh=%v): the key set was fetched %d times, want %d", fresh, n, want)
		}
	}
	get(false, 1)
	get(true, 1)
	get(false, 2) // no-store: not served from a cache
	e.clock.advance(31 * time.Second)
	get(true, 3)
}

// SEC-128, CIMD-10: AllowHosts exempts a host's own documents from the
// address checks (testing only), but anyone may name any jwks_uri in a
// document: a client whose document is not on an allow-listed host cannot
// have a set fetched from one at a private address, nor use the set an
// allow-listed client fetched. Fails before this change: the set was
// fetched from 127.0.0.1 for a client on another host.
func TestKeysAllowHostsOnlyForTheirOwnClients(t *testing.T) {
	e := keysEnv(t, serveKeySet, nil)
	own, err := e.f.Client(context.Background(), e.url("/client.json"))
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := *own
	elsewhere.ID = "https://public.example/client.json" // not allow-listed
	refused := func(when string) {
		t.Helper()
		_, err := e.f.Keys(context.Background(), &elsewhere, false)
		if got := asError(t, err).Reason; got != reasonKeysUnreachable {
			t.Fatalf("%s: Reason = %q, want the generic %q", when, got, reasonKeysUnreachable)
		}
	}
	refused("first")
	if n := e.hitCount("/jwks.json"); n != 0 {
		t.Fatalf("the key set was fetched %d times from 127.0.0.1 for a client on another host, want 0", n)
	}
	if _, err := e.f.Keys(context.Background(), own, false); err != nil {
		t.Fatalf("the allow-listed client's own set: %v", err)
	}
	refused("once the allow-listed client's set is cached")
	if n := e.hitCount("/jwks.json"); n != 1 {
		t.Fatalf("the key set was fetched %d times, want 1: for the allow-listed client only", n)
	}
}

// SEC-128: a set is used for 5 minutes at most, whatever its cache headers
// allow, so that a key the client took out of it (a leaked one) stops
// verifying within that time. Fails before this change: a set served with
// max-age=86400 was still served from the cache 6 minutes later.
func TestKeysKeptFiveMinutesAtMost(t *testing.T) {
	e := keysEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=86400")
		serveKeySet(w, r)
	}, nil)
	c, err := e.f.Client(context.Background(), e.url("/client.json"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.f.Keys(context.Background(), c, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.hitCount("/jwks.json"); n != 1 {
		t.Fatalf("the key set was fetched %d times, want 1 (cached)", n)
	}
	e.clock.advance(6 * time.Minute)
	if _, err := e.f.Keys(context.Background(), c, false); err != nil {
		t.Fatal(err)
	}
	if n := e.hitCount("/jwks.json"); n != 2 {
		t.Fatalf("6 minutes later the key set was fetched %d times in all, want 2: a set is kept 5 minutes at most", n)
	}
}

// SEC-128: a document that holds its keys (jwks) is those keys' only
// copy, so it is kept 5 minutes at most whatever its cache headers allow,
// as a jwks_uri set is: a key the client took out of it (a leaked one)
// stops verifying within that time, and one it added starts to. Fails
// before this change: a document served with max-age=86400 was still used
// 6 minutes later.
func TestKeysInlineKeptFiveMinutesAtMost(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=86400")
		serveJSON(w, doc(selfURL(r), func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["jwks"] = testKeySet
		}))
	}, nil)
	get := func() {
		t.Helper()
		if _, err := e.f.Client(context.Background(), e.url("/client.json")); err != nil {
			t.Fatal(err)
		}
	}
	get()
	get()
	if n := e.hitCount("/client.json"); n != 1 {
		t.Fatalf("the document was fetched %d times, want 1 (cached)", n)
	}
	e.clock.advance(6 * time.Minute)
	get()
	if n := e.hitCount("/client.json"); n != 2 {
		t.Fatalf("6 minutes later the document with its keys was fetched %d times in all, want 2: its keys are kept 5 minutes at most", n)
	}
}

// SEC-128, SEC-159: a caller whose request ends while the key set is
// being fetched gets the one reason of a set that could not be fetched at
// once, and, as no other caller waits, the fetch ends: a request dropped
// at once leaves no connection of the gateway's open for Timeout (a
// document naming a new jwks_uri at each fetch would make one per
// request). A later call fetches the set anew.
func TestKeysFetchEndsWithItsLastCaller(t *testing.T) {
	st := newStall(serveKeySet)
	e := keysEnv(t, st.ServeHTTP, func(o *Options) { o.Timeout = time.Minute })
	c, err := e.f.Client(context.Background(), e.url("/client.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.f.Keys(ctx, c, false)
		done <- err
	}()
	<-st.entered
	cancel()
	err = <-done
	var e1 *Error
	if !errors.As(err, &e1) || e1.Reason != reasonKeysUnreachable || !errors.Is(err, context.Canceled) {
		t.Fatalf("Keys whose context ended: %v, want the key set's unreachable reason caused by the cancellation", err)
	}
	select {
	case <-st.aborted:
	case <-time.After(10 * time.Second):
		t.Fatal("10 s after its only caller gave up, the key set's fetch still runs")
	}
	st.on.Store(false)
	set, err := e.f.Keys(context.Background(), c, false)
	if err != nil || len(set.Keys) != 1 {
		t.Fatalf("Keys after the fetch ended: %v, %v; want the set, fetched anew", set, err)
	}
}

// SEC-160: a document that names a jwks_uri says where the client's keys
// are, and is held no longer than a key set (5 minutes), whatever its
// headers allow: a host briefly held by someone else stops deciding the
// client's keys within minutes of its owner's fix.
func TestKeysDocumentWithJWKSURIHeldBriefly(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=86400")
		serveJSON(w, doc(selfURL(r), func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["jwks_uri"] = "https://" + r.Host + "/jwks.json"
		}))
	}, nil)
	id := e.url("/client.json")
	for _, advance := range []time.Duration{0, 4 * time.Minute, 2 * time.Minute} {
		e.clock.advance(advance)
		if _, err := e.f.Client(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.hitCount("/client.json"); n != 2 {
		t.Errorf("the document was fetched %d times in 6 minutes, want 2: held 5 minutes at most", n)
	}
}
