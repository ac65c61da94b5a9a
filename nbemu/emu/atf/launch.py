"""``python -m nbemu.emu.atf.launch [nbemu options] PROGRAM [ARGS...]``: nbemu for ATF cases.

The same command line and exit statuses as ``nbemu`` (emu/cli.py), with three
differences that the ATF interface needs:

1. The guest starts in the host's current directory (mapped into ``--root``), as
   a program run by Kyua starts in its work directory.  nbemu's own default guest
   cwd is ``/``; a test writing a relative path would write there.
2. A guest killed by signal N makes this process die of signal N too (core dumps
   off) instead of exiting 128+N, so that whoever runs it -- ``nbemu atf``, the
   real Kyua through the wrappers of ``emu.atf.kyua`` -- sees what a NetBSD kernel
   would report and can check ``expected_signal(N)``.  NetBSD and Linux numbers
   differ for a few signals; the guest's number is the one raised.
3. Processes a case leaves behind end with it (Kyua kills a case's process
   group), instead of running on in the background as nbemu's would.

Everything else (deadlock 125, internal error 70, cannot run 126/127) is nbemu's.
"""
from __future__ import annotations

import os
import signal
import sys


def guest_cwd(root: str, host_cwd: str | None = None,
              binds: list[tuple[str, str]] = ()) -> str:  # type: ignore[assignment]
    """The guest path of the host's cwd (inside ``root`` or a bind); else ``/``."""
    from nbemu.emu.boot import guest_cwd as boot_guest_cwd
    return boot_guest_cwd(root, binds, host_cwd)


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
            # a case's processes end with it, as Kyua ends a case's process group
            # (no background survivors: emu/survivors.py)
            opts.survivors = "kill"
            super().__init__(path, args, opts)
            self.kernel.proc.p_cwd = guest_cwd(opts.root, binds=opts.binds)
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


CASE_BINDS = "--bind-case-dirs"     # first argument: bind the case's host folders


def case_binds(argv: list[str], cwd: str | None = None) -> list[str]:
    """The nbemu command line with ``--bind`` options for the host folders a Kyua
    case uses when the guest root is not ``/``: its work directory (the cwd; Kyua's
    HOME and TMPDIR too) and the folder of the ``-r`` result file (Kyua's control
    directory), each at its own path, so the paths Kyua passes mean the same inside."""
    from nbemu.emu.cli import _TAKES_VALUE
    i, root = 0, "/"
    while i < len(argv) and argv[i].startswith("-"):
        a = argv[i]
        if a in _TAKES_VALUE:
            if a == "--root" and i + 1 < len(argv):
                root = argv[i + 1]
            i += 2
            continue
        if a.startswith("--root="):
            root = a.split("=", 1)[1]
        i += 1
    if os.path.realpath(root) == "/":
        return argv
    dirs = [cwd if cwd is not None else os.getcwd()]
    rest = argv[i + 1:]
    for j, a in enumerate(rest):
        if a == "--":
            break
        if a.startswith("-r"):
            res = a[2:] or (rest[j + 1] if j + 1 < len(rest) else "")
            if res:           # by the path Kyua names (it may go through a symlink)
                dirs.insert(0, os.path.dirname(os.path.abspath(res)))
            break
    binds: list[str] = []
    for d in dirs:            # one bind for nested folders (the work dir is in the control dir)
        real = os.path.realpath(d)
        if not any(real == r or real.startswith(r.rstrip("/") + "/")
                   for r in map(os.path.realpath, binds)):
            binds.append(d)
    return [*argv[:i], *(x for d in binds for x in ("--bind", d)), *argv[i:]]


def main(argv: list[str] | None = None) -> int:
    _scrub_environment()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == CASE_BINDS:
        argv = case_binds(argv[1:])
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
