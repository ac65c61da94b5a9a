"""kqueue / kevent (kern_event.py): pipes, timers on the virtual clock,
EVFILT_USER as Go's netpoller uses it, change errors in the eventlist, and
both ABIs (NetBSD 10's __kevent100 with 72-byte events and the compat
__kevent50 slot 435 with 40-byte kevent100 events)."""
from __future__ import annotations

import struct

import pytest

from nbemu.syscalls.cstruct import KEVENT, KEVENT100
from nbemu.syscalls.errno import Errno
from nbemu.syscalls.kern_descrip import F_GETFD, FD_CLOEXEC, O_CLOEXEC, fd_getfile
from nbemu.syscalls.kern_event import (EV_ADD, EV_CLEAR, EV_DELETE, EV_DISABLE, EV_ENABLE, EV_EOF,
                                 EV_ERROR, EV_ONESHOT, EV_RECEIPT, EVFILT_READ, EVFILT_TIMER,
                                 EVFILT_USER, EVFILT_WRITE,
                                 NOTE_FFCOPY, NOTE_SECONDS, NOTE_TRIGGER)
from nbemu.syscalls.lwp import LSRUN, LSSLEEP
from fixtures.build import build_c
from tests.guest import ARCHES, run_nbemu
from tests.khelp import call, err, make_kernel, ok, scratch
from tests.khelp import resume, second_lwp

KEVENT_FMT = KEVENT.layout(8, 8)            # the kernel helper (khelp) runs amd64
KEVENT100_FMT = KEVENT100.layout(8, 8)
BAD = 0x7000_0000_0000
MS = 10**6


@pytest.fixture
def kl():
    k, l = make_kernel(deterministic=True)
    return k, l, scratch(l, 0x100000)




class KeventABI:
    """Pack / unpack one ABI's struct kevent and call its syscall."""

    def __init__(self, new: bool) -> None:
        self.new = new
        self.fmt = KEVENT_FMT if new else KEVENT100_FMT
        self.size = self.fmt.size
        self.name = "__kevent100" if new else "compat_100___kevent50"

    def pack(self, ident, filt, flags, fflags=0, data=0, udata=0) -> bytes:
        f = (ident, filt, flags, fflags, data, udata)
        return self.fmt.pack(*f, 0, 0, 0, 0) if self.new else self.fmt.pack(*f)

    def unpack(self, raw: bytes, n: int) -> list[tuple]:
        return [self.fmt.unpack_from(raw, i * self.size)[:6] for i in range(n)]

    def kevent(self, l, kq, base, changes=(), nevents=8, timeout=(0, 0)):
        """Changes at base, events at base+0x1000, timeout at base+0x3000
        (None: NULL, wait forever). Returns (errno or generator, retval, events)."""
        vm = l.l_proc.p_vmspace
        raw = b"".join(self.pack(*c) for c in changes)
        if raw:
            assert vm.copyout(raw, base) == 0
        tsp = 0
        if timeout is not None:
            tsp = base + 0x3000
            assert vm.copyout(struct.pack("<qq", *timeout), tsp) == 0
        e, rv = call(l, self.name, kq, base, len(changes), base + 0x1000, nevents, tsp)
        return e, rv

    def events(self, l, base, n):
        return self.unpack(l.l_proc.p_vmspace.copyin(base + 0x1000, n * self.size), n)


ABIS = [KeventABI(True), KeventABI(False)]


def _pipe(l, base):
    ok(l, "pipe2", base + 0x8000, 0)
    return struct.unpack("<ii", l.l_proc.p_vmspace.copyin(base + 0x8000, 8))


def test_struct_sizes():
    assert KEVENT_FMT.size == 72          # ident, filter, flags, fflags, data, udata, ext[4]
    assert KEVENT100_FMT.size == 40       # the same without ext


@pytest.mark.parametrize("abi", ABIS, ids=["kevent100", "kevent50"])
def test_pipe_readable_then_eof(kl, abi):
    k, l, buf = kl
    kq = ok(l, "kqueue")[0]
    r, w = _pipe(l, buf)
    e, rv = abi.kevent(l, kq, buf, [(r, EVFILT_READ, EV_ADD, 0, 0, 0xABCDEF)])
    assert e == 0 and rv[0] == 0                      # nothing to read yet
    vm = l.l_proc.p_vmspace
    vm.copyout(b"12345", buf + 0x9000)
    ok(l, "write", w, buf + 0x9000, 5)
    e, rv = abi.kevent(l, kq, buf)
    assert e == 0 and rv[0] == 1
    ident, filt, flags, fflags, data, udata = abi.events(l, buf, 1)[0]
    assert (ident, filt, data, udata) == (r, EVFILT_READ, 5, 0xABCDEF)
    assert flags & EV_ADD and not flags & EV_EOF
    # level-triggered: still there until read
    assert abi.kevent(l, kq, buf)[1][0] == 1
    ok(l, "read", r, buf + 0x9000, 5)
    assert abi.kevent(l, kq, buf)[1][0] == 0
    ok(l, "close", w)
    e, rv = abi.kevent(l, kq, buf)
    assert rv[0] == 1
    ident, filt, flags, fflags, data, udata = abi.events(l, buf, 1)[0]
    assert flags & EV_EOF and data == 0


def test_pipe_writable_and_eof_on_reader_close(kl):
    k, l, buf = kl
    abi = ABIS[0]
    kq = ok(l, "kqueue")[0]
    r, w = _pipe(l, buf)
    e, rv = abi.kevent(l, kq, buf, [(w, EVFILT_WRITE, EV_ADD | EV_CLEAR)])
    assert rv[0] == 1
    ident, filt, flags, fflags, data, udata = abi.events(l, buf, 1)[0]
    assert (ident, filt, data) == (w, EVFILT_WRITE, 16384)
    assert abi.kevent(l, kq, buf)[1][0] == 0          # EV_CLEAR: reported once
    ok(l, "close", r)
    assert abi.kevent(l, kq, buf)[1][0] == 1
    assert abi.events(l, buf, 1)[0][2] & EV_EOF


@pytest.mark.parametrize("abi", ABIS, ids=["kevent100", "kevent50"])
def test_timer_fires_on_virtual_clock(kl, abi):
    k, l, buf = kl
    kq = ok(l, "kqueue")[0]
    t0 = k.clock.monotonic_ns()
    e, rv = abi.kevent(l, kq, buf, [(7, EVFILT_TIMER, EV_ADD, 0, 100, 42)])
    assert e == 0 and rv[0] == 0
    assert abi.kevent(l, kq, buf)[1][0] == 0          # not yet
    k.clock.wait_until(t0 + 100 * MS)
    k.run_callouts()
    e, rv = abi.kevent(l, kq, buf)
    assert rv[0] == 1
    ident, filt, flags, fflags, data, udata = abi.events(l, buf, 1)[0]
    assert (ident, filt, data, udata) == (7, EVFILT_TIMER, 1, 42)
    assert flags & EV_CLEAR                           # implied for relative timers
    assert abi.kevent(l, kq, buf)[1][0] == 0
    # periodic: two more periods, counted in data
    for _ in range(2):
        k.clock.wait_until(k.callout.next_deadline())
        k.run_callouts()
    abi.kevent(l, kq, buf)
    assert abi.events(l, buf, 1)[0][4] == 2
    # delete: no more expiries
    e, rv = abi.kevent(l, kq, buf, [(7, EVFILT_TIMER, EV_DELETE)])
    assert e == 0 and k.callout.next_deadline() is None


def test_timer_oneshot_and_units(kl):
    k, l, buf = kl
    abi = ABIS[0]
    kq = ok(l, "kqueue")[0]
    t0 = k.clock.monotonic_ns()
    abi.kevent(l, kq, buf, [(1, EVFILT_TIMER, EV_ADD | EV_ONESHOT, NOTE_SECONDS, 2)])
    assert k.callout.next_deadline() == t0 + 2 * 10**9
    k.clock.wait_until(t0 + 2 * 10**9)
    k.run_callouts()
    assert abi.kevent(l, kq, buf)[1][0] == 1
    assert k.callout.next_deadline() is None          # not re-armed
    e, rv = abi.kevent(l, kq, buf, [(1, EVFILT_TIMER, EV_DELETE)])
    assert rv[0] == 1 and abi.events(l, buf, 1)[0][4] == Errno.ENOENT   # gone
    e, rv = abi.kevent(l, kq, buf, [(2, EVFILT_TIMER, EV_ADD, 0, 0)])
    assert rv[0] == 1 and abi.events(l, buf, 1)[0][4] == Errno.EINVAL   # zero period


@pytest.mark.parametrize("abi", ABIS, ids=["kevent100", "kevent50"])
def test_change_errors_in_eventlist(kl, abi):
    k, l, buf = kl
    kq = ok(l, "kqueue")[0]
    e, rv = abi.kevent(l, kq, buf, [(0, EVFILT_READ, EV_DELETE, 0, 0, 99),
                                    (12345, EVFILT_READ, EV_ADD),
                                    (5, EVFILT_TIMER, EV_DELETE),
                                    (1, 77, EV_ADD)])
    assert e == 0 and rv[0] == 4
    evs = abi.events(l, buf, 4)
    assert [(ev[0], ev[2], ev[4]) for ev in evs] == [
        (0, EV_ERROR, Errno.ENOENT), (12345, EV_ERROR, Errno.EBADF),
        (5, EV_ERROR, Errno.ENOENT), (1, EV_ERROR, Errno.EINVAL)]
    assert evs[0][5] == 99                            # udata kept
    # no room in the eventlist: the error is the call's
    e, rv = abi.kevent(l, kq, buf, [(0, EVFILT_READ, EV_DELETE)], nevents=0)
    assert e == Errno.ENOENT
    # EV_RECEIPT: success reported too, with data 0
    e, rv = abi.kevent(l, kq, buf, [(9, EVFILT_USER, EV_ADD | EV_RECEIPT)])
    assert rv[0] == 1 and abi.events(l, buf, 1)[0][2:5] == (EV_ERROR, 0, 0)


def test_kevent_argument_errors(kl):
    k, l, buf = kl
    abi = ABIS[0]
    kq = ok(l, "kqueue")[0]
    assert abi.kevent(l, 0, buf)[0] == Errno.EBADF          # not a kqueue
    assert abi.kevent(l, 99, buf)[0] == Errno.EBADF
    assert abi.kevent(l, kq, buf, timeout=(0, 10**9))[0] == Errno.EINVAL
    assert abi.kevent(l, kq, buf, timeout=(-1, 0))[0] == Errno.EINVAL
    assert err(l, "__kevent100", kq, BAD, 1, buf, 1, 0) == Errno.EFAULT
    assert err(l, "__kevent100", kq, 0, 0, buf, 1, BAD) == Errno.EFAULT
    assert err(l, "read", kq, buf, 1) == Errno.ENXIO


def test_user_event_as_go_uses_it(kl):
    """runtime/netpoll_kqueue_event.go: EV_ADD|EV_CLEAR once, NOTE_TRIGGER to wake."""
    k, l, buf = kl
    abi = ABIS[1]                                     # Go calls slot 435
    kq = ok(l, "kqueue")[0]
    ident = 0xEE1EB9F4
    e, rv = abi.kevent(l, kq, buf, [(ident, EVFILT_USER, EV_ADD | EV_CLEAR)], nevents=0,
                       timeout=None)
    assert e == 0 and rv[0] == 0
    assert abi.kevent(l, kq, buf)[1][0] == 0          # not triggered by EV_ADD
    abi.kevent(l, kq, buf, [(ident, EVFILT_USER, 0, NOTE_TRIGGER)], nevents=0, timeout=None)
    e, rv = abi.kevent(l, kq, buf)
    assert rv[0] == 1 and abi.events(l, buf, 1)[0][:2] == (ident, EVFILT_USER)
    assert abi.kevent(l, kq, buf)[1][0] == 0          # EV_CLEAR
    # fflags control and data
    abi.kevent(l, kq, buf, [(ident, EVFILT_USER, 0, NOTE_TRIGGER | NOTE_FFCOPY | 0x5, 77)],
               nevents=0)
    abi.kevent(l, kq, buf)
    assert abi.events(l, buf, 1)[0][3:5] == (0x5, 77)


def test_disable_enable(kl):
    k, l, buf = kl
    abi = ABIS[0]
    kq = ok(l, "kqueue")[0]
    abi.kevent(l, kq, buf, [(3, EVFILT_USER, EV_ADD)])
    abi.kevent(l, kq, buf, [(3, EVFILT_USER, EV_DISABLE, NOTE_TRIGGER)], nevents=0)
    assert abi.kevent(l, kq, buf)[1][0] == 0
    abi.kevent(l, kq, buf, [(3, EVFILT_USER, EV_ENABLE)], nevents=0)
    assert abi.kevent(l, kq, buf)[1][0] == 1


def test_blocking_kevent_woken_by_pipe_write(kl):
    k, l, buf = kl
    abi = ABIS[0]
    kq = ok(l, "kqueue")[0]
    r, w = _pipe(l, buf)
    abi.kevent(l, kq, buf, [(r, EVFILT_READ, EV_ADD)], nevents=0)
    gen, rv = abi.kevent(l, kq, buf, timeout=None)    # wait forever
    assert hasattr(gen, "send") and l.l_stat == LSSLEEP
    l2 = second_lwp(k, l)
    ok(l2, "write", w, buf + 0x9000, 3)
    assert l.l_stat == LSRUN
    assert resume(k, l, gen) == 0 and rv[0] == 1
    assert abi.events(l, buf, 1)[0][:2] == (r, EVFILT_READ)


def test_blocking_kevent_times_out(kl):
    k, l, buf = kl
    abi = ABIS[1]
    kq = ok(l, "kqueue")[0]
    t0 = k.clock.monotonic_ns()
    gen, rv = abi.kevent(l, kq, buf, timeout=(0, 50 * MS))
    assert hasattr(gen, "send") and l.l_stat == LSSLEEP
    assert k.callout.next_deadline() == t0 + 50 * MS
    k.clock.wait_until(t0 + 50 * MS)
    k.run_callouts()
    assert l.l_stat == LSRUN and l.l_sleeperr == Errno.EWOULDBLOCK
    assert resume(k, l, gen) == 0 and rv[0] == 0


def test_blocking_kevent_woken_by_timer_and_user_trigger(kl):
    k, l, buf = kl
    abi = ABIS[0]
    kq = ok(l, "kqueue")[0]
    abi.kevent(l, kq, buf, [(1, EVFILT_TIMER, EV_ADD, 0, 10)], nevents=0)
    gen, rv = abi.kevent(l, kq, buf, timeout=None)
    k.clock.wait_until(k.callout.next_deadline())
    k.run_callouts()
    assert resume(k, l, gen) == 0 and rv[0] == 1
    abi.kevent(l, kq, buf, [(1, EVFILT_TIMER, EV_DELETE), (2, EVFILT_USER, EV_ADD | EV_CLEAR)],
               nevents=0)
    gen, rv = abi.kevent(l, kq, buf, timeout=(5, 0))
    l2 = second_lwp(k, l)
    e, _ = abi.kevent(l2, kq, buf + 0x10000, [(2, EVFILT_USER, 0, NOTE_TRIGGER)], nevents=0)
    assert e == 0 and l.l_stat == LSRUN
    assert resume(k, l, gen) == 0 and rv[0] == 1
    assert k.callout.next_deadline() is None          # the kevent timeout was cancelled


def test_interrupted_kevent(kl):
    k, l, buf = kl
    kq = ok(l, "kqueue")[0]
    gen, rv = ABIS[0].kevent(l, kq, buf, timeout=None)
    from nbemu.syscalls.kern_sleepq import sleepq_abort_interruptible
    assert sleepq_abort_interruptible(k, l, Errno.EINTR)
    assert resume(k, l, gen) == Errno.EINTR


def test_close_drops_knotes_and_kqueue1(kl):
    k, l, buf = kl
    abi = ABIS[0]
    kq = ok(l, "kqueue1", O_CLOEXEC)[0]
    assert ok(l, "fcntl", kq, F_GETFD)[0] == FD_CLOEXEC
    r, w = _pipe(l, buf)
    abi.kevent(l, kq, buf, [(r, EVFILT_READ, EV_ADD), (w, EVFILT_WRITE, EV_ADD)], nevents=0)
    kqo = fd_getfile(l.l_proc, kq).f_kqueue
    assert len(kqo.kq_knotes) == 2
    ok(l, "close", r)
    assert list(kqo.kq_knotes) == [(w, EVFILT_WRITE)]
    e, rv = abi.kevent(l, kq, buf, [(r, EVFILT_READ, EV_ADD)])
    assert rv[0] == 1 and abi.events(l, buf, 1)[0][4] == Errno.EBADF
    abi.kevent(l, kq, buf, [(5, EVFILT_TIMER, EV_ADD, 0, 1000)], nevents=0)
    assert k.callout.next_deadline() is not None
    ok(l, "close", kq)                                 # closing the kqueue stops its timers
    assert k.callout.next_deadline() is None
    assert not l.l_proc.p_fd.fd_knlist


def test_kevent_on_regular_file_and_stdout(kl, tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    k, l = make_kernel(root=str(tmp_path))
    buf = scratch(l, 0x100000)
    abi = ABIS[0]
    l.l_proc.p_vmspace.copyout(b"/f\0", buf + 0x9000)
    fd = ok(l, "open", buf + 0x9000, 0, 0)[0]
    kq = ok(l, "kqueue")[0]
    e, rv = abi.kevent(l, kq, buf, [(fd, EVFILT_READ, EV_ADD), (fd, EVFILT_WRITE, EV_ADD)])
    assert rv[0] == 2
    evs = {ev[1]: ev for ev in abi.events(l, buf, 2)}
    assert evs[EVFILT_READ][4] == 3                   # bytes left to read
    ok(l, "read", fd, buf + 0x9000, 3)
    e, rv = abi.kevent(l, kq, buf)
    assert rv[0] == 1 and abi.events(l, buf, 1)[0][1] == EVFILT_WRITE


def test_adding_a_timer_ends_the_running_slice(kl):
    """A timer's attach arms a callout while a slice runs; one that began with
    nothing pending is not cut by the ticker, so the attach ends it (as
    setitimer does): the next slice is cut in time for the expiry."""
    k, l, buf = kl
    abi = KeventABI(True)
    kq = ok(l, "kqueue")[0]
    stops = k.platform.stops
    abi.kevent(l, kq, buf, [(1, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 0, 5)], nevents=0)
    assert k.platform.stops > stops


@pytest.mark.parametrize("arch", ARCHES)
def test_a_polled_timer_fires(arch):
    """kq_timer_poll: the process's only LWP polls the queue with a zero timeout
    and makes no other call; its 1 ms timer still fires."""
    r = run_nbemu(build_c("kq_timer_poll", arch), timeout=120)
    assert r.returncode == 0 and r.stdout.endswith("PASS\n"), r.stdout + r.stderr[-2000:]

