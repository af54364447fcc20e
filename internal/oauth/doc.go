// Package oauth is the protocol vocabulary shared by the authorization
// server and the resource middleware: RFC 6749 error codes and the *Error
// type, the three ways an error reaches a client (a JSON body, a redirect
// carrying iss, a WWW-Authenticate challenge), and the small parsers of
// attacker-controlled input that several endpoints need (scopes, redirect
// URIs, the Authorization header).
package oauth
