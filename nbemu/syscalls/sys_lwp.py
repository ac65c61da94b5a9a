"""The LWP system calls (NetBSD's sys_lwp.c), one handler per call.

Each handler keeps NetBSD's contract: validate, act, copy results out last,
return 0 or an errno; results go to retval. Handlers that sleep are
generators (see kern_sleepq.py).
"""
from __future__ import annotations

import struct
from typing import Generator

from .cstruct import TIMESPEC
from .errno import Errno, KernErrno
from .kern_lwp import (LWPCTL_CPU_NONE, LWPCTL_FEATURE_CURCPU, LWPCTL_FEATURE_PCTR, lwp_continue,
                       lwp_create, lwp_ctl_alloc, lwp_exit, lwp_free, lwp_start, lwp_suspend,
                       lwp_wait, lwpctl_write)
from .kern_sleepq import (lwp_park_syncobj, sleep_syncobj, sleepq_abort_interruptible, sleepq_block,
                          sleepq_enqueue, sleepq_remove, sleepq_unsleep, sleepq_wake)
from .kern_synch import cpu_switchto
from .kern_time import (CLOCK_REALTIME, MAXTIMO_NS, TIME_MAX, TIME_MIN, TIMER_ABSTIME, NS_PER_SEC,
                        clock_gettime1, copyin_timespec, ts2timo)
from .lwp import (LPR_DETACHED, LSONPROC, LSRUN, LSSLEEP, LSSTOP, LSSUSPENDED, LSZOMB,
                  LWP_SUSPENDED, MAXCOMLEN, PSL_TRACELWP_CREATE, PSL_TRACELWP_EXIT, Lwp,
                  LwpFlag)
from .signals import NSIG
from .sys_ptrace import PTRACE_LWP_CREATE, PTRACE_LWP_EXIT, ptrace_event
from .table import syscall

LWP_UNPARK_MAX = 1024
SYS____lwp_park60 = 478
# (as plain ints for the park's way out: an Enum member's attribute lookup
# costs ~0.1 us, several times a comparison)
_EWOULDBLOCK, _ERESTART = int(Errno.EWOULDBLOCK), int(KernErrno.ERESTART)
_UC_SIGMASK = 0x1
_UC_CPU = 0x4


# -- _lwp_create / _lwp_exit / _lwp_self ---------------------------------------
@syscall(309, "_lwp_create")
def sys__lwp_create(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    k = p.k
    abi = k.abi
    # No check of the flags: NetBSD 10 uses LWP_DETACHED and LWP_SUSPENDED and
    # ignores every other bit (do_lwp_create / lwp_start mask them).
    uc = p.p_vmspace.copyin(a.ucp, abi.ucontext_size)
    if isinstance(uc, int):
        return uc
    # validate the ucontext: a CPU context is required (cpu_mcontext_validate)
    ucflags = abi.ucontext_flags(uc)
    if not ucflags & _UC_CPU or not abi.cpu_mcontext_validate(abi.unpack_mcontext_gregs(uc)):
        return Errno.EINVAL
    l2 = lwp_create(k, l, p, a.flags)
    if isinstance(l2, int):
        return l2
    k.platform.context_fork(l, l2)
    ids, vals = abi.mcontext_regs(uc, ucflags)
    k.platform.regs_set(l2, ids, vals)
    tls = abi.ucontext_tlsbase(uc)
    if tls is not None:                 # cpu_setmcontext: lwp_setprivate()
        l2.l_private = tls
        abi.set_tls(k.platform, l2, tls)
    if ucflags & _UC_SIGMASK:
        l2.l_sigmask = abi.ucontext_sigmask(uc)
    # Copy the new lid out before the LWP can run; if that fails it exits unrun.
    error = p.p_vmspace.copyout(struct.pack("<i", l2.l_lid), a.new_lwp)
    if error:
        k.platform.context_free(l2)
        l2.l_stat = LSZOMB
        p.p_nzlwps += 1
        lwp_free(k, l2)
        return error
    lwp_start(k, l2, bool(a.flags & LWP_SUSPENDED))
    if p.p_slflag & PSL_TRACELWP_CREATE:
        ptrace_event(l, PSL_TRACELWP_CREATE, PTRACE_LWP_CREATE, l2.l_lid)
    return 0


@syscall(310, "_lwp_exit")
def sys__lwp_exit(l: Lwp, a, retval: list[int]) -> int | Generator[str, int, int]:
    if l.l_proc.p_slflag & PSL_TRACELWP_EXIT:
        return _lwp_exit_traced(l)
    lwp_exit(l)
    return 0


def _lwp_exit_traced(l: Lwp) -> Generator[str, int, int]:
    """The tracer hears of the exit (TRAP_LWP, PTRACE_LWP_EXIT) before it happens."""
    ptrace_event(l, PSL_TRACELWP_EXIT, PTRACE_LWP_EXIT, l.l_lid, now=True)
    if l.l_stat != LSONPROC:
        yield "block"
    if not l.l_proc.p_exiting:
        lwp_exit(l)
    return 0


@syscall(311, "_lwp_self")
def sys__lwp_self(l: Lwp, a, retval: list[int]) -> int:
    retval[0] = l.l_lid
    return 0


# -- TLS -------------------------------------------------------------------------
@syscall(316, "_lwp_getprivate")
def sys__lwp_getprivate(l: Lwp, a, retval: list[int]) -> int:
    retval[0] = l.l_private
    return 0


@syscall(317, "_lwp_setprivate")
def sys__lwp_setprivate(l: Lwp, a, retval: list[int]) -> int:
    # lwp_setprivate(): l_private is set first, then cpu_lwp_setprivate() loads the
    # TLS register -- and may refuse the value, leaving l_private set all the same.
    # Whether it refuses is the architecture's business (amd64's x86_set_sdbase:
    # EINVAL at or above VM_MAXUSER_ADDRESS; aarch64 takes anything): the ABI's
    # cpu_lwp_setprivate(ptr) -> errno says.
    l.l_private = a.ptr
    k = l.l_proc.k
    error = k.abi.cpu_lwp_setprivate(a.ptr)
    if error:
        return error
    k.abi.set_tls(k.platform, l, a.ptr)
    return 0


# -- _lwp_wait / _lwp_detach ---------------------------------------------------------
@syscall(312, "_lwp_wait")
def sys__lwp_wait(l: Lwp, a, retval: list[int]) -> Generator:
    departed: list[int] = []
    error = yield from lwp_wait(l, a.wait_for, departed)
    if error:
        return error
    if a.departed:
        return l.l_proc.p_vmspace.copyout(struct.pack("<i", departed[0]), a.departed)
    return 0


@syscall(319, "_lwp_detach")
def sys__lwp_detach(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    t = l if a.target == l.l_lid else p.lwp_find(a.target)
    if t is None:
        return Errno.ESRCH
    if t.l_prflag & LPR_DETACHED:
        return Errno.EINVAL
    if t.l_stat == LSZOMB:
        lwp_free(p.k, t)
        return 0
    t.l_prflag |= LPR_DETACHED
    p.p_ndlwps += 1
    # LWPs waiting in _lwp_wait re-check (they may now deadlock or find nothing).
    sleepq_wake(p.k, p.p_lwpcv)
    return 0


# -- suspension ------------------------------------------------------------------------
@syscall(313, "_lwp_suspend")
def sys__lwp_suspend(l: Lwp, a, retval: list[int]) -> Generator:
    p = l.l_proc
    k = p.k
    t = p.lwp_find(a.target)
    if t is None or t.l_stat == LSZOMB:
        return Errno.ESRCH
    error = lwp_suspend(l, t)
    if error or t is l or t.l_stat == LSSUSPENDED:
        return error           # t is l: it suspends itself in userret
    # Wait until the target is really suspended, exits, or the process exits.
    while True:
        t2 = p.lwp_find(a.target)
        if t2 is not t or t.l_stat == LSZOMB:
            return Errno.ESRCH if t2 is None else 0
        if p.p_exiting or (l.l_flag | t.l_flag) & (LwpFlag.LW_WEXIT | LwpFlag.LW_WCORE):
            return int(KernErrno.ERESTART)
        if t.l_stat == LSSUSPENDED or not t.l_flag & LwpFlag.LW_WSUSPEND:
            return 0
        sleepq_enqueue(k, l, p.p_lwpcv, "suspend", sleep_syncobj, True)
        error = yield from sleepq_block(k, l, None)
        if error:
            return int(KernErrno.ERESTART)   # interrupted by a signal


@syscall(314, "_lwp_continue")
def sys__lwp_continue(l: Lwp, a, retval: list[int]) -> int:
    t = l.l_proc.lwp_find(a.target)
    if t is None or t.l_stat == LSZOMB:
        return Errno.ESRCH
    lwp_continue(t)
    return 0


@syscall(315, "_lwp_wakeup")
def sys__lwp_wakeup(l: Lwp, a, retval: list[int]) -> int:
    t = l.l_proc.lwp_find(a.target)
    if t is None or t.l_stat == LSZOMB:
        return Errno.ESRCH
    # Set before looking at the state: even a target that is not asleep
    # finds its next park cancelled (EALREADY).
    t.l_flag |= LwpFlag.LW_CANCELLED | LwpFlag.LW_UNPARKED
    t.npark_end()
    if t.l_stat != LSSLEEP:
        return Errno.ENODEV
    if not t.l_flag & LwpFlag.LW_SINTR:
        return Errno.EBUSY
    sleepq_abort_interruptible(l.l_proc.k, t, Errno.EINTR)
    return 0


# -- _lwp_kill -----------------------------------------------------------------------
@syscall(318, "_lwp_kill")
def sys__lwp_kill(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    if a.signo < 0 or a.signo >= NSIG:
        return Errno.EINVAL
    t = p.lwp_find(a.target)
    if t is None or t.l_stat == LSZOMB:
        return Errno.ESRCH
    if a.signo == 0:
        return 0
    from .kern_sig import kpsignal_lwp
    kpsignal_lwp(t, a.signo)
    return 0


# -- park / unpark ---------------------------------------------------------------------
def lwp_unpark(l: Lwp, targets: list[int], hint: int) -> int:
    """Unpark each target LWP: wake it if parked, else leave the unpark pending."""
    p = l.l_proc
    k = p.k
    error = 0
    for lid in targets:
        t = p.lwp_find(lid)
        if t is None:
            error = Errno.ESRCH
            continue
        if t.l_stat == LSSLEEP and t.l_syncobj is lwp_park_syncobj:
            if k.listeners:
                k.event("unpark", t, by=l.l_lid, hint=hint)
            sleepq_remove(k, t, 0)
        elif t.l_stat == LSZOMB:
            error = Errno.ESRCH
        else:
            t.l_flag |= LwpFlag.LW_UNPARKED
            t.npark_end()                   # (its next park is the kernel's: EALREADY)
    return error


def lwp_park(l: Lwp, clock_id: int, flags: int, ts: tuple[int, int] | None, hint: int,
             left: list[tuple[int, int]] | None = None) -> Generator[str, int, int]:
    """lwp_park(): park the calling LWP until unparked, interrupted or timed out.

    For a relative timeout, `left` receives the timespec sys____lwp_park60
    copies back: as ts2timo() left it when the park returns early, zero after
    ETIMEDOUT, else the time that was left (clock_timeleft())."""
    k = l.l_proc.k
    deadline = None
    start = 0
    timeremain = ts is not None and not flags & TIMER_ABSTIME
    if ts is not None:
        error, fixed, start = ts2timo(l, clock_id, flags, ts, timeremain)
        if error:
            if left is not None:
                left.append(ts)
            return error
        ts = fixed
        deadline = k.clock.monotonic_ns() + min(fixed[0] * NS_PER_SEC + fixed[1], MAXTIMO_NS)
    # Before going the full route and blocking, check for a pending unpark.
    if l.l_flag & (LwpFlag.LW_CANCELLED | LwpFlag.LW_UNPARKED):
        l.l_flag &= ~(LwpFlag.LW_CANCELLED | LwpFlag.LW_UNPARKED)
        if left is not None and ts is not None:
            left.append(ts)
        return Errno.EALREADY
    l.l_park_hint = hint
    sleepq_enqueue(k, l, ("parked", l.l_proc.p_pid, l.l_lid), "parked", lwp_park_syncobj, True)
    if deadline is None and not l.l_flag & LW_PARK_NOT_NATIVE:
        k.platform.npark_begin(l)       # the machine may end this park itself
    error = yield from sleepq_block(k, l, None, deadline)
    l.l_park_hint = 0
    if error == _EWOULDBLOCK:
        error = Errno.ETIMEDOUT
        if timeremain:
            ts = (0, 0)
    else:
        if error == _ERESTART:
            error = Errno.EINTR
        if timeremain:
            assert ts is not None
            e2, now = clock_gettime1(l, clock_id)
            if not e2:                            # clock_timeleft()
                rest = ts[0] * NS_PER_SEC + ts[1] + start - now
                ts = (rest // NS_PER_SEC, rest % NS_PER_SEC)
    if left is not None and ts is not None:
        left.append(ts)
    return error


# -- the machine's native park path (emu/npark.py) ---------------------------------
# The machine serves _lwp_unpark and ___lwp_park60 without a timeout between
# LWPs the kernel handed it (Platform.npark_begin, above), and tells the kernel
# what it did before the kernel runs again, through these three.
LW_PARK_NOT_NATIVE = (LwpFlag.LW_PENDSIG | LwpFlag.LW_WSUSPEND | LwpFlag.LW_WEXIT
                      | LwpFlag.LW_WCORE | LwpFlag.LW_DBGSUSPEND | LwpFlag.LW_CANCELLED)


def lwp_park_native_parked(l: Lwp, vals: list[int]) -> None:
    """l, on its CPU, made a ___lwp_park60 without a timeout that the machine
    served (vals: its trap registers) and another LWP runs now: l is parked as
    the trap would have left it (lwp_park blocked, the CPU released)."""
    k = l.l_proc.k
    l.l_syscode = SYS____lwp_park60
    l.l_syshist.append(SYS____lwp_park60)
    gen = lwp_park(l, CLOCK_REALTIME, 0, None, 0)
    try:
        gen.send(None)
    except StopIteration as stop:          # (not clean after all: it returns at once)
        k.platform.syscall_return(l, k.abi.encode_return(vals, stop.value or 0, 0,
                                                         vals[k.abi.rv1_index]))
        return
    l.l_kstack = gen
    l.l_sysvals = vals
    l.l_sysargs = ()
    l.l_retval = [0, vals[k.abi.rv1_index]]


def lwp_park_native_woken(l: Lwp) -> None:
    """The machine unparked l (an _lwp_unpark it served) but has not run it:
    l is runnable, its park returns 0 when it runs."""
    sleepq_remove(l.l_proc.k, l, 0)


def lwp_park_native_ran(ci, l: Lwp) -> None:
    """The machine unparked l and runs it on ci now, its park's return (0)
    written: l leaves its sleep and is on ci, its system call done."""
    k = l.l_proc.k
    gen = l.l_kstack
    sleepq_unsleep(k, l, 0)
    l.l_kstack = None
    l.l_sysvals = None
    l.l_park_hint = 0
    l.set_stat(LSRUN)
    cpu_switchto(k, ci, l)
    if gen is not None:
        gen.close()


def _park_common(l: Lwp, clock_id: int, flags: int, tsp: int, unpark: int, hint: int,
                 unparkhint: int, ts_layout: str) -> int | Generator[str, int, int]:
    """The park calls' common part: an error, or the generator that parks (the
    handler's result, which the trap runs as its own)."""
    ts = None
    if tsp:
        ts = copyin_timespec(l, tsp, ts_layout)
        if isinstance(ts, int):
            return ts
    if unpark:
        error = lwp_unpark(l, [unpark], unparkhint)
        if error:
            return error
    if ts is None:
        # no timeout, nothing to copy out: lwp_park's generator is the call's
        # (one generator level less to block in and resume from on every park)
        return lwp_park(l, clock_id, flags, None, hint)
    return _park_timed(l, clock_id, flags, tsp, ts, hint, ts_layout)


def _park_timed(l: Lwp, clock_id: int, flags: int, tsp: int, ts: tuple[int, int], hint: int,
                ts_layout: str) -> Generator[str, int, int]:
    """A park with a timeout: lwp_park, then (___lwp_park60's relative
    timeouts) the time left copied back out."""
    p = l.l_proc
    left: list[tuple[int, int]] = []
    error = yield from lwp_park(l, clock_id, flags, ts, hint, left)
    if not flags & TIMER_ABSTIME and ts_layout == "ts":
        # (void)copyout(tsp, SCARG(uap, ts), sizeof(*tsp)): failure is ignored.
        sec, nsec = left[0] if left else ts
        sec = max(TIME_MIN, min(TIME_MAX, sec))
        p.p_vmspace.copyout(TIMESPEC.on(p.k.abi).pack(sec, nsec), tsp)
    return error


@syscall(478, "___lwp_park60")
def sys____lwp_park60(l: Lwp, a, retval: list[int]) -> int | Generator:
    return _park_common(l, a.clock_id, a.flags, a.ts, a.unpark, a.hint, a.unparkhint, "ts")


@syscall(434, "compat_60__lwp_park")
def compat_60_sys__lwp_park(l: Lwp, a, retval: list[int]) -> int | Generator:
    # NetBSD 6-9 ABI: absolute CLOCK_REALTIME timeout.
    return _park_common(l, CLOCK_REALTIME, TIMER_ABSTIME, a.ts, a.unpark, a.hint,
                        a.unparkhint, "ts_abs")


@syscall(320, "compat_50__lwp_park")
def compat_50_sys__lwp_park(l: Lwp, a, retval: list[int]) -> int | Generator:
    # NetBSD 5 ABI: struct timespec50 (32-bit tv_sec), absolute CLOCK_REALTIME.
    return _park_common(l, CLOCK_REALTIME, TIMER_ABSTIME, a.ts, a.unpark, a.hint,
                        a.unparkhint, "ts50")


@syscall(321, "_lwp_unpark")
def sys__lwp_unpark(l: Lwp, a, retval: list[int]) -> int:
    return lwp_unpark(l, [a.target], a.hint)


@syscall(322, "_lwp_unpark_all")
def sys__lwp_unpark_all(l: Lwp, a, retval: list[int]) -> int:
    if not a.targets:
        retval[0] = LWP_UNPARK_MAX
        return 0
    n = a.ntargets & 0xFFFFFFFF     # u_int ntargets = SCARG(uap, ntargets)
    if n == 0 or n > LWP_UNPARK_MAX:
        return Errno.EINVAL
    data = l.l_proc.p_vmspace.copyin(a.targets, 4 * n)
    if isinstance(data, int):
        return data
    # Every target is tried; ESRCH if any was not found (lwp_unpark).
    return lwp_unpark(l, list(struct.unpack(f"<{n}i", data)), a.hint)


# -- names -----------------------------------------------------------------------------
@syscall(323, "_lwp_setname")
def sys__lwp_setname(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    name = p.p_vmspace.copyinstr(a.name, MAXCOMLEN)
    if name == Errno.ENAMETOOLONG:
        raw = p.p_vmspace.copyin(a.name, MAXCOMLEN)
        name = raw[:MAXCOMLEN - 1] if isinstance(raw, bytes) else raw
    if isinstance(name, int):
        return name
    t = l if a.target in (0, l.l_lid) else p.lwp_find(a.target)
    if t is None or t.l_stat == LSZOMB:
        return Errno.ESRCH
    t.l_name = bytes(name)
    p.k.event("setname", t, name=t.l_name.decode("latin-1"))
    return 0


@syscall(324, "_lwp_getname")
def sys__lwp_getname(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    t = l if a.target in (0, l.l_lid) else p.lwp_find(a.target)
    if t is None or t.l_stat == LSZOMB:
        return Errno.ESRCH
    name = (t.l_name or b"")[:MAXCOMLEN - 1] + b"\0"
    # len = uimin(len, sizeof(name)): uimin() takes u_int, so a size_t length is
    # truncated to 32 bits first (2^32 becomes 0).
    n = min(a.len & 0xFFFFFFFF, MAXCOMLEN)
    # copyoutstr(): copies at most n bytes; ENAMETOOLONG if the NUL did not fit.
    if n == 0:
        return Errno.ENAMETOOLONG
    out = name[:n]
    error = p.p_vmspace.copyout(out, a.name)
    if error:
        return error
    return 0 if len(out) == len(name) else Errno.ENAMETOOLONG


@syscall(325, "_lwp_ctl")
def sys__lwp_ctl(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    if a.features & ~(LWPCTL_FEATURE_CURCPU | LWPCTL_FEATURE_PCTR):
        return Errno.ENODEV
    if not l.l_lwpctl:
        error = lwp_ctl_alloc(l)
        if error:
            return error
    ci = l.l_cpu
    lwpctl_write(l, ci.ci_index if ci is not None and l.l_stat == LSONPROC else LWPCTL_CPU_NONE)
    ws = p.k.abi.word_size
    return p.p_vmspace.copyout(l.l_lwpctl.to_bytes(ws, "little"), a.address)


__all__ = ["lwp_unpark", "lwp_park", "LSRUN", "LSSTOP", "LSONPROC"]
