// Package local is the built-in identity provider: accounts with a bcrypt
// password hash kept in mcpgate's own store, checked on mcpgate's login form.
// It is what `mcpgate serve` uses when nothing else is configured, so it also
// bootstraps the first account (EnsureAdmin) and parses the NAME:PASSWORD
// and NAME[GROUPS]:PASSWORD specs of --local-user and MCPGATE_LOCAL_USERS
// (ParseUserSpec, ParseUserSpecGroups). An account's groups are stored with
// it and become the user's groups at login.
//
// Login keeps an unknown user and a wrong password indistinguishable, in the
// error and in the time taken, and slows down repeated failures per username.
package local
