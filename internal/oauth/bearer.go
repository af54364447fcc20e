package oauth

import "strings"

// BearerToken extracts the token of an "Authorization: Bearer <token>"
// header value (RFC 6750 §2.1). The scheme is case-insensitive; the token
// must be a non-empty token68. ok is false for any other shape, including a
// missing header.
func BearerToken(header string) (token string, ok bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	token = strings.TrimLeft(header[len(prefix):], " ")
	if token == "" || len(token) > 16384 {
		return "", false
	}
	end := len(token)
	for end > 0 && token[end-1] == '=' {
		end--
	}
	if end == 0 {
		return "", false
	}
	for i := 0; i < end; i++ {
		c := token[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/':
		default:
			return "", false
		}
	}
	return token, true
}
