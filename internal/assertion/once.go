package assertion

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// ErrReplayed refuses an assertion counted before (Use).
var ErrReplayed = errors.New("the client assertion was used before: make a new one for each request (a new jti)")

// countedPast is how long a use stays counted after Verify stops
// accepting the assertion: a request may wait between its check and its
// count (for its client's keys), and a count dropped meanwhile would let
// that assertion be counted afresh.
const countedPast = 5 * time.Minute

// Use names the use of clientID's verified assertion v in a count that
// every replica of the gateway shares (the store's AddRateHit), so that an
// assertion is accepted once wherever it is presented (SEC-129): key is a
// digest of the client and the jti, whatever bytes either holds, and until
// is how long the count must be kept.
func Use(clientID string, v *Verified) (key string, until time.Time) {
	client := sha256.Sum256([]byte(clientID))
	// The client's digest has a fixed length: each client's jti values
	// are its own.
	d := sha256.Sum256(append(client[:], v.ID...))
	return "client assertion " + hex.EncodeToString(d[:]), v.Expiry.Add(Leeway + countedPast)
}
