package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

// Run runs the conformance suite. newStore returns a new, empty store for
// one subtest and arranges its Close with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Client", testClient},
		{"ClientSecretHashNilVsEmpty", testClientSecretNilVsEmpty},
		{"AuthRequest", testAuthRequest},
		{"AuthRequestStateBytes", testAuthRequestStateBytes},
		{"AttachUpstreamState", testAttachUpstreamState},
		{"TakeAuthRequestByUpstreamState", testTakeAuthRequest},
		{"SEC-1_GetAuthRequestByUpstreamState", testGetAuthRequestByUpstreamState},
		{"SEC-1_ReplaceUpstreamState", testReplaceUpstreamState},
		{"DeleteAuthRequest", testDeleteAuthRequest},
		{"Consent", testConsent},
		{"Code", testCode},
		{"PKCE-3_CodeReuse", testCodeReuse},
		{"SEC-176_CodeOfAnotherChallenge", testCodeOfAnotherChallenge},
		{"Grant", testGrant},
		{"RevokeGrant", testRevokeGrant},
		{"RotateRefresh", testRotateRefresh},
		{"RT-1_RefreshReuse", testRefreshReuse},
		{"RotateRefreshNotFound", testRotateRefreshNotFound},
		{"RT-1_RotateRefreshWithinGrace", testRotateRefreshWithinGrace},
		{"RT-1_RotateRefreshAfterGrace", testRotateRefreshAfterGrace},
		{"RT-1_RotateRefreshNoGraceClockBehind", testRotateRefreshNoGraceClockBehind},
		{"RT-1_GetRefresh", testGetRefresh},
		{"SEC-181_DeleteSuccessors", testDeleteSuccessors},
		{"RT-1_RevokedGrantsSince", testRevokedGrantsSince},
		{"Session", testSession},
		{"SESS-3_MCPSession", testMCPSession},
		{"LocalUser", testLocalUser},
		{"SEC-152_CreateLocalUser", testCreateLocalUser},
		{"SigningKey", testSigningKey},
		{"PutMetaOnce", testPutMetaOnce},
		{"DeleteExpired", testDeleteExpired},
		{"DeleteExpiredBatches", testDeleteExpiredBatches},
		{"AddRateHit", testAddRateHit},
		{"RT-3_UpstreamSession", testUpstreamSession},
		{"RT-3_ClaimUpstreamRecheck", testClaimUpstreamRecheck},
		{"RT-3_DeleteExpiredUpstreamSessions", testDeleteExpiredUpstreamSessions},
		{"SEC-69_DeleteUpstreamSessionsWithoutRefresh", testDeleteUpstreamSessionsWithoutRefresh},
		{"SEC-13_Ping", testPing},
		{"SEC-14_TouchClient", testTouchClient},
		{"SEC-14_DeleteUnusedClients", testDeleteUnusedClients},
		{"SEC-94_DeleteClient", testDeleteClient},
		{"ListGrants", testListGrants},
		{"ListGrantsLastIssued", testListGrantsLastIssued},
		{"SEC-93_DisableLocalUser", testDisableLocalUser},
		{"SEC-130_PutLocalUserEndsSessions", testPutLocalUserEndsSessions},
		{"OddKeysNotFound", testOddKeysNotFound},
		{"SEC-114_FlowEvents", testFlowEvents},
		{"SEC-114_DeleteFlowEvents", testDeleteFlowEvents},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// t0 has nanoseconds and a zone that is not UTC, so a backend that drops
// precision or mishandles locations fails the round trips.
var t0 = time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+2", 2*3600))

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func user(sub string) identity.User {
	return identity.User{
		ID:            "github:" + sub,
		Upstream:      "github",
		Username:      "octocat",
		Name:          "The Octocat",
		Email:         "octocat@example.com",
		EmailVerified: true,
		Picture:       "https://avatars.example/583231",
		Profile:       "https://github.com/octocat",
		Groups:        []string{"staff", "admins"},
	}
}

func newClient(id string) *store.Client {
	return &store.Client{
		ID:                      id,
		SecretHash:              hash("secret-" + id),
		Name:                    "Client " + id,
		RedirectURIs:            []string{"https://app.example/cb", "http://127.0.0.1/cb"},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: "client_secret_basic",
		ApplicationType:         "web",
		Scope:                   "mcp:read mcp:write",
		ClientURI:               "https://app.example",
		LogoURI:                 "https://app.example/logo.png",
		CreatedAt:               t0,
	}
}

func newAuthRequest(id string) *store.AuthRequest {
	return &store.AuthRequest{
		ID:            id,
		ClientID:      "client-" + id,
		RedirectURI:   "https://app.example/cb",
		State:         "client-state-" + id,
		CodeChallenge: challenge,
		Resource:      "https://mcp.example/mcp",
		Scopes:        []string{"mcp:read", "mcp:write"},
		CreatedAt:     t0,
		ExpiresAt:     t0.Add(10 * time.Minute),
	}
}

// challenge is the code_challenge of every test code: the S256 of RFC
// 7636's example verifier.
const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

func newCode(name string) *store.Code {
	return &store.Code{
		Hash:          hash("code-" + name),
		ClientID:      "client-" + name,
		RedirectURI:   "https://app.example/cb",
		CodeChallenge: challenge,
		Resource:      "https://mcp.example/mcp",
		Scopes:        []string{"mcp:read"},
		User:          user(name),
		GrantID:       "grant-" + name,
		ExpiresAt:     t0.Add(time.Minute),
	}
}

func newGrant(id string) *store.Grant {
	return &store.Grant{
		ID:        id,
		ClientID:  "client-" + id,
		User:      user(id),
		Resource:  "https://mcp.example/mcp",
		Scopes:    []string{"mcp:read", "mcp:write"},
		CreatedAt: t0,
	}
}

func newRefresh(name, grantID string) *store.RefreshToken {
	return &store.RefreshToken{
		Hash:       hash("refresh-" + name),
		GrantID:    grantID,
		Generation: 1,
		Scopes:     []string{"mcp:read", "mcp:write"},
		CreatedAt:  t0,
		ExpiresAt:  t0.Add(30 * 24 * time.Hour),
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

// same compares two values of the store's types field by field, with times
// compared as instants and empty string lists equal to nil (a JSON column
// with omitempty cannot tell them apart). Byte slices must match exactly,
// nil vs empty included.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := normalize(reflect.ValueOf(got)), normalize(reflect.ValueOf(want))
	if !reflect.DeepEqual(g.Interface(), w.Interface()) {
		t.Errorf("%s:\n got  %s\n want %s", what, show(g), show(w))
	}
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	return fmt.Sprintf("%+v", v.Interface())
}

var timeType = reflect.TypeFor[time.Time]()

func normalize(v reflect.Value) reflect.Value {
	if v.Type() == timeType {
		return reflect.ValueOf(v.Interface().(time.Time).UTC().Round(0))
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(normalize(v.Elem()))
		return p
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			out.Field(i).Set(normalize(v.Field(i)))
		}
		return out
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v
		}
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(normalize(v.Index(i)))
		}
		return out
	}
	return v
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// expireAll runs DeleteExpired in batches until one comes back short, as
// housekeeping does, and returns how many records it deleted.
func expireAll(t *testing.T, s store.Store, now, grantsBefore time.Time) int {
	t.Helper()
	const limit = 100
	total := 0
	for {
		n, err := s.DeleteExpired(t.Context(), now, grantsBefore, limit)
		must(t, "delete expired", err)
		if n < 0 || n > limit {
			t.Fatalf("DeleteExpired deleted %d, want at most its limit %d", n, limit)
		}
		total += n
		if n < limit {
			return total
		}
	}
}
