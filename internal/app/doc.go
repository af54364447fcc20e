// Package app turns a validated config.Config into a running gateway:
// it opens the store, loads or creates the secret key, sets up the
// upstream connectors (creating the first admin when there is no local
// user), serves HTTP, and shuts down gracefully on SIGINT or SIGTERM.
//
// It also runs the commands that work on serve's store from outside it:
// key rotation (RotateKeys) and the operator's users, clients and grants
// (Admin). Those change the store only; a running gateway follows the
// store (the revocation follower, the client cache's 500 ms, the login's
// read of the account), so they take effect in it within a second.
package app
