package app

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/flows"
	"github.com/mcpgate/mcpgate/store"
)

// SEC-116: `mcpgate flows --json` writes what a client sent (a made-up
// client_id, a redirect URI) with the characters a terminal acts on as
// \u escapes: the data stays exact for a program, and an operator who
// runs it in a terminal sees no bidi override take effect and no C1
// control run. Fails before this change: encoding/json wrote them raw.
func TestSEC116_FlowsJSONEscapesWhatATerminalActsOn(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	st := openAdminStore(t, &cfg)
	const client, redirect = "nope\u009b2J", "http://x/\u202eevil\U000e0041"
	err := st.AppendFlowEvents(t.Context(), []store.FlowEvent{{Time: time.Now(), Attempt: "a1", ClientID: client,
		Step: flows.StepAuthorize, Outcome: "invalid_client", Details: map[string]string{"redirect_uri": redirect}}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Flows(t.Context(), &cfg, FlowsCommand{JSON: true}, &out); err != nil {
		t.Fatal(err)
	}
	for _, r := range []rune{'\u009b', '\u202e', '\U000e0041'} {
		if strings.ContainsRune(out.String(), r) {
			t.Errorf("flows --json writes %U raw: %s", r, out.String())
		}
	}
	var views []flows.AttemptView
	if err := json.Unmarshal(out.Bytes(), &views); err != nil || len(views) != 1 || views[0].Steps[0].ClientID != client ||
		views[0].Steps[0].Details["redirect_uri"] != redirect {
		t.Errorf("flows --json read back: %+v, %v; want the client's text exact", views, err)
	}
}
