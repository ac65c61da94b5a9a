"""Time system calls (NetBSD's kern_time.c): clock_gettime, gettimeofday,
nanosleep, clock_getres, and the timespec helpers other calls use."""
from __future__ import annotations

import struct
from typing import Generator

from .errno import Errno
from .kern_sleepq import kpause
from .lwp import Lwp
from .table import syscall

CLOCK_REALTIME = 0
CLOCK_VIRTUAL = 1
CLOCK_PROF = 2
CLOCK_MONOTONIC = 3
CLOCK_THREAD_CPUTIME_ID = 0x20000000
CLOCK_PROCESS_CPUTIME_ID = 0x40000000
TIMER_ABSTIME = 0x1


def copyin_timespec(vm, va: int, layout: str = "ts") -> tuple[int, int] | int:
    """A struct timespec (tv_sec, tv_nsec) from the guest; 'ts50' is the 32-bit
    tv_sec of NetBSD 5 binaries."""
    if layout == "ts50":
        data = vm.copyin(va, 16)
        if isinstance(data, int):
            return data
        sec, nsec = struct.unpack("<iq", data[:4] + data[8:16])
        return sec, nsec
    data = vm.copyin(va, 16)
    if isinstance(data, int):
        return data
    return struct.unpack("<qq", data)


def clock_ns(k, clock_id: int) -> int | None:
    if clock_id == CLOCK_REALTIME:
        return k.clock.realtime_ns()
    if clock_id in (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
                    CLOCK_VIRTUAL, CLOCK_PROF):
        return k.clock.monotonic_ns()
    return None


@syscall(427, "__clock_gettime50")
def sys___clock_gettime50(l: Lwp, a, retval: list[int]) -> int:
    ns = clock_ns(l.l_proc.k, a.clock_id)
    if ns is None:
        return Errno.EINVAL
    return l.l_proc.p_vmspace.copyout(struct.pack("<qq", ns // 10**9, ns % 10**9), a.tp)


@syscall(429, "__clock_getres50")
def sys___clock_getres50(l: Lwp, a, retval: list[int]) -> int:
    if clock_ns(l.l_proc.k, a.clock_id) is None:
        return Errno.EINVAL
    if not a.tp:
        return 0
    return l.l_proc.p_vmspace.copyout(struct.pack("<qq", 0, 1), a.tp)


@syscall(418, "__gettimeofday50")
def sys___gettimeofday50(l: Lwp, a, retval: list[int]) -> int:
    vm = l.l_proc.p_vmspace
    if a.tp:
        ns = l.l_proc.k.clock.realtime_ns()
        error = vm.copyout(struct.pack("<qq", ns // 10**9, (ns % 10**9) // 1000), a.tp)
        if error:
            return error
    if a.tzp:
        return vm.copyout(b"\0" * 8, a.tzp)
    return 0


def _nanosleep(l: Lwp, clock_id: int, flags: int, rqtp: int, rmtp: int) -> Generator:
    k = l.l_proc.k
    vm = l.l_proc.p_vmspace
    ts = copyin_timespec(vm, rqtp)
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
    if rmtp and not flags & TIMER_ABSTIME:
        left = max(0, ns - (k.clock.monotonic_ns() - start)) if error else 0
        e2 = vm.copyout(struct.pack("<qq", left // 10**9, left % 10**9), rmtp)
        if e2:
            return e2
    return error


@syscall(430, "__nanosleep50")
def sys___nanosleep50(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _nanosleep(l, CLOCK_MONOTONIC, 0, a.rqtp, a.rmtp))


@syscall(477, "clock_nanosleep")
def sys_clock_nanosleep(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _nanosleep(l, a.clock_id, a.flags, a.rqtp, a.rmtp))


@syscall(425, "__setitimer50")
def sys___setitimer50(l: Lwp, a, retval: list[int]) -> int:
    """Recorded (delivery of SIGALRM/SIGVTALRM/SIGPROF is the signals issue)."""
    p = l.l_proc
    if a.which not in (0, 1, 2):
        return Errno.EINVAL
    vm = p.p_vmspace
    old = p.k.config.setdefault("itimers", {}).get(a.which, b"\0" * 32)
    if a.itv:
        new = vm.copyin(a.itv, 32)
        if isinstance(new, int):
            return new
        p.k.config["itimers"][a.which] = new
    if a.oitv:
        return vm.copyout(old, a.oitv)
    return 0


@syscall(426, "__getitimer50")
def sys___getitimer50(l: Lwp, a, retval: list[int]) -> int:
    if a.which not in (0, 1, 2):
        return Errno.EINVAL
    cur = l.l_proc.k.config.setdefault("itimers", {}).get(a.which, b"\0" * 32)
    return l.l_proc.p_vmspace.copyout(cur, a.itv)
