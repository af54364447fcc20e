package upstream

import (
	"errors"
	"net/url"
)

// Why a login at a provider failed, which decides what the person is told:
// a CallbackConnector's error is ErrRefused or ErrUnavailable (errors.Is)
// when it is one of those; any other error means the provider answered
// and the answer was not one to accept (an ID token that fails its checks,
// a refused hosted domain or tenant, no usable identity), which only the
// operator can look into. The error's text, for the log, says more.
var (
	// ErrRefused: the provider did not sign the person in. They declined
	// or cancelled, or the provider refused: an error it answered to the
	// callback (RFC 6749 §4.1.2.1) other than the two of ErrUnavailable.
	ErrRefused = errors.New("upstream: the provider did not sign the user in")
	// ErrUnavailable: the provider could not be reached, or answered a
	// server error (5xx, or server_error or temporarily_unavailable at the
	// callback); trying again later may work.
	ErrUnavailable = errors.New("upstream: the provider could not be reached")
)

// Mark returns err marked as kind, for errors.Is, with err's text
// unchanged: the log says what happened, the kind what to tell the person.
// Mark(nil, kind) is nil.
func Mark(err, kind error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, kind: kind}
}

type marked struct{ err, kind error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.err, m.kind} }

// CallbackErrorKind is the kind of an error a provider answered to the
// callback (its error parameter): server_error and temporarily_unavailable
// are outages, any other code a refusal.
func CallbackErrorKind(code string) error {
	if code == "server_error" || code == "temporarily_unavailable" {
		return ErrUnavailable
	}
	return ErrRefused
}

// Unreachable marks err ErrUnavailable when a request got no answer from
// the provider: a transport error or a timeout, which net/http reports as
// *url.Error (but not one of parsing a URL, which is ours).
func Unreachable(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Op != "parse" {
		return Mark(err, ErrUnavailable)
	}
	return err
}
