package oauth

import "strings"

// token68 marks the bytes of an RFC 7235 token68, less the trailing "=".
var token68 = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

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
		if !token68[token[i]] {
			return "", false
		}
	}
	return token, true
}
