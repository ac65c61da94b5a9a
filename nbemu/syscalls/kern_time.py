"""Time system calls (NetBSD's kern_time.c): clock_gettime, gettimeofday,
nanosleep, clock_getres, and the timespec helpers other calls use."""
from __future__ import annotations

from typing import Generator

from .cstruct import ITIMERVAL, TIMESPEC, TIMESPEC50, TIMEVAL
from .errno import Errno, KernErrno
from .kern_resource import lwp_rtime, proc_rtime
from .kern_sleepq import kpause
from .kern_tc import TICK_NS, TICK_US   # 1 / hz: the smallest non-zero timeout / timer
from .lwp import LSIDL, LSZOMB, Lwp
from .table import syscall

ERESTART = int(KernErrno.ERESTART)
CLOCK_REALTIME = 0
CLOCK_VIRTUAL = 1
CLOCK_PROF = 2
CLOCK_MONOTONIC = 3
CLOCK_THREAD_CPUTIME_ID = 0x20000000
CLOCK_PROCESS_CPUTIME_ID = 0x40000000
TIMER_ABSTIME = 0x1


def copyin_timespec(l: Lwp, va: int, layout: str = "ts") -> tuple[int, int] | int:
    """A struct timespec (tv_sec, tv_nsec) from the guest; 'ts50' is the 32-bit
    tv_sec of NetBSD 5 binaries."""
    lay = (TIMESPEC50 if layout == "ts50" else TIMESPEC).on(l.l_proc.k.abi)
    data = l.l_proc.p_vmspace.copyin(va, lay.size)
    if isinstance(data, int):
        return data
    return lay.unpack(data)


def copyout_timespec(l: Lwp, ns: int, va: int) -> int:
    """Store a nanosecond count as a struct timespec at va."""
    return l.l_proc.p_vmspace.copyout(TIMESPEC.on(l.l_proc.k.abi).pack(ns // 10**9, ns % 10**9), va)


def clock_ns(k, clock_id: int) -> int | None:
    """The clock a sleep on clock_id measures (nanosleep1 sleeps in ticks whatever the
    clock, and only reads it for TIMER_ABSTIME or the time left)."""
    if clock_id == CLOCK_REALTIME:
        return k.clock.realtime_ns()
    if clock_id in (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
                    CLOCK_VIRTUAL, CLOCK_PROF):
        return k.clock.monotonic_ns()
    return None


def clock_getres1(clock_id: int) -> tuple[int, int]:
    """clock_getres1(): (errno, resolution in ns).  REALTIME and MONOTONIC read the
    timecounter (1 ns: tc_getfrequency() > 1 GHz); CLOCK_VIRTUAL and CLOCK_PROF are
    itimer clocks only (timer_create, setitimer), never readable: EINVAL, as in
    NetBSD 10's kern_time.c.  The bare CPU-time ids keep the 1 ns nbemu gave them."""
    if clock_id in (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                    CLOCK_THREAD_CPUTIME_ID):
        return 0, 1
    return Errno.EINVAL, 0


# ts2timo() and what it stands on (NetBSD 10 sys/kern/subr_time.c rev. 1.34).
TIME_MIN, TIME_MAX = -(1 << 63), (1 << 63) - 1
MAXTIMO_NS = 0x7FFFFFFF * TICK_NS   # tvtohz() caps a timeout at INT_MAX ticks
_CPUCLOCK_ID_MASK = ~(CLOCK_THREAD_CPUTIME_ID | CLOCK_PROCESS_CPUTIME_ID)
NS_PER_SEC = 1_000_000_000


def clock_gettime1(l: Lwp, clock_id: int) -> tuple[int, int]:
    """clock_gettime1(): (errno, nanoseconds).  REALTIME, MONOTONIC and the
    CPU-time clocks (process: pid 0 = ours; LWP: lid 0 = the caller), whose
    missing process or LWP is ESRCH; anything else is EINVAL."""
    p = l.l_proc
    k = p.k
    if clock_id & CLOCK_PROCESS_CPUTIME_ID:
        if clock_id & _CPUCLOCK_ID_MASK not in (0, p.p_pid):
            return Errno.ESRCH, 0
        return 0, proc_rtime(p)[0]                # calcru(): the process's CPU time
    if clock_id & CLOCK_THREAD_CPUTIME_ID:
        lid = clock_id & _CPUCLOCK_ID_MASK
        t = l if lid == 0 else p.lwp_find(lid)
        if t is None or t.l_stat in (LSZOMB, LSIDL):
            return Errno.ESRCH, 0
        return 0, lwp_rtime(t)[0]                 # addrulwp(): the LWP's CPU time
    if clock_id == CLOCK_REALTIME:
        return 0, k.clock.realtime_ns()
    if clock_id == CLOCK_MONOTONIC:
        return 0, k.clock.monotonic_ns()
    return Errno.EINVAL, 0


def ts2timo(l: Lwp, clock_id: int, flags: int, ts: tuple[int, int], want_start: bool
            ) -> tuple[int, tuple[int, int], int]:
    """ts2timo(): (errno, the relative timeout as itimespecfix() left it, the
    clock's time at the start).  EINVAL for a bad tv_nsec, a bad clock or an
    absolute time too far from now to subtract; ETIMEDOUT for a time not in
    the future."""
    sec, nsec = ts
    if nsec < 0 or nsec >= NS_PER_SEC:
        return Errno.EINVAL, ts, 0
    start = 0
    if flags & TIMER_ABSTIME or want_start:
        error, start = clock_gettime1(l, clock_id)
        if error:
            return error, ts, 0
    if flags & TIMER_ABSTIME:
        nsec_now = start % NS_PER_SEC
        sec_now = start // NS_PER_SEC
        borrow = nsec - nsec_now < 0              # timespecsubok()
        if (sec < 0 and sec_now >= 0 and sec < TIME_MIN + sec_now + borrow) or \
           (sec >= 0 and sec_now < 0 and sec > TIME_MAX + sec_now):
            return Errno.EINVAL, ts, 0
        sec, nsec = sec - sec_now - borrow, nsec - nsec_now + (NS_PER_SEC if borrow else 0)
    if sec < 0:                                   # itimespecfix()
        return Errno.ETIMEDOUT, ts, 0
    if sec == 0 and 0 < nsec < TICK_NS:
        nsec = TICK_NS
    if sec == 0 and nsec == 0:
        return Errno.ETIMEDOUT, ts, 0
    return 0, (sec, nsec), start


@syscall(427, "__clock_gettime50")
def sys___clock_gettime50(l: Lwp, a, retval: list[int]) -> int:
    # clock_gettime1 (subr_time.c): CLOCK_VIRTUAL / CLOCK_PROF are EINVAL
    error, ns = clock_gettime1(l, a.clock_id)
    if error:
        return error
    return copyout_timespec(l, ns, a.tp)


P_PID, P_LWPID = 1, 2                   # sys/idtype.h


@syscall(482, "clock_getcpuclockid2")
def sys_clock_getcpuclockid2(l: Lwp, a, retval: list[int]) -> int:
    """The clock id of a process's (P_PID) or an LWP's (P_LWPID) CPU time:
    CLOCK_PROCESS_CPUTIME_ID | pid, CLOCK_THREAD_CPUTIME_ID | lid (id 0:
    the caller's). Whether that process or LWP exists is clock_gettime's
    business (ESRCH there)."""
    ident = a.id & 0xFFFFFFFF
    if a.idtype == P_PID:
        clock_id = CLOCK_PROCESS_CPUTIME_ID | (ident or l.l_proc.p_pid)
    elif a.idtype == P_LWPID:
        clock_id = CLOCK_THREAD_CPUTIME_ID | (ident or l.l_lid)
    else:
        return Errno.EINVAL
    return l.l_proc.p_vmspace.copyout((clock_id & 0xFFFFFFFF).to_bytes(4, "little"), a.clock_id)


@syscall(429, "__clock_getres50")
def sys___clock_getres50(l: Lwp, a, retval: list[int]) -> int:
    error, ns = clock_getres1(a.clock_id)
    if error or not a.tp:
        return error
    return copyout_timespec(l, ns, a.tp)


@syscall(418, "__gettimeofday50")
def sys___gettimeofday50(l: Lwp, a, retval: list[int]) -> int:
    vm = l.l_proc.p_vmspace
    if a.tp:
        ns = l.l_proc.k.clock.realtime_ns()
        tv = TIMEVAL.on(l.l_proc.k.abi).pack(ns // 10**9, (ns % 10**9) // 1000)
        error = vm.copyout(tv, a.tp)
        if error:
            return error
    if a.tzp:
        return vm.copyout(b"\0" * 8, a.tzp)
    return 0


def _nanosleep(l: Lwp, clock_id: int, flags: int, rqtp: int, rmtp: int) -> Generator:
    k = l.l_proc.k
    ts = copyin_timespec(l, rqtp)
    if isinstance(ts, int):
        return ts
    sec, nsec = ts
    if nsec < 0 or nsec >= 10**9 or sec < 0:
        return Errno.EINVAL
    now = clock_ns(k, clock_id)
    if now is None:
        return Errno.EINVAL
    ns = sec * 10**9 + nsec
    if flags & TIMER_ABSTIME:
        ns -= now
    start = k.clock.monotonic_ns()
    if ns > 0:
        error = yield from kpause(k, l, "nanoslp", True, ns)
    else:
        error = Errno.EWOULDBLOCK
    if error == Errno.EWOULDBLOCK:
        error = 0
    if error == ERESTART:
        error = Errno.EINTR           # nanosleep is never restarted (nanosleep1)
    if rmtp and not flags & TIMER_ABSTIME:
        left = max(0, ns - (k.clock.monotonic_ns() - start)) if error else 0
        e2 = copyout_timespec(l, left, rmtp)
        if e2:
            return e2
    return error


@syscall(430, "__nanosleep50")
def sys___nanosleep50(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _nanosleep(l, CLOCK_MONOTONIC, 0, a.rqtp, a.rmtp))


@syscall(477, "clock_nanosleep")
def sys_clock_nanosleep(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _nanosleep(l, a.clock_id, a.flags, a.rqtp, a.rmtp))


# -- interval timers (setitimer / getitimer: NetBSD's dosetitimer, itimerfire) --------
ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF, ITIMER_MONOTONIC = 0, 1, 2, 3


class Itimer:
    """One armed interval timer of the process: a callout on the kernel clock.

    ITIMER_REAL / ITIMER_MONOTONIC count guest time; ITIMER_VIRTUAL and
    ITIMER_PROF should count the process's CPU time: nbemu approximates it
    with guest time during which some LWP of the process is running or
    runnable (an expiry that finds every LWP asleep is put off by a period).
    """
    __slots__ = ("which", "deadline", "interval", "callout", "overruns")

    def __init__(self, which: int, deadline: int, interval: int) -> None:
        self.which = which
        self.deadline = deadline
        self.interval = interval
        self.callout = None
        self.overruns = 0


_ITIMER_SIG = {ITIMER_REAL: 14, ITIMER_VIRTUAL: 26, ITIMER_PROF: 27, ITIMER_MONOTONIC: 14}


def _itimers(p) -> dict:
    return p.p_itimers


def _itimerfix(sec: int, usec: int) -> tuple[int, int] | None:
    if sec < 0 or usec < 0 or usec >= 1_000_000:
        return None
    if sec == 0 and 0 < usec < TICK_US:
        usec = TICK_US
    return sec, usec


def _itimer_value(k, it: Itimer | None) -> bytes:
    """struct itimerval: it_interval, it_value (struct timeval: time_t, suseconds_t)."""
    lay = ITIMERVAL.on(k.abi)
    if it is None:
        return bytes(lay.size)
    left = max(it.deadline - k.clock.monotonic_ns(), 1000)
    iv_us = it.interval // 1000
    left_us = (left + 999) // 1000
    return lay.pack(iv_us // 10**6, iv_us % 10**6, left_us // 10**6, left_us % 10**6)


def _itimer_fire(arg) -> None:
    p, it = arg
    k = p.k
    timers = _itimers(p)
    if timers.get(it.which) is not it or p.p_exiting:
        return
    now = k.clock.monotonic_ns()
    if it.which in (ITIMER_VIRTUAL, ITIMER_PROF) and not any(
            t.l_stat in (2, 7) for t in p.p_lwps.values()):      # LSRUN, LSONPROC
        # No CPU time is being used: put the expiry off.
        it.deadline = now + (it.interval or max(it.deadline - now, TICK_US * 1000))
        it.callout = k.callout.schedule(it.deadline, _itimer_fire, (p, it))
        return
    if it.interval:
        it.deadline += it.interval
        if it.deadline <= now:
            missed = (now - it.deadline) // it.interval + 1
            it.overruns += missed
            it.deadline += missed * it.interval
        it.callout = k.callout.schedule(it.deadline, _itimer_fire, (p, it))
    else:
        del timers[it.which]
    from .kern_sig import SI_TIMER, Ksiginfo, kpsignal2
    kpsignal2(p, Ksiginfo(_ITIMER_SIG[it.which], SI_TIMER, value=it.which))


def dosetitimer(p, which: int, itv: tuple[int, int, int, int]) -> int:
    """Arm (or, with a zero value, disarm) timer `which` of p from a struct
    itimerval's (interval sec, usec, value sec, usec): EINVAL for a bad one."""
    k = p.k
    iv, val = _itimerfix(itv[0], itv[1]), _itimerfix(itv[2], itv[3])
    if iv is None or val is None:
        return Errno.EINVAL
    timers = _itimers(p)
    cur = timers.pop(which, None)
    if cur is not None:
        k.callout.stop(cur.callout)
    value_ns = val[0] * 10**9 + val[1] * 1000
    if value_ns:
        it = Itimer(which, k.clock.monotonic_ns() + value_ns, iv[0] * 10**9 + iv[1] * 1000)
        it.callout = k.callout.schedule(it.deadline, _itimer_fire, (p, it))
        timers[which] = it
        # The running slice started without a pending timeout: end it so
        # that the next one is cut in time for the expiry.
        k.platform.request_stop()
    return 0


@syscall(425, "__setitimer50")
def sys___setitimer50(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    k = p.k
    which = a.which
    if which < 0 or which > ITIMER_MONOTONIC:
        return Errno.EINVAL
    vm = p.p_vmspace
    timers = _itimers(p)
    old = _itimer_value(k, timers.get(which))
    if a.itv:
        lay = ITIMERVAL.on(k.abi)
        data = vm.copyin(a.itv, lay.size)
        if isinstance(data, int):
            return data
        error = dosetitimer(p, which, lay.unpack(data))
        if error:
            return error
    if a.oitv:
        return vm.copyout(old, a.oitv)
    return 0


@syscall(426, "__getitimer50")
def sys___getitimer50(l: Lwp, a, retval: list[int]) -> int:
    if a.which < 0 or a.which > ITIMER_MONOTONIC:
        return Errno.EINVAL
    p = l.l_proc
    return p.p_vmspace.copyout(_itimer_value(p.k, _itimers(p).get(a.which)), a.itv)
