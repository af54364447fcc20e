package bridge

import "syscall"

// setParentDeathSignal has the kernel send the server SIGKILL when the
// gateway dies (PR_SET_PDEATHSIG), killed outright with no chance to stop
// it: a server that ignores the end of its stdin would otherwise run on,
// unsupervised. The setting survives the launcher's exec of the server and
// is made after the change to the person's uid (which would clear it).
// The kernel sends it when the thread that started the server ends, not
// the process; the gateway locks no goroutine to a thread, so its threads
// end only with it.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
