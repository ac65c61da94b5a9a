"""Kernel event queues (NetBSD's kern_event.c): kqueue, kqueue1, kevent in
NetBSD 10's form (__kevent100, struct kevent with ext[4]) and the compat
entry points that take the older struct kevent100 (__kevent50, slot 435,
which Go's runtime calls; and kevent, slot 345, with a timespec50 timeout).

Model
-----
A Kqueue holds knotes, one per (ident, filter) registered on it, and a
queue of the active ones (an insertion-ordered dict used as a FIFO set).
A knote's filterops decide when its event has triggered (f_event) and may
intercept registration and retrieval (f_touch, for timers and user events).
Knotes on descriptors (EVFILT_READ / EVFILT_WRITE) are attached by the
file's fo_kqfilter to the object's notification list (a pipe's pipe_sel, a
kqueue's kq_sel) and are also listed per descriptor in the Filedesc
(fd_knlist), so that close() detaches them (knote_fdclose).

An object whose state changes calls knote(list, hint): each knote whose
filter now reports true is activated, i.e. queued on its kqueue, and LWPs
sleeping in kevent on that kqueue (wait channel: the Kqueue) are woken.

kevent() first applies the changelist (errors are reported in the eventlist
as EV_ERROR entries when there is room, as NetBSD does; if any was reported
the call returns their number without scanning), then scans: it takes queued
knotes in order, re-checks the level-triggered ones, and applies EV_ONESHOT /
EV_CLEAR / EV_DISPATCH. With nothing queued it sleeps interruptibly until a
knote activates or the timeout (NULL: forever; zero: poll) expires.

Host descriptors give no notification: knotes on them (filterops with
hostpoll) are re-evaluated at every scan, and a scan that waits while such
knotes exist wakes every HOSTPOLL_NS to look again.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Generator

from nbemu.plain import ValueRecord

from . import upcall
from .cstruct import KEVENT, KEVENT100, Layout
from .errno import Errno, KernErrno
from .hostinput import HOSTPOLL_NS   # how often a waiting scan re-polls host fds
from .poll import POLLIN, POLLRDNORM
from .kern_descrip import (DTYPE_KQUEUE, FNONBLOCK, FNOSIGPIPE, FREAD, FWRITE, O_CLOEXEC,
                           S_IFIFO, S_IRUSR, S_IWUSR, File, NbStat, fd_affix, fd_alloc,
                           fd_getfile)
from .kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue, sleepq_wake
from .kern_tc import TICK_NS as HZ_TICK_NS   # one hardclock tick: the shortest timer
from .kern_time import copyin_timespec
from .lwp import Lwp, Proc
from .table import syscall
from .vfs_lookup import VDIR, VREG

# -- sys/event.h ------------------------------------------------------------------
EVFILT_READ, EVFILT_WRITE, EVFILT_AIO, EVFILT_VNODE, EVFILT_PROC = 0, 1, 2, 3, 4
EVFILT_SIGNAL, EVFILT_TIMER, EVFILT_FS, EVFILT_USER, EVFILT_EMPTY = 5, 6, 7, 8, 9

EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE = 0x0001, 0x0002, 0x0004, 0x0008
EV_ONESHOT, EV_CLEAR, EV_RECEIPT, EV_DISPATCH = 0x0010, 0x0020, 0x0040, 0x0080
EV_SYSFLAGS, EV_FLAG1, EV_EOF, EV_ERROR = 0xF000, 0x2000, 0x8000, 0x4000

NOTE_FFNOP, NOTE_FFAND, NOTE_FFOR, NOTE_FFCOPY = 0, 0x40000000, 0x80000000, 0xC0000000
NOTE_FFCTRLMASK, NOTE_FFLAGSMASK, NOTE_TRIGGER = 0xC0000000, 0x00FFFFFF, 0x01000000
NOTE_MSECONDS, NOTE_SECONDS, NOTE_USECONDS, NOTE_NSECONDS = 0, 1, 2, 3
NOTE_TIMER_UNITMASK, NOTE_ABSTIME = 0x3, 0x10

KN_ACTIVE, KN_QUEUED, KN_DISABLED, KN_DETACHED = 0x01, 0x02, 0x04, 0x08
KN_WILLDETACH = 0x40

EVENT_REGISTER, EVENT_PROCESS = 1, 2
INT_MAX = 0x7FFFFFFF
KQ_NEVENTS = 8                       # changes fetched per copyin, as kevent1 does

class Kevent:
    """A struct kevent (either layout; kevent100 has no ext)."""
    __slots__ = ("ident", "filter", "flags", "fflags", "data", "udata", "ext")

    def __init__(self, ident: int = 0, filter: int = 0, flags: int = 0, fflags: int = 0,
                 data: int = 0, udata: int = 0, ext: tuple = (0, 0, 0, 0)) -> None:
        self.ident, self.filter, self.flags, self.fflags = ident, filter, flags, fflags
        self.data, self.udata, self.ext = data, udata, ext

    def copy(self) -> "Kevent":
        return Kevent(self.ident, self.filter, self.flags, self.fflags, self.data,
                      self.udata, self.ext)

    # lay: the layout of struct kevent (NetBSD 10, with ext[4]) or of struct
    # kevent100 (NetBSD 5..9, without) on the running port (syscalls/cstruct.py).
    @classmethod
    def unpack(cls, raw: bytes, off: int, lay: Layout) -> "Kevent":
        v = lay.unpack_from(raw, off)
        return cls(*v[:6], tuple(v[6:]) or (0, 0, 0, 0))

    def pack(self, lay: Layout, new: bool) -> bytes:
        wmask = (1 << 8 * lay.word_size) - 1             # uintptr_t ident, void *udata
        f = (self.ident & wmask, self.filter & 0xFFFFFFFF, self.flags & 0xFFFFFFFF,
             self.fflags & 0xFFFFFFFF, self.data, self.udata & wmask)
        return lay.pack(*f, *self.ext) if new else lay.pack(*f)

    def __repr__(self) -> str:
        return (f"<kevent ident={self.ident} filter={self.filter} flags={self.flags:#x} "
                f"fflags={self.fflags:#x} data={self.data}>")


class Filterops(ValueRecord):
    """struct filterops. attach / detach / touch may be None; `event` returns
    whether the event has triggered. `hostpoll`: readiness comes from a host
    descriptor, so scans re-evaluate the knote themselves."""
    _fields = ("isfd", "attach", "detach", "event", "touch", "hostpoll")

    def __init__(self, isfd: bool, attach: Callable[[Knote], int] | None,
                 detach: Callable[[Knote], None] | None, event: Callable[[Knote, int], bool],
                 touch: Callable[[Knote, Kevent, int], int] | None = None,
                 hostpoll: bool = False) -> None:
        self.isfd = isfd
        self.attach = attach
        self.detach = detach
        self.event = event
        self.touch = touch
        self.hostpoll = hostpoll


class Knote:
    """struct knote. kn_kevent is the event as registered (what a scan
    reports); kn_sfflags / kn_sdata keep the registration's fflags / data."""
    __slots__ = ("kn_kq", "kn_kevent", "kn_sfflags", "kn_sdata", "kn_status", "kn_fop",
                 "kn_obj", "kn_hook", "kn_hookid")

    def __init__(self, kq: "Kqueue", kev: Kevent, obj: File | None, fop: Filterops) -> None:
        self.kn_kq = kq
        self.kn_sfflags = kev.fflags
        self.kn_sdata = kev.data
        kev.fflags = 0
        kev.data = 0
        self.kn_kevent = kev.copy()
        self.kn_status = 0
        self.kn_fop = fop
        self.kn_obj = obj
        self.kn_hook: Any = None
        self.kn_hookid = 0

    # the kn_* shorthands of sys/event.h
    kn_id = property(lambda self: self.kn_kevent.ident)
    kn_filter = property(lambda self: self.kn_kevent.filter)

    @property
    def kn_flags(self) -> int:
        return self.kn_kevent.flags

    @kn_flags.setter
    def kn_flags(self, v: int) -> None:
        self.kn_kevent.flags = v

    @property
    def kn_fflags(self) -> int:
        return self.kn_kevent.fflags

    @kn_fflags.setter
    def kn_fflags(self, v: int) -> None:
        self.kn_kevent.fflags = v

    @property
    def kn_data(self) -> int:
        return self.kn_kevent.data

    @kn_data.setter
    def kn_data(self, v: int) -> None:
        self.kn_kevent.data = v

    def __repr__(self) -> str:
        return f"<knote {self.kn_id}/{self.kn_filter} status={self.kn_status:#x}>"


class Kqueue:
    """struct kqueue."""

    def __init__(self, k, p: Proc) -> None:
        self.kq_k = k
        self.kq_proc = p
        self.kq_queue: dict[Knote, None] = {}          # active knotes, FIFO
        self.kq_knotes: dict[tuple[int, int], Knote] = {}
        self.kq_sel: list[Knote] = []                  # knotes watching this kqueue

    @property
    def kq_count(self) -> int:
        return len(self.kq_queue)


# -- knote state changes ------------------------------------------------------------
def _kq_wakeup(kq: Kqueue) -> None:
    sleepq_wake(kq.kq_k, kq)
    if kq.kq_sel:
        knote(kq.kq_sel, 0)


def knote_activate(kn: Knote) -> None:
    """The event triggered: mark active and queue it unless disabled."""
    if kn.kn_status & (KN_WILLDETACH | KN_DETACHED):
        return
    kn.kn_status |= KN_ACTIVE
    if not kn.kn_status & (KN_QUEUED | KN_DISABLED):
        kn.kn_status |= KN_QUEUED
        kn.kn_kq.kq_queue[kn] = None
        _kq_wakeup(kn.kn_kq)


def knote_enqueue(kn: Knote) -> None:
    """EV_ENABLE: clear KN_DISABLED, queue the knote if it is active."""
    if kn.kn_status & (KN_WILLDETACH | KN_DETACHED):
        return
    kn.kn_status &= ~KN_DISABLED
    if kn.kn_status & (KN_ACTIVE | KN_QUEUED) == KN_ACTIVE:
        kn.kn_status |= KN_QUEUED
        kn.kn_kq.kq_queue[kn] = None
        _kq_wakeup(kn.kn_kq)


def knote_deactivate(kn: Knote) -> None:
    if kn.kn_status & KN_QUEUED:
        kn.kn_status &= ~KN_QUEUED
        kn.kn_kq.kq_queue.pop(kn, None)
    kn.kn_status &= ~KN_ACTIVE


def knote_set_eof(kn: Knote, flags: int) -> None:
    kn.kn_flags |= EV_EOF | flags


def knote(klist: list[Knote], hint: int) -> None:
    """An object changed: activate each of its knotes whose event now holds."""
    for kn in list(klist):
        if kn.kn_fop.event(kn, hint):
            knote_activate(kn)


def knote_detach(kn: Knote, dofop: bool = True) -> None:
    """Remove kn from its object (dofop), its kqueue and the descriptor table."""
    kq = kn.kn_kq
    kn.kn_status |= KN_WILLDETACH
    if dofop and kn.kn_fop.detach is not None:
        kn.kn_fop.detach(kn)
    kq.kq_knotes.pop((kn.kn_id, kn.kn_filter), None)
    if kn.kn_fop.isfd:
        fdp = kq.kq_proc.p_fd
        lst = fdp.fd_knlist.get(kn.kn_id) if fdp is not None else None
        if lst is not None and kn in lst:
            lst.remove(kn)
            if not lst:
                del fdp.fd_knlist[kn.kn_id]
    if kn.kn_status & KN_QUEUED:
        kq.kq_queue.pop(kn, None)
    kn.kn_status = (kn.kn_status & ~(KN_QUEUED | KN_ACTIVE)) | KN_DETACHED


def knote_fdclose(p: Proc, fd: int) -> None:
    """close(fd): drop every knote registered on that descriptor."""
    for kn in list(p.p_fd.fd_knlist.get(fd, ())):
        knote_detach(kn, True)
    p.p_fd.fd_knlist.pop(fd, None)


# -- EVFILT_TIMER ----------------------------------------------------------------------
def filt_timercompute(k, kev: Kevent) -> tuple[int, int | None]:
    """(errno, ns until the first expiry; None: fire now). Sets kev.data to the
    period in ns (None: no repeat) and EV_CLEAR on relative timers."""
    if kev.fflags & ~(NOTE_TIMER_UNITMASK | NOTE_ABSTIME):
        return Errno.EINVAL, None
    scale = {NOTE_SECONDS: 10**9, NOTE_MSECONDS: 10**6, NOTE_USECONDS: 10**3,
             NOTE_NSECONDS: 1}[kev.fflags & NOTE_TIMER_UNITMASK]
    ns = kev.data * scale
    if kev.fflags & NOTE_ABSTIME:
        now = k.clock.realtime_ns()          # NetBSD: absolute timers are CLOCK_REALTIME
        kev.data = None                      # absolute timers do not repeat
        if ns <= now:
            return 0, None
        ns -= now
    else:
        kev.flags |= EV_CLEAR                # implied for relative timers
    if ns <= 0:
        if kev.data == 0:
            return Errno.EINVAL, None
        ns = HZ_TICK_NS                      # under the resolution: one tick
    if kev.flags & EV_ONESHOT:
        kev.data = None
    else:
        kev.data = ns
    return 0, ns


def filt_timerexpire(kn: Knote) -> None:
    """Callout: one more expiry; re-arm a periodic timer."""
    kn.kn_hook = None
    kn.kn_data += 1
    knote_activate(kn)
    if kn.kn_sdata is not None and not kn.kn_status & (KN_WILLDETACH | KN_DETACHED):
        k = kn.kn_kq.kq_k
        kn.kn_hook = k.callout.schedule(k.clock.monotonic_ns() + kn.kn_sdata,
                                        filt_timerexpire, kn)


def filt_timerstart(kn: Knote, ns: int | None) -> None:
    if ns is None:
        kn.kn_data = 1
    else:
        k = kn.kn_kq.kq_k
        kn.kn_hook = k.callout.schedule(k.clock.monotonic_ns() + ns, filt_timerexpire, kn)
        # The running slice may have started without a pending timeout (its
        # LWP alone, unpreemptible): end it, so that the next one is cut in
        # time for the expiry -- a program polling the queue with a zero
        # timeout would otherwise never see the timer (as dosetitimer does).
        k.platform.request_stop()


def filt_timerattach(kn: Knote) -> int:
    kev = Kevent(flags=kn.kn_flags, fflags=kn.kn_sfflags, data=kn.kn_sdata)
    error, ns = filt_timercompute(kn.kn_kq.kq_k, kev)
    if error:
        return error
    kn.kn_sdata = kev.data
    kn.kn_flags = kev.flags
    filt_timerstart(kn, ns)
    return 0


def filt_timerdetach(kn: Knote) -> None:
    kn.kn_sdata = None                       # no re-arming from here on
    kn.kn_kq.kq_k.callout.stop(kn.kn_hook)
    kn.kn_hook = None


def filt_timertouch(kn: Knote, kev: Kevent, type: int) -> int:
    if type == EVENT_REGISTER:
        if not kev.flags & EV_ADD:
            return 0
        kn.kn_kq.kq_k.callout.stop(kn.kn_hook)     # re-configured: forget the old one
        kn.kn_hook = None
        knote_deactivate(kn)
        kn.kn_data = 0
        error, ns = filt_timercompute(kn.kn_kq.kq_k, kev)
        if error:
            return error
        kn.kn_sdata = kev.data
        kn.kn_flags = kev.flags
        kn.kn_sfflags = kev.fflags
        filt_timerstart(kn, ns)
        return 0
    _copy_into(kev, kn.kn_kevent)
    return 0


def filt_timer(kn: Knote, hint: int) -> bool:
    return kn.kn_data != 0


timer_filtops = Filterops(False, filt_timerattach, filt_timerdetach, filt_timer,
                          filt_timertouch)


# -- EVFILT_USER -------------------------------------------------------------------------
def filt_userattach(kn: Knote) -> int:
    # kn_fflags is the registered event's fflags, zeroed at registration: a new
    # EVFILT_USER knote is never triggered by its EV_ADD (NetBSD's behaviour).
    kn.kn_hookid = 1 if kn.kn_fflags & NOTE_TRIGGER else 0
    return 0


def filt_user(kn: Knote, hint: int) -> bool:
    return bool(kn.kn_hookid)


def filt_usertouch(kn: Knote, kev: Kevent, type: int) -> int:
    if type == EVENT_REGISTER:
        if kev.fflags & NOTE_TRIGGER:
            kn.kn_hookid = 1
        ffctrl = kev.fflags & NOTE_FFCTRLMASK
        kev.fflags &= NOTE_FFLAGSMASK
        if ffctrl == NOTE_FFAND:
            kn.kn_sfflags &= kev.fflags
        elif ffctrl == NOTE_FFOR:
            kn.kn_sfflags |= kev.fflags
        elif ffctrl == NOTE_FFCOPY:
            kn.kn_sfflags = kev.fflags
        kn.kn_sdata = kev.data
        if kev.flags & EV_CLEAR:
            kn.kn_hookid = 0
            kn.kn_data = 0
            kn.kn_fflags = 0
        return 0
    _copy_into(kev, kn.kn_kevent)
    kev.fflags = kn.kn_sfflags
    kev.data = kn.kn_sdata
    if kn.kn_flags & EV_CLEAR:
        kn.kn_hookid = 0
        kn.kn_data = 0
        kn.kn_fflags = 0
    return 0


user_filtops = Filterops(False, filt_userattach, None, filt_user, filt_usertouch)


def _copy_into(dst: Kevent, src: Kevent) -> None:
    for f in Kevent.__slots__:
        setattr(dst, f, getattr(src, f))


# -- EVFILT_READ / EVFILT_WRITE on host-backed vnodes -------------------------------------
def _host_offset(fp) -> int:
    try:
        return os.lseek(fp.hostfd, 0, os.SEEK_CUR)
    except OSError:
        return 0


def filt_vnread(kn: Knote, hint: int) -> bool:
    """Regular files and directories: data = bytes past the offset (ready when
    non-zero, as genfs does); ttys, FIFOs, sockets: the host says."""
    fp = kn.kn_obj
    if fp.v_type in (VREG, VDIR):
        try:
            size = os.fstat(fp.hostfd).st_size
        except OSError:
            return True
        kn.kn_data = size - (fp._dirpos if fp.is_dir else _host_offset(fp))
        return kn.kn_data != 0
    kn.kn_data = 0
    return fp._ready(False)


def filt_vnwrite(kn: Knote, hint: int) -> bool:
    fp = kn.kn_obj
    kn.kn_data = 0
    if fp.v_type in (VREG, VDIR):
        return True
    return fp._ready(True)


host_rfiltops = Filterops(True, None, None, filt_vnread, hostpoll=True)
host_wfiltops = Filterops(True, None, None, filt_vnwrite, hostpoll=True)


def vnode_kqfilter(fp: File, kn: Knote) -> int:
    """fo_kqfilter of HostFile (vfs_syscalls.py)."""
    if kn.kn_filter == EVFILT_READ:
        kn.kn_fop = host_rfiltops
    elif kn.kn_filter == EVFILT_WRITE:
        kn.kn_fop = host_wfiltops
    else:
        return Errno.EINVAL
    return 0


# -- the kqueue file -----------------------------------------------------------------------
def filt_kqdetach(kn: Knote) -> None:
    kq = kn.kn_obj.f_kqueue
    if kn in kq.kq_sel:
        kq.kq_sel.remove(kn)


def filt_kqueue(kn: Knote, hint: int) -> bool:
    kn.kn_data = kn.kn_obj.f_kqueue.kq_count
    return kn.kn_data > 0


kqread_filtops = Filterops(True, None, filt_kqdetach, filt_kqueue)


class KqueueFile(File):
    f_type = DTYPE_KQUEUE

    def __init__(self, kq: Kqueue, flag: int) -> None:
        super().__init__(flag, "kqueue")
        self.f_kqueue = kq

    def fo_read(self, l: Lwp, uio) -> int:
        return Errno.ENXIO

    def fo_write(self, l: Lwp, uio) -> int:
        return Errno.ENXIO

    def fo_fcntl(self, cmd: int, arg: Any) -> int:
        return Errno.ENOTTY

    def fo_poll(self, events: int) -> int:
        return events & (POLLIN | POLLRDNORM) if self.f_kqueue.kq_count else 0

    def fo_stat(self, l: Lwp) -> NbStat:
        return NbStat(st_mode=S_IFIFO | S_IRUSR | S_IWUSR, st_size=self.f_kqueue.kq_count,
                      st_blksize=KEVENT.on(self.f_kqueue.kq_k.abi).size, st_blocks=1,
                      st_uid=os.geteuid(), st_gid=os.getegid())

    def fo_kqfilter(self, kn: Knote) -> int:
        if kn.kn_filter != EVFILT_READ:
            return Errno.EINVAL
        kn.kn_fop = kqread_filtops
        self.f_kqueue.kq_sel.append(kn)
        return 0

    def fo_close(self) -> int:
        """kqueue_close: detach every knote of this kqueue."""
        kq = self.f_kqueue
        for kn in list(kq.kq_knotes.values()):
            knote_detach(kn, True)
        assert not kq.kq_queue
        return 0


# -- registration ----------------------------------------------------------------------------
_FILTERS: dict[int, Filterops | None] = {
    EVFILT_READ: None, EVFILT_WRITE: None,       # per file type: fo_kqfilter chooses
    EVFILT_TIMER: timer_filtops,
    EVFILT_USER: user_filtops,
}
_FD_FILTEROPS = Filterops(True, None, None, lambda kn, hint: False)


def kqueue_register(kq: Kqueue, kev: Kevent) -> int:
    """Apply one change (EV_ADD / EV_DELETE / EV_ENABLE / EV_DISABLE)."""
    p = kq.kq_proc
    if kev.filter not in _FILTERS:
        return Errno.EINVAL
    fop = _FILTERS[kev.filter] or _FD_FILTEROPS
    fp = None
    if fop.isfd:
        if kev.ident > INT_MAX:
            return Errno.EBADF
        fp = fd_getfile(p, kev.ident)
        if fp is None:
            return Errno.EBADF
    kn = kq.kq_knotes.get((kev.ident, kev.filter))
    if kn is None:
        if not kev.flags & EV_ADD:
            return Errno.ENOENT
        kn = Knote(kq, kev, fp, fop)
        kq.kq_knotes[(kev.ident, kev.filter)] = kn
        if fop.isfd:
            p.p_fd.fd_knlist.setdefault(kev.ident, []).append(kn)
            error = fp.fo_kqfilter(kn)              # sets kn_fop  # type: ignore[union-attr]
        else:
            error = fop.attach(kn) if fop.attach else 0
        if error:
            knote_detach(kn, False)
            return error
    elif kev.flags & EV_DELETE:
        knote_detach(kn, True)
        return 0
    else:
        kn.kn_kevent.udata = kev.udata
        if not kn.kn_fop.isfd and kn.kn_fop.touch is not None:
            error = kn.kn_fop.touch(kn, kev, EVENT_REGISTER)
            if error:
                return error
        else:
            kn.kn_sfflags = kev.fflags
            kn.kn_sdata = kev.data
    if kn.kn_fop.event(kn, 0):
        knote_activate(kn)
    if kev.flags & EV_DISABLE:
        kn.kn_status |= KN_DISABLED
    if kev.flags & EV_ENABLE:
        knote_enqueue(kn)
    return 0


# -- scanning ---------------------------------------------------------------------------------
def kqueue_hostpoll(kq: Kqueue) -> int:
    """Re-evaluate knotes on host descriptors; how many there are."""
    n = 0
    for kn in list(kq.kq_knotes.values()):
        if kn.kn_fop.hostpoll:
            n += 1
            if not kn.kn_status & KN_QUEUED and kn.kn_fop.event(kn, 0):
                knote_activate(kn)
    return n


def kqueue_scan(l: Lwp, kq: Kqueue, maxevents: int, deadline: int | None, poll: bool
                ) -> Generator[Any, int, tuple[int, list[Kevent]]]:
    """Collect up to maxevents events, sleeping (interruptibly) while none is
    queued: until `deadline` (monotonic ns; None: forever), or not at all
    (`poll`). Returns (errno, events)."""
    k = kq.kq_k
    out: list[Kevent] = []
    while True:
        nhost = kqueue_hostpoll(kq)
        if not kq.kq_queue:
            now = k.clock.monotonic_ns()
            if poll or (deadline is not None and now >= deadline):
                return 0, out
            wake_at = deadline
            if nhost:
                wake_at = min(deadline if deadline is not None else now + HOSTPOLL_NS,
                              now + HOSTPOLL_NS)
            sleepq_enqueue(k, l, kq, "kqueue", sleep_syncobj, True)
            error = yield from sleepq_block(k, l, None, wake_at)
            if error == Errno.EWOULDBLOCK:
                continue                     # timed out (or time to re-poll the host)
            if error:
                return (Errno.EINTR if error == KernErrno.ERESTART else error), out
            continue
        for kn in list(kq.kq_queue):
            if len(out) >= maxevents:
                break
            del kq.kq_queue[kn]
            kn.kn_status &= ~KN_QUEUED
            if kn.kn_status & KN_DISABLED:
                continue
            if not kn.kn_flags & EV_ONESHOT and not kn.kn_fop.event(kn, 0):
                kn.kn_status &= ~KN_ACTIVE   # level-triggered and no longer true
                continue
            fop = kn.kn_fop
            if not fop.isfd and fop.touch is not None:
                kev = Kevent()
                fop.touch(kn, kev, EVENT_PROCESS)
            else:
                kev = kn.kn_kevent.copy()
            out.append(kev)
            if kn.kn_flags & EV_ONESHOT:
                knote_detach(kn, True)
            elif kn.kn_flags & EV_CLEAR:
                kn.kn_data = 0
                kn.kn_fflags = 0
                kn.kn_status &= ~KN_ACTIVE
            elif kn.kn_flags & EV_DISPATCH:
                kn.kn_status = (kn.kn_status | KN_DISABLED) & ~KN_ACTIVE
            else:
                kn.kn_status |= KN_QUEUED    # still active: back at the tail
                kq.kq_queue[kn] = None
        if out:
            return 0, out
        # everything queued was stale: wait again


def kevent1(l: Lwp, fd: int, changelist: int, nchanges: int, eventlist: int, nevents: int,
            timeout: int, new: bool, ts50: bool = False) -> Generator[Any, int, tuple[int, int]]:
    """The common body of the kevent calls: (errno, number of events)."""
    p = l.l_proc
    vm = p.p_vmspace
    fp = fd_getfile(p, fd)
    if fp is None or fp.f_type != DTYPE_KQUEUE:
        return Errno.EBADF, 0
    ts = None
    if timeout:
        ts = copyin_timespec(l, timeout, "ts50" if ts50 else "ts")
        if isinstance(ts, int):
            return ts, 0
    kq: Kqueue = fp.f_kqueue  # type: ignore[attr-defined]
    lay = (KEVENT if new else KEVENT100).on(p.k.abi)
    size = lay.size
    nerrors = 0
    done = 0
    while done < nchanges:
        n = min(nchanges - done, KQ_NEVENTS)
        raw = vm.copyin(changelist + done * size, n * size)
        if isinstance(raw, int):
            return raw, 0
        for i in range(n):
            kev = Kevent.unpack(raw, i * size, lay)
            kev.flags &= ~EV_SYSFLAGS
            error = kqueue_register(kq, kev)
            if not error and not kev.flags & EV_RECEIPT:
                continue
            if nevents == 0:
                return error, 0
            kev.flags = EV_ERROR
            kev.data = error
            error = vm.copyout(kev.pack(lay, new), eventlist + nerrors * size)
            if error:
                return error, 0
            nevents -= 1
            nerrors += 1
        done += n
    if nerrors:
        return 0, nerrors
    if nevents == 0:
        return 0, 0
    poll = False
    deadline = None
    if ts is not None:
        sec, nsec = ts
        if sec < 0 or not 0 <= nsec < 10**9:
            return Errno.EINVAL, 0
        if sec == 0 and nsec == 0:
            poll = True
        else:
            deadline = p.k.clock.monotonic_ns() + sec * 10**9 + nsec
    error, events = yield from kqueue_scan(l, kq, min(nevents, 1 << 20), deadline, poll)
    if events:
        e2 = vm.copyout(b"".join(e.pack(lay, new) for e in events), eventlist)
        if e2:
            return e2, 0
    return error, len(events)


# -- system calls ---------------------------------------------------------------------------------
def kqueue1(l: Lwp, flags: int, retval: list[int]) -> int:
    p = l.l_proc
    error, fd = fd_alloc(p, 0)
    if error:
        return error
    fp = KqueueFile(Kqueue(p.k, p), FREAD | FWRITE | (flags & (FNONBLOCK | FNOSIGPIPE)))
    fd_affix(p, fp, fd, bool(flags & O_CLOEXEC))
    retval[0] = fd
    return 0


@syscall(344, "kqueue")
def sys_kqueue(l: Lwp, a, retval: list[int]) -> int:
    return kqueue1(l, 0, retval)


@syscall(455, "kqueue1")
def sys_kqueue1(l: Lwp, a, retval: list[int]) -> int:
    return kqueue1(l, a.flags, retval)


def _kevent(l: Lwp, a, retval: list[int], new: bool, ts50: bool = False) -> Generator:
    error, n = yield from kevent1(l, a.fd, a.changelist, a.nchanges, a.eventlist, a.nevents,
                                  a.timeout, new, ts50)
    if not error:
        retval[0] = n
    return error


@syscall(501, "__kevent100")
def sys___kevent100(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _kevent(l, a, retval, True))


@syscall(435, "compat_100___kevent50")
def compat_100_sys___kevent50(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _kevent(l, a, retval, False))


@syscall(345, "compat_50_kevent")
def compat_50_sys_kevent(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _kevent(l, a, retval, False, ts50=True))


upcall.knote_fdclose = knote_fdclose     # for kern_descrip's fd_close
