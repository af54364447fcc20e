package sse

import "bytes"

// AppendEvent appends to dst an event: an event field when name is not
// empty (it must hold no CR or LF), a data field for each line of data
// (lines end at CRLF, LF or CR; a client reads them joined by LF), and the
// blank line.
func AppendEvent(dst []byte, name string, data []byte) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	dst = appendData(dst, data, []byte("\n"))
	return append(dst, '\n')
}

// appendData appends a data field for each line of data, each ended with
// end.
func appendData(dst, data, end []byte) []byte {
	for {
		dst = append(dst, "data: "...)
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			dst = append(dst, data...)
			return append(dst, end...)
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, end...)
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

// ReplaceData returns raw, an event as Event.Raw holds it, with data in
// place of its data: the lines of data become data fields where its first
// data field was, each with that field's line end (LF when it had none);
// its other data fields go; every other line stays as it was (appendLine).
// An event without data is returned as it is.
func ReplaceData(raw, data []byte) []byte {
	out := make([]byte, 0, len(raw)+len(data))
	replaced := false
	for len(raw) > 0 {
		line, end, rest := cutLine(raw)
		switch {
		case !isData(line):
			out = appendLine(out, line, end, raw[:len(raw)-len(rest)])
		case !replaced:
			replaced = true
			if len(end) == 0 {
				end = []byte("\n")
			}
			out = appendData(out, data, end)
		}
		raw = rest
	}
	return out
}

// appendLine appends to out whole, a line and its line end, where lines
// before it may have been dropped or replaced: an empty line ending in LF
// that comes to follow a CR gets one more LF, since the two would read as
// one CRLF and the event would lose its blank line.
func appendLine(out, line, end, whole []byte) []byte {
	if len(line) == 0 && len(end) > 0 && end[0] == '\n' && len(out) > 0 && out[len(out)-1] == '\r' {
		out = append(out, '\n')
	}
	return append(out, whole...)
}

// cutLine returns the first line of b, its line end (CRLF, LF, CR, or
// none at the end of b), and what follows.
func cutLine(b []byte) (line, end, rest []byte) {
	i := bytes.IndexAny(b, "\r\n")
	if i < 0 {
		return b, nil, nil
	}
	j := i + 1
	if b[i] == '\r' && j < len(b) && b[j] == '\n' {
		j++
	}
	return b[:i], b[i:j], b[j:]
}

// isData reports whether line is a data field, as Scanner reads it.
func isData(line []byte) bool {
	name, _, _ := bytes.Cut(line, []byte(":"))
	return string(name) == "data"
}

// Known returns raw, an event as Event.Raw holds it, with only the lines a
// client reads alike whatever its parser: the fields data, event, id and
// retry, comments and the blank line. A line whose field the Scanner does
// not know (a misspelt one, or "ï»¿data", which one client takes for a
// byte order mark and a data field) goes: passed on, it would carry to
// some client what the gateway never read. The lines kept stay as they
// were (appendLine).
func Known(raw []byte) []byte {
	var out []byte // nil while every line is known: raw is returned
	for rest := raw; len(rest) > 0; {
		line, end, next := cutLine(rest)
		switch keep := known(line); {
		case !keep && out == nil: // the first to drop: keep those before it
			out = append(make([]byte, 0, len(raw)), raw[:len(raw)-len(rest)]...)
		case keep && out != nil:
			out = appendLine(out, line, end, rest[:len(rest)-len(next)])
		}
		rest = next
	}
	if out == nil {
		return raw
	}
	return out
}

// known reports whether line is a field a client reads alike, a comment,
// or the blank line.
func known(line []byte) bool {
	name, _, _ := bytes.Cut(line, []byte(":"))
	switch string(name) {
	case "data", "event", "id", "retry", "":
		return true
	}
	return false
}
