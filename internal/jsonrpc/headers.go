package jsonrpc

import (
	"encoding/base64"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MCP 2026-07-28 standard request headers (SEP-2243).
const (
	HeaderMethod          = "Mcp-Method"
	HeaderName            = "Mcp-Name"
	HeaderProtocolVersion = "Mcp-Protocol-Version"

	// HeadersRequiredSince is the first protocol version whose clients must
	// send Mcp-Method (and Mcp-Name where it applies).
	HeadersRequiredSince = "2026-07-28"
)

const (
	b64Prefix = "=?base64?"
	b64Suffix = "?="
)

// DecodeHeaderValue returns the value an Mcp-* header carries: a value of
// the form =?base64?<standard base64>?= (which clients use for non-ASCII
// text, control characters, and leading or trailing white space) decoded,
// any other value as it is. ok is false when the encoded form does not
// decode to valid UTF-8.
func DecodeHeaderValue(v string) (string, bool) {
	enc, found := strings.CutPrefix(v, b64Prefix)
	if !found {
		return v, true
	}
	enc, found = strings.CutSuffix(enc, b64Suffix)
	if !found {
		return v, true
	}
	b, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil || !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// nameMember returns the params member that Mcp-Name mirrors for method.
func nameMember(method string) string {
	switch method {
	case "tools/call", "prompts/get":
		return "name"
	case "resources/read":
		return "uri"
	}
	return ""
}

// CheckHeaders enforces TRANS-2 (MCP 2026-07-28, SEP-2243) on a parsed
// POST body: a present Mcp-Method must equal every message's method, a
// present Mcp-Name every message's params.name (tools/call, prompts/get)
// or params.uri (resources/read), and a header sent twice is a mismatch.
// When Mcp-Protocol-Version is 2026-07-28 or later, Mcp-Method is
// required for a message with a method, and Mcp-Name for those three
// methods when the body carries the name or uri. A gateway that let a
// mismatch through would authorize one tool while the backend ran
// another. The error is an *Error with CodeHeaderMismatch.
func CheckHeaders(h http.Header, b *Body) error {
	methods, names := h[HeaderMethod], h[HeaderName]
	if len(methods) > 1 {
		return mismatch("more than one " + HeaderMethod + " header")
	}
	if len(names) > 1 {
		return mismatch("more than one " + HeaderName + " header")
	}
	required := false
	if v := h[HeaderProtocolVersion]; len(v) > 0 && v[0] >= HeadersRequiredSince {
		required = true
	}
	var method, name string
	if len(methods) == 1 {
		var ok bool
		if method, ok = DecodeHeaderValue(methods[0]); !ok {
			return errMethodMismatch
		}
	}
	if len(names) == 1 {
		var ok bool
		if name, ok = DecodeHeaderValue(names[0]); !ok {
			return errNameMismatch
		}
	}
	for i := range b.Messages {
		m := &b.Messages[i]
		if len(methods) == 1 && method != m.Method {
			return errMethodMismatch
		}
		if required && len(methods) == 0 && m.Method != "" {
			return errMethodMissing
		}
		member := nameMember(m.Method)
		var v string
		var has bool
		switch member {
		case "name":
			v, has = m.Name, m.HasName
		case "uri":
			v, has = m.URI, m.HasURI
		}
		if len(names) == 1 {
			if !has || name != v {
				if member == "uri" {
					return errURIMismatch
				}
				return errNameMismatch
			}
		} else if required && has {
			return errNameMissing
		}
	}
	return nil
}

func mismatch(msg string) *Error {
	return &Error{Code: CodeHeaderMismatch, Message: "HeaderMismatch: " + msg}
}

var (
	errMethodMismatch = mismatch(HeaderMethod + " does not match method")
	errNameMismatch   = mismatch(HeaderName + " does not match params.name")
	errURIMismatch    = mismatch(HeaderName + " does not match params.uri")
	errMethodMissing  = mismatch("missing " + HeaderMethod + " header")
	errNameMissing    = mismatch("missing " + HeaderName + " header")
)
