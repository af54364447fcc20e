package authserver

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/upstream"
)

// A browser that signed in with a password keeps a device cookie naming it
// and the username, signed with the CSRF key, for deviceTTL (SEC-125, the
// "device cookie" of OWASP's guidance on lockouts). Its logins as that name
// go to the connector as a known device's, which counts their failures on
// their own: failures anyone sends under the name from anywhere else lock
// the name there, never in the browser its person uses.
const (
	deviceCookie = "mcpgate_device"
	deviceTTL    = 30 * 24 * time.Hour
)

// passwordLogin checks username and password at pc, as the browser of r's
// known device for username when its device cookie proves one.
func (s *Server) passwordLogin(r *http.Request, issuer string, pc upstream.PasswordConnector, username, password string) (identity.User, error) {
	if kd, ok := pc.(upstream.KnownDeviceConnector); ok {
		if device := s.knownDevice(r, issuer, username); device != "" {
			return kd.LoginKnownDevice(r.Context(), username, password, device)
		}
	}
	// A browser that proved no earlier login under the name spends one
	// of its address's checks, given back if the password was right
	// (SEC-157): the per-name limits do nothing against a new name each
	// time, and each check costs a bcrypt.
	refund, ok := s.guesses.take(s.clientAddr(r))
	if !ok {
		return identity.User{}, errAddressThrottled
	}
	user, err := pc.Login(r.Context(), username, password)
	if !errors.Is(err, upstream.ErrInvalidCredentials) || errors.Is(err, upstream.ErrThrottled) {
		// Only a password checked and found wrong spends the check: not
		// a success, a name locked before its check, nor a store that
		// failed.
		refund()
	}
	return user, err
}

// guessesPerMinute is how many password checks one client address may
// fail a minute, at most as many at once, from browsers that proved no
// earlier login under the name they try: more than people mistype, far
// fewer than a spray of common passwords across names needs (SEC-157).
const guessesPerMinute = 20

// errAddressThrottled refuses a login whose address failed too many.
var errAddressThrottled = errors.New("too many failed sign-ins from this address")

// rememberDevice gives the browser a device cookie for username after a
// login with its password, keeping the device it had for that name.
func (s *Server) rememberDevice(w http.ResponseWriter, r *http.Request, issuer, username string) {
	device := s.knownDevice(r, issuer, username)
	if device == "" {
		device = tokens.NewID()
	}
	exp := strconv.FormatInt(s.now().Add(deviceTTL).Unix(), 10)
	setCookie(w, issuer, deviceCookie, device+"."+exp+"."+s.deviceMAC(device, exp, username), int(deviceTTL.Seconds()))
}

// knownDevice is the device the browser's cookie proves for username,
// unexpired and signed by this gateway; "" when there is none.
func (s *Server) knownDevice(r *http.Request, issuer, username string) string {
	c, err := r.Cookie(cookieName(issuer, deviceCookie))
	if err != nil || len(c.Value) > 200 {
		return ""
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 || parts[0] == "" {
		return ""
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !s.now().Before(time.Unix(exp, 0)) {
		return ""
	}
	if !tokens.Equal(parts[2], s.deviceMAC(parts[0], parts[1], username)) {
		return ""
	}
	return parts[0]
}

// deviceMAC binds a device, its expiry and the username as it signed in,
// unfolded: local names are case-sensitive, so "Alice" may be another
// person's account than "alice", and a cookie earned as one must not be a
// budget of guesses of its own against the other.
func (s *Server) deviceMAC(device, exp, username string) string {
	return s.csrfMAC("device", username+"\x00"+exp, device)
}
