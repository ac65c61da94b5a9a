"""--trace=CLASSES: kdump-like lines on stderr, one per kernel event.

    nbemu --trace=lwp,sched PROGRAM        classes: syscall, lwp, sched, signal, all

Each line:  PID/LID  NAME  TIME  EVENT  details

    100/100  main        1.000132500 CALL     _lwp_create(0x7f7fffffe6c0, 0, 0x7f7fffffe6bc) = 0
    100/2    alice       1.000141020 CREATE   by lid 100
    100/2    alice       1.000141020 ENQUEUE  cpu 1
    100/2    alice       1.000160000 RUN      cpu 1
    100/2    alice       1.000185480 PARK     hint 0x226684 <lock_b>
    100/3    bob         1.000190000 WAKEUP   by lid 2 (unpark, hint 0x226680 <lock_a>)

TIME is the kernel clock's CLOCK_MONOTONIC in seconds: virtual under
--deterministic (it advances with guest work), the host's otherwise. Classes:
  syscall  one line per system call when it returns (strace's formatting)
  lwp      create, exit, free, setname, sleep/park, wakeup/unpark, suspend, stop,
           continue, process stop and exit
  sched    enqueue (on a CPU's run queue), run (on a CPU), preempt, yield, migrate
  signal   signals posted to an LWP, delivered to a handler, interrupting a sleep;
           SIGPIPE
All come from the kernel's single event stream (`Kernel.event`); nothing is
attached, and nothing costs, unless --trace is given.

This module also owns the multiplexing of the kernel's one after-system-call
slot (`Kernel.strace`): `add_syscall_hook` lets --strace, --trace=syscall, the
Python API and schedule exploration share it.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

from nbemu.syscalls.lwp import Lwp

CLASSES = ("syscall", "lwp", "sched", "signal")

EVENT_CLASS = {
    "create": "lwp", "exit": "lwp", "free": "lwp", "setname": "lwp", "sleep": "lwp",
    "wakeup": "lwp", "unpark": "lwp", "suspend": "lwp", "continue": "lwp",
    "proc_exit": "lwp",
    "enqueue": "sched", "run": "sched", "preempt": "sched", "yield": "sched",
    "migrate": "sched",
    "stop": "lwp", "proc_stop": "lwp",
    "signal": "signal", "sigpipe": "signal", "sigdeliver": "signal", "sigwake": "signal",
}

EWOULDBLOCK = 35


def parse_classes(spec: str) -> set[str]:
    """`syscall,lwp` -> {"syscall", "lwp"}; `all` -> every class. ValueError on
    an unknown class."""
    out: set[str] = set()
    for c in spec.split(","):
        c = c.strip().lower()
        if not c:
            continue
        if c == "all":
            out.update(CLASSES)
        elif c in CLASSES:
            out.add(c)
        else:
            raise ValueError(f"unknown trace class {c!r} (known: {', '.join(CLASSES)}, all)")
    if not out:
        raise ValueError("no trace class given")
    return out


# -- the kernel's after-system-call slot, shared ------------------------------------------
SyscallHook = Callable[[Lwp, int, tuple, int, list], None]


class SyscallHooks(list):
    """Several hooks in the kernel's single `strace` slot, called in order."""

    def __call__(self, l: Lwp, code: int, args: tuple, error: int, retval: list) -> None:
        for fn in self:
            fn(l, code, args, error, retval)


def add_syscall_hook(k: Any, fn: SyscallHook) -> None:
    """Call fn(l, code, args, error, retval) after every system call."""
    cur = k.strace
    if cur is None:
        k.strace = fn
    elif isinstance(cur, SyscallHooks):
        cur.append(fn)
    else:
        k.strace = SyscallHooks([cur, fn])


def remove_syscall_hook(k: Any, fn: SyscallHook) -> None:
    cur = k.strace
    if cur is fn:
        k.strace = None
    elif isinstance(cur, SyscallHooks) and fn in cur:
        cur.remove(fn)
        if not cur:
            k.strace = None


# -- shared helpers (the timeline uses them too) ------------------------------------------
def waker_of(session: Any, kind: str, l: Lwp, data: dict) -> int | None:
    """The lid of the LWP whose action ended l's sleep, or None (a timeout, the
    run loop). An unpark names its waker; a wakeup is caused by the LWP whose
    system call the kernel is serving at that moment."""
    if kind == "unpark":
        return data.get("by")
    if data.get("error") == EWOULDBLOCK:
        return None
    m = session.machine
    cur = m.curlwp
    if m.in_hook and cur is not None and cur is not l:
        return cur.l_lid
    return None


def wchan_label(wchan: Any) -> str:
    if isinstance(wchan, tuple):
        if wchan and wchan[0] == "kpause":
            return "kpause"
        return ".".join(str(x) for x in wchan)
    return str(wchan)


def lwp_name(l: Lwp) -> str:
    if l.l_name:
        return l.l_name.decode("latin-1")
    if l.l_lid == l.l_proc.p_pid:
        return l.l_proc.p_comm.decode("latin-1")
    return "-"


# -- the tracer ---------------------------------------------------------------------------
class Tracer:
    """The --trace listener: formats events of the chosen classes, one line each."""

    def __init__(self, session: Any, classes: set[str], out: TextIO) -> None:
        self.s = session
        self.k = session.kernel
        self.classes = classes
        self.out = out
        self._syms = None
        self._strace = None

    def _sym(self, addr: int) -> str:
        if self._syms is None:
            from .crash import Symbols
            self._syms = Symbols.of(self.s)
        return self._syms.describe(addr)

    def _head(self, l: Lwp, t: int, ev: str) -> str:
        return (f"{l.l_proc.p_pid:>6}/{l.l_lid:<6} {lwp_name(l)[:16]:<16} "
                f"{t / 1e9:16.9f} {ev:<8}")

    def details(self, kind: str, l: Lwp, data: dict) -> str:
        """The details column of one event."""
        if kind in ("enqueue", "run", "preempt", "yield"):
            return f"cpu {data.get('cpu')}"
        if kind == "migrate":
            return f"cpu {data.get('src')} -> cpu {data.get('cpu')}"
        if kind == "create":
            return f"by lid {data.get('parent')}" if data.get("parent") else "first LWP"
        if kind == "sleep":
            if data.get("wmesg") == "parked":
                return f"hint {self._sym(l.l_park_hint)}" if l.l_park_hint else "hint NULL"
            what = f"{data.get('wmesg')} on {wchan_label(data.get('wchan'))}"
            if l.l_waitingfor and data.get("wmesg") == "lwpwait":
                what += f" (for lid {l.l_waitingfor})"
            return what
        if kind in ("wakeup", "unpark"):
            err = data.get("error", 0)
            by = waker_of(self.s, kind, l, data)
            if kind == "unpark":
                hint = data.get("hint", 0)
                return f"by lid {by}" + (f", hint {self._sym(hint)}" if hint else "")
            if err == EWOULDBLOCK:
                return "timeout"
            from nbemu.syscalls.errno import errno_name
            res = f" {errno_name(err)}" if err else ""
            return (f"by lid {by}" if by is not None else "by the kernel") + res
        if kind in ("signal", "sigdeliver", "sigwake", "stop", "proc_stop"):
            from nbemu.syscalls.signals import signame
            sig = data.get("sig", 0)
            what = f"{signame(sig)} ({sig})" if sig else "-"
            if kind == "sigdeliver":
                what += f" to its handler, code {data.get('code', 0)}"
            elif kind == "sigwake":
                what += " interrupts the sleep"
            elif kind == "proc_stop":
                what = "process stopped by " + what
            return what
        if kind == "setname":
            return repr(data.get("name", ""))
        if kind == "proc_exit":
            if data.get("signo"):
                return f"killed by signal {data['signo']}"
            return f"status {data.get('status', 0)}"
        return " ".join(f"{k}={v}" for k, v in data.items() if k != "t")

    _EV = {"sleep": "SLEEP", "wakeup": "WAKEUP", "unpark": "UNPARK", "proc_exit": "PEXIT",
           "proc_stop": "PSTOP", "sigdeliver": "SIGDLVR", "sigwake": "SIGWAKE"}

    def __call__(self, kind: str, l: Lwp, data: dict) -> None:
        cls = EVENT_CLASS.get(kind, "lwp")
        if cls not in self.classes:
            return
        ev = self._EV.get(kind, kind.upper())
        if kind == "sleep" and data.get("wmesg") == "parked":
            ev = "PARK"
        self.out.write(f"{self._head(l, data['t'], ev)} {self.details(kind, l, data)}\n")

    def syscall(self, l: Lwp, code: int, args: tuple, error: int, retval: list) -> None:
        """The `syscall` class: one line as the call returns, strace's formatting."""
        st = self._strace
        if st is None:
            from .strace import Strace
            st = self._strace = Strace(self.k, self.out)
        call, res = st.format(l, code, args, error, retval)
        t = self.k.clock.stamp_ns()
        self.out.write(f"{self._head(l, t, 'CALL')} {call} = {res}\n")


def attach(session: Any, classes: str | set[str], out: TextIO | None = None) -> Tracer:
    """Start tracing `classes` (a --trace string or a set) of a Session to `out`
    (default: stderr). A bad class list is a usage error (exit 2) from the CLI."""
    if isinstance(classes, str):
        try:
            cls = parse_classes(classes)
        except ValueError as e:
            print(f"nbemu: --trace: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    else:
        cls = set(classes)
    tr = Tracer(session, cls, out if out is not None else sys.stderr)
    if "lwp" in cls:
        tr._sym(0)        # load the symbols now, not in the middle of a host-clock run
    k = session.kernel
    clock = "virtual" if k.deterministic else "host"
    tr.out.write(f"nbemu: trace {','.join(c for c in CLASSES if c in cls)}; "
                 f"time: CLOCK_MONOTONIC ({clock}), seconds\n")
    if cls - {"syscall"}:
        k.listeners.append(tr)
    if "syscall" in cls:
        add_syscall_hook(k, tr.syscall)
    return tr
