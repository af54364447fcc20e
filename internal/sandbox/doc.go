// Package sandbox confines the stdio MCP servers the gateway starts, one
// per user, with the kernel's mechanisms rather than path checks: a
// server cannot read the gateway's environment, key, database, logs or
// configuration, nor see, signal or write to another user's server or
// HOME (SEC-20).
//
// # What confines a server
//
//   - Landlock (Linux 5.13+, ABI 1; this package uses what the running
//     kernel offers, up to ABI 11). A server's filesystem is its HOME
//     (read, write, execute), SystemPaths (/usr, /bin, /lib*, a few
//     files of /etc, /dev/null, /dev/urandom…), the directory of its
//     command's executable and the operator's stdio_read_paths, all
//     read-only. Everything else, /proc included, cannot be opened.
//     From ABI 6 (Linux 6.12) Landlock's scopes also keep it from
//     signalling, or connecting to an abstract unix socket of, any
//     process outside its own domain: the gateway, and every other
//     user's server, which has a domain of its own. The network is left
//     open.
//   - Pathname unix sockets: connecting to one is a filesystem access
//     Landlock controls only from ABI 9 (LANDLOCK_ACCESS_FS_RESOLVE_UNIX).
//     Below ABI 9 a server connects to any socket file whose path it can
//     resolve and whose mode lets its uid write it, inside its granted
//     paths or not: /run/user/UID/bus, an ssh-agent socket,
//     /var/run/docker.sock (root's, so reachable only by a server that
//     runs as root, i.e. stdio_uid_range off), a database's socket, and,
//     when every server has the gateway's uid, one that another person's
//     server made in its HOME (whose path follows from the user ID). Under
//     a uid of its own a server reaches only the sockets open to every
//     user; the operator should run mcpgate as root with stdio_uid_range
//     on such kernels, and not run it as a user whose session has agents
//     and buses (a service account rather than a login).
//   - A uid of its own, when the gateway runs as root (Cred): the same
//     number as its gid, no supplementary groups, set on the launcher
//     (below) before its exec (SysProcAttr.Credential). HomeFor picks it
//     from a Range and records it as the owner of the user's directory:
//     the filesystem is the table, so a restart reads the same mapping
//     back and nothing else must stay in step with it. Searchable opens
//     the data directory and the directories below it to search (o+x) so
//     that those uids can walk to their own; it never changes a directory
//     above the data directory, and refuses, naming it, one that others
//     cannot search. ReleaseHome gives a uid up (a check's probe): the
//     launcher, started as that uid in a killer's role, kills every
//     process of it with kill(-1), then the directory goes, and with it
//     the record.
//   - No capability: the launcher empties the bounding set (when it holds
//     CAP_SETPCAP, as root does) and clears the ambient, inheritable,
//     permitted and effective sets, so that a server of a root gateway
//     with stdio_uid_range off is root without any of root's powers (no
//     CAP_NET_RAW to sniff the loopback, no CAP_SYS_MODULE, no
//     CAP_DAC_OVERRIDE past file modes).
//   - The gateway itself: HardenGateway makes it non-dumpable, so that a
//     process of its uid (an unconfined server, or one whose kernel has
//     no Landlock) cannot read its memory, /proc/PID/environ or
//     descriptors; `mcpgate serve` also drops the variables it read from
//     its environment. The kernel keeps its own copy of the initial
//     environment for /proc/PID/environ, which unsetting does not touch:
//     non-dumpable is what protects that.
//
// CheckGrants refuses, before any server starts, a path every server may
// read that holds a private path (the data directory, the database, the
// audit log, the configuration and secret files) or lies inside one (the
// key, one user's HOME).
//
// # /proc
//
// No server gets /proc. With it, a server lists every process and reads
// their command lines and status. Landlock's ptrace rule (a confined
// process may only inspect processes in its own domain or below) does
// hold for /proc/PID/environ: measured on Linux 6.18, a confined child as
// nobody could not read the environ of an unconfined or differently
// confined process of its own uid, dumpable or not, and since the
// launcher drops every capability a root child (stdio_uid_range off)
// cannot either (TestSEC20_ChildConfined's "with /proc" case); with
// CAP_SYS_PTRACE, which it held before, it read them. Node (the
// reference everything server), Go and Python servers start without
// /proc: readlink(/proc/self/exe) and stat are not Landlock-controlled.
// An operator can grant it with stdio_read_paths, knowing what it shows.
//
// # Restricting the server, never the gateway
//
// landlock_restrict_self, PR_SET_NO_NEW_PRIVS and capabilities act on the
// calling thread, and a child inherits the credentials of the thread that
// forked it. The gateway therefore never restricts any thread of its own:
// Start runs this same binary again (/proc/self/exe, which also works
// when the binary was replaced on disk or sits in a directory the
// server's uid cannot search) as a launcher, with argv[0]
// "mcpgate-sandbox", the policy as JSON in argv[1] and the command's argv
// after it, under the user's uid and gid when there is one. The launcher,
// a fresh process, sets no_new_privs, enforces the Landlock ruleset
// (go-landlock's NewRulesetFD, downgraded to the kernel's ABI), drops
// every capability and execs the command, all from one locked thread: the
// exec'd image takes that thread's credentials, and the launcher's other
// threads, which run only the Go runtime, end at the exec (so
// go-landlock's process-wide Restrict, and its libpsx, are not needed). A
// failure before the exec is written on a close-on-exec pipe that Start
// reads until EOF, so Start still returns the error itself (a command
// that cannot be executed, a ruleset the kernel refuses). The launcher
// opens the ruleset's paths as the server's uid, so a path that uid
// cannot reach is left out, as it would be unreadable anyway; the binary
// itself must be executable by that uid. The launcher has the server's
// environment: a loader variable the operator puts in stdio_env
// (LD_PRELOAD, with a binary built with cgo) runs in the launcher before
// it confines itself, under the server's uid; users never set the
// environment.
//
// An earlier design restricted a locked thread of the gateway and forked
// from it. That thread lived on for microseconds after the child's exec,
// in the child's domain, so a child that started fast enough could signal
// it (tgkill) and kill the gateway: TestSEC20_ServerCannotSignalGatewayThreads
// reproduced that at the second start.
//
// The launcher runs from an init function of this package, acting only
// when argv[0] is exactly "mcpgate-sandbox" and an argument follows, and
// never returning then (exec, or exit 127). An init rather than a call at
// the top of main: every binary that links this package can start servers
// (the mcpgate command; programs that use the mcpgate package with a
// stdio backend, whose main cannot call into this internal package; the
// test binaries of bridge, sandbox, the root package and e2e), and each
// gets the launcher without a step that could be forgotten. The init runs
// after the packages this one imports (the standard library's,
// go-landlock, x/sys) and before main, TestMain and every package that
// imports this one.
//
// Cost: starting /bin/true confined and waiting for it took 1.1 ms with
// the locked thread and takes 3.1 to 4.6 ms with the launcher
// (BenchmarkStart, 50 starts, 2 shared cores; unconfined, 0.6 to 0.8 ms);
// through the mcpgate binary, 50 launcher starts of /bin/true took about
// 5 ms more each than 50 plain ones. A server starts once per user and
// idle timeout, and node alone takes about 85 ms to start.
//
// # Modes
//
// Auto, the default, uses all of the above that is available, and
// refuses to start servers (Check, SEC-23) unless they are kept from the
// gateway and from each other: Landlock from ABI 6, or a uid per user
// (root with a Range). Landlock 1 to 5 alone confines files but not
// signals, so a non-root gateway, or a root one with the range off,
// refuses there. None runs servers unconfined, as the gateway's user, and
// the bridge logs a warning (two as root: they have every capability).
// Every refusal wraps ErrRefused; `mcpgate serve` exits 2 on it.
package sandbox
