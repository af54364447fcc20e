package sse

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// got is what a test keeps of an event.
type event struct {
	name, data   string
	hasData      bool
	tooLarge     bool
	raw          string
	unterminated bool
}

func (g event) String() string {
	return fmt.Sprintf("{name %q data %q has %v large %v raw %q unterminated %v}", g.name, g.data, g.hasData, g.tooLarge, g.raw, g.unterminated)
}

func keep(ev Event) event {
	return event{string(ev.Name), string(ev.Data), ev.HasData, ev.TooLarge, string(ev.Raw), ev.Unterminated}
}

// scan writes the pieces to a Scanner, closes it, and returns the events.
func scan(t *testing.T, max int, raw bool, pieces ...string) []event {
	t.Helper()
	var out []event
	s := Scanner{Max: max, Raw: raw, Handle: func(ev Event) error { out = append(out, keep(ev)); return nil }}
	for _, p := range pieces {
		if n, err := s.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", p, n, err, len(p))
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out
}

// A stream that uses every rule: a byte order mark, the three line ends,
// comments, id and retry, a field without a colon, multi-line data, an
// event name, a value without its space, an unknown field.
const ruleStream = "\xEF\xBB\xBF: hello\r\n\r\n" +
	"id: 7\r\nretry: 10\r\nevent: endpoint\r\ndata: /m?s=1\r\n\r\n" +
	"data: {\"a\":\rdata:1}\r\rdata\nevent\ndata: x\n\n" +
	"event: message\nfoo: bar\ndata:  two spaces\n\n" +
	"data: cut off"

var ruleEvents = []event{
	{raw: ": hello\r\n\r"},
	{name: "endpoint", data: "/m?s=1", hasData: true, raw: "\nid: 7\r\nretry: 10\r\nevent: endpoint\r\ndata: /m?s=1\r\n\r"},
	{data: "{\"a\":\n1}", hasData: true, raw: "\ndata: {\"a\":\rdata:1}\r\r"},
	{data: "\nx", hasData: true, raw: "data\nevent\ndata: x\n\n"},
	{name: "message", data: " two spaces", hasData: true, raw: "event: message\nfoo: bar\ndata:  two spaces\n\n"},
	{data: "cut off", hasData: true, raw: "data: cut off", unterminated: true},
}

// However the stream is cut into writes, even inside a CRLF or the byte
// order mark, the events are the same, each reported when its blank line
// is written.
func TestScannerSplitAtEveryByte(t *testing.T) {
	if got := scan(t, 1000, true, ruleStream); !slices.Equal(got, ruleEvents) {
		t.Fatalf("whole:\n got %v\nwant %v", got, ruleEvents)
	}
	for i := range len(ruleStream) + 1 {
		t.Run(fmt.Sprint("split at ", i), func(t *testing.T) {
			if got := scan(t, 1000, true, ruleStream[:i], ruleStream[i:]); !slices.Equal(got, ruleEvents) {
				t.Errorf("got  %v\nwant %v", got, ruleEvents)
			}
		})
	}
	if got := scan(t, 1000, true, strings.Split(ruleStream, "")...); !slices.Equal(got, ruleEvents) {
		t.Errorf("byte by byte:\n got %v\nwant %v", got, ruleEvents)
	}
}

// A server message (a log notification, an elicitation request) before a
// tool's result, in one write or cut anywhere in two or three: each event
// is reported as soon as its blank line is written, never later, and the
// result is never lost.
func TestScannerServerMessageThenResult(t *testing.T) {
	for _, first := range []string{
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"working\"}}\n\n",
		"event: message\r\nid: 1\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"elicitation/create\",\"params\":{\"message\":\"name?\"}}\r\n\r\n",
	} {
		result := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[]}}\n\n"
		stream := first + result
		firstDone := len(first) // its blank line is complete...
		if strings.HasSuffix(first, "\r\n") {
			firstDone-- // ...at the CR of a CRLF
		}
		for i := 1; i < len(stream); i++ {
			for j := i; j < len(stream); j += 7 {
				var events []string
				s := Scanner{Max: 1 << 10, Handle: func(ev Event) error { events = append(events, string(ev.Data)); return nil }}
				written := 0
				for _, w := range []string{stream[:i], stream[i:j], stream[j:]} {
					s.Write([]byte(w))
					written += len(w)
					want := 0
					if written >= firstDone {
						want++
					}
					if written == len(stream) {
						want++
					}
					if len(events) != want {
						t.Fatalf("cuts at %d and %d: %d bytes written, %d events reported, want %d", i, j, written, len(events), want)
					}
				}
				if !strings.Contains(events[1], `"id":2`) {
					t.Fatalf("cuts at %d and %d: second event %q, want the result", i, j, events[1])
				}
			}
		}
	}
}

// An event over Max is reported TooLarge, with what came before the limit
// and no Raw; the stream goes on.
func TestScannerTooLarge(t *testing.T) {
	stream := "event: message\ndata: " + strings.Repeat("x", 100) + "\n\ndata: small\n\n"
	want := []event{
		{name: "message", data: strings.Repeat("x", 50-len("event: message\ndata: ")), hasData: true, tooLarge: true},
		{data: "small", hasData: true, raw: "data: small\n\n"},
	}
	for _, pieces := range [][]string{{stream}, strings.Split(stream, "")} {
		if got := scan(t, 50, true, pieces...); !slices.Equal(got, want) {
			t.Errorf("%d writes:\n got %v\nwant %v", len(pieces), got, want)
		}
	}
	// The limit counts line ends: an event of exactly Max bytes fits.
	exact := "data: 123\n\n"
	if got := scan(t, len(exact), true, exact); len(got) != 1 || got[0].tooLarge {
		t.Errorf("an event of Max bytes: %v, want it whole", got)
	}
	if got := scan(t, len(exact)-1, true, exact); len(got) != 1 || !got[0].tooLarge {
		t.Errorf("an event of Max+1 bytes: %v, want it TooLarge", got)
	}
}

// Handle's error stops Write after the event it was given.
func TestScannerHandleError(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	s := Scanner{Max: 100, Handle: func(Event) error { calls++; return boom }}
	in := "data: 1\n\ndata: 2\n\n"
	n, err := s.Write([]byte(in))
	if n != len("data: 1\n\n") || err != boom || calls != 1 {
		t.Fatalf("Write = %d, %v after %d calls; want %d, boom after 1", n, err, calls, len("data: 1\n\n"))
	}
	n, err = s.Write([]byte(in[n:]))
	if n != len("data: 2\n\n") || err != boom || calls != 2 {
		t.Fatalf("second Write = %d, %v after %d calls; want %d, boom after 2", n, err, calls, len("data: 2\n\n"))
	}
}

func TestScannerClose(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []event
	}{
		{"", nil},
		{"data: 1\n\n", []event{{data: "1", hasData: true, raw: "data: 1\n\n"}}},
		{"data: 1\r\n\r\n", []event{{data: "1", hasData: true, raw: "data: 1\r\n\r"}, {raw: "\n", unterminated: true}}},
		{"data: 1\n", []event{{data: "1", hasData: true, raw: "data: 1\n", unterminated: true}}},
		{": ping", []event{{raw: ": ping", unterminated: true}}},
		{"\xEF\xBB", []event{{raw: "\xEF\xBB", unterminated: true}}},
		{"\xEF\xBB\xBF", nil},
	} {
		if got := scan(t, 100, true, c.in); !slices.Equal(got, c.want) {
			t.Errorf("%q:\n got %v\nwant %v", c.in, got, c.want)
		}
	}
}

func TestRead(t *testing.T) {
	in := ": keep-alive\r\n\r\nevent: endpoint\r\ndata: /m?s=1\r\n\r\n" +
		"data: {\"a\":\ndata:1}\n\n" +
		"event: message\ndata: " + strings.Repeat("x", 100) + "\n\n" +
		"id: 7\nretry: 10\nevent: message\ndata: {}\n\n" +
		"data: cut off"
	want := []event{
		{name: "endpoint", data: "/m?s=1", hasData: true},
		{data: "{\"a\":\n1}", hasData: true},
		{name: "message", data: strings.Repeat("x", 50-len("event: message\ndata: ")), hasData: true, tooLarge: true},
		{name: "message", data: "{}", hasData: true},
	}
	var events []event
	err := Read(strings.NewReader(in), 50, func(ev Event) bool { events = append(events, keep(ev)); return true })
	if err != nil || !slices.Equal(events, want) {
		t.Fatalf("got %v, %v\nwant %v, nil", events, err, want)
	}

	events = nil
	err = Read(strings.NewReader(in), 50, func(ev Event) bool { events = append(events, keep(ev)); return len(events) < 2 })
	if err != nil || !slices.Equal(events, want[:2]) {
		t.Fatalf("stopped after 2: got %v, %v\nwant %v, nil", events, err, want[:2])
	}

	cut := errors.New("cut")
	events = nil
	err = Read(io.MultiReader(strings.NewReader(in[:60]), errReader{cut}), 50, func(ev Event) bool { events = append(events, keep(ev)); return true })
	if err != cut || !slices.Equal(events, want[:1]) {
		t.Fatalf("cut off: got %v, %v\nwant %v, cut", events, err, want[:1])
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestAppendEvent(t *testing.T) {
	for _, c := range []struct {
		name, data, want string
	}{
		{"message", `{"jsonrpc":"2.0"}`, "event: message\ndata: {\"jsonrpc\":\"2.0\"}\n\n"},
		{"", "", "data: \n\n"},
		{"", "a\r\nb\rc\nd", "data: a\ndata: b\ndata: c\ndata: d\n\n"},
		{"", "a\n\nevent: x\n", "data: a\ndata: \ndata: event: x\ndata: \n\n"},
	} {
		if got := string(AppendEvent(nil, c.name, []byte(c.data))); got != c.want {
			t.Errorf("AppendEvent(%q, %q) = %q, want %q", c.name, c.data, got, c.want)
		}
	}
}

func TestReplaceData(t *testing.T) {
	for _, c := range []struct {
		raw, data, want string
	}{
		{"id: 7\r\nevent: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n", "{\"a\":\n2}",
			"id: 7\r\nevent: message\r\ndata: {\"a\":\r\ndata: 2}\r\n\r\n"},
		{"data: old\n: note\ndata: more\n\n", "new", "data: new\n: note\n\n"},
		{"\ndata\rdata: x\r\r", "y", "\ndata: y\r\r"},
		{"data: unterminated", "z", "data: z\n"},
		{": no data\n\n", "z", ": no data\n\n"},
		{"datum: 1\ndata:1\n\n", "2", "datum: 1\ndata: 2\n\n"},
		// A dropped line between a CR and a LF: the blank line stays one.
		{"data\rdata\n\n", "0", "data: 0\r\n\n"},
		{"data: a\nid: 1\rdata: b\n\n", "x", "data: x\nid: 1\r\n\n"},
	} {
		if got := string(ReplaceData([]byte(c.raw), []byte(c.data))); got != c.want {
			t.Errorf("ReplaceData(%q, %q) = %q, want %q", c.raw, c.data, got, c.want)
		}
	}
}

// SEC-122: Known keeps the lines every client reads alike and drops the
// rest, which one parser or another would read otherwise: a field the
// Scanner does not know ("ï»¿data", which eventsource-parser takes for a
// byte order mark and a data field; "d\x00a\x00t\x00a\x00" of a UTF-16
// stream). An event of known lines alone is returned as it is.
func TestKnown(t *testing.T) {
	for raw, want := range map[string]string{
		"data: x\n\n": "data: x\n\n",
		"event: m\r\nid: 1\r\nretry: 5\r\n: hi\r\ndata: x\r\n\r\n": "event: m\r\nid: 1\r\nretry: 5\r\n: hi\r\ndata: x\r\n\r\n",
		"\u00ef\u00bb\u00bfdata: {\"tools\":[]}\n\n":               "\n",
		"data: a\nfoo: b\ndata: c\n\n":                             "data: a\ndata: c\n\n",
		"d\x00a\x00t\x00a\x00: x\n\n":                              "\n",
		"x\ny\n":                                                   "",
		// A dropped line between a CR and the blank line: the CR and the
		// blank line's LF must not read as one CRLF. Fails before: the
		// event lost its blank line, and the client the event.
		"data: x\rfoo\n\n": "data: x\r\n\n",
		"data: x\rfoo\r\r": "data: x\r\r",
	} {
		if got := string(Known([]byte(raw))); got != want {
			t.Errorf("Known(%q) = %q, want %q", raw, got, want)
		}
	}
	raw := []byte("data: x\n\n")
	if got := Known(raw); &got[0] != &raw[0] {
		t.Error("Known copied an event of known lines alone, want it returned as it is")
	}
}

// SEC-216: Held counts what the event under way holds, its name, its
// data and, with Raw, its raw form too, also once the event is too large
// (its data's prefix is kept to its end), so that a caller's budget bounds
// the memory it means to. Fails before: the event's bytes were counted once, while
// the scanner held them twice with Raw (held answers 2.5 to 4 times what
// the budget said).
func TestSEC216_HeldCountsDataAndRaw(t *testing.T) {
	for _, raw := range []bool{false, true} {
		s := Scanner{Max: 1 << 20, Raw: raw, Handle: func(Event) error { return nil }}
		data := strings.Repeat("x", 10_000)
		if _, err := s.Write([]byte("event: message\ndata: " + data + "\ndata: " + data + "\n")); err != nil {
			t.Fatal(err)
		}
		want := len("message") + 2*len(data) + 1 // the name, and two data lines joined by a newline
		if raw {
			want += len("event: message\ndata: ") + len(data) + len("\ndata: ") + len(data) + 1 // the raw form, its line ends as sent
		}
		if got := s.Held(); got < want-4 || got > want+4 {
			t.Errorf("Raw %v: Held %d, want about %d", raw, got, want)
		}
	}
}

// SEC-216: an event past Max keeps its data's prefix until its end, and
// Held says so; Drop lets it go.
func TestSEC216_HeldCountsTooLargeEvent(t *testing.T) {
	s := Scanner{Max: 1 << 10, Handle: func(Event) error { return nil }}
	if _, err := s.Write([]byte("data: " + strings.Repeat("x", 2<<10))); err != nil {
		t.Fatal(err)
	}
	if got := s.Held(); got < 900 {
		t.Errorf("an event past Max: Held %d, want the prefix it keeps, about 1 KiB", got)
	}
	s.Drop()
	if got := s.Held(); got != 0 {
		t.Errorf("after Drop: Held %d, want 0", got)
	}
}
