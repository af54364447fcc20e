package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
)

// rate_limits from the file reach mcpgate.Config, rates parsed and the
// burst left to its default when absent (SEC-100).
func TestRateLimitsFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`
rate_limits:
  - {tools: ["search_*"], per: user, rate: 10/s, burst: 20}
  - {tools: ["*"], per: client, rate: 600/m}
  - {endpoints: [token, authorize], per: client, rate: 30/m, burst: 10}
`), 0o600)
	g := validGateway(t, []string{"--config", path}, nil)
	want := []mcpgate.RateLimit{
		{Tools: []string{"search_*"}, Per: "user", Rate: mcpgate.Rate{N: 10, Per: time.Second}, Burst: 20},
		{Tools: []string{"*"}, Per: "client", Rate: mcpgate.Rate{N: 600, Per: time.Minute}},
		{Endpoints: []string{"token", "authorize"}, Per: "client", Rate: mcpgate.Rate{N: 30, Per: time.Minute}, Burst: 10},
	}
	if !slices.EqualFunc(g.RateLimits, want, func(a, b mcpgate.RateLimit) bool {
		return slices.Equal(a.Tools, b.Tools) && slices.Equal(a.Endpoints, b.Endpoints) && a.Per == b.Per && a.Rate == b.Rate && a.Burst == b.Burst
	}) {
		t.Errorf("RateLimits %+v, want %+v", g.RateLimits, want)
	}
}

// Every mistake in rate_limits is reported, each with its entry's index.
func TestRateLimitsValidated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`
rate_limits:
  - {tools: ["ok_*"], per: user, rate: 10/s}
  - {tools: ["a"], per: user, rate: 10/d}
  - {tools: ["a"], per: team, rate: 1/s}
  - {tools: [""], per: user, rate: 1/s}
  - {tools: ["a"], per: user, rate: 1/s, burst: -2}
  - {endpoints: [token], per: user, rate: 1/s}
  - {per: user, rate: 1/s}
  - {tools: ["a"], per: user}
  - {endpoints: [register], per: client, rate: 1/s}
`), 0o600)
	msg := problemsOf(t, []string{"--config", path}, nil)
	wantLines(t, msg,
		`rate_limits[1]: rate "10/d": the unit must be s, m or h`,
		`rate_limits[2]: per "team" must be user or client`,
		`rate_limits[3]: tool pattern "" must be`,
		`rate_limits[4]: burst -2 must be`,
		`rate_limits[5]: an endpoint rule counts clients`,
		`rate_limits[6]: needs tools or endpoints`,
		`rate_limits[7]: rate "" must be N/s, N/m or N/h`,
		`rate_limits[8]: endpoint "register" must be token, authorize, revoke or introspect`)
	if strings.Contains(msg, "rate_limits[0]") {
		t.Errorf("the valid entry was refused:\n%s", msg)
	}
}
