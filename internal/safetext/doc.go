// Package safetext shapes text that came from outside the gateway (a
// client, an identity provider, an upstream) before a log line, a
// terminal or a page shows it: cut to a bound, so that one request cannot
// write megabytes, and stripped of the characters that could drive a
// terminal or reorder what a reader sees; a URL without its query, which
// may hold a credential.
package safetext
