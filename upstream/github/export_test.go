package github

import "time"

// SetCallTimeout bounds each call to GitHub of the connectors made from
// now on to d, until restore is called: a test of the bound need not wait
// 30 s.
func SetCallTimeout(d time.Duration) (restore func()) {
	old := callTimeout
	callTimeout = d
	return func() { callTimeout = old }
}
