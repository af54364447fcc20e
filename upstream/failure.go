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
// Mark(nil, kind) is nil; Mark(err, nil) is err.
func Mark(err, kind error) error {
	if err == nil || kind == nil {
		return err
	}
	return &marked{err: err, kind: kind}
}

type marked struct{ err, kind error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.err, m.kind} }

// CallbackErrorKind is the kind of an error a provider answered to the
// callback (its error parameter): server_error and temporarily_unavailable
// are outages; the codes a request that the configuration makes wrong
// draws (RFC 6749 §4.1.2.1: a client, scope or parameter the provider
// does not accept) are neither, since trying again fails the same way and
// only the operator can fix it; any other code is a refusal.
func CallbackErrorKind(code string) error {
	switch code {
	case "server_error", "temporarily_unavailable":
		return ErrUnavailable
	case "invalid_request", "unauthorized_client", "unsupported_response_type", "invalid_scope",
		"invalid_client", "invalid_request_uri", "invalid_request_object", "request_not_supported",
		"request_uri_not_supported", "registration_not_supported":
		return nil
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
