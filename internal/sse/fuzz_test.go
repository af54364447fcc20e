package sse

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// model is the specification (WHATWG HTML §9.2.6) applied to a whole
// stream at once, with the Scanner's limit and grouping: the stream's
// byte order mark dropped; lines end at CRLF, LF or CR; an event is every
// byte up to and including its blank line's line end, except that the LF
// of a CRLF ending a blank line starts the next event (the Scanner cannot
// wait for it); an event of more than max bytes is too large; what follows
// the last blank line is the unterminated event.
func model(in []byte, max int) []event {
	in = bytes.TrimPrefix(in, bom)
	var out []event
	start := 0
	for i := 0; i < len(in); {
		line, end, rest := cutLine(in[i:])
		if len(end) == 0 {
			break
		}
		next := len(in) - len(rest)
		if len(line) == 0 { // a blank line ends the event
			if string(end) == "\r\n" {
				next-- // the LF belongs to the next event
			}
			out = append(out, modelEvent(in[start:next], max))
			start = next
		}
		i = next
		if string(end) == "\r\n" && len(line) == 0 {
			i++ // the LF is no line
		}
	}
	if start < len(in) {
		ev := modelEvent(in[start:], max)
		ev.unterminated = true
		out = append(out, ev)
	}
	return out
}

// modelEvent parses the lines of one event; when it is too large, name and
// data are what the whole event holds (the Scanner has a prefix of them).
func modelEvent(ev []byte, max int) event {
	g := event{raw: string(ev)}
	var data []string
	for rest := ev; len(rest) > 0; {
		var line []byte
		line, _, rest = cutLine(rest)
		if len(line) == 0 {
			continue // a leading LF, or the blank line
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			data = append(data, string(value))
		case "event":
			g.name = string(value)
		}
	}
	g.data, g.hasData = strings.Join(data, "\n"), len(data) > 0
	if len(ev) > max {
		g.tooLarge, g.raw = true, ""
	}
	return g
}

// matches reports whether the Scanner's event is the model's: equal, or,
// for a too large event, with a prefix of its data (its name is the last
// event field before the limit).
func matches(ev, want event) bool {
	if !want.tooLarge {
		return ev == want
	}
	return ev.tooLarge && ev.raw == "" && ev.unterminated == want.unterminated &&
		strings.HasPrefix(want.data, ev.data) && (!ev.hasData || want.hasData)
}

// pieces cuts in into writes whose sizes the fuzz input chooses.
func pieces(in, sizes []byte) [][]byte {
	var out [][]byte
	for i := 0; len(in) > 0; i++ {
		n := len(in)
		if len(sizes) > 0 {
			n = min(n, int(sizes[i%len(sizes)])+1)
		}
		out = append(out, in[:n])
		in = in[n:]
	}
	return out
}

var scannerSeeds = []string{
	ruleStream,
	": keep-alive\r\n\r\nevent: endpoint\r\ndata: /m?s=1\r\n\r\n",
	"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n\n",
	"data: {\"a\":\ndata:1}\n\nevent: message\ndata: " + strings.Repeat("x", 100) + "\n\n",
	"id: 7\nretry: 10\nevent: message\ndata: {}\n\ndata: cut off",
	"data\n\ndata:\n\n\n\nevent:x\n\n:\n\n",
	"event: a\r\ndata: 1\r\r\n\r\ndata: 2\n\r\n",
	"\xEF\xBB\xBFdata: bom\n\n\xEF\xBB\xBFdata: not a bom\n\n",
	"\xEF\xBBdata: half a bom\n\n",
	"event: " + strings.Repeat("e", 600) + "\n\ndata: ok\n\n",
}

// FuzzScanner: whatever the writes, the Scanner reports the model's
// events, and Read the ones a client dispatches; every byte is in some
// event's Raw, in order.
func FuzzScanner(f *testing.F) {
	for _, s := range scannerSeeds {
		f.Add([]byte(s), []byte{}, uint16(50), uint8(0), uint16(0))
		f.Add([]byte(s), []byte{1, 0, 3, 200, 7}, uint16(1000), uint8(1), uint16(10))
	}
	f.Fuzz(func(t *testing.T, in, sizes []byte, mx uint16, stopAfter uint8, cut uint16) {
		max := 1 + int(mx)%2000
		want := model(in, max)
		var evs []event
		s := Scanner{Max: max, Raw: true, Handle: func(ev Event) error {
			if len(ev.Raw) > max || len(ev.Data) > max || len(ev.Name) > max {
				t.Errorf("an event over the limit %d: %d bytes, %d of data, %d of name", max, len(ev.Raw), len(ev.Data), len(ev.Name))
			}
			evs = append(evs, keep(ev))
			return nil
		}}
		for _, p := range pieces(in, sizes) {
			if n, err := s.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(p))
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if len(evs) != len(want) {
			t.Fatalf("max %d, writes %v, %q:\n got %v\nwant %v", max, sizes, in, evs, want)
		}
		var raw strings.Builder
		for i := range evs {
			if !matches(evs[i], want[i]) {
				t.Fatalf("max %d, writes %v, %q: event %d\n got %v\nwant %v", max, sizes, in, i, evs[i], want[i])
			}
			raw.WriteString(want[i].raw)
		}
		if !slices.ContainsFunc(want, func(g event) bool { return g.tooLarge }) && raw.String() != string(bytes.TrimPrefix(in, bom)) {
			t.Fatalf("the events' bytes %q are not the stream's %q", raw.String(), in)
		}

		// Read: the events with data or too large, not the unterminated one.
		var dispatched []event
		for _, g := range want {
			if (g.hasData || g.tooLarge) && !g.unterminated {
				g.raw = ""
				dispatched = append(dispatched, g)
			}
		}
		read := func(r io.Reader, stop int) ([]event, error) {
			var out []event
			err := Read(r, max, func(ev Event) bool {
				out = append(out, keep(ev))
				return stop == 0 || len(out) < stop
			})
			return out, err
		}
		check := func(what string, got []event, err, wantErr error, want []event) {
			t.Helper()
			if err != wantErr || len(got) != len(want) {
				t.Fatalf("%s: got %v, %v\nwant %v, %v", what, got, err, want, wantErr)
			}
			for i := range got {
				if !matches(got[i], want[i]) {
					t.Fatalf("%s: event %d\n got %v\nwant %v", what, i, got[i], want[i])
				}
			}
		}
		got, err := read(bytes.NewReader(in), 0)
		check("Read", got, err, nil, dispatched)
		if stop := int(stopAfter); stop > 0 && stop <= len(dispatched) {
			got, err := read(bytes.NewReader(in), stop)
			check("Read stopped", got, err, nil, dispatched[:stop])
		}
		errCut := errors.New("cut")
		c := int(cut) % (len(in) + 1)
		var before []event
		for _, g := range model(in[:c], max) {
			if (g.hasData || g.tooLarge) && !g.unterminated {
				g.raw = ""
				before = append(before, g)
			}
		}
		got, err = read(io.MultiReader(bytes.NewReader(in[:c]), errReader{errCut}), 0)
		check("Read cut off", got, err, errCut, before)
	})
}

// FuzzWrite: what AppendEvent and ReplaceData write reads back as the
// data given, its line ends as LF, and ReplaceData keeps every other line.
func FuzzWrite(f *testing.F) {
	f.Add([]byte(ruleStream), "message", []byte("{\"a\":\n2}"))
	f.Add([]byte("data: 1\r\n: c\r\ndata: 2\r\n\r\n"), "", []byte("x\r\ny\rz\n"))
	f.Add([]byte("event\ndata\n\n"), "endpoint", []byte(""))
	f.Fuzz(func(t *testing.T, stream []byte, name string, data []byte) {
		wantData := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data))
		// readBack reads one event with data; a leading LF keeps a byte
		// order mark in b from being taken for the stream's.
		readBack := func(b []byte) event {
			t.Helper()
			var out []event
			s := Scanner{Max: len(b) + 1, Raw: true, Handle: func(ev Event) error {
				if ev.HasData {
					out = append(out, keep(ev))
				}
				return nil
			}}
			s.Write(append([]byte("\n"), b...))
			s.Close()
			if len(out) != 1 {
				t.Fatalf("%q reads as %v, want one event with data", b, out)
			}
			return out[0]
		}
		if !strings.ContainsAny(name, "\r\n") {
			ev := readBack(AppendEvent(nil, name, data))
			if ev.name != name || ev.data != wantData || ev.unterminated {
				t.Fatalf("AppendEvent(%q, %q) reads as %v", name, data, ev)
			}
		}
		for _, g := range model(stream, len(stream)+1) {
			if !g.hasData {
				continue
			}
			out := ReplaceData([]byte(g.raw), data)
			ev := readBack(out)
			if ev.name != g.name || ev.data != wantData || ev.unterminated != g.unterminated {
				t.Fatalf("ReplaceData(%q, %q) = %q, which reads as %v", g.raw, data, out, ev)
			}
			// The other lines, as a reader splits them (a leading LF, the end
			// of a CRLF, is none).
			otherLines := func(b []byte) []string {
				var lines []string
				if len(b) > 0 && b[0] == '\n' {
					b = b[1:]
				}
				for len(b) > 0 {
					line, _, r := cutLine(b)
					if !isData(line) {
						lines = append(lines, string(line))
					}
					b = r
				}
				return lines
			}
			kept, still := otherLines([]byte(g.raw)), otherLines(out)
			if !slices.Equal(kept, still) {
				t.Fatalf("ReplaceData(%q, %q) = %q: other lines %q became %q", g.raw, data, out, kept, still)
			}
		}
	})
}
