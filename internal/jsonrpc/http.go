package jsonrpc

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// preallocated is the largest announced body ReadBody allocates for before
// it arrives; a larger one grows as its bytes come, so that a client that
// announces megabytes and sends nothing holds no more than this.
const preallocated = 64 << 10

// ReadBody reads a request body of at most max bytes (an
// *http.MaxBytesError beyond). With a known Content-Length it refuses a
// body longer or shorter than announced, and allocates once up to
// preallocated.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	var rd io.Reader = r.Body
	// The limit cannot be reached reading at most ContentLength+1 bytes:
	// then the MaxBytesReader (an allocation) is not needed.
	if r.ContentLength < 0 || r.ContentLength >= max {
		rd = http.MaxBytesReader(w, r.Body, max)
	}
	if r.ContentLength >= preallocated {
		// Read one byte more than announced to see a longer body.
		buf, err := io.ReadAll(io.LimitReader(rd, r.ContentLength+1))
		switch {
		case err != nil:
			return nil, err
		case int64(len(buf)) > r.ContentLength:
			return nil, errors.New("request body longer than its Content-Length")
		case int64(len(buf)) < r.ContentLength:
			return nil, io.ErrUnexpectedEOF
		}
		return buf, nil
	}
	if r.ContentLength >= 0 {
		// Read one byte more than announced to see a longer body.
		buf := make([]byte, r.ContentLength+1)
		n, err := io.ReadFull(rd, buf)
		switch {
		case err == nil:
			return nil, errors.New("request body longer than its Content-Length")
		case int64(n) == r.ContentLength && (err == io.ErrUnexpectedEOF || err == io.EOF):
			return buf[:n:n], nil
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
	return io.ReadAll(rd)
}

// AppendError appends a JSON-RPC error response to id (null when empty).
// msg is for the client: short, and never an internal error's text.
func AppendError(out []byte, id json.RawMessage, code int, msg string) []byte {
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	if len(id) == 0 {
		out = append(out, "null"...)
	} else {
		out = append(out, id...)
	}
	out = append(out, `,"error":{"code":`...)
	out = strconv.AppendInt(out, int64(code), 10)
	out = append(out, `,"message":`...)
	m, _ := json.Marshal(msg)
	out = append(out, m...)
	return append(out, "}}"...)
}

// WriteError answers with a JSON-RPC error, not to be cached.
func WriteError(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string) {
	WriteJSON(w, status, append(AppendError(nil, id, code, msg), '\n'))
}

// WriteJSON answers with body as application/json, not to be cached.
func WriteJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
