// Package logbuf buffers log output: the gateway's log on stderr and the
// audit file, which would otherwise cost a write system call per request
// for the access line and another per tools/call for the audit line
// (about 10 µs each on a small VM).
//
// A Writer holds what it is given for at most its delay (DefaultDelay,
// 200 ms) after the first byte not yet written, then writes it all in one
// call; Flush and Close write at once. A Handler around a slog handler
// flushes after every record at Warn or above, so an error line is in the
// file when the call that logged it returns.
//
// What a crash (SIGKILL, a panic in another goroutine, the machine
// stopping) can lose is therefore the info lines of the last 200 ms at
// most, never a warning or an error, nor anything logged before a clean
// exit (serve closes the writers).
package logbuf
