package app

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/flows"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/store"
)

// FlowsCommand is `mcpgate flows [--client ID] [--user U] [--outcome O]
// [--since DURATION] [--limit N] [--json] [serve flags]`: the flow
// debugger's attempts from the store that serve uses, every replica's.
type FlowsCommand struct {
	ClientID string
	// User is a user ID, or a local account's name.
	User    string
	Outcome string        // an outcome, or "failed" for any failure
	Since   time.Duration // how far back; at most flows.Retention
	Limit   int           // the most attempts, the latest; 0: 100
	JSON    bool
}

// Flows prints the attempts cmd selects, one block each, its steps in
// time order and how it ended last (or, with JSON, a list of
// flows.AttemptView). It only reads the store.
func Flows(ctx context.Context, cfg *config.Config, cmd FlowsCommand, stdout io.Writer) error {
	if cmd.Since <= 0 || cmd.Since > flows.Retention {
		cmd.Since = flows.Retention
	}
	if cmd.Limit <= 0 {
		cmd.Limit = 100
	}
	user := flows.UserFilter(cmd.User)
	st, err := openExistingStore(ctx, cfg, "flows: the memory store lives inside one mcpgate serve: its flows are on its admin console")
	if err != nil {
		return err
	}
	defer st.Close()
	events, err := st.ListFlowEvents(ctx, store.FlowFilter{ClientID: cmd.ClientID, UserID: user, Outcome: cmd.Outcome,
		Since: time.Now().Add(-cmd.Since), Limit: cmd.Limit})
	if err != nil {
		return err
	}
	attempts := flows.Group(events)
	if cmd.JSON {
		views := []flows.AttemptView{}
		for _, a := range attempts {
			views = append(views, a.View())
		}
		out, err := json.MarshalIndent(views, "", "  ")
		if err != nil {
			return err
		}
		// What a client sent, escaped where a terminal would act on it.
		_, err = stdout.Write(append(safetext.EscapeJSON(out), '\n'))
		return err
	}
	return flows.WriteText(stdout, attempts)
}
