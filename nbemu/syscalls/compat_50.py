"""COMPAT_50: the calls with time in them of programs built on NetBSD 5
(before time_t became 64-bit everywhere in 6.0), as sys/compat/common/
kern_time_50.c, kern_select_50.c, vfs_syscalls_50.c and sys_mqueue.c's
compat entries serve them: the same work as the NetBSD 10 call, with NetBSD
5's structures (compat/sys/time_types.h, resource.h, stat.h):

  struct timeval50  { long tv_sec; long tv_usec; }
  struct timespec50 { int32_t tv_sec; long tv_nsec; }
  struct itimerval50, struct rusage50: built on timeval50;
  struct stat30: 32-bit device numbers and timespec50 times.

Calls whose NetBSD 10 form nbemu does not serve either (settimeofday,
adjtime, clock_settime, timer_*, ntp_gettime, aio_suspend, quotactl, the
SysV IPC ctls) stay ENOSYS here too.

Values are narrowed as the C conversions narrow them (timespec_to_timespec50
truncates tv_sec to 32 bits). The compat rows already served elsewhere:
wait4 (kern_exit), __sigtimedwait (sys_sig), kevent (kern_event), _lwp_park
(sys_lwp). A NetBSD 7-9 libc never makes these calls itself: its own compat
symbols convert and call the __*50 numbers; static programs linked on
NetBSD 5 do.
"""
from __future__ import annotations

from typing import Generator

from .cstruct import ITIMERVAL, ITIMERVAL50, RUSAGE, RUSAGE50, TIMESPEC50, TIMEVAL50
from .errno import Errno, KernErrno
from .kern_sleepq import kpause
from .kern_time import copyin_timespec
from .lwp import Lwp
from .table import syscall

ERESTART = int(KernErrno.ERESTART)
ITIMER_PROF = 2                     # NetBSD 5 had no ITIMER_MONOTONIC
RUSAGE_SELF, RUSAGE_CHILDREN = 0, -1


def _long(v: int, word_size: int) -> int:
    """(long)v on the port: wraps to 32 bits on ILP32."""
    bits = 8 * word_size
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _int32(v: int) -> int:
    return _long(v, 4)


def _timespec50(l: Lwp, ns: int) -> bytes:
    """timespec_to_timespec50 of a nanosecond count."""
    abi = l.l_proc.k.abi
    return TIMESPEC50.on(abi).pack(_int32(ns // 10**9), ns % 10**9)


def _tv50(ws: int, sec: int, usec: int) -> tuple[int, int]:
    return _long(sec, ws), _long(usec, ws)


# -- clocks (kern_time_50.c) ---------------------------------------------------------------
@syscall(116, "compat_50_gettimeofday")
def compat_50_sys_gettimeofday(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    vm = p.p_vmspace
    if a.tp:
        ns = p.k.clock.realtime_ns()
        tv = TIMEVAL50.on(p.k.abi).pack(*_tv50(p.k.abi.word_size, ns // 10**9,
                                               (ns % 10**9) // 1000))
        error = vm.copyout(tv, a.tp)
        if error:
            return error
    if a.tzp:                               # struct timezone: no kernel notion, zeros
        return vm.copyout(bytes(8), a.tzp)
    return 0


@syscall(232, "compat_50_clock_gettime")
def compat_50_sys_clock_gettime(l: Lwp, a, retval: list[int]) -> int:
    from .kern_time import clock_gettime1
    error, ns = clock_gettime1(l, a.clock_id)
    if error:
        return error
    return l.l_proc.p_vmspace.copyout(_timespec50(l, ns), a.tp)


@syscall(234, "compat_50_clock_getres")
def compat_50_sys_clock_getres(l: Lwp, a, retval: list[int]) -> int:
    from .kern_time import clock_getres1
    error, ns = clock_getres1(a.clock_id)
    if error or not a.tp:
        return error
    return l.l_proc.p_vmspace.copyout(_timespec50(l, ns), a.tp)


@syscall(240, "compat_50_nanosleep")
def compat_50_sys_nanosleep(l: Lwp, a, retval: list[int]) -> Generator:
    """nanosleep1 on CLOCK_MONOTONIC; the time left goes out as a timespec50
    when asked for, also after EINTR."""
    k = l.l_proc.k
    ts = copyin_timespec(l, a.rqtp, "ts50")
    if isinstance(ts, int):
        return ts
    sec, nsec = ts
    if nsec < 0 or nsec >= 10**9 or sec < 0:
        return Errno.EINVAL
    ns = sec * 10**9 + nsec
    start = k.clock.monotonic_ns()
    error = (yield from kpause(k, l, "nanoslp", True, ns)) if ns > 0 else Errno.EWOULDBLOCK
    if error == Errno.EWOULDBLOCK:
        error = 0
    if error == ERESTART:
        error = Errno.EINTR                 # nanosleep is never restarted
    if not a.rmtp or error not in (0, Errno.EINTR):
        return error
    left = max(0, ns - (k.clock.monotonic_ns() - start)) if error else 0
    return l.l_proc.p_vmspace.copyout(_timespec50(l, left), a.rmtp) or error


# -- interval timers ------------------------------------------------------------------------
def _itimerval50(l: Lwp, which: int) -> bytes:
    """dogetitimer, then itimerval_to_itimerval50."""
    from .kern_time import _itimer_value, _itimers
    p = l.l_proc
    abi = p.k.abi
    vals = ITIMERVAL.on(abi).unpack(_itimer_value(p.k, _itimers(p).get(which)))
    return ITIMERVAL50.on(abi).pack(*(_long(v, abi.word_size) for v in vals))


@syscall(86, "compat_50_getitimer")
def compat_50_sys_getitimer(l: Lwp, a, retval: list[int]) -> int:
    from .kern_time import ITIMER_MONOTONIC
    if not 0 <= a.which <= ITIMER_MONOTONIC:      # dogetitimer's bound
        return Errno.EINVAL
    return l.l_proc.p_vmspace.copyout(_itimerval50(l, a.which), a.itv)


@syscall(83, "compat_50_setitimer")
def compat_50_sys_setitimer(l: Lwp, a, retval: list[int]) -> int:
    """(u_int)which > ITIMER_PROF is EINVAL; the new value is copied in, the
    old one out (compat getitimer), then dosetitimer checks and arms."""
    from .kern_time import dosetitimer
    p = l.l_proc
    k = p.k
    which = a.which
    if not 0 <= which <= ITIMER_PROF:
        return Errno.EINVAL
    vm = p.p_vmspace
    new = None
    if a.itv:
        lay = ITIMERVAL50.on(k.abi)
        data = vm.copyin(a.itv, lay.size)
        if isinstance(data, int):
            return data
        new = lay.unpack(data)
    if a.oitv:
        error = vm.copyout(_itimerval50(l, which), a.oitv)
        if error:
            return error
    if new is None:
        return 0
    return dosetitimer(p, which, new)


# -- resources (kern_50.c / kern_time_50.c) -----------------------------------------------------
@syscall(117, "compat_50_getrusage")
def compat_50_sys_getrusage(l: Lwp, a, retval: list[int]) -> int:
    from .kern_resource import rusage_self
    p = l.l_proc
    abi = p.k.abi
    if a.who == RUSAGE_SELF:
        vals = RUSAGE.on(abi).unpack(rusage_self(p))
    elif a.who == RUSAGE_CHILDREN:
        vals = RUSAGE.on(abi).unpack(bytes(RUSAGE.on(abi).size))     # no children
    else:
        return Errno.EINVAL
    return p.p_vmspace.copyout(
        RUSAGE50.on(abi).pack(*(_long(v, abi.word_size) for v in vals)), a.rusage)


# -- select / pselect / pollts (kern_select_50.c) ------------------------------------------------
@syscall(93, "compat_50_select")
def compat_50_sys_select(l: Lwp, a, retval: list[int]) -> Generator:
    from .sys_select import selcommon
    ts = None
    if a.tv:
        lay = TIMEVAL50.on(l.l_proc.k.abi)
        data = l.l_proc.p_vmspace.copyin(a.tv, lay.size)
        if isinstance(data, int):
            return data
        sec, usec = lay.unpack(data)
        ts = (sec, usec * 1000)
    return (yield from selcommon(l, retval, a.nd, getattr(a, "in"), a.ou, a.ex, ts, None))


@syscall(373, "compat_50_pselect")
def compat_50_sys_pselect(l: Lwp, a, retval: list[int]) -> Generator:
    from .sys_select import _copyin_ts_mask, selcommon
    got = _copyin_ts_mask(l, a.ts, a.mask, "ts50")
    if isinstance(got, int):
        return got
    return (yield from selcommon(l, retval, a.nd, getattr(a, "in"), a.ou, a.ex, *got))


@syscall(374, "compat_50_pollts")
def compat_50_sys_pollts(l: Lwp, a, retval: list[int]) -> Generator:
    from .sys_select import _copyin_ts_mask, pollcommon
    got = _copyin_ts_mask(l, a.ts, a.mask, "ts50")
    if isinstance(got, int):
        return got
    return (yield from pollcommon(l, retval, a.fds, a.nfds, *got))


# -- file times (vfs_syscalls_50.c) ----------------------------------------------------------------
def _copyin_times50(l: Lwp, tptr: int) -> tuple[int, int] | int:
    """Two timeval50s (access, modification) in nanoseconds; NULL: both now.
    A microsecond count outside 0..999999 is EINVAL, as for __utimes50."""
    p = l.l_proc
    if not tptr:
        now = p.k.clock.realtime_ns()
        return now, now
    lay = TIMEVAL50.on(p.k.abi)
    data = p.p_vmspace.copyin(tptr, 2 * lay.size)
    if isinstance(data, int):
        return data
    out = []
    for i in range(2):
        sec, usec = lay.unpack_from(data, i * lay.size)
        if not 0 <= usec < 10**6:
            return Errno.EINVAL
        out.append(sec * 10**9 + usec * 1000)
    return out[0], out[1]


def _utimes50_path(l: Lwp, path_va: int, tptr: int, follow: bool) -> int:
    from .vfs_syscalls import _lookup, utimes_nd
    from .vfs_lookup import AT_FDCWD
    times = _copyin_times50(l, tptr)
    if isinstance(times, int):
        return times
    nd = _lookup(l, AT_FDCWD, path_va, follow)
    if isinstance(nd, int):
        return nd
    return utimes_nd(nd, times)


@syscall(138, "compat_50_utimes")
def compat_50_sys_utimes(l: Lwp, a, retval: list[int]) -> int:
    return _utimes50_path(l, a.path, a.tptr, True)


@syscall(276, "compat_50_lutimes")
def compat_50_sys_lutimes(l: Lwp, a, retval: list[int]) -> int:
    return _utimes50_path(l, a.path, a.tptr, False)


@syscall(206, "compat_50_futimes")
def compat_50_sys_futimes(l: Lwp, a, retval: list[int]) -> int:
    from .vfs_syscalls import _utimes, fd_getvnode
    times = _copyin_times50(l, a.tptr)
    if isinstance(times, int):
        return times
    fp = fd_getvnode(l.l_proc, a.fd)
    if isinstance(fp, int):
        return fp
    return _utimes(fp.hostfd, times, True)


# -- message queues with an absolute timeout (sys_mqueue.c's compat_50 entries) -----------------
def _abs_timeout50(l: Lwp, va: int) -> tuple[int, int] | None | int:
    return copyin_timespec(l, va, "ts50") if va else None


@syscall(265, "compat_50_mq_timedsend")
def compat_50_sys_mq_timedsend(l: Lwp, a, retval: list[int]) -> Generator:
    from .sys_mqueue import mq_send1
    ts = _abs_timeout50(l, a.abs_timeout)
    if isinstance(ts, int):
        return ts
    return (yield from mq_send1(l, a.mqdes, a.msg_ptr, a.msg_len, a.msg_prio, ts))


@syscall(266, "compat_50_mq_timedreceive")
def compat_50_sys_mq_timedreceive(l: Lwp, a, retval: list[int]) -> Generator:
    from .sys_mqueue import mq_recv1
    ts = _abs_timeout50(l, a.abs_timeout)
    if isinstance(ts, int):
        return ts
    return (yield from mq_recv1(l, a.mqdes, a.msg_ptr, a.msg_len, a.msg_prio, ts, retval))


# -- struct stat30 (vfs_syscalls_50.c: cvtstat) ------------------------------------------------------
def _stat30(l: Lwp, st) -> bytes:
    """cvtstat: NetBSD 10's stat (an NbStat) in NetBSD 3-5's layout: device
    numbers cut to 32 bits, times as timespec50s."""
    from .cstruct import STAT30
    ts: list[int] = []
    for ns in (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_birthtime_ns):
        ts += (_int32(ns // 10**9), ns % 10**9)
    return STAT30.on(l.l_proc.k.abi).pack(
        st.st_dev & 0xFFFFFFFF, st.st_mode, st.st_ino, st.st_nlink & 0xFFFFFFFF, st.st_uid,
        st.st_gid, st.st_rdev & 0xFFFFFFFF, *ts, st.st_size, st.st_blocks, st.st_blksize,
        st.st_flags, st.st_gen, 0, 0)


def _stat30_path(l: Lwp, path_va: int, ub: int, follow: bool) -> int:
    from .kern_descrip import stat_from_host
    from .vfs_lookup import AT_FDCWD
    from .vfs_syscalls import _lookup
    nd = _lookup(l, AT_FDCWD, path_va, follow)
    if isinstance(nd, int):
        return nd
    with nd:
        return l.l_proc.p_vmspace.copyout(_stat30(l, stat_from_host(nd.ni_st)), ub)


@syscall(387, "compat_50___stat30")
def compat_50_sys___stat30(l: Lwp, a, retval: list[int]) -> int:
    return _stat30_path(l, a.path, a.ub, True)


@syscall(389, "compat_50___lstat30")
def compat_50_sys___lstat30(l: Lwp, a, retval: list[int]) -> int:
    return _stat30_path(l, a.path, a.ub, False)


@syscall(388, "compat_50___fstat30")
def compat_50_sys___fstat30(l: Lwp, a, retval: list[int]) -> int:
    from .kern_descrip import do_fstat
    st = do_fstat(l, a.fd)
    if isinstance(st, int):
        return st
    return l.l_proc.p_vmspace.copyout(_stat30(l, st), a.sb)
