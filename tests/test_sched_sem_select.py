"""sys_sched.c, uipc_sem.c, sys_select.c, kern_ras.c and the small calls
(wait4, clock_getcpuclockid2, msync, fsync_range, pathconf) driven through the
syscall table without an engine (tests/khelp.py): every errno branch and the
blocking / wakeup paths."""
from __future__ import annotations

import struct

import pytest

from nbemu.syscalls.errno import Errno, KernErrno
from nbemu.syscalls.kern_descrip import O_CREAT, O_EXCL, O_RDWR, fd_getfile
from nbemu.syscalls.kern_sleepq import sleepq_abort_interruptible
from nbemu.syscalls.lwp import LSRUN, LSSLEEP, LSZOMB
from nbemu.syscalls.sys_sched import SCHED_FIFO, SCHED_NONE, SCHED_OTHER, SCHED_RR
from nbemu.syscalls.poll import POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLRDNORM
from nbemu.syscalls.uipc_sem import KSEM_PSHARED, KSEM_PSHARED_MARKER, SEM_VALUE_MAX
from tests.khelp import call, err, make_kernel, ok, scratch
from tests.khelp import resume, second_lwp

MS = 10**6
BAD = 0x7000_0000_0000


@pytest.fixture
def kl():
    k, l = make_kernel(deterministic=True)
    return k, l, scratch(l, 0x100000)




def put(l, va, data):
    assert l.l_proc.p_vmspace.copyout(data, va) == 0
    return va


def get(l, va, n):
    return l.l_proc.p_vmspace.copyin(va, n)


def i32(l, va):
    return struct.unpack("<i", get(l, va, 4))[0]


def wake_time(k, t):
    k.clock.wait_until(t)
    k.run_callouts()


# -- sys_sched.c ---------------------------------------------------------------------
def test_getparam_defaults_and_lookup(kl):
    k, l, buf = kl
    ok(l, "_sched_getparam", 0, 0, buf, buf + 8)
    assert i32(l, buf) == SCHED_OTHER and i32(l, buf + 8) == 43
    ok(l, "_sched_getparam", 100, l.l_lid, 0, buf + 8)      # NULL policy is fine
    assert err(l, "_sched_getparam", 999, 0, buf, buf + 8) == Errno.ESRCH
    assert err(l, "_sched_getparam", 0, 999, buf, buf + 8) == Errno.ESRCH
    assert err(l, "_sched_getparam", 0, 0, buf, BAD) == Errno.EFAULT
    assert err(l, "_sched_getparam", 0, 0, BAD, buf) == Errno.EFAULT


def test_setparam_errnos(kl):
    k, l, buf = kl
    put(l, buf, struct.pack("<i", 10))
    assert err(l, "_sched_setparam", 0, 0, 3, buf) == Errno.EINVAL          # bad policy
    put(l, buf + 4, struct.pack("<i", 64))
    assert err(l, "_sched_setparam", 0, 0, SCHED_FIFO, buf + 4) == Errno.EINVAL
    put(l, buf + 8, struct.pack("<i", -1))
    assert err(l, "_sched_setparam", 0, 0, SCHED_NONE, buf + 8) == 0        # nothing to do
    assert err(l, "_sched_setparam", 0, 0, SCHED_OTHER, buf) == Errno.EINVAL  # prio for OTHER
    assert err(l, "_sched_setparam", 999, 0, SCHED_FIFO, buf) == Errno.ESRCH
    assert err(l, "_sched_setparam", 0, 999, SCHED_FIFO, buf) == Errno.ESRCH
    assert err(l, "_sched_setparam", 0, 0, SCHED_FIFO, BAD) == Errno.EFAULT
    # Unprivileged: no real-time class, and SCHED_OTHER without a priority is fine.
    assert err(l, "_sched_setparam", 0, l.l_lid, SCHED_FIFO, buf) == Errno.EPERM
    assert err(l, "_sched_setparam", 0, l.l_lid, SCHED_RR, buf + 8) == Errno.EPERM
    assert err(l, "_sched_setparam", 0, l.l_lid, SCHED_OTHER, buf + 8) == 0


def test_setparam_as_root_and_back(kl):
    k, l, buf = kl
    k.config["suser"] = True
    l2 = second_lwp(k, l)
    put(l, buf, struct.pack("<i", 63))
    ok(l, "_sched_setparam", 0, l2.l_lid, SCHED_RR, buf)
    ok(l, "_sched_getparam", 0, l2.l_lid, buf + 8, buf + 12)
    assert (i32(l, buf + 8), i32(l, buf + 12)) == (SCHED_RR, 63)
    ok(l, "_sched_getparam", 0, l.l_lid, buf + 8, buf + 12)
    assert i32(l, buf + 8) == SCHED_OTHER                   # only l2 changed
    # lid 0: every LWP of the process
    put(l, buf + 16, struct.pack("<i", 5))
    ok(l, "_sched_setparam", 0, 0, SCHED_FIFO, buf + 16)
    for t in (l, l2):
        ok(l, "_sched_getparam", 0, t.l_lid, buf + 8, buf + 12)
        assert (i32(l, buf + 8), i32(l, buf + 12)) == (SCHED_FIFO, 5)
    # Unprivileged again: keeping the class and lowering is allowed, raising is not.
    k.config["suser"] = False
    put(l, buf + 20, struct.pack("<i", 3))
    ok(l, "_sched_setparam", 0, l.l_lid, SCHED_NONE, buf + 20)
    assert err(l, "_sched_setparam", 0, l.l_lid, SCHED_NONE, buf + 16) == Errno.EPERM
    put(l, buf + 24, struct.pack("<i", -1))
    ok(l, "_sched_setparam", 0, l.l_lid, SCHED_OTHER, buf + 24)     # back to time-sharing
    ok(l, "_sched_getparam", 0, l.l_lid, buf + 8, buf + 12)
    assert i32(l, buf + 8) == SCHED_OTHER


def test_affinity(kl):
    k, l, buf = kl
    # amd64: the kernel's set is 256 bits (32 bytes): larger sizes are EINVAL.
    assert err(l, "_sched_getaffinity", 0, 0, 33, buf) == Errno.EINVAL
    assert err(l, "_sched_setaffinity", 0, 0, 33, buf) == Errno.EINVAL
    assert err(l, "_sched_getaffinity", 0, 0, 4, BAD) == Errno.EFAULT
    assert err(l, "_sched_getaffinity", 0, 999, 4, buf) == Errno.ESRCH
    put(l, buf, b"\xff" * 32)
    ok(l, "_sched_getaffinity", 0, l.l_lid, 32, buf)
    assert get(l, buf, 32) == bytes(32)                     # no affinity: the empty set
    put(l, buf, struct.pack("<I", 0b10))
    assert err(l, "_sched_setaffinity", 0, l.l_lid, 4, buf) == Errno.EPERM  # not root
    k.config["user_set_cpu_affinity"] = True
    assert err(l, "_sched_setaffinity", 999, 0, 4, buf) == Errno.ESRCH
    assert err(l, "_sched_setaffinity", 0, 999, 4, buf) == Errno.ESRCH
    assert err(l, "_sched_setaffinity", 0, 0, 4, BAD) == Errno.EFAULT
    ok(l, "_sched_setaffinity", 0, l.l_lid, 4, buf)
    put(l, buf + 64, b"\xff" * 8)
    ok(l, "_sched_getaffinity", 0, l.l_lid, 8, buf + 64)
    assert get(l, buf + 64, 8) == struct.pack("<II", 0b10, 0)
    ok(l, "_sched_getaffinity", 0, l.l_lid, 0, buf + 64)    # size 0: nothing copied
    # a set of absent CPUs only is the empty set: affinity cleared
    put(l, buf, struct.pack("<I", 1 << 20))
    ok(l, "_sched_setaffinity", 0, l.l_lid, 4, buf)
    ok(l, "_sched_getaffinity", 0, l.l_lid, 4, buf + 64)
    assert get(l, buf + 64, 4) == bytes(4)
    # zombies are skipped: ESRCH when only a zombie matches
    l2 = second_lwp(k, l)
    l2.l_stat = LSZOMB
    put(l, buf, struct.pack("<I", 1))
    assert err(l, "_sched_setaffinity", 0, l2.l_lid, 4, buf) == Errno.ESRCH


def test_affinity_size_on_ilp32_ports():
    from nbemu.guest.arch.arm import ABI as ARM
    from nbemu.guest.arch.i386 import ABI as I386
    from nbemu.syscalls.sys_sched import kc_bitsize
    assert kc_bitsize(I386) == 4 and kc_bitsize(ARM) == 4


def test_sched_protect(kl):
    k, l, buf = kl
    assert err(l, "_sched_protect", -2) == Errno.ENOENT
    assert err(l, "_sched_protect", -1) == Errno.EINVAL          # nothing held
    assert err(l, "_sched_protect", 64) == Errno.EINVAL
    assert err(l, "_sched_protect", -3) == Errno.EINVAL
    ok(l, "_sched_protect", 10)
    assert ok(l, "_sched_protect", -2)[0] == 10
    ok(l, "_sched_protect", 30)
    ok(l, "_sched_protect", 20)
    assert ok(l, "_sched_protect", -2)[0] == 30                 # the highest ceiling
    ok(l, "_sched_protect", -1)
    ok(l, "_sched_protect", -1)
    assert ok(l, "_sched_protect", -2)[0] == 30                 # until the last is dropped
    ok(l, "_sched_protect", -1)
    assert err(l, "_sched_protect", -2) == Errno.ENOENT


# -- uipc_sem.c -------------------------------------------------------------------------
def sem_init(l, buf, value, pshared=False):
    put(l, buf, struct.pack("<q", KSEM_PSHARED if pshared else 0))
    ok(l, "_ksem_init", value, buf)
    return struct.unpack("<q", get(l, buf, 8))[0]


def test_ksem_anonymous(kl):
    k, l, buf = kl
    sid = sem_init(l, buf, 2)
    assert fd_getfile(l.l_proc, sid).f_type == 8             # the id is a DTYPE_SEM fd
    assert err(l, "_ksem_trywait", sid) == 0
    assert err(l, "_ksem_wait", sid) == 0
    assert err(l, "_ksem_trywait", sid) == Errno.EAGAIN
    ok(l, "_ksem_post", sid)
    ok(l, "_ksem_getvalue", sid, buf + 16)
    assert struct.unpack("<I", get(l, buf + 16, 4))[0] == 1
    assert err(l, "_ksem_getvalue", sid, BAD) == Errno.EFAULT
    assert err(l, "_ksem_close", sid) == Errno.EINVAL          # close is for named ones
    ok(l, "_ksem_destroy", sid)
    for name in ("_ksem_post", "_ksem_wait", "_ksem_trywait", "_ksem_destroy", "_ksem_close"):
        assert err(l, name, sid) == Errno.EINVAL, name         # gone
    assert err(l, "_ksem_post", 0) == Errno.EINVAL             # stdin: not a semaphore
    assert err(l, "_ksem_post", -5) == Errno.EINVAL
    assert err(l, "_ksem_init", 0, BAD) == Errno.EFAULT


def test_ksem_overflow(kl):
    k, l, buf = kl
    sid = sem_init(l, buf, SEM_VALUE_MAX)
    assert err(l, "_ksem_post", sid) == Errno.EOVERFLOW


def test_ksem_pshared(kl):
    k, l, buf = kl
    sid = sem_init(l, buf, 1, pshared=True)
    assert sid & 0xFF000001 == KSEM_PSHARED_MARKER
    ok(l, "_ksem_wait", sid)
    ok(l, "_ksem_post", sid)
    ok(l, "_ksem_destroy", sid)
    assert err(l, "_ksem_post", sid) == Errno.EINVAL


def test_ksem_wait_blocks_and_post_wakes(kl):
    k, l, buf = kl
    sid = sem_init(l, buf, 0)
    l2 = second_lwp(k, l)
    gen, _ = call(l2, "_ksem_wait", sid)
    assert l2.l_stat == LSSLEEP
    assert err(l, "_ksem_destroy", sid) == Errno.EBUSY          # it has a waiter
    ok(l, "_ksem_post", sid)
    assert l2.l_stat == LSRUN
    assert resume(k, l2, gen) == 0
    ok(l, "_ksem_getvalue", sid, buf + 16)
    assert struct.unpack("<I", get(l, buf + 16, 4))[0] == 0


def test_ksem_wait_interrupted(kl):
    k, l, buf = kl
    sid = sem_init(l, buf, 0)
    l2 = second_lwp(k, l)
    gen, _ = call(l2, "_ksem_wait", sid)
    sleepq_abort_interruptible(k, l2, Errno.EINTR)
    assert resume(k, l2, gen) == Errno.EINTR
    gen, _ = call(l2, "_ksem_wait", sid)
    sleepq_abort_interruptible(k, l2, KernErrno.ERESTART)     # SA_RESTART handler
    assert resume(k, l2, gen) == KernErrno.ERESTART
    ok(l, "_ksem_destroy", sid)                                # no waiter left


def test_ksem_timedwait(kl):
    k, l, buf = kl
    sid = sem_init(l, buf, 0)
    ts = buf + 0x100
    put(l, ts, struct.pack("<qq", 0, 10**9))
    assert err(l, "_ksem_timedwait", sid, ts) == Errno.EINVAL
    put(l, ts, struct.pack("<qq", -1, 0))
    assert err(l, "_ksem_timedwait", sid, ts) == Errno.EINVAL
    assert err(l, "_ksem_timedwait", sid, BAD) == Errno.EFAULT
    put(l, ts, struct.pack("<qq", 1, 0))                       # long past
    assert err(l, "_ksem_timedwait", sid, ts) == Errno.ETIMEDOUT
    now = k.clock.realtime_ns() + 50 * MS
    put(l, ts, struct.pack("<qq", now // 10**9, now % 10**9))
    gen, _ = call(l, "_ksem_timedwait", sid, ts)
    assert l.l_stat == LSSLEEP
    wake_time(k, k.clock.monotonic_ns() + 60 * MS)
    assert resume(k, l, gen) == Errno.ETIMEDOUT
    ok(l, "_ksem_post", sid)                                  # value there: no wait
    assert err(l, "_ksem_timedwait", sid, ts) == 0


def test_ksem_named(kl):
    k, l, buf = kl
    name = put(l, buf + 0x200, b"/sem1\0")
    idp = buf + 0x300
    assert err(l, "_ksem_open", name, 0, 0o600, 0, idp) == Errno.ENOENT
    assert err(l, "_ksem_unlink", name) == Errno.ENOENT
    ok(l, "_ksem_open", name, O_CREAT, 0o600, 3, idp)
    s1 = struct.unpack("<q", get(l, idp, 8))[0]
    assert err(l, "_ksem_open", name, O_CREAT | O_EXCL, 0o600, 0, idp) == Errno.EEXIST
    ok(l, "_ksem_open", name, O_CREAT, 0o600, 0, idp)          # the same semaphore
    s2 = struct.unpack("<q", get(l, idp, 8))[0]
    assert s1 != s2
    ok(l, "_ksem_wait", s2)
    ok(l, "_ksem_getvalue", s1, buf + 16)
    assert struct.unpack("<I", get(l, buf + 16, 4))[0] == 2
    assert err(l, "_ksem_destroy", s1) == Errno.EINVAL         # destroy is for unnamed
    ok(l, "_ksem_close", s2)
    ok(l, "_ksem_unlink", name)
    assert err(l, "_ksem_open", name, 0, 0, 0, idp) == Errno.ENOENT
    ok(l, "_ksem_post", s1)                                   # still usable until closed
    ok(l, "_ksem_close", s1)
    for bad, e in ((b"noslash", Errno.EINVAL), (b"/", Errno.EINVAL), (b"/a/b", Errno.EINVAL)):
        put(l, name, bad + b"\0")
        assert err(l, "_ksem_open", name, O_CREAT, 0o600, 0, idp) == e, bad
    put(l, name, b"/" + b"x" * 600 + b"\0")
    assert err(l, "_ksem_open", name, O_CREAT, 0o600, 0, idp) == Errno.ENAMETOOLONG
    assert err(l, "_ksem_open", BAD, O_CREAT, 0o600, 0, idp) == Errno.EFAULT
    put(l, name, b"/ro\0")
    ok(l, "_ksem_open", name, O_CREAT, 0o400, 0, idp)          # no write permission
    assert err(l, "_ksem_open", name, 0, 0, 0, idp) == Errno.EACCES
    assert err(l, "_ksem_unlink", name) == Errno.EACCES


def test_ksem_limit(kl):
    k, l, buf = kl
    idp = buf + 0x300
    for i in range(128):
        put(l, buf + 0x200, b"/s%d\0" % i)
        ok(l, "_ksem_open", buf + 0x200, O_CREAT, 0o600, 0, idp)
    put(l, buf + 0x200, b"/one-more\0")
    assert err(l, "_ksem_open", buf + 0x200, O_CREAT, 0o600, 0, idp) == Errno.ENFILE


# -- sys_select.c ------------------------------------------------------------------------
def pipe(l, buf):
    ok(l, "pipe2", buf + 0x800, 0)
    return struct.unpack("<ii", get(l, buf + 0x800, 8))


def pollfds(l, va, *entries):
    put(l, va, b"".join(struct.pack("<ihh", fd, ev, 0) for fd, ev in entries))
    return va


def revents(l, va, n):
    return [struct.unpack_from("<ihh", get(l, va, 8 * n), 8 * i)[2] for i in range(n)]


def test_poll_ready_nval_and_negative_fds(kl):
    k, l, buf = kl
    r, w = pipe(l, buf)
    fds = pollfds(l, buf, (r, POLLIN), (w, POLLOUT), (-1, POLLIN), (77, POLLIN))
    rv = ok(l, "poll", fds, 4, 0)
    assert rv[0] == 2
    assert revents(l, fds, 4) == [0, POLLOUT, 0, POLLNVAL]
    put(l, buf + 0x900, b"x")
    ok(l, "write", w, buf + 0x900, 1)
    assert ok(l, "poll", fds, 2, 0)[0] == 2
    assert revents(l, fds, 2)[0] == POLLIN
    ok(l, "close", w)
    fds = pollfds(l, buf, (r, POLLIN))
    assert ok(l, "poll", fds, 1, 0)[0] == 1
    assert revents(l, fds, 1)[0] == POLLIN | POLLHUP


def test_poll_errnos(kl):
    k, l, buf = kl
    assert err(l, "poll", buf, 3404 + 1001, 0) == Errno.EINVAL     # nfds > rlim_max + 1000
    assert err(l, "poll", BAD, 1, 0) == Errno.EFAULT
    fds = pollfds(l, buf, (0, POLLIN))
    assert err(l, "poll", fds, 1, -2) == Errno.EINVAL              # below INFTIM
    assert ok(l, "poll", buf, 0, 0)[0] == 0                        # nothing to poll


def test_poll_blocks_until_write_and_times_out(kl):
    k, l, buf = kl
    r, w = pipe(l, buf)
    l2 = second_lwp(k, l)
    fds = pollfds(l, buf, (r, POLLIN | POLLRDNORM))
    gen, rv = call(l2, "poll", fds, 1, 5000)
    assert l2.l_stat == LSSLEEP
    put(l, buf + 0x900, b"x")
    ok(l, "write", w, buf + 0x900, 1)                # the pipe's selnotify wakes it
    assert l2.l_stat == LSRUN
    assert resume(k, l2, gen) == 0 and rv[0] == 1
    assert revents(l, fds, 1)[0] == POLLIN | POLLRDNORM
    ok(l, "read", r, buf + 0x900, 1)
    # no watcher is left on the pipe after the call
    assert not fd_getfile(l.l_proc, r).f_pipe.pipe_sel
    # timeout: 0 events, revents cleared
    gen, rv = call(l2, "poll", fds, 1, 30)
    assert l2.l_stat == LSSLEEP
    wake_time(k, k.clock.monotonic_ns() + 40 * MS)
    assert resume(k, l2, gen) == 0 and rv[0] == 0
    assert revents(l, fds, 1)[0] == 0
    # a signal: EINTR (never restarted), the array not copied back
    put(l, fds + 6, struct.pack("<h", 0x7777))
    gen, rv = call(l2, "poll", fds, 1, -1)
    sleepq_abort_interruptible(k, l2, KernErrno.ERESTART)
    assert resume(k, l2, gen) == Errno.EINTR
    assert revents(l, fds, 1)[0] == 0x7777


def test_pollts_mask_and_timeout(kl):
    k, l, buf = kl
    r, w = pipe(l, buf)
    fds = pollfds(l, buf, (r, POLLIN))
    ts, mask = buf + 0x100, buf + 0x140
    put(l, ts, struct.pack("<qq", 0, 10**9))
    assert err(l, "__pollts50", fds, 1, ts, 0) == Errno.EINVAL
    put(l, ts, struct.pack("<qq", -1, 0))
    assert err(l, "__pollts50", fds, 1, ts, 0) == Errno.EINVAL
    assert err(l, "__pollts50", fds, 1, BAD, 0) == Errno.EFAULT
    assert err(l, "__pollts50", fds, 1, 0, BAD) == Errno.EFAULT
    put(l, ts, struct.pack("<qq", 0, 0))
    put(l, mask, struct.pack("<4I", 1 << 1, 0, 0, 0))              # block SIGINT meanwhile
    old = l.l_sigmask
    assert ok(l, "__pollts50", fds, 1, ts, mask)[0] == 0
    assert l.l_sigmask == old                                      # restored afterwards
    put(l, ts, struct.pack("<qq", 0, 20 * MS))
    gen, rv = call(l, "__pollts50", fds, 1, ts, mask)
    assert l.l_sigmask[0] == 1 << 1                                # applies while it sleeps
    wake_time(k, k.clock.monotonic_ns() + 30 * MS)
    assert resume(k, l, gen) == 0 and rv[0] == 0
    assert l.l_sigmask == old


def fdset(*fds, words=2):
    w = [0] * words
    for fd in fds:
        w[fd // 32] |= 1 << (fd % 32)
    return struct.pack(f"<{words}I", *w)


def test_select(kl):
    k, l, buf = kl
    r, w = pipe(l, buf)
    rs, ws, es = buf + 0x100, buf + 0x140, buf + 0x180
    tv = buf + 0x1c0
    put(l, rs, fdset(r)), put(l, ws, fdset(w)), put(l, es, fdset())
    put(l, tv, struct.pack("<qq", 0, 0))
    assert ok(l, "__select50", 64, rs, ws, es, tv)[0] == 1       # the write end only
    assert get(l, rs, 8) == fdset() and get(l, ws, 8) == fdset(w)
    put(l, buf + 0x900, b"x")
    ok(l, "write", w, buf + 0x900, 1)
    put(l, rs, fdset(r, w)), put(l, ws, fdset(w))
    assert ok(l, "__select50", 64, rs, ws, 0, tv)[0] == 2         # r readable, w writable
    assert get(l, rs, 8) == fdset(r)
    # errnos
    assert err(l, "__select50", -1, 0, 0, 0, tv) == Errno.EINVAL
    put(l, tv + 0x10, struct.pack("<qq", 0, 1_000_000))
    assert err(l, "__select50", 8, 0, 0, 0, tv + 0x10) == Errno.EINVAL
    put(l, tv + 0x10, struct.pack("<qq", -1, 0))
    assert err(l, "__select50", 8, 0, 0, 0, tv + 0x10) == Errno.EINVAL
    assert err(l, "__select50", 8, 0, 0, 0, BAD) == Errno.EFAULT
    assert err(l, "__select50", 8, BAD, 0, 0, tv) == Errno.EFAULT
    put(l, rs, fdset(17))
    assert err(l, "__select50", 64, rs, 0, 0, tv) == Errno.EBADF
    # nd beyond the descriptor table is cut to it: fd 1000 is ignored
    put(l, buf + 0x400, b"\0" * 124 + struct.pack("<I", 1 << 8))
    assert ok(l, "__select50", 1024, buf + 0x400, 0, 0, tv)[0] == 0


def test_select_blocks_and_pselect_interrupted(kl):
    k, l, buf = kl
    r, w = pipe(l, buf)
    l2 = second_lwp(k, l)
    rs = buf + 0x100
    put(l, rs, fdset(r))
    gen, rv = call(l2, "__select50", r + 1, rs, 0, 0, 0)
    assert l2.l_stat == LSSLEEP
    ok(l, "close", w)                                   # EOF wakes the reader
    assert resume(k, l2, gen) == 0 and rv[0] == 1
    assert get(l, rs, 4) == fdset(r, words=1)
    r, w = pipe(l, buf)
    put(l, rs, fdset(r))
    ts, mask = buf + 0x200, buf + 0x240
    put(l, ts, struct.pack("<qq", 5, 0))
    put(l, mask, bytes(16))
    gen, rv = call(l2, "__pselect50", r + 1, rs, 0, 0, ts, mask)
    assert l2.l_stat == LSSLEEP
    sleepq_abort_interruptible(k, l2, Errno.EINTR)
    assert resume(k, l2, gen) == Errno.EINTR
    gen, rv = call(l2, "__pselect50", r + 1, rs, 0, 0, ts, 0)
    wake_time(k, k.clock.monotonic_ns() + 6 * 10**9)
    assert resume(k, l2, gen) == 0 and rv[0] == 0


def test_select_on_kqueue_wakes_on_event(kl):
    k, l, buf = kl
    kq = ok(l, "kqueue")[0]
    r, w = pipe(l, buf)
    kev = struct.pack("<QIIIqQ4Q", r, 0, 1, 0, 0, 0, 0, 0, 0, 0)   # EVFILT_READ, EV_ADD
    put(l, buf + 0x300, kev)
    ok(l, "__kevent100", kq, buf + 0x300, 1, 0, 0, 0)
    l2 = second_lwp(k, l)
    rs = buf + 0x100
    put(l, rs, fdset(kq))
    gen, rv = call(l2, "__select50", kq + 1, rs, 0, 0, 0)
    assert l2.l_stat == LSSLEEP
    put(l, buf + 0x900, b"x")
    ok(l, "write", w, buf + 0x900, 1)
    assert resume(k, l2, gen) == 0 and rv[0] == 1


# -- kern_ras.c --------------------------------------------------------------------------
def test_rasctl(kl):
    k, l, buf = kl
    from nbemu.guest.arch.amd64 import ABI
    assert err(l, "rasctl", 0x1000, 0, 0) == Errno.EINVAL               # len 0
    assert err(l, "rasctl", ABI.vm_maxuser_address + 1, 4, 0) == Errno.EINVAL
    assert err(l, "rasctl", ABI.vm_maxuser_address - 2, 4, 0) == Errno.EINVAL
    assert err(l, "rasctl", 0x1000, 4, 7) == Errno.EINVAL               # bad op
    ok(l, "rasctl", 0x1000, 0x10, 0)
    assert err(l, "rasctl", 0x1008, 0x10, 0) == Errno.EEXIST
    assert err(l, "rasctl", 0x1000, 0x8, 1) == Errno.ESRCH              # purge: exact match
    ok(l, "rasctl", 0x1000, 0x10, 1)
    for i in range(16):
        ok(l, "rasctl", 0x2000 + 0x20 * i, 0x10, 0)
    assert err(l, "rasctl", 0x9000, 0x10, 0) == Errno.EINVAL            # ras_per_proc
    ok(l, "rasctl", 0, 0, 2)                                            # purge all
    ok(l, "rasctl", 0x9000, 0x10, 0)


def test_ras_restart_on_switch_in(kl):
    k, l, buf = kl
    from nbemu.guest.arch.amd64 import ABI
    ok(l, "rasctl", 0x401000, 0x20, 0)
    l2 = second_lwp(k, l)
    # l2 was preempted inside the sequence; it is switched in again on CPU 2.
    k.platform.regs_set(l2, (ABI.pc_reg,), (0x401008,))
    k.cpus[1].ci_curlwp = None
    l2.set_stat(LSRUN)
    k.runq.sched_enqueue(l2, k.cpus[2])
    assert k.switch_in(k.cpus[2]) is l2
    assert k.platform.regs_get(l2, (ABI.pc_reg,))[0] == 0x401000
    # at the start or outside: unchanged
    for pc in (0x401000, 0x401020):
        k.platform.regs_set(l2, (ABI.pc_reg,), (pc,))
        k.cpus[2].ci_curlwp = None
        l2.set_stat(LSRUN)
        k.runq.sched_enqueue(l2, k.cpus[2])
        assert k.switch_in(k.cpus[2]) is l2
        assert k.platform.regs_get(l2, (ABI.pc_reg,))[0] == pc


# -- wait4, clock_getcpuclockid2, msync, fsync_range, pathconf ----------------------------
def test_wait4(kl):
    k, l, buf = kl
    put(l, buf, struct.pack("<i", 1234))
    assert err(l, "__wait450", -1, buf, 0, 0) == Errno.ECHILD
    assert err(l, "__wait450", -1, buf, 1, 0) == Errno.ECHILD          # WNOHANG too
    assert err(l, "__wait450", 5, buf, 0, buf + 8) == Errno.ECHILD
    assert err(l, "__wait450", -1, buf, 0x100, 0) == Errno.EINVAL      # unknown option
    assert i32(l, buf) == 1234                                         # status untouched
    assert err(l, "compat_50_wait4", -1, 0, 0, 0) == Errno.ECHILD


def test_clock_getcpuclockid2(kl):
    k, l, buf = kl
    ok(l, "clock_getcpuclockid2", 1, 0, buf)
    assert i32(l, buf) == 0x40000000 | l.l_proc.p_pid
    ok(l, "clock_getcpuclockid2", 2, 0, buf + 4)
    assert i32(l, buf + 4) == 0x20000000 | l.l_lid
    assert err(l, "clock_getcpuclockid2", 0, 0, buf) == Errno.EINVAL
    assert err(l, "clock_getcpuclockid2", 1, 0, BAD) == Errno.EFAULT
    ok(l, "__clock_gettime50", i32(l, buf), buf + 16)                  # usable
    ok(l, "__clock_gettime50", i32(l, buf + 4), buf + 16)
    assert err(l, "__clock_gettime50", 0x40000000 | 999, buf + 16) == Errno.ESRCH
    assert err(l, "__clock_gettime50", 0x20000000 | 999, buf + 16) == Errno.ESRCH
    assert err(l, "__clock_gettime50", 77, buf + 16) == Errno.EINVAL


def test_msync(kl):
    k, l, buf = kl
    assert err(l, "__msync13", buf, 4096, 0) == Errno.EINVAL           # no flag
    assert err(l, "__msync13", buf, 4096, 0x5) == Errno.EINVAL         # ASYNC|SYNC
    assert err(l, "__msync13", buf, 4096, 0x8) == Errno.EINVAL         # unknown
    ok(l, "__msync13", buf, 4096, 4)
    ok(l, "__msync13", buf + 10, 100, 1 | 2)                           # rounded to pages
    assert err(l, "__msync13", BAD, 4096, 4) == Errno.EFAULT
    assert err(l, "__msync13", BAD, 0, 4) == Errno.ENOMEM
    ok(l, "__msync13", buf, 0, 4)


def test_fsync_range_and_pathconf(kl, tmp_path):
    k, l, buf = kl
    f = tmp_path / "f"
    f.write_bytes(b"data")
    put(l, buf, str(f).encode() + b"\0")
    fd = ok(l, "open", buf, O_RDWR, 0)[0]
    ok(l, "fsync_range", fd, 0x20, 0, 0)
    ok(l, "fsync_range", fd, 0x10, 0, 4)
    assert err(l, "fsync_range", fd, 0, 0, 0) == Errno.EINVAL
    assert err(l, "fsync_range", fd, 0x30, 0, 0) == Errno.EINVAL
    assert err(l, "fsync_range", fd, 0x20, -1, 4) == Errno.EINVAL
    assert err(l, "fsync_range", 99, 0x20, 0, 0) == Errno.EBADF
    r, w = pipe(l, buf)
    assert err(l, "fsync_range", r, 0x20, 0, 0) == Errno.EINVAL        # not a vnode
    rdonly = ok(l, "open", buf, 0, 0)[0]
    assert err(l, "fsync_range", rdonly, 0x20, 0, 0) == Errno.EBADF
    assert ok(l, "pathconf", buf, 4)[0] == 255                          # _PC_NAME_MAX
    assert ok(l, "pathconf", buf, 5)[0] == 1024
    assert err(l, "pathconf", buf, 999) == Errno.EINVAL
    assert err(l, "pathconf", buf, 2) == Errno.EINVAL                   # MAX_CANON: ttys
    put(l, buf + 0x100, b"/nonexistent/x\0")
    assert err(l, "pathconf", buf + 0x100, 4) == Errno.ENOENT
    assert ok(l, "fpathconf", fd, 1)[0] == 32767
    assert ok(l, "fpathconf", r, 6)[0] == 512                          # pipe: PIPE_BUF only
    assert err(l, "fpathconf", r, 4) == Errno.EINVAL
    assert err(l, "fpathconf", 99, 4) == Errno.EBADF
    kq = ok(l, "kqueue")[0]
    assert err(l, "fpathconf", kq, 6) == Errno.EINVAL
    assert ok(l, "lpathconf", buf, 13)[0] == 1


def test_poll_host_fd_goes_through_host_input(kl):
    """A host pipe cannot notify: its readiness is asked through host_input
    (so --record / --replay log it) and a waiting poll asks again every
    HOSTPOLL_NS on the kernel clock."""
    import os

    from nbemu.syscalls import hostinput
    from nbemu.syscalls.kern_descrip import FREAD, fd_affix, fd_alloc
    from nbemu.syscalls.sys_select import HOSTPOLL_NS
    from nbemu.syscalls.vfs_syscalls import HostFile
    k, l, buf = kl
    hr, hw = os.pipe()
    try:
        _, fd = fd_alloc(l.l_proc, 0)
        fd_affix(l.l_proc, HostFile(hr, FREAD, "hostpipe", owns_fd=False, guest_path=None), fd)
        kinds = []

        class Log:
            def input(self, kind, fn):
                kinds.append(kind)
                return fn()

        hostinput.recorder = Log()
        fds = pollfds(l, buf, (fd, POLLIN))
        assert ok(l, "poll", fds, 1, 0)[0] == 0
        assert "ready" in kinds
        gen, rv = call(l, "poll", fds, 1, 1000)
        assert l.l_stat == LSSLEEP
        os.write(hw, b"x")
        wake_time(k, k.clock.monotonic_ns() + HOSTPOLL_NS)
        assert resume(k, l, gen) == 0 and rv[0] == 1
        assert revents(l, fds, 1)[0] == POLLIN
    finally:
        hostinput.recorder = None
        os.close(hr)
        os.close(hw)
