package cimd

import "errors"

// Error is why a client_id URL did not yield a usable client. Reason is
// written for a person and is safe to show on the /authorize error page
// (CIMD-9) or as the invalid_client description at /token. Cause is the
// detail for the operator's log; it may name internal addresses and must not
// reach a client.
type Error struct {
	Reason string
	Cause  error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return "cimd: " + e.Reason + ": " + e.Cause.Error()
	}
	return "cimd: " + e.Reason
}

func (e *Error) Unwrap() error { return e.Cause }

// reasonUnreachable is the one Reason for every network-level failure
// (DNS, refused address, connect, TLS, timeout), so that the page shown to
// a person does not reveal which internal names exist.
const reasonUnreachable = "the application's client metadata document could not be fetched"

// reasonKeysUnreachable is the same for a private_key_jwt client's key set
// (SEC-128).
const reasonKeysUnreachable = "the application's key set (its jwks_uri) could not be fetched"

// reasonDenied and reasonKeysDenied refuse a document, or a key set, on a
// host the administrator blocks (Options.DenyHosts, SEC-164).
const (
	reasonDenied     = "the administrator of this server refuses client metadata documents from this host"
	reasonKeysDenied = "the administrator of this server refuses key sets, or documents, from this host"
)

// errBlockedAddress marks a refused destination (CIMD-10).
var errBlockedAddress = errors.New("address is not a public unicast address")

func invalid(reason string) *Error { return &Error{Reason: reason} }
