"""Processes that outlive the first one.

On NetBSD a shell's background job, a daemon or any orphan runs on after the
process that started it exits (init adopts it: getppid() is 1). nbemu's first
process is the guest's init while it lives, and nbemu's exit status is its
status. When it exits while other guest processes still run, the Session's
``survivors`` policy (Options.survivors) says what becomes of them:

- ``detach`` (the nbemu command's plain runs): nbemu's host process forks. The
  parent returns the first process's status at once, as the shell that ran
  nbemu sees its child end; the child host process runs the survivors to their
  end in the background, as qemu-user's separate host processes would, and
  exits silently. The host's stdin, stdout and stderr stay open in it only
  while a survivor still holds them, so a daemon that closes them (or a job
  whose output goes to a file) lets a pipe that reads nbemu's output see EOF.
- ``wait`` (--record, --replay, --timeline, --trace, --strace): nbemu runs the survivors
  to their end before it exits, in the same host process, so the log, the
  timeline and the trace cover them and a replay repeats them.
- ``kill``: they end with nbemu (the Python API, ``nbemu explore``, the gdb stub,
  whose session is the first process).

Signals sent to nbemu after the first process is gone go to every survivor
(Kernel.post_host_signals).
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from nbemu.syscalls.kern_exit import exit1_finish
from nbemu.syscalls.vfs_syscalls import release_host_stdio

from .machine import DeadlockError, InternalError

if TYPE_CHECKING:
    from .boot import Session

def has_survivors(s: "Session") -> bool:
    """The first process has exited and others have not."""
    k = s.kernel
    return k.proc is not None and k.proc.p_exiting and bool(k.live_procs())


def run_on(s: "Session") -> bool:
    """Finish the first process's exit (its children go to init, outside the
    guest) and run the others until none is left (a deadlock among them is
    reported). False: nbemu failed meanwhile (an internal error, reported)."""
    from .crash import deadlock_report, internal_error_report
    k = s.kernel
    p = k.proc
    assert p is not None
    exit1_finish(p, p.p_xsig)
    try:
        s.machine.run(survivors=True)
    except DeadlockError:
        # NetBSD would leave them asleep for ever; nbemu cannot wait for ever
        print("nbemu: the processes that outlived the first one are deadlocked",
              file=sys.stderr)
        deadlock_report(s, sys.stderr)
    except InternalError as e:
        internal_error_report(s, e, sys.stderr)
        return False
    return True


def _flush(s: "Session") -> None:
    for f in (sys.stdout, sys.stderr, s.opts.strace):
        if f is not None:
            f.flush()


def detach(s: "Session") -> None:
    """Fork the host process. Returns in the parent; the child runs the
    survivors and exits, never returning."""
    _flush(s)                               # nothing buffered is written twice
    if os.fork() != 0:
        return
    code = 0
    try:
        from .hostsig import HostSignals
        s.machine.after_host_fork()
        hs = HostSignals(s.kernel)
        installed = hs.install()
        release_host_stdio(s.kernel)
        try:
            code = 0 if run_on(s) else 70      # boot.EXIT_INTERNAL
        finally:
            if installed:
                hs.uninstall()
        _flush(s)
    except BaseException:                   # never back into the parent's code
        import traceback
        traceback.print_exc()
        code = 70
    os._exit(code)
