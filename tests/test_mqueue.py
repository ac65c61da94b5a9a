"""sys_mqueue.c (syscalls/sys_mqueue.py) driven through the syscall table
without an engine (tests/khelp.py): every errno branch, priority order,
blocking and wakeup, timeouts on the kernel clock, notification, poll."""
from __future__ import annotations

import struct

import pytest

import nbemu.syscalls.kern_sig as ks
from nbemu.syscalls.errno import Errno, KernErrno
from nbemu.syscalls.kern_descrip import O_CREAT, O_EXCL, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY
from nbemu.syscalls.kern_sleepq import sleepq_abort_interruptible
from nbemu.syscalls.lwp import LSRUN, LSSLEEP
from nbemu.syscalls.signals import Sig

SIGUSR1, SIGUSR2 = Sig.SIGUSR1, Sig.SIGUSR2
from nbemu.syscalls.sys_mqueue import (MQ_PRIO_MAX, MQ_UNLINKED, O_EXEC, SIGEV_NONE, SIGEV_SIGNAL,
                                 MQ_ATTR, SIGEVENT)
from nbemu.syscalls.poll import POLLIN, POLLOUT
from tests.khelp import call, err, get, make_kernel, ok, put, resume, scratch, second_lwp

MS = 10**6
BAD = 0x7000_0000_0000


@pytest.fixture
def kl():
    k, l = make_kernel(deterministic=True)
    return k, l, scratch(l, 0x100000)


def attr(l, va, flags=0, maxmsg=0, msgsize=0, cur=0):
    return put(l, va, struct.pack("<4q", flags, maxmsg, msgsize, cur))


def getattr_(l, mqd, va):
    ok(l, "mq_getattr", mqd, va)
    return struct.unpack("<4q", get(l, va, 32))


def mq_open(l, buf, name, oflag, mode=0o600, maxmsg=None, msgsize=8):
    nva = put(l, buf + 0x800, name + b"\0")
    ava = 0
    if maxmsg is not None:
        ava = attr(l, buf + 0x900, 0, maxmsg, msgsize)
    return call(l, "mq_open", nva, oflag, mode, ava)


def opened(l, buf, name=b"/q", oflag=O_RDWR | O_CREAT, **kw):
    e, rv = mq_open(l, buf, name, oflag, **kw)
    assert e == 0, e
    return rv[0]


def send(l, mqd, buf, data, prio=0):
    return call(l, "mq_send", mqd, put(l, buf + 0x1000, data), len(data), prio)


def recv(l, mqd, buf, n=64, prio=True):
    e, rv = call(l, "mq_receive", mqd, buf + 0x2000, n, buf + 0x3000 if prio else 0)
    if e:
        return e, None, None
    return 0, get(l, buf + 0x2000, rv[0]), struct.unpack("<I", get(l, buf + 0x3000, 4))[0]


def abstime(l, va, ns):
    return put(l, va, struct.pack("<qq", ns // 10**9, ns % 10**9))


def test_layouts_per_port():
    from nbemu.guest.arch.amd64 import ABI as A64
    from nbemu.guest.arch.i386 import ABI as I386
    assert MQ_ATTR.on(A64).size == 32 and MQ_ATTR.on(I386).size == 16
    assert SIGEVENT.on(A64).size == 32 and SIGEVENT.on(I386).size == 20


def test_open_errnos(kl):
    k, l, buf = kl
    e, _ = mq_open(l, buf, b"/none", O_RDWR)
    assert e == Errno.ENOENT
    e, _ = mq_open(l, buf, b"", O_RDWR | O_CREAT)
    assert e == Errno.EINVAL                             # empty name
    e, _ = mq_open(l, buf, b"/x", O_RDWR | O_CREAT | O_EXEC)
    assert e == Errno.EINVAL
    e, _ = mq_open(l, buf, b"/" + b"n" * 254, O_RDWR | O_CREAT)
    assert e == Errno.ENAMETOOLONG
    e, rv = mq_open(l, buf, b"/" + b"n" * 253, O_RDWR | O_CREAT)
    assert e == 0                                        # 254 bytes: the longest
    assert err(l, "mq_open", BAD, O_RDWR, 0, 0) == Errno.EFAULT
    nva = put(l, buf + 0x800, b"/a\0")
    assert err(l, "mq_open", nva, O_RDWR | O_CREAT, 0o600, BAD) == Errno.EFAULT
    assert err(l, "mq_open", nva, O_RDWR, 0o600, BAD) == Errno.ENOENT   # attr: O_CREAT only
    for maxmsg, msgsize in ((0, 8), (-1, 8), (513, 8), (1, 0), (1, -5), (1, 16385)):
        e, _ = mq_open(l, buf, b"/b", O_RDWR | O_CREAT, maxmsg=maxmsg, msgsize=msgsize)
        assert e == Errno.EINVAL, (maxmsg, msgsize)
    e, _ = mq_open(l, buf, b"/b", O_RDWR | O_CREAT, maxmsg=512, msgsize=16384)
    assert e == 0


def test_open_existing_excl_access_and_names_without_slash(kl):
    k, l, buf = kl
    q = opened(l, buf, b"noslash")                       # the kernel takes any name
    e, _ = mq_open(l, buf, b"noslash", O_RDWR | O_CREAT | O_EXCL)
    assert e == Errno.EEXIST
    q2 = opened(l, buf, b"noslash", O_RDONLY)            # existing: a new reference
    assert q2 != q
    opened(l, buf, b"/ro", O_RDWR | O_CREAT, mode=0o400)
    assert mq_open(l, buf, b"/ro", O_WRONLY)[0] == Errno.EACCES
    assert mq_open(l, buf, b"/ro", O_RDWR)[0] == Errno.EACCES
    opened(l, buf, b"/ro", O_RDONLY)
    k.config["suser"] = True
    opened(l, buf, b"/ro", O_RDWR)


def test_default_attributes_and_setattr(kl):
    k, l, buf = kl
    q = opened(l, buf, b"/d", O_RDWR | O_CREAT | O_NONBLOCK)
    flags, maxmsg, msgsize, cur = getattr_(l, q, buf)
    assert (maxmsg, msgsize, cur) == (32, 1024 - 32, 0)
    assert flags == O_RDWR | O_CREAT | O_NONBLOCK
    attr(l, buf + 0x40, 0, 99, 99, 99)                   # only O_NONBLOCK counts
    ok(l, "mq_setattr", q, buf + 0x40, buf + 0x80)
    assert struct.unpack("<4q", get(l, buf + 0x80, 32))[0] & O_NONBLOCK
    flags, maxmsg, msgsize, _ = getattr_(l, q, buf)
    assert not flags & O_NONBLOCK and (maxmsg, msgsize) == (32, 992)
    attr(l, buf + 0x40, O_NONBLOCK)
    ok(l, "mq_setattr", q, buf + 0x40, 0)
    assert getattr_(l, q, buf)[0] & O_NONBLOCK
    assert err(l, "mq_setattr", q, BAD, 0) == Errno.EFAULT
    assert err(l, "mq_setattr", q, buf + 0x40, BAD) == Errno.EFAULT
    assert err(l, "mq_getattr", q, BAD) == Errno.EFAULT


def test_descriptor_checks(kl):
    k, l, buf = kl
    ok(l, "pipe", buf + 0x10)   # a descriptor of another type
    fd = struct.unpack("<i", get(l, buf + 0x10, 4))[0]
    for name, args in (("mq_getattr", (buf,)), ("mq_setattr", (attr(l, buf + 0x40),)),
                       ("mq_notify", (0,))):
        assert err(l, name, fd, *args) == Errno.EBADF
        assert err(l, name, 77, *args) == Errno.EBADF
    assert send(l, fd, buf, b"x")[0] == Errno.EBADF
    assert recv(l, fd, buf)[0] == Errno.EBADF
    ro = opened(l, buf, b"/r", O_RDONLY | O_CREAT, maxmsg=4)
    wo = opened(l, buf, b"/r", O_WRONLY)
    assert send(l, ro, buf, b"x")[0] == Errno.EBADF          # needs FWRITE
    assert recv(l, wo, buf)[0] == Errno.EBADF                # needs FREAD
    ok(l, "mq_close", wo)
    assert err(l, "mq_close", wo) == Errno.EBADF
    ok(l, "mq_close", fd)                                    # close(2) of any descriptor


def test_send_receive_priority_order_and_sizes(kl):
    k, l, buf = kl
    q = opened(l, buf, maxmsg=8, msgsize=8)
    assert send(l, q, buf, b"x", MQ_PRIO_MAX)[0] == Errno.EINVAL
    assert send(l, q, buf, b"123456789")[0] == Errno.EMSGSIZE       # over mq_msgsize
    assert send(l, q, buf, b"")[0] == Errno.EMSGSIZE                 # empty
    assert call(l, "mq_send", q, buf, 16384, 0)[0] == Errno.EMSGSIZE  # + header > max
    assert call(l, "mq_send", q, BAD, 4, 0)[0] == Errno.EFAULT
    for data, prio in ((b"a1", 1), (b"b5", 5), (b"c0", 0), (b"d5", 5), (b"e31", 31), (b"f1", 1)):
        assert send(l, q, buf, data, prio)[0] == 0
    assert getattr_(l, q, buf)[3] == 6
    assert recv(l, q, buf, 7)[0] == Errno.EMSGSIZE                   # buffer < mq_msgsize
    got = [recv(l, q, buf, 8)[1:] for _ in range(6)]
    assert got == [(b"e31", 31), (b"b5", 5), (b"d5", 5), (b"a1", 1), (b"f1", 1), (b"c0", 0)]
    send(l, q, buf, b"zz", 3)
    e, data, _ = recv(l, q, buf, prio=False)                         # NULL msg_prio
    assert e == 0 and data == b"zz"
    send(l, q, buf, b"zz", 3)
    assert call(l, "mq_receive", q, BAD, 8, 0)[0] == Errno.EFAULT     # message lost (as NetBSD)
    assert getattr_(l, q, buf)[3] == 0


def test_nonblocking_full_and_empty(kl):
    k, l, buf = kl
    q = opened(l, buf, oflag=O_RDWR | O_CREAT | O_NONBLOCK, maxmsg=2)
    assert recv(l, q, buf)[0] == Errno.EAGAIN
    assert send(l, q, buf, b"1")[0] == 0 and send(l, q, buf, b"2")[0] == 0
    assert send(l, q, buf, b"3")[0] == Errno.EAGAIN


def test_receive_blocks_and_send_wakes(kl):
    k, l, buf = kl
    q = opened(l, buf, maxmsg=2)
    l2 = second_lwp(k, l)
    gen, rv = call(l2, "mq_receive", q, buf + 0x2000, 8, buf + 0x3000)
    assert l2.l_stat == LSSLEEP and getattr_(l, q, buf)[0] & 0x20000000   # MQ_RECEIVE
    assert send(l, q, buf, b"hey", 4)[0] == 0
    assert l2.l_stat == LSRUN
    assert resume(k, l2, gen) == 0 and rv[0] == 3
    assert get(l, buf + 0x2000, 3) == b"hey" and get(l, buf + 0x3000, 4) == b"\4\0\0\0"
    assert not getattr_(l, q, buf)[0] & 0x20000000


def test_send_blocks_until_receive(kl):
    k, l, buf = kl
    q = opened(l, buf, maxmsg=1)
    send(l, q, buf, b"1")
    l2 = second_lwp(k, l)
    gen, _ = send(l2, q, buf, b"2")
    assert l2.l_stat == LSSLEEP
    assert recv(l, q, buf)[1] == b"1"
    assert l2.l_stat == LSRUN and resume(k, l2, gen) == 0
    assert recv(l, q, buf)[1] == b"2"


def test_signals_interrupt(kl):
    k, l, buf = kl
    q = opened(l, buf, maxmsg=1)
    l2 = second_lwp(k, l)
    gen, _ = call(l2, "mq_receive", q, buf + 0x2000, 8, 0)
    sleepq_abort_interruptible(k, l2, KernErrno.ERESTART)
    assert resume(k, l2, gen) == Errno.EINTR                 # receive: never restarted
    send(l, q, buf, b"1")
    gen, _ = send(l2, q, buf, b"2")
    sleepq_abort_interruptible(k, l2, KernErrno.ERESTART)
    assert resume(k, l2, gen) == KernErrno.ERESTART          # send: SA_RESTART restarts
    gen, _ = send(l2, q, buf, b"2")
    sleepq_abort_interruptible(k, l2, Errno.EINTR)
    assert resume(k, l2, gen) == Errno.EINTR


def test_unlink_wakes_waiters_and_queue_lives_until_close(kl):
    k, l, buf = kl
    q = opened(l, buf, b"/u", maxmsg=1)
    l2 = second_lwp(k, l)
    gen, _ = call(l2, "mq_receive", q, buf + 0x2000, 8, 0)
    nva = put(l, buf + 0x800, b"/u\0")
    assert err(l, "mq_unlink", BAD) == Errno.EFAULT
    ok(l, "mq_unlink", nva)
    assert resume(k, l2, gen) == Errno.EINTR
    assert getattr_(l, q, buf)[0] & MQ_UNLINKED
    assert err(l, "mq_unlink", nva) == Errno.ENOENT
    assert mq_open(l, buf, b"/u", O_RDWR)[0] == Errno.ENOENT
    send(l, q, buf, b"1")                                     # still usable
    ok(l, "mq_close", q)
    q = opened(l, buf, b"/u", maxmsg=1)                       # a new queue of that name
    send(l, q, buf, b"1")
    gen, _ = send(l2, q, buf, b"2")                           # full: sleeps
    assert l2.l_stat == LSSLEEP
    ok(l, "mq_unlink", nva)
    assert resume(k, l2, gen) == 0                            # NetBSD: 0, message dropped
    assert getattr_(l, q, buf)[3] == 1


def test_unlink_permission(kl):
    k, l, buf = kl
    opened(l, buf, b"/p")
    cred = l.l_proc.p_cred
    l.l_proc.p_cred = cred.replace(cr_euid=cred.cr_euid + 1)
    nva = put(l, buf + 0x800, b"/p\0")
    assert err(l, "mq_unlink", nva) == Errno.EACCES
    k.config["suser"] = True
    ok(l, "mq_unlink", nva)


def test_timed_calls(kl):
    k, l, buf = kl
    q = opened(l, buf, maxmsg=1)
    ts = buf + 0x400
    put(l, ts, struct.pack("<qq", 0, 10**9))
    args = (q, buf + 0x2000, 8, 0)
    assert err(l, "__mq_timedreceive50", *args, ts) == Errno.EINVAL   # it would wait
    assert err(l, "__mq_timedreceive50", *args, BAD) == Errno.EFAULT
    abstime(l, ts, 10**9)                                             # long past
    assert err(l, "__mq_timedreceive50", *args, ts) == Errno.ETIMEDOUT
    abstime(l, ts, k.clock.realtime_ns() + 50 * MS)
    gen, _ = call(l, "__mq_timedreceive50", *args, ts)
    assert l.l_stat == LSSLEEP
    k.clock.wait_until(k.clock.monotonic_ns() + 60 * MS)
    k.run_callouts()
    assert resume(k, l, gen) == Errno.ETIMEDOUT
    put(l, buf + 0x1000, b"m")
    sargs = (q, buf + 0x1000, 1, 2)
    put(l, ts + 0x40, struct.pack("<qq", 0, -1))
    assert err(l, "__mq_timedsend50", *sargs, ts + 0x40) == 0         # no wait: ts unused
    assert err(l, "__mq_timedsend50", *sargs, ts + 0x40) == Errno.EINVAL
    assert err(l, "__mq_timedsend50", *sargs, BAD) == Errno.EFAULT
    abstime(l, ts, k.clock.realtime_ns() + 30 * MS)
    gen, _ = call(l, "__mq_timedsend50", *sargs, ts)
    assert l.l_stat == LSSLEEP
    k.clock.wait_until(k.clock.monotonic_ns() + 40 * MS)
    k.run_callouts()
    assert resume(k, l, gen) == Errno.ETIMEDOUT
    e, rv = call(l, "__mq_timedreceive50", *args, ts)                 # a message: no wait
    assert e == 0 and rv[0] == 1
    e, rv = call(l, "__mq_timedreceive50", *args, 0)                  # NULL: blocks forever
    assert l.l_stat == LSSLEEP


def sigev(l, va, notify, signo, value=0):
    return put(l, va, struct.pack("<iiQQQ", notify, signo, value, 0, 0))


def test_notify(kl):
    k, l, buf = kl
    l.l_sigmask = ks.words_of(ks.mask_of(l.l_sigmask) | ks.bit(SIGUSR1) | ks.bit(SIGUSR2))
    q = opened(l, buf, maxmsg=4)
    ev = sigev(l, buf + 0x500, SIGEV_SIGNAL, SIGUSR1, 0x1234)
    for bad in (0, 64, -1):
        assert err(l, "mq_notify", q, sigev(l, buf + 0x540, SIGEV_SIGNAL, bad)) == Errno.EINVAL
    assert err(l, "mq_notify", q, BAD) == Errno.EFAULT
    ok(l, "mq_notify", q, ev)
    assert err(l, "mq_notify", q, ev) == Errno.EBUSY         # one registration
    sp = ks.psigpend(l.l_proc)
    send(l, q, buf, b"1")
    assert sp.set & ks.bit(SIGUSR1)
    ksi = sp.get(SIGUSR1)
    assert (ksi.code, ksi.value) == (ks.SI_MESGQ, 0x1234)
    send(l, q, buf, b"2")                                     # registration gone
    recv(l, q, buf), recv(l, q, buf)
    ok(l, "mq_notify", q, ev)                                 # may register again
    send(l, q, buf, b"3")                                     # ... and it fires
    assert sp.get(SIGUSR1).signo == SIGUSR1
    ok(l, "mq_notify", q, ev)
    send(l, q, buf, b"4")                                     # not empty: no signal
    assert not sp.set
    ok(l, "mq_notify", q, 0)                                  # unregister
    ok(l, "mq_notify", q, ev)
    recv(l, q, buf), recv(l, q, buf)
    l2 = second_lwp(k, l)                                     # a receiver waits: no signal
    gen, _ = call(l2, "mq_receive", q, buf + 0x2000, 8, 0)
    send(l, q, buf, b"5")
    assert not sp.set and resume(k, l2, gen) == 0
    send(l, q, buf, b"6")                                     # still registered
    assert sp.set & ks.bit(SIGUSR1)
    sp.clear(-1)
    recv(l, q, buf)
    ok(l, "mq_notify", q, sigev(l, buf + 0x540, SIGEV_NONE, 0))  # SIGEV_NONE: never fires
    send(l, q, buf, b"7")
    assert not sp.set
    assert err(l, "mq_notify", q, ev) == Errno.EBUSY


def test_poll_select_and_kevent(kl):
    k, l, buf = kl
    q = opened(l, buf, maxmsg=1)
    pfd = put(l, buf + 0x600, struct.pack("<ihh", q, POLLIN | POLLOUT, 0))
    ok(l, "poll", pfd, 1, 0)
    assert struct.unpack("<ihh", get(l, pfd, 8))[2] == POLLOUT
    send(l, q, buf, b"1")
    ok(l, "poll", pfd, 1, 0)
    assert struct.unpack("<ihh", get(l, pfd, 8))[2] == POLLIN
    recv(l, q, buf)
    l2 = second_lwp(k, l)
    put(l, pfd, struct.pack("<ihh", q, POLLIN, 0))
    gen, rv = call(l2, "poll", pfd, 1, 1000)
    assert l2.l_stat == LSSLEEP
    send(l, q, buf, b"2")
    assert l2.l_stat == LSRUN and resume(k, l2, gen) == 0 and rv[0] == 1
    kq = ok(l, "kqueue")[0]
    from nbemu.guest.arch.amd64 import ABI
    from nbemu.syscalls.cstruct import KEVENT
    from nbemu.syscalls.kern_event import EV_ADD, EVFILT_READ
    kev = put(l, buf + 0x700, KEVENT.on(ABI).pack(q, EVFILT_READ, EV_ADD, 0, 0, 0, 0, 0, 0, 0))
    e, _ = call(l, "__kevent100", kq, kev, 1, 0, 0, 0)
    assert e == Errno.EOPNOTSUPP


def test_fstat(kl):
    k, l, buf = kl
    q = opened(l, buf, mode=0o640)
    ok(l, "__fstat50", q, buf + 0x100)
    mode = struct.unpack("<I", get(l, buf + 0x108, 4))[0]
    assert mode == 0o640
