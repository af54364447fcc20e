// Package bytebudget counts the bytes that requests hold at a protected
// resource now, in all and by user, within two limits. A client that
// reads its answers slowly, or not at all, holds what was made for it as
// long as it likes; the limits keep one user, or all of them together,
// from holding the gateway's memory: the JSON answers the tool policy
// holds to filter their tools (SEC-161), the request bodies held until
// their answers are written (SEC-201), and a bridged server's answers
// while they are written to their clients (SEC-204).
package bytebudget
