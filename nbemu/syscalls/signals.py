"""NetBSD signal numbers and their properties.

Numbers are those of NetBSD's ``sys/sys/signal.h`` (rev. 1.78); they are the
BSD ones, not Linux's: SIGBUS is 10, SIGURG 16, SIGSTOP 17, SIGCHLD 20,
SIGUSR1 30, SIGPWR 32.  Signals 33..63 are the real-time signals
SIGRTMIN..SIGRTMAX; ``_NSIG`` is 64, so valid numbers are 1..63.

:data:`SIGPROP` is NetBSD's ``sigprop[]`` table (``sys/sys/signalvar.h``, used
by kern_sig.c), with the ``SA_*`` property bits under their NetBSD names and
values.  :func:`default_action` reduces it to the default disposition.

The si_code values (``sys/siginfo.h``), ksiginfo_t and sigpend_t are here too:
struct lwp and struct proc hold them (syscalls/lwp.py), below kern_sig.py.
"""

from __future__ import annotations

from collections import deque
from enum import IntEnum, IntFlag

#: ``_NSIG``: number of signals including 0, i.e. valid signals are 1..NSIG-1.
NSIG = 64
SIGRTMIN = 33
SIGRTMAX = 63


class Sig(IntEnum):
    """NetBSD signal numbers (sys/signal.h)."""

    SIGHUP = 1  # hangup
    SIGINT = 2  # interrupt
    SIGQUIT = 3  # quit
    SIGILL = 4  # illegal instruction (not reset when caught)
    SIGTRAP = 5  # trace trap (not reset when caught)
    SIGABRT = 6  # abort()
    SIGIOT = 6  # compatibility alias of SIGABRT
    SIGEMT = 7  # EMT instruction
    SIGFPE = 8  # floating point exception
    SIGKILL = 9  # kill (cannot be caught or ignored)
    SIGBUS = 10  # bus error
    SIGSEGV = 11  # segmentation violation
    SIGSYS = 12  # bad argument to system call
    SIGPIPE = 13  # write on a pipe with no one to read it
    SIGALRM = 14  # alarm clock
    SIGTERM = 15  # software termination signal from kill
    SIGURG = 16  # urgent condition on IO channel
    SIGSTOP = 17  # sendable stop signal not from tty
    SIGTSTP = 18  # stop signal from tty
    SIGCONT = 19  # continue a stopped process
    SIGCHLD = 20  # to parent on child stop or exit
    SIGTTIN = 21  # to readers pgrp upon background tty read
    SIGTTOU = 22  # like TTIN for output if (tp->t_local&LTOSTOP)
    SIGIO = 23  # input/output possible signal
    SIGXCPU = 24  # exceeded CPU time limit
    SIGXFSZ = 25  # exceeded file size limit
    SIGVTALRM = 26  # virtual time alarm
    SIGPROF = 27  # profiling time alarm
    SIGWINCH = 28  # window size changes
    SIGINFO = 29  # information request
    SIGUSR1 = 30  # user defined signal 1
    SIGUSR2 = 31  # user defined signal 2
    SIGPWR = 32  # power fail/restart (not reset when caught)


def signame(n: int) -> str:
    """NetBSD's name for signal *n*: "SIGBUS", "SIGRTMIN+3", or ``str(n)`` if invalid."""
    try:
        return Sig(n).name
    except ValueError:
        pass
    if SIGRTMIN <= n <= SIGRTMAX:
        return f"SIGRTMIN+{n - SIGRTMIN}"
    return str(n)


class SigProp(IntFlag):
    """Signal properties (``SA_*`` in sys/signalvar.h; not the sigaction(2) flags)."""

    SA_KILL = 0x0001  # terminates process by default
    SA_CORE = 0x0002  # ditto and coredumps
    SA_STOP = 0x0004  # suspend process
    SA_TTYSTOP = 0x0008  # ditto, from tty
    SA_IGNORE = 0x0010  # ignore by default
    SA_CONT = 0x0020  # continue if suspended
    SA_CANTMASK = 0x0040  # non-maskable, catchable
    SA_NORESET = 0x0080  # not reset when caught
    SA_TOLWP = 0x0100  # to LWP that generated, if local
    SA_TOALL = 0x0200  # always to all LWPs


_P = SigProp

#: ``sigprop[NSIG]``: signal number (1..63) -> its properties.
SIGPROP: dict[int, SigProp] = {
    Sig.SIGHUP: _P.SA_KILL,
    Sig.SIGINT: _P.SA_KILL,
    Sig.SIGQUIT: _P.SA_KILL | _P.SA_CORE,
    Sig.SIGILL: _P.SA_KILL | _P.SA_CORE | _P.SA_NORESET | _P.SA_TOLWP,
    Sig.SIGTRAP: _P.SA_KILL | _P.SA_CORE | _P.SA_NORESET | _P.SA_TOLWP,
    Sig.SIGABRT: _P.SA_KILL | _P.SA_CORE,
    Sig.SIGEMT: _P.SA_KILL | _P.SA_CORE | _P.SA_TOLWP,
    Sig.SIGFPE: _P.SA_KILL | _P.SA_CORE | _P.SA_TOLWP,
    Sig.SIGKILL: _P.SA_KILL | _P.SA_CANTMASK | _P.SA_TOALL,
    Sig.SIGBUS: _P.SA_KILL | _P.SA_CORE | _P.SA_TOLWP,
    Sig.SIGSEGV: _P.SA_KILL | _P.SA_CORE | _P.SA_TOLWP,
    Sig.SIGSYS: _P.SA_KILL | _P.SA_CORE | _P.SA_TOLWP,
    Sig.SIGPIPE: _P.SA_KILL,
    Sig.SIGALRM: _P.SA_KILL,
    Sig.SIGTERM: _P.SA_KILL,
    Sig.SIGURG: _P.SA_IGNORE,
    Sig.SIGSTOP: _P.SA_STOP | _P.SA_CANTMASK | _P.SA_TOALL,
    Sig.SIGTSTP: _P.SA_STOP | _P.SA_TTYSTOP | _P.SA_TOALL,
    Sig.SIGCONT: _P.SA_IGNORE | _P.SA_CONT | _P.SA_TOALL,
    Sig.SIGCHLD: _P.SA_IGNORE,
    Sig.SIGTTIN: _P.SA_STOP | _P.SA_TTYSTOP | _P.SA_TOALL,
    Sig.SIGTTOU: _P.SA_STOP | _P.SA_TTYSTOP | _P.SA_TOALL,
    Sig.SIGIO: _P.SA_IGNORE,
    Sig.SIGXCPU: _P.SA_KILL,
    Sig.SIGXFSZ: _P.SA_KILL,
    Sig.SIGVTALRM: _P.SA_KILL,
    Sig.SIGPROF: _P.SA_KILL,
    Sig.SIGWINCH: _P.SA_IGNORE,
    Sig.SIGINFO: _P.SA_IGNORE,
    Sig.SIGUSR1: _P.SA_KILL,
    Sig.SIGUSR2: _P.SA_KILL,
    Sig.SIGPWR: _P.SA_IGNORE | _P.SA_NORESET,
    # SIGRTMIN+0 .. SIGRTMIN+30
    **{n: _P.SA_KILL for n in range(SIGRTMIN, SIGRTMAX + 1)},
}

del _P


def default_action(sig: int) -> str:
    """What SIG_DFL does with *sig*: "core", "terminate", "stop", "continue" or "ignore".

    SIGCONT is SA_IGNORE|SA_CONT: it resumes a stopped process and is
    otherwise ignored; this returns "continue" for it.
    """
    prop = SIGPROP[sig]
    if prop & SigProp.SA_CORE:
        return "core"
    if prop & SigProp.SA_KILL:
        return "terminate"
    if prop & SigProp.SA_STOP:
        return "stop"
    if prop & SigProp.SA_CONT:
        return "continue"
    if prop & SigProp.SA_IGNORE:
        return "ignore"
    raise AssertionError(f"signal {sig} has no default action in sigprop")  # pragma: no cover


#: Signal number -> default action (see :func:`default_action`).
DEFAULT_ACTION: dict[int, str] = {n: default_action(n) for n in SIGPROP}


# si_code values (sys/siginfo.h)
SI_USER = 0
SI_QUEUE = -1
SI_TIMER = -2
SI_ASYNCIO = -3
SI_MESGQ = -4
SI_LWP = -5
SI_NOINFO = 32767
# SIGCHLD's si_code
CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED = 1, 2, 3, 4, 5, 6
# si_code of SIGTRAP (sys/siginfo.h)
TRAP_BRKPT, TRAP_TRACE, TRAP_EXEC, TRAP_CHLD, TRAP_LWP = 1, 2, 3, 4, 5


def bit(sig: int) -> int:
    return 1 << (sig - 1)


# -- ksiginfo and pending sets ----------------------------------------------------
class Ksiginfo:
    """ksiginfo_t: what a posted signal carries (struct _ksiginfo + ksi_lid)."""
    __slots__ = ("signo", "code", "errno", "pid", "uid", "value", "addr", "trap", "trap2",
                 "trap3", "lid", "fault", "empty", "err")

    def __init__(self, signo: int, code: int = SI_USER, pid: int = 0, uid: int = 0,
                 value: int = 0, lid: int = 0) -> None:
        self.signo = signo
        self.code = code
        self.errno = 0
        self.pid = pid
        self.uid = uid
        self.value = value
        self.addr = 0
        self.trap = 0
        self.trap2 = 0
        self.trap3 = 0
        self.lid = lid
        self.fault = False           # KSI_TRAP: the _fault member of the reason union
        self.empty = False           # KSI_EMPTY: no information (psignal)
        self.err = 0                 # the trap's error code (mcontext _REG_ERR)

    @classmethod
    def noinfo(cls, signo: int) -> "Ksiginfo":
        ksi = cls(signo, SI_NOINFO)
        ksi.empty = True
        return ksi

    def __repr__(self) -> str:
        return f"<ksi {signame(self.signo)} code={self.code} lid={self.lid}>"


class Sigpend:
    """sigpend_t: the set of pending signals and their queued ksiginfos."""
    __slots__ = ("set", "q")

    def __init__(self) -> None:
        self.set = 0
        self.q: dict[int, deque[Ksiginfo]] = {}

    def put(self, ksi: Ksiginfo) -> None:
        """sigput(): a standard signal is pending once (the newest information
        wins); real-time signals queue."""
        sig = ksi.signo
        self.set |= bit(sig)
        if ksi.empty:
            return
        q = self.q.get(sig)
        if q is None:
            q = self.q[sig] = deque()
        if sig < SIGRTMIN and q:
            q[0] = ksi
        else:
            q.append(ksi)

    def get(self, sig: int) -> Ksiginfo:
        """sigget(): take one instance of sig (which must be pending)."""
        q = self.q.get(sig)
        if q:
            ksi = q.popleft()
            if not q:
                del self.q[sig]
                self.set &= ~bit(sig)
            return ksi
        self.set &= ~bit(sig)
        return Ksiginfo.noinfo(sig)

    def clear(self, mask: int) -> None:
        """sigclear(): forget the signals of mask."""
        self.set &= ~mask
        for sig in [s for s in self.q if bit(s) & mask]:
            del self.q[sig]
