// Package app turns a validated config.Config into a running gateway:
// it opens the store, loads or creates the secret key, sets up the
// upstream connectors (creating the first admin when there is no local
// user), serves HTTP, and shuts down gracefully on SIGINT or SIGTERM.
package app
