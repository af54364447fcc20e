// Package identity carries who is calling: the user an upstream identity
// provider vouched for, and the client and token they called with. The
// resource middleware puts a *Caller into the request context; handlers read
// it back with FromContext.
package identity
