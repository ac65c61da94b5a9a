"""COMPAT_50 time calls (syscalls/compat_50.py) through the syscall table
without an engine: NetBSD 5's timeval50 / timespec50 / itimerval50 / rusage50
layouts on LP64 and ILP32, and every errno path."""
from __future__ import annotations

import struct

import pytest

from nbemu.guest.arch.i386 import ABI as I386
from nbemu.syscalls.cstruct import ITIMERVAL50, RUSAGE50, TIMESPEC50, TIMEVAL50
from nbemu.syscalls.errno import Errno
from tests.khelp import call, err, make_kernel, ok, put, resume, scratch

BAD = 0x9000_0000                      # never mapped, on LP64 and ILP32
CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 3
ITIMER_REAL, ITIMER_PROF, ITIMER_MONOTONIC = 0, 2, 3


@pytest.fixture(params=["amd64", "i386"])
def env(request, tmp_path):
    abi = I386 if request.param == "i386" else None
    k, l = make_kernel(root=str(tmp_path), **({"abi": abi} if abi else {}))
    buf = scratch(l, 0x10000)
    return k, l, buf


def _get(l, layout, va):
    lay = layout.on(l.l_proc.k.abi)
    return lay.unpack(l.l_proc.p_vmspace.copyin(va, lay.size))


def test_gettimeofday(env) -> None:
    k, l, buf = env
    vm = l.l_proc.p_vmspace
    vm.copyout(b"\xFF" * 8, buf + 0x100)
    ok(l, "compat_50_gettimeofday", buf, buf + 0x100)
    sec, usec = _get(l, TIMEVAL50, buf)
    now = k.clock.realtime_ns()
    assert abs(sec * 10**9 + usec * 1000 - now) < 10**9 and 0 <= usec < 10**6
    assert vm.copyin(buf + 0x100, 8) == bytes(8)                  # the fake timezone
    assert TIMEVAL50.on(k.abi).size == 2 * k.abi.word_size
    ok(l, "compat_50_gettimeofday", 0, 0)
    assert err(l, "compat_50_gettimeofday", BAD, 0) == Errno.EFAULT
    assert err(l, "compat_50_gettimeofday", buf, BAD) == Errno.EFAULT


def test_clock_gettime_and_getres(env) -> None:
    k, l, buf = env
    ok(l, "compat_50_clock_gettime", CLOCK_MONOTONIC, buf)
    sec, nsec = _get(l, TIMESPEC50, buf)
    assert sec * 10**9 + nsec <= k.clock.monotonic_ns() and 0 <= nsec < 10**9
    ok(l, "compat_50_clock_gettime", CLOCK_REALTIME, buf)
    want = struct.unpack("<i", struct.pack("<I", (k.clock.realtime_ns() // 10**9) & 0xFFFFFFFF))
    assert abs(_get(l, TIMESPEC50, buf)[0] - want[0]) <= 1
    assert TIMESPEC50.on(k.abi).size == (16 if k.abi.word_size == 8 else 8)
    assert err(l, "compat_50_clock_gettime", 12345, buf) == Errno.EINVAL
    assert err(l, "compat_50_clock_gettime", CLOCK_MONOTONIC, BAD) == Errno.EFAULT
    ok(l, "compat_50_clock_getres", CLOCK_MONOTONIC, buf)
    assert _get(l, TIMESPEC50, buf) == (0, 1)
    ok(l, "compat_50_clock_getres", CLOCK_REALTIME, 0)
    assert err(l, "compat_50_clock_getres", 12345, buf) == Errno.EINVAL
    assert err(l, "compat_50_clock_getres", CLOCK_MONOTONIC, BAD) == Errno.EFAULT
    for clock in (1, 2):                # CLOCK_VIRTUAL, CLOCK_PROF: itimer clocks only
        for call in ("compat_50_clock_gettime", "compat_50_clock_getres", "__clock_gettime50",
                     "__clock_getres50"):
            assert err(l, call, clock, buf) == Errno.EINVAL, call


def test_timespec50_truncates_seconds(env) -> None:
    """timespec_to_timespec50 keeps the low 32 bits of tv_sec."""
    k, l, buf = env
    k.clock.boottime_ns = (1 << 33) * 10**9
    ok(l, "compat_50_clock_gettime", CLOCK_REALTIME, buf)
    sec = _get(l, TIMESPEC50, buf)[0]
    assert sec == struct.unpack("<i", struct.pack("<I", (k.clock.realtime_ns() // 10**9)
                                                  & 0xFFFFFFFF))[0]


def test_nanosleep(env) -> None:
    k, l, buf = env
    vm = l.l_proc.p_vmspace
    vm.copyout(TIMESPEC50.on(k.abi).pack(0, 5_000_000), buf)
    vm.copyout(b"\xFF" * 16, buf + 0x100)
    t0 = k.clock.monotonic_ns()
    gen, _ = call(l, "compat_50_nanosleep", buf, buf + 0x100)
    assert hasattr(gen, "send")                                       # asleep
    k.clock.wait_until(k.callout.next_deadline())
    k.run_callouts()
    assert resume(k, l, gen) == 0
    assert k.clock.monotonic_ns() - t0 >= 5_000_000
    assert _get(l, TIMESPEC50, buf + 0x100) == (0, 0)                # nothing left
    vm.copyout(TIMESPEC50.on(k.abi).pack(0, 0), buf)
    ok(l, "compat_50_nanosleep", buf, 0)                              # no wait at all


def test_nanosleep_errnos(env) -> None:
    k, l, buf = env
    vm = l.l_proc.p_vmspace
    assert err(l, "compat_50_nanosleep", BAD, 0) == Errno.EFAULT
    for sec, nsec in ((0, -1), (0, 10**9), (-1, 0)):
        vm.copyout(TIMESPEC50.on(k.abi).pack(sec, nsec), buf)
        assert err(l, "compat_50_nanosleep", buf, 0) == Errno.EINVAL


def test_itimers(env) -> None:
    k, l, buf = env
    vm = l.l_proc.p_vmspace
    lay = ITIMERVAL50.on(k.abi)
    assert lay.size == 4 * k.abi.word_size
    vm.copyout(lay.pack(1, 500_000, 2, 0), buf)
    vm.copyout(b"\xFF" * lay.size, buf + 0x100)
    ok(l, "compat_50_setitimer", ITIMER_REAL, buf, buf + 0x100)
    assert _get(l, ITIMERVAL50, buf + 0x100) == (0, 0, 0, 0)         # none was armed
    ok(l, "compat_50_getitimer", ITIMER_REAL, buf + 0x200)
    isec, iusec, vsec, vusec = _get(l, ITIMERVAL50, buf + 0x200)
    assert (isec, iusec) == (1, 500_000) and 0 < vsec * 10**6 + vusec <= 2 * 10**6
    # the native call sees the same timer
    ok(l, "__getitimer50", ITIMER_REAL, buf + 0x300)
    # disarm, reading the old value through oitv
    vm.copyout(lay.pack(0, 0, 0, 0), buf)
    ok(l, "compat_50_setitimer", ITIMER_REAL, buf, buf + 0x100)
    assert _get(l, ITIMERVAL50, buf + 0x100)[:2] == (1, 500_000)
    ok(l, "compat_50_getitimer", ITIMER_REAL, buf + 0x200)
    assert _get(l, ITIMERVAL50, buf + 0x200) == (0, 0, 0, 0)
    ok(l, "compat_50_setitimer", ITIMER_PROF, 0, buf + 0x100)        # no new value: a get
    ok(l, "compat_50_getitimer", ITIMER_MONOTONIC, buf + 0x200)      # dogetitimer's bound


def test_itimer_errnos(env) -> None:
    k, l, buf = env
    vm = l.l_proc.p_vmspace
    lay = ITIMERVAL50.on(k.abi)
    vm.copyout(lay.pack(0, 0, 1, 0), buf)
    # NetBSD 5 had no ITIMER_MONOTONIC: (u_int)which > ITIMER_PROF
    assert err(l, "compat_50_setitimer", ITIMER_MONOTONIC, buf, 0) == Errno.EINVAL
    assert err(l, "compat_50_setitimer", -1, buf, 0) == Errno.EINVAL
    assert err(l, "compat_50_getitimer", 4, buf + 0x100) == Errno.EINVAL
    assert err(l, "compat_50_getitimer", -1, buf + 0x100) == Errno.EINVAL
    assert err(l, "compat_50_getitimer", ITIMER_REAL, BAD) == Errno.EFAULT
    assert err(l, "compat_50_setitimer", ITIMER_REAL, BAD, 0) == Errno.EFAULT
    assert err(l, "compat_50_setitimer", ITIMER_REAL, buf, BAD) == Errno.EFAULT
    for bad in (lay.pack(0, 10**6, 1, 0), lay.pack(0, 0, 1, -1), lay.pack(-1, 0, 1, 0)):
        vm.copyout(bad, buf)
        assert err(l, "compat_50_setitimer", ITIMER_REAL, buf, 0) == Errno.EINVAL
    ok(l, "compat_50_getitimer", ITIMER_REAL, buf + 0x100)
    assert _get(l, ITIMERVAL50, buf + 0x100) == (0, 0, 0, 0)         # nothing armed


def test_getrusage(env) -> None:
    k, l, buf = env
    lay = RUSAGE50.on(k.abi)
    assert lay.size == 18 * k.abi.word_size
    ok(l, "compat_50_getrusage", 0, buf)
    vals = _get(l, RUSAGE50, buf)
    assert all(0 <= v for v in vals) and vals[1] < 10**6 and vals[3] < 10**6
    ok(l, "compat_50_getrusage", -1, buf)
    assert _get(l, RUSAGE50, buf) == (0,) * 18
    assert err(l, "compat_50_getrusage", 1, buf) == Errno.EINVAL
    assert err(l, "compat_50_getrusage", 0, BAD) == Errno.EFAULT


def test_select_pselect_pollts(env) -> None:
    k, l, buf = env
    vm = l.l_proc.p_vmspace
    ok(l, "pipe2", buf, 0)
    rfd, wfd = struct.unpack("<ii", vm.copyin(buf, 8))
    vm.copyout(TIMEVAL50.on(k.abi).pack(0, 0), buf + 0x100)
    vm.copyout(struct.pack("<I", 1 << wfd), buf + 0x200)                # writefds
    assert ok(l, "compat_50_select", wfd + 1, 0, buf + 0x200, 0, buf + 0x100)[0] == 1
    vm.copyout(TIMESPEC50.on(k.abi).pack(0, 0), buf + 0x100)
    vm.copyout(struct.pack("<I", 1 << rfd), buf + 0x200)                # nothing to read
    assert ok(l, "compat_50_pselect", rfd + 1, buf + 0x200, 0, 0, buf + 0x100, 0)[0] == 0
    vm.copyout(struct.pack("<ihh", wfd, 4, 0), buf + 0x300)             # POLLOUT
    assert ok(l, "compat_50_pollts", buf + 0x300, 1, buf + 0x100, 0)[0] == 1
    assert struct.unpack("<ihh", vm.copyin(buf + 0x300, 8))[2] & 4
    vm.copyout(bytes(16), buf + 0x400)                                  # an empty mask
    assert ok(l, "compat_50_pollts", buf + 0x300, 1, buf + 0x100, buf + 0x400)[0] == 1
    assert err(l, "compat_50_select", wfd + 1, 0, buf + 0x200, 0, BAD) == Errno.EFAULT
    # no check of its own: selcommon's itimespecfix refuses the converted timeout
    vm.copyout(TIMEVAL50.on(k.abi).pack(0, 10**6), buf + 0x500)
    assert err(l, "compat_50_select", wfd + 1, 0, buf + 0x200, 0, buf + 0x500) == Errno.EINVAL
    vm.copyout(TIMESPEC50.on(k.abi).pack(0, -1), buf + 0x500)
    assert err(l, "compat_50_pollts", buf + 0x300, 1, buf + 0x500, 0) == Errno.EINVAL
    assert err(l, "compat_50_pselect", 1, 0, 0, 0, BAD, 0) == Errno.EFAULT
    assert err(l, "compat_50_pselect", 1, 0, 0, 0, buf + 0x100, BAD) == Errno.EFAULT
    assert err(l, "compat_50_pollts", buf + 0x300, 1, BAD, 0) == Errno.EFAULT
    assert err(l, "compat_50_pollts", buf + 0x300, 1, buf + 0x100, BAD) == Errno.EFAULT
    assert err(l, "compat_50_pollts", BAD, 1, buf + 0x100, 0) == Errno.EFAULT


def test_utimes_family(env, tmp_path) -> None:
    import os
    k, l, buf = env
    vm = l.l_proc.p_vmspace
    (tmp_path / "f").write_bytes(b"x")
    os.symlink("f", tmp_path / "ln")
    lay = TIMEVAL50.on(k.abi)
    vm.copyout(b"/f\0", buf)
    vm.copyout(b"/ln\0", buf + 0x10)
    vm.copyout(lay.pack(1000, 5) + lay.pack(2000, 7), buf + 0x100)
    ok(l, "compat_50_utimes", buf, buf + 0x100)
    st = os.stat(tmp_path / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1000 * 10**9 + 5000, 2000 * 10**9 + 7000)
    vm.copyout(lay.pack(3000, 0) + lay.pack(4000, 0), buf + 0x100)
    ok(l, "compat_50_lutimes", buf + 0x10, buf + 0x100)            # the link itself
    assert os.lstat(tmp_path / "ln").st_mtime_ns == 4000 * 10**9
    assert os.stat(tmp_path / "f").st_mtime_ns == 2000 * 10**9 + 7000    # not followed
    fd = ok(l, "open", buf, 2, 0)[0]
    vm.copyout(lay.pack(5000, 0) + lay.pack(6000, 999_999), buf + 0x100)
    ok(l, "compat_50_futimes", fd, buf + 0x100)
    assert os.stat(tmp_path / "f").st_mtime_ns == 6000 * 10**9 + 999_999_000
    ok(l, "compat_50_utimes", buf, 0)                                 # NULL: now
    assert os.stat(tmp_path / "f").st_mtime_ns > 6000 * 10**9 + 999_999_000
    vm.copyout(lay.pack(1, 10**6) + lay.pack(1, 0), buf + 0x100)
    assert err(l, "compat_50_utimes", buf, buf + 0x100) == Errno.EINVAL
    assert err(l, "compat_50_futimes", fd, buf + 0x100) == Errno.EINVAL
    assert err(l, "compat_50_utimes", buf, BAD) == Errno.EFAULT
    assert err(l, "compat_50_utimes", BAD, 0) == Errno.EFAULT
    vm.copyout(b"/nope\0", buf + 0x20)
    assert err(l, "compat_50_utimes", buf + 0x20, 0) == Errno.ENOENT
    assert err(l, "compat_50_lutimes", buf + 0x20, 0) == Errno.ENOENT
    assert err(l, "compat_50_futimes", 99, 0) == Errno.EBADF
    assert err(l, "compat_50_futimes", fd, BAD) == Errno.EFAULT


COMPAT_CALLS = ["__statvfs190", "__fstatvfs190", "__getvfsstat90", "__fhstatvfs190",
                "compat_90_statvfs1", "compat_90_fstatvfs1", "compat_90_getvfsstat",
                "compat_90_fhstatvfs1", "mincore", "compat_50_gettimeofday",
                "compat_50_clock_gettime", "compat_50_clock_getres", "compat_50_nanosleep",
                "compat_50_getitimer", "compat_50_setitimer", "compat_50_getrusage",
                "compat_50_select", "compat_50_pselect", "compat_50_pollts", "compat_50_utimes",
                "compat_50_lutimes", "compat_50_futimes", "compat_13_sigprocmask13",
                "compat_13_sigpending13", "compat_50___stat30", "compat_50___lstat30",
                "compat_50___fstat30"]


def test_garbage_arguments_give_errnos(env) -> None:
    """Seeded random argument words (pointers into and around a mapping full of
    random bytes, small and huge integers): every call answers with an errno or
    success, never a Python exception."""
    import random
    from nbemu.syscalls.errno import Errno as E
    k, l, buf = env
    rng = random.Random(7)
    vm = l.l_proc.p_vmspace
    vm.copyout(bytes(rng.getrandbits(8) for _ in range(0x4000)), buf)
    vm.copyout(b"/\0", buf + 0x10)
    picks = [0, 1, 2, 3, -1, -100, 4096, 1 << 31, (1 << 64) - 1, BAD, buf, buf + 0x10,
             buf + 0xFFF8, buf + 1, buf + 0x3000]
    for _ in range(60):
        for name in COMPAT_CALLS:
            args = [rng.choice(picks) for _ in range(6)]
            if name == "compat_50_nanosleep" or name.endswith("select") or name.endswith(
                    "pollts"):
                continue          # these may sleep; their errnos are tested above
            e = err(l, name, *args)
            assert e == 0 or e in E._value2member_map_, (name, args, e)


def test_mq_timed_calls_with_timespec50(env) -> None:
    """compat_50_mq_timedsend / _timedreceive: the absolute timeout as a timespec50."""
    from nbemu.syscalls.cstruct import LONG
    k, l, buf = env
    vm = l.l_proc.p_vmspace
    lay = TIMESPEC50.on(k.abi)
    vm.copyout(b"/q\0", buf + 0x800)
    vm.copyout(b"".join(LONG.on(k.abi).pack(v) for v in (0, 1, 8, 0)), buf + 0x900)  # mq_attr
    q = ok(l, "mq_open", buf + 0x800, 0x202, 0o600, buf + 0x900)[0]    # O_RDWR | O_CREAT
    ts = buf + 0x400
    args = (q, buf + 0x2000, 8, 0)
    vm.copyout(lay.pack(0, 10**9), ts)
    assert err(l, "compat_50_mq_timedreceive", *args, ts) == Errno.EINVAL   # it would wait
    assert err(l, "compat_50_mq_timedreceive", *args, BAD) == Errno.EFAULT
    vm.copyout(lay.pack(1, 0), ts)                                    # long past
    assert err(l, "compat_50_mq_timedreceive", *args, ts) == Errno.ETIMEDOUT
    now = k.clock.realtime_ns() + 50_000_000
    vm.copyout(lay.pack(now // 10**9, now % 10**9), ts)
    gen, _ = call(l, "compat_50_mq_timedreceive", *args, ts)
    assert hasattr(gen, "send")
    k.clock.wait_until(k.clock.monotonic_ns() + 60_000_000)
    k.run_callouts()
    assert resume(k, l, gen) == Errno.ETIMEDOUT
    put(l, buf + 0x1000, b"m")
    sargs = (q, buf + 0x1000, 1, 2)
    assert ok(l, "compat_50_mq_timedsend", *sargs, 0) == [0, 0]           # room: no wait
    vm.copyout(lay.pack(0, -1), ts)
    assert err(l, "compat_50_mq_timedsend", *sargs, ts) == Errno.EINVAL   # full: it would wait
    assert err(l, "compat_50_mq_timedsend", *sargs, BAD) == Errno.EFAULT
    e, rv = call(l, "compat_50_mq_timedreceive", q, buf + 0x2000, 8, buf + 0x3000, ts)
    assert e == 0 and rv[0] == 1 and vm.copyin(buf + 0x2000, 1) == b"m"
    assert struct.unpack("<I", vm.copyin(buf + 0x3000, 4))[0] == 2


def test_stat30_family(env, tmp_path) -> None:
    """__stat30 / __lstat30 / __fstat30: NetBSD 10's stat in NetBSD 3-5's layout."""
    import os
    from nbemu.syscalls.cstruct import STAT, STAT30
    k, l, buf = env
    vm = l.l_proc.p_vmspace
    (tmp_path / "f").write_bytes(b"12345")
    os.symlink("f", tmp_path / "ln")
    os.utime(tmp_path / "f", ns=(1_000_000_123, 2_000_000_456))
    vm.copyout(b"/f\0", buf)
    vm.copyout(b"/ln\0", buf + 0x10)
    ok(l, "compat_50___stat30", buf, buf + 0x100)
    ok(l, "__stat50", buf, buf + 0x400)
    old = _get(l, STAT30, buf + 0x100)
    new = _get(l, STAT, buf + 0x400)
    assert old[0] == new[0] & 0xFFFFFFFF and old[1:6] == new[1:6]        # dev .. gid
    assert old[7:9] == (1, 123) and old[9:11] == (2, 456)                # atime, mtime
    assert old[15] == 5 and old[15:] == new[15:]                         # size .. spare
    assert STAT30.on(k.abi).size == (136 if k.abi.word_size == 8 else 100)   # zig-checked
    ok(l, "compat_50___lstat30", buf + 0x10, buf + 0x100)
    assert _get(l, STAT30, buf + 0x100)[1] & 0o170000 == 0o120000        # the link
    ok(l, "compat_50___stat30", buf + 0x10, buf + 0x100)
    assert _get(l, STAT30, buf + 0x100)[1] & 0o170000 == 0o100000        # followed
    fd = ok(l, "open", buf, 0, 0)[0]
    ok(l, "compat_50___fstat30", fd, buf + 0x200)
    assert _get(l, STAT30, buf + 0x200)[:16] == _get(l, STAT30, buf + 0x100)[:16]
    ok(l, "pipe2", buf + 0x300, 0)
    rfd = struct.unpack("<i", vm.copyin(buf + 0x300, 4))[0]
    ok(l, "compat_50___fstat30", rfd, buf + 0x200)
    assert _get(l, STAT30, buf + 0x200)[1] & 0o170000 == 0o010000        # a FIFO
    vm.copyout(b"/nope\0", buf + 0x20)
    assert err(l, "compat_50___stat30", buf + 0x20, buf + 0x100) == Errno.ENOENT
    assert err(l, "compat_50___lstat30", buf + 0x20, buf + 0x100) == Errno.ENOENT
    assert err(l, "compat_50___stat30", BAD, buf + 0x100) == Errno.EFAULT
    assert err(l, "compat_50___stat30", buf, BAD) == Errno.EFAULT
    assert err(l, "compat_50___fstat30", 99, buf + 0x100) == Errno.EBADF
    assert err(l, "compat_50___fstat30", fd, BAD) == Errno.EFAULT
