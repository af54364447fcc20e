// Package sandbox confines the stdio MCP servers the gateway starts, one
// per user, with the kernel's mechanisms rather than path checks: a
// server cannot read the gateway's environment, key, database or logs,
// nor see, signal or write to another user's server or HOME (SEC-20).
//
// # What confines a server
//
//   - Landlock (Linux 5.13+, ABI 1; this package uses what the running
//     kernel offers, up to ABI 11). A server's filesystem is its HOME
//     (read, write, execute), SystemPaths (/usr, /bin, /lib*, a few
//     files of /etc, /dev/null, /dev/urandom…), the directory of its
//     command's executable and the operator's stdio_read_paths, all
//     read-only. Everything else, /proc included, cannot be opened.
//     From ABI 6 Landlock's scopes also keep it from signalling, or
//     connecting to an abstract unix socket of, any process outside its
//     own domain: the gateway, and every other user's server, which has
//     a domain of its own. From ABI 9 connecting to a pathname unix
//     socket outside its HOME is refused too. The network is left open.
//   - A uid of its own, when the gateway runs as root (Cred): the same
//     number as its gid, no supplementary groups, set by the child before
//     exec (SysProcAttr.Credential), which also drops root's capabilities.
//     HomeFor picks it from a Range and records it as the owner of the
//     user's directory: the filesystem is the table, so a restart reads
//     the same mapping back and nothing else must stay in step with it.
//     Searchable opens the directories above the users' to search (o+x)
//     so that those uids can walk to their own.
//   - The gateway itself: HardenGateway makes it non-dumpable, so that a
//     process of its uid (an unconfined server, or one whose kernel has
//     no Landlock) cannot read its memory, /proc/PID/environ or
//     descriptors; `mcpgate serve` also drops the variables it read from
//     its environment. The kernel keeps its own copy of the initial
//     environment for /proc/PID/environ, which unsetting does not touch:
//     non-dumpable is what protects that.
//
// # /proc
//
// No server gets /proc. With it, a server lists every process and reads
// their command lines and status. Landlock's ptrace rule (a confined
// process may only inspect processes in its own domain or below) does
// hold for /proc/PID/environ: measured on Linux 6.18, a confined child as
// nobody could not read the environ of an unconfined or differently
// confined process of its own uid, dumpable or not. But a child that
// keeps CAP_SYS_PTRACE, as root's children do when stdio_uid_range is off,
// read both (TestSEC20_ChildConfined's "with /proc" case is such a child);
// PTRACE_ATTACH to the gateway was refused even to that root child.
// Node (the reference everything server), Go and Python servers start
// without /proc: readlink(/proc/self/exe) and stat are not
// Landlock-controlled. An operator can grant it with stdio_read_paths,
// knowing what it shows.
//
// # Restricting the child, not the gateway
//
// landlock_restrict_self and PR_SET_NO_NEW_PRIVS act on the calling
// thread, and a child inherits the credentials of the thread that forked
// it. Start therefore runs on a goroutine locked to its OS thread with
// runtime.LockOSThread and never unlocked: it restricts that thread
// (go-landlock's NewRulesetFD builds the ruleset, downgraded to the
// kernel's ABI; its syscall package makes the per-thread
// landlock_restrict_self call, without the TSYNC flag), then calls
// cmd.Start, whose clone runs on that thread. When the goroutine returns,
// the runtime ends the thread rather than run other goroutines on it.
// Meanwhile the runtime never clones a new thread from it: newm hands
// thread creation to its template thread when the current M has
// lockedExt set (runtime/proc.go), which LockOSThread sets.
//
// go-landlock's Restrict and RestrictPaths are not used: they restrict
// every thread of the process (through libpsx, or TSYNC from ABI 8), the
// gateway's included.
//
// One exception needs care: the main thread. The runtime cannot end it,
// so a restricted main thread would be parked, restricted, for good, and
// the kernel judges a signal or ptrace aimed at the gateway's pid by that
// thread: every child would then share a domain with its target and could
// signal the gateway. Start keeps off it (offMainThread: a goroutine that
// finds itself there holds it while another does the work).
//
// The other way, re-executing the gateway's binary as a small launcher
// that restricts itself and execs the command, would avoid the runtime
// subtleties but puts a second entry point in the binary and an exec per
// start; the locked thread needs neither and is what go-landlock
// documents for single-thread enforcement. What it leaves: for the
// microseconds between the child's exec and the thread's end, the child
// shares a domain with that one gateway thread. Non-dumpable (and a uid of
// its own under root) still keep it from the gateway's memory; a guessed
// tid could be signalled in that window, which is at worst a crash of a
// gateway that runs as the servers' uid.
//
// # Modes
//
// Auto, the default, uses all of the above that is available and
// refuses to start servers when nothing is (Check, SEC-23): no Landlock
// and not root. None runs them unconfined, as the gateway's user, and the
// bridge logs a warning.
package sandbox
