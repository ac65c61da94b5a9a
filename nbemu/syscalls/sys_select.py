"""Synchronous I/O multiplexing (NetBSD's sys/kern/sys_select.c): poll,
__pollts50, __select50 and __pselect50 over the descriptors' fo_poll.

Model
-----
sel_do_scan() scans every descriptor (selscan for select's three fd_sets,
pollscan for an array of struct pollfd); if nothing is ready and time is left
it sleeps interruptibly, then scans again. NetBSD's fo_poll records the
sleeper on each object's selinfo (selrecord) and the object's selnotify wakes
it. nbemu's objects already publish their changes on the lists their knotes
hang on (a pipe's pipe_sel, a kqueue's kq_sel; kern_event.knote()), so the
scan's "selrecord" is a watcher knote on those lists (fo_kqfilter attaches
it) whose event function wakes the selecting LWP and never activates.

Host descriptors (ttys, host pipes and sockets: HostFile) cannot notify; while
one is polled a waiting scan wakes every HOSTPOLL_NS to ask again, as kevent
does, and their readiness goes through hostinput.host_input ("ready"), so
--record / --replay see the same answers.

Details kept from NetBSD 10:
- select: nd < 0 is EINVAL; nd larger than the descriptor table (dt_nfiles)
  is cut to it; a set bit naming a closed descriptor is EBADF; the ready count
  counts each (descriptor, set) pair; the sets are copied back only on success.
  Readiness per set: fo_poll(POLLRDNORM|POLLHUP|POLLERR), (POLLWRNORM|POLLHUP|
  POLLERR), (POLLRDBAND).
- poll: nfds above RLIMIT_NOFILE's hard limit + 1000 is EINVAL; fd < 0 is
  skipped (revents 0), a closed fd gets POLLNVAL (and counts); fo_poll is
  asked for events|POLLERR|POLLHUP; the array is copied back only on success.
- Timeouts (itimespecfix): a negative time or a bad tv_nsec / tv_usec is
  EINVAL (poll: any timeout below -1 ms = INFTIM); below one tick rounds up
  to a tick; the deadline is taken on the kernel clock at the start and the
  call returns 0 when it passes (no last scan).
- pselect / pollts with a mask: the mask applies during the call as
  sigsuspend's does (sigsuspendsetup / teardown: a signal caught during the
  call is delivered with the old mask restored by its handler's return).
- A signal ends the wait with EINTR: select and poll are never restarted.
"""
from __future__ import annotations

import struct
from typing import Any, Generator

from .cstruct import TIMEVAL, CStruct
from .errno import Errno, KernErrno
from .hostinput import HOSTPOLL_NS
from .kern_tc import TICK_NS
from .kern_descrip import RLIMIT_NOFILE, fd_getfile
from .kern_event import EVFILT_READ, EVFILT_WRITE, Filterops, Kevent, Knote
from .kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue, sleepq_wake
from .kern_sig import sigsuspendsetup, sigsuspendteardown
from .kern_time import copyin_timespec
from .lwp import Lwp
from .poll import INFTIM, POLLERR, POLLHUP, POLLNVAL, POLLRDBAND, POLLRDNORM, POLLWRNORM
from .table import syscall

POLLFD = CStruct("pollfd", [("int", "fd"), ("short", "events"), ("short", "revents")])
NFDBITS = 32                    # bits of __fd_mask (uint32_t)
NDFILE = 20                     # the descriptor table's first size (sys/filedesc.h)
_NS = 1_000_000_000

SEL_FLAGS = (POLLRDNORM | POLLHUP | POLLERR, POLLWRNORM | POLLHUP | POLLERR, POLLRDBAND)


# -- selrecord: watchers on the objects' notification lists -----------------------------
class SelRecords:
    """The watchers one scan registered; wake(l) on any change of their objects."""

    def __init__(self, l: Lwp) -> None:
        self.l = l
        self.knotes: list[tuple[Knote, Filterops]] = []
        self.files: set[int] = set()
        self.hostpoll = False

    def record(self, fp: Any) -> None:
        if id(fp) in self.files:
            return
        self.files.add(id(fp))
        if fp.hostfd is not None:
            self.hostpoll = True
            return
        l = self.l
        wchan = ("select", l.l_proc.p_pid, l.l_lid)
        k = l.l_proc.k

        def wake(kn: Knote, hint: int) -> bool:
            sleepq_wake(k, wchan)
            return False                    # never activates: there is no kqueue

        for filt in (EVFILT_READ, EVFILT_WRITE):
            kn = Knote(None, Kevent(0, filt, 0), fp, _NOFOP)  # type: ignore[arg-type]
            if fp.fo_kqfilter(kn) != 0:
                continue
            orig = kn.kn_fop
            kn.kn_fop = Filterops(True, None, None, wake)
            self.knotes.append((kn, orig))

    def clear(self) -> None:
        """selclear(): detach every watcher."""
        for kn, orig in self.knotes:
            if orig.detach is not None:
                orig.detach(kn)
        self.knotes.clear()
        self.files.clear()


_NOFOP = Filterops(True, None, None, lambda kn, hint: False)


# -- scans ---------------------------------------------------------------------------------
def selscan(l: Lwp, ibits: list[int], nfd: int, rec: SelRecords | None
            ) -> tuple[int, list[int], int]:
    """(errno, out words: in, ou, ex, ready count). ibits: the three input
    sets, nwords words each, one after the other."""
    p = l.l_proc
    nw = (nfd + NFDBITS - 1) // NFDBITS
    obits = [0] * (3 * nw)
    n = 0
    for msk in range(3):
        for w in range(nw):
            bits = ibits[msk * nw + w]
            while bits:
                j = (bits & -bits).bit_length() - 1
                bits &= bits - 1
                fd = w * NFDBITS + j
                if fd >= nfd:
                    break
                fp = fd_getfile(p, fd)
                if fp is None:
                    return Errno.EBADF, obits, 0
                if fp.fo_poll(SEL_FLAGS[msk]):
                    obits[msk * nw + w] |= 1 << j
                    n += 1
                elif rec is not None:
                    rec.record(fp)
    return 0, obits, n


def pollscan(l: Lwp, fds: list[list[int]], rec: SelRecords | None) -> int:
    """Fill revents of each [fd, events, revents]; the ready count."""
    p = l.l_proc
    n = 0
    for pfd in fds:
        fd, events = pfd[0], pfd[1]
        if fd < 0:
            revents = 0
        else:
            fp = fd_getfile(p, fd)
            if fp is None:
                revents = POLLNVAL
            else:
                revents = fp.fo_poll((events & 0xFFFF) | POLLERR | POLLHUP)
                if not revents and rec is not None:
                    rec.record(fp)
        pfd[2] = revents
        if revents:
            n += 1
    return n


def itimespecfix(ts: tuple[int, int]) -> tuple[int, int] | None:
    sec, nsec = ts
    if sec < 0 or nsec < 0 or nsec >= _NS:
        return None
    if sec == 0 and 0 < nsec < TICK_NS:
        nsec = TICK_NS
    return sec, nsec


def sel_do_scan(l: Lwp, scan, ts: tuple[int, int] | None) -> Generator[Any, int, tuple[int, int]]:
    """The scan / sleep loop: (errno, ready count). scan(rec) -> (errno, count)."""
    k = l.l_proc.k
    deadline = None
    if ts is not None:
        fixed = itimespecfix(ts)
        if fixed is None:
            return Errno.EINVAL, 0
        deadline = k.clock.monotonic_ns() + fixed[0] * _NS + fixed[1]
    rec = SelRecords(l)
    error = n = 0
    try:
        while True:
            rec.clear()
            error, n = scan(rec)
            if error or n:
                break
            now = k.clock.monotonic_ns()
            if deadline is not None and deadline <= now:
                break
            wake_at = deadline
            if rec.hostpoll:
                wake_at = now + HOSTPOLL_NS if deadline is None else min(deadline, now + HOSTPOLL_NS)
            sleepq_enqueue(k, l, ("select", l.l_proc.p_pid, l.l_lid), "select", sleep_syncobj,
                           True)
            error = yield from sleepq_block(k, l, None, wake_at)
            if error == Errno.EWOULDBLOCK:
                error = 0
                if deadline is not None and k.clock.monotonic_ns() >= deadline:
                    break                       # the time is up: 0, no last scan
                continue                        # time to look at host descriptors again
            if error:
                break
    finally:
        rec.clear()
    if error == KernErrno.ERESTART:
        error = Errno.EINTR                     # select and poll are not restarted
    return error, n


# -- signal masks of pselect / pollts (kern_sig.sigsuspendsetup / sigsuspendteardown) -------
def _copyin_sigmask(l: Lwp, va: int) -> tuple[int, int, int, int] | int:
    data = l.l_proc.p_vmspace.copyin(va, 16)
    if isinstance(data, int):
        return data
    return struct.unpack("<4I", data)


# -- select ------------------------------------------------------------------------------------
def _dt_nfiles(l: Lwp) -> int:
    fdp = l.l_proc.p_fd
    n = len(fdp.fd_ofiles) if fdp is not None else 0
    nf = NDFILE
    while nf < n:
        nf *= 2
    return nf


def selcommon(l: Lwp, retval: list[int], nd: int, u_in: int, u_ou: int, u_ex: int,
              ts: tuple[int, int] | None, mask: tuple | None) -> Generator[Any, int, int]:
    if nd < 0:
        return Errno.EINVAL
    nd = min(nd, _dt_nfiles(l))                 # forgiving; slightly wrong (NetBSD)
    nw = (nd + NFDBITS - 1) // NFDBITS
    ni = nw * 4
    vm = l.l_proc.p_vmspace
    ibits: list[int] = []
    for u in (u_in, u_ou, u_ex):
        if u and ni:
            data = vm.copyin(u, ni)
            if isinstance(data, int):
                return data
            ibits.extend(struct.unpack(f"<{nw}I", data))
        else:
            ibits.extend([0] * nw)
    out: list[list[int]] = [[]]

    def scan(rec):
        error, obits, n = selscan(l, ibits, nd, rec)
        out[0] = obits
        return error, n

    if mask is not None:
        sigsuspendsetup(l, mask)
    error, n = yield from sel_do_scan(l, scan, ts)
    if mask is not None:
        sigsuspendteardown(l)
    if error:
        return error
    retval[0] = n
    obits = out[0] or [0] * (3 * nw)
    for i, u in enumerate((u_in, u_ou, u_ex)):
        if u and ni:
            error = vm.copyout(struct.pack(f"<{nw}I", *obits[i * nw:(i + 1) * nw]), u)
            if error:
                return error
    return 0


@syscall(417, "__select50")
def sys___select50(l: Lwp, a, retval: list[int]) -> Generator:
    ts = None
    if a.tv:
        lay = TIMEVAL.on(l.l_proc.k.abi)
        data = l.l_proc.p_vmspace.copyin(a.tv, lay.size)
        if isinstance(data, int):
            return data
        sec, usec = lay.unpack(data)
        if usec < 0 or usec >= 1_000_000:
            return Errno.EINVAL
        ts = (sec, usec * 1000)
    return (yield from selcommon(l, retval, a.nd, getattr(a, "in"), a.ou, a.ex, ts, None))


def _copyin_ts_mask(l: Lwp, tsp: int, maskp: int, layout: str = "ts"
                    ) -> tuple[Any, Any] | int:
    """pselect/pollts: the timeout (None: wait forever; layout "ts50": NetBSD
    5's timespec, compat_50) and the signal mask to wait with (None: keep the
    current one), or an errno."""
    ts = mask = None
    if tsp:
        ts = copyin_timespec(l, tsp, layout)
        if isinstance(ts, int):
            return ts
    if maskp:
        mask = _copyin_sigmask(l, maskp)
        if isinstance(mask, int):
            return mask
    return ts, mask


@syscall(436, "__pselect50")
def sys___pselect50(l: Lwp, a, retval: list[int]) -> Generator:
    got = _copyin_ts_mask(l, a.ts, a.mask)
    if isinstance(got, int):
        return got
    ts, mask = got
    return (yield from selcommon(l, retval, a.nd, getattr(a, "in"), a.ou, a.ex, ts, mask))


# -- poll ------------------------------------------------------------------------------------------
def pollcommon(l: Lwp, retval: list[int], u_fds: int, nfds: int, ts: tuple[int, int] | None,
               mask: tuple | None) -> Generator[Any, int, int]:
    p = l.l_proc
    from .kern_resource import _limits
    if nfds > _limits(p)[RLIMIT_NOFILE][1] + 1000:
        return Errno.EINVAL
    lay = POLLFD.on(p.k.abi)
    ni = nfds * lay.size
    vm = p.p_vmspace
    data = vm.copyin(u_fds, ni) if ni else b""
    if isinstance(data, int):
        return data
    fds = [list(lay.unpack_from(data, i * lay.size)) for i in range(nfds)]
    if mask is not None:
        sigsuspendsetup(l, mask)
    error, n = yield from sel_do_scan(l, lambda rec: (0, pollscan(l, fds, rec)), ts)
    if mask is not None:
        sigsuspendteardown(l)
    if error:
        return error
    retval[0] = n
    if ni:
        error = vm.copyout(b"".join(lay.pack(*f) for f in fds), u_fds)
    return error


@syscall(209, "poll")
def sys_poll(l: Lwp, a, retval: list[int]) -> Generator:
    ts = None
    if a.timeout != INFTIM:
        t = a.timeout
        sec = abs(t) // 1000 * (1 if t >= 0 else -1)       # C division truncates
        ts = (sec, (t - sec * 1000) * 1_000_000)
    return (yield from pollcommon(l, retval, a.fds, a.nfds, ts, None))


@syscall(437, "__pollts50")
def sys___pollts50(l: Lwp, a, retval: list[int]) -> Generator:
    got = _copyin_ts_mask(l, a.ts, a.mask)
    if isinstance(got, int):
        return got
    ts, mask = got
    return (yield from pollcommon(l, retval, a.fds, a.nfds, ts, mask))
