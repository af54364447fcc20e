package authserver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// FuzzKnownDevice: the device cookie is attacker input (SEC-125). Whatever
// its value and whatever username is typed, it proves a device only when
// it is byte for byte the cookie the gateway gave for that very username,
// unexpired; "Alice" is another account than "alice".
func FuzzKnownDevice(f *testing.F) {
	const issuer = "https://gw.example"
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	s := &Server{opts: Options{CSRFKey: bytes.Repeat([]byte{7}, 32), Now: func() time.Time { return now }}}
	w := httptest.NewRecorder()
	s.rememberDevice(w, httptest.NewRequest("POST", issuer+"/login/local", nil), issuer, "alice")
	issued := w.Result().Cookies()
	if len(issued) != 1 || issued[0].Name != "__Host-"+deviceCookie || !issued[0].HttpOnly || !issued[0].Secure ||
		issued[0].Path != "/" || issued[0].SameSite != http.SameSiteLaxMode {
		f.Fatalf("device cookie %+v, want one __Host- cookie, HttpOnly, Secure, Path=/, SameSite=Lax", issued)
	}
	r := httptest.NewRequest("POST", issuer+"/login/local", nil)
	r.AddCookie(issued[0])
	if s.knownDevice(r, issuer, "alice") == "" {
		f.Fatal("the device cookie given to alice proves no device for alice")
	}
	// The fuzzing workers each run this set-up: the cookie they check
	// against is one the gateway would give, of a device fixed here.
	exp := strconv.FormatInt(now.Add(deviceTTL).Unix(), 10)
	good := "dev1." + exp + "." + s.deviceMAC("dev1", exp, "alice")
	for _, seed := range [][2]string{
		{good, "alice"}, {good, "Alice"}, {good, "ALICE"}, {good, "bob"}, {good, ""},
		{good + ".x", "alice"}, {"." + good, "alice"}, {"", "alice"}, {"a.b.c", "alice"},
		{"dev.99999999999999999999.mac", "alice"}, {"dev.-1.mac", "alice"}, {"dev.+1.mac", "alice"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, value, username string) {
		r := httptest.NewRequest("POST", issuer+"/login/local", nil)
		r.Header.Set("Cookie", "__Host-"+deviceCookie+"="+value)
		got := s.knownDevice(r, issuer, username)
		if got == "" {
			return
		}
		c, err := r.Cookie("__Host-" + deviceCookie)
		if err != nil || c.Value != good || username != "alice" {
			t.Fatalf("knownDevice(%q, %q) = %q, want a device only for the cookie given to alice, as alice", value, username, got)
		}
	})
}
