"""``python -m nbemu.emu.atf.launch [nbemu options] PROGRAM [ARGS...]``: nbemu for ATF cases.

The same command line and exit statuses as ``nbemu`` (emu/cli.py), with two
differences that the ATF interface needs:

1. The guest starts in the host's current directory (mapped into ``--root``), as
   a program run by Kyua starts in its work directory.  nbemu's own default guest
   cwd is ``/``; a test writing a relative path would write there.
2. A guest killed by signal N makes this process die of signal N too (core dumps
   off) instead of exiting 128+N, so that whoever runs it -- ``nbemu atf``, the
   real Kyua through the wrappers of ``emu.atf.kyua`` -- sees what a NetBSD kernel
   would report and can check ``expected_signal(N)``.  NetBSD and Linux numbers
   differ for a few signals; the guest's number is the one raised.

Everything else (deadlock 125, internal error 70, cannot run 126/127) is nbemu's.
"""
from __future__ import annotations

import os
import signal
import sys


def guest_cwd(root: str, host_cwd: str | None = None) -> str:
    """The guest path of the host's cwd when it lies inside ``root``; else ``/``."""
    try:
        cwd = os.path.realpath(host_cwd if host_cwd is not None else os.getcwd())
    except OSError:
        return "/"
    r = os.path.realpath(root)
    if r == "/":
        return cwd
    if cwd == r:
        return "/"
    if cwd.startswith(r + "/"):
        return cwd[len(r):]
    return "/"


def die_of_signal(sig: int) -> None:
    """End this process with signal ``sig`` (no core file); returns if it cannot."""
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    if sig in (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        return                      # these would stop, not end, the host process
    try:
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
    except (OSError, ValueError):
        return


_sessions: list = []


def _atf_session_class():
    """nbemu.emu.boot.Session with the guest's cwd set (subclassed, so that whatever
    emu.boot.run_program does around the session stays nbemu's)."""
    from nbemu.emu import boot

    class AtfSession(boot.Session):
        def __init__(self, path: str, args: list[str], opts) -> None:
            super().__init__(path, args, opts)
            self.kernel.proc.p_cwd = guest_cwd(opts.root)
            _sessions.append(self)

    return AtfSession


def _scrub_environment() -> None:
    """Drop what `nbemu atf` added for this process only (not for the guest)."""
    for k in os.environ.pop("_NBEMU_ATF_SCRUB", "").split(","):
        if k:
            os.environ.pop(k, None)
    orig = os.environ.pop("_NBEMU_ATF_PYTHONPATH", None)
    if orig is not None:
        os.environ["PYTHONPATH"] = orig


def main(argv: list[str] | None = None) -> int:
    _scrub_environment()
    from nbemu.emu import boot, cli
    boot.Session = _atf_session_class()    # run_program looks it up at call time
    status = cli.main(argv)
    if _sessions:
        xsig = _sessions[-1].kernel.proc.p_xsig
        if xsig and status == 128 + xsig:
            die_of_signal(xsig)
    return status


if __name__ == "__main__":
    sys.exit(main())
