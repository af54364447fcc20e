package cimd_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mcpgate/mcpgate/internal/cimd"
)

// The authorization endpoint resolves an https client_id and, if that
// fails, shows the Reason on a page instead of redirecting (CIMD-9).
func ExampleFetcher_Client() {
	f := cimd.New(cimd.Options{Logger: slog.Default()})
	clientID := "https://claude.ai/oauth/claude-code-client-metadata"
	if !cimd.IsClientIDURL(clientID) {
		return // an ordinary registered client
	}
	c, err := f.Client(context.Background(), clientID)
	var ce *cimd.Error
	if errors.As(err, &ce) {
		fmt.Println("error page:", ce.Reason) // log ce.Cause, never show it
		return
	}
	fmt.Println(c.Name, c.RedirectURIs)
}
