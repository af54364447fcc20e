package mcpgate_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/audit"
)

// chattyArgs tell the upstream's tool what to send before its result.
type chattyArgs struct {
	Seq     int    `json:"seq"`
	Steps   int    `json:"steps"`   // log and progress notifications
	Ask     string `json:"ask"`     // "", "elicit" or "sample": a request to the client after the steps
	DelayUS int    `json:"delayUs"` // the most to wait between two messages, µs
	Seed    uint64 `json:"seed"`
}

// chattyUpstream is a session-ful go-sdk MCP server whose tool "chatty"
// answers with an event stream: log and progress notifications, then
// perhaps an elicitation or sampling request to the client, at random
// small delays (none for the first message), then the result, as the
// conformance suite's tools-call-with-logging and tools-call-elicitation
// do.
func chattyUpstream(t *testing.T) *httptest.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "chatty", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "chatty"}, func(ctx context.Context, req *mcp.CallToolRequest, a chattyArgs) (*mcp.CallToolResult, any, error) {
		// A request to a client that never saw it (a cut stream) must not
		// hold the server after the test.
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		rnd := rand.New(rand.NewPCG(a.Seed, uint64(a.Seq)))
		pause := func() {
			if a.DelayUS > 0 {
				time.Sleep(time.Duration(rnd.IntN(a.DelayUS+1)) * time.Microsecond)
			}
		}
		token := req.Params.GetProgressToken()
		for i := range a.Steps {
			if i > 0 {
				pause()
			}
			var err error
			if token != nil && i%2 == 1 {
				err = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Progress: float64(i), Total: float64(a.Steps)})
			} else {
				err = req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Data: fmt.Sprintf("call %d step %d", a.Seq, i)})
			}
			if err != nil {
				return nil, nil, err
			}
		}
		extra := ""
		switch a.Ask {
		case "elicit":
			pause()
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "name?", RequestedSchema: map[string]any{
				"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}},
			}})
			if err != nil {
				return nil, nil, fmt.Errorf("elicitation: %w", err)
			}
			extra = fmt.Sprintf(" %s %v", res.Action, res.Content["name"])
		case "sample":
			pause()
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 10,
				Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi"}}}})
			if err != nil {
				return nil, nil, fmt.Errorf("sampling: %w", err)
			}
			extra = " " + res.Content.(*mcp.TextContent).Text
		}
		pause()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("done %d%s", a.Seq, extra)}}}, nil, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(func() {
		srv.CloseClientConnections() // event streams of sessions a failed test left open
		srv.Close()
	})
	return srv
}

// bearer adds the gateway's access token to every request.
type bearer string

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

// outcomes counts the audit events by outcome.
type outcomes struct {
	mu sync.Mutex
	n  map[audit.Outcome]int
}

func (o *outcomes) Record(_ context.Context, e audit.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[e.Outcome]++
}

// burnCPU keeps n goroutines busy until the returned func is called, so
// that the gateway, the upstream and the clients are preempted at random
// points, as on a loaded machine.
func burnCPU(n int) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			x := 0
			for !done.Load() {
				for i := range 1 << 12 {
					x += i
				}
			}
			_ = x
		})
	}
	return func() { done.Store(true); wg.Wait() }
}

// An upstream tool whose answer is an event stream with server messages
// (log and progress notifications, an elicitation or sampling request)
// before its result reaches the client whole through the gateway (guard,
// tool policy and audit, proxy), under CPU load and with many calls at
// once: no stream may end, or stall, after the first messages.
func TestUpstreamEventStreamsWholeUnderLoad(t *testing.T) {
	up := chattyUpstream(t)
	rec := &outcomes{n: map[audit.Outcome]int{}}
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp", Upstream: up.URL + "/mcp"}}
		c.Audit = rec
	})
	_, _, tok := g.fullFlow()

	const sessions, callsEach = 6, 40
	// A cut stream leaves its call waiting for ever: the bounds only have to
	// tell that from a slow machine (under -race, with other packages'
	// tests and burnCPU on two cores, calls have taken over 20 s).
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var logs, progress atomic.Int64
	client := mcp.NewClient(&mcp.Implementation{Name: "stress", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "alice"}}, nil
		},
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "sampled"}}, nil
		},
		LoggingMessageHandler:       func(context.Context, *mcp.LoggingMessageRequest) { logs.Add(1) },
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { progress.Add(1) },
	})

	stop := burnCPU(2 * runtime.GOMAXPROCS(0))
	defer stop()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for s := range sessions {
		wg.Go(func() {
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
				Endpoint: g.url + "/mcp", HTTPClient: &http.Client{Transport: bearer(tok.AccessToken)},
			}, nil)
			if err != nil {
				t.Errorf("session %d: connect: %v", s, err)
				failed.Add(1)
				return
			}
			defer cs.Close()
			if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
				t.Errorf("session %d: logging/setLevel: %v", s, err)
				failed.Add(1)
				return
			}
			var calls sync.WaitGroup
			for i := range callsEach {
				seq := s*callsEach + i
				a := chattyArgs{Seq: seq, Steps: 1 + seq%4, DelayUS: []int{0, 200, 2000}[seq%3], Seed: uint64(seq) * 7919}
				want := fmt.Sprintf("done %d", seq)
				switch seq % 5 {
				case 1:
					a.Ask, want = "elicit", want+" accept alice"
				case 3:
					a.Ask, want = "sample", want+" sampled"
				}
				calls.Go(func() {
					params := &mcp.CallToolParams{Name: "chatty", Arguments: a}
					params.SetProgressToken(fmt.Sprintf("p%d", seq))
					cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
					defer cancel()
					res, err := cs.CallTool(cctx, params)
					if err != nil {
						t.Errorf("call %d (%+v): %v", seq, a, err)
						failed.Add(1)
						return
					}
					if len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != want {
						t.Errorf("call %d: result %+v, want text %q", seq, res.Content, want)
						failed.Add(1)
					}
				})
				if i%8 == 7 {
					calls.Wait() // at most 8 calls at once per session
				}
			}
			calls.Wait()
		})
	}
	wg.Wait()
	stop()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d calls did not get their whole answer", failed.Load(), sessions*callsEach)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.n[audit.OK] != sessions*callsEach {
		t.Fatalf("audit outcomes %v, want %d ok", rec.n, sessions*callsEach)
	}
	if logs.Load() == 0 || progress.Load() == 0 {
		t.Fatalf("the client got %d log and %d progress notifications, want some of each", logs.Load(), progress.Load())
	}
}
