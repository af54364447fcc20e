// Package sse reads and writes server-sent events (text/event-stream,
// WHATWG HTML §9.2.6 "Interpreting an event stream"), the framing of MCP's
// streamable HTTP answers and of the legacy HTTP+SSE transport. The
// standard library has no such reader, and the go-sdk's is unexported and
// does not follow the specification (it refuses a line without a colon,
// trims every space, and splits lines at LF only).
//
// # Reading
//
// A Scanner is written to, as an http.ResponseWriter is: the gateway sees
// a backend's answer as a series of Write calls and must pass every event
// on as soon as its blank line arrives, whatever the split of the writes
// (an event may be cut at any byte, a CRLF between two writes). Read is
// the same parser for an io.Reader.
//
// The rules are the specification's, which every client follows: a line
// ends at CRLF, LF or CR; a blank line ends an event; a line starting with
// ':' is a comment; a field's name runs to the first ':' (the whole line
// when there is none) and one space after the colon is dropped; data
// fields are joined with LF; the last event field names the event; id,
// retry and unknown fields are skipped; one byte order mark at the start
// of the stream is ignored. The gateway must read exactly what a client
// will read, or it could filter or audit one message while the client
// acts on another.
//
// Every event is bounded (Scanner.Max): beyond that, what is left of it is
// skipped and it is reported TooLarge, so one bad event never ends the
// stream and never holds more memory than the bound. Comments, keep-alives
// and ids are reported too, without data, so that a caller holding events
// (Scanner.Raw) can pass every byte on in order.
//
// # Writing
//
// AppendEvent writes an event, one data field per line of its data, so
// that no data can end the event early or add a field; ReplaceData
// rewrites the data of an event read with Scanner.Raw and keeps every
// other line (id, event, comments) and its line ends.
package sse
