package mcpgate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// MaxClockSkew is how far this machine's clock may be from a shared
// store's. Replicas compare the times they write: a revocation made by a
// replica whose clock runs behind is found by the others' reload of the
// last minute only if it is less than a minute behind (SEC-80), and key
// rotations, rate windows and the refresh grace count from writers'
// clocks too. NTP keeps clocks within milliseconds; 10 s is a fault.
const MaxClockSkew = 10 * time.Second

// ErrClockSkew: this machine's clock is more than MaxClockSkew from the
// store's.
var ErrClockSkew = errors.New("this machine's clock is off the store's")

// CheckClock compares this machine's clock with st's, when st has one
// (store.Clock), and returns ErrClockSkew, saying by how much, when they
// are more than MaxClockSkew apart. It reads the machine's clock, not a
// Config's Now.
func CheckClock(ctx context.Context, st store.Store) error {
	c, ok := st.(store.Clock)
	if !ok {
		return nil
	}
	before := time.Now()
	theirs, err := c.Now(ctx)
	if err != nil {
		return err
	}
	mine := before.Add(time.Since(before) / 2) // the middle of the round trip
	if off := mine.Sub(theirs); off > MaxClockSkew || off < -MaxClockSkew {
		return fmt.Errorf("%w by %v (more than %v): keep every replica's clock, and that of the machine running the administration commands, in time with NTP",
			ErrClockSkew, off.Round(time.Second), MaxClockSkew)
	}
	return nil
}
