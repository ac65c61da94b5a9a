"""POSIX message queues (NetBSD's sys/kern/sys_mqueue.c): mq_open, mq_close,
mq_unlink, mq_getattr, mq_setattr, mq_notify, mq_send, mq_receive,
__mq_timedsend50 and __mq_timedreceive50 of librt.

Model (NetBSD 10)
-----------------
- A queue (Mqueue, mqueue_t) has a name (any non-empty string: the kernel
  does not ask for a leading '/'; at most KERNEL_NAME_MAX - 1 = 254 bytes, a
  longer one is ENAMETOOLONG), its struct mq_attr (mq_flags holds the open
  flags of its creator masked with O_MASK, O_NONBLOCK included, plus the
  kernel's MQ_UNLINKED / MQ_RECEIVE bits), mode and owner, a reference count
  and 1 + MQ_PQSIZE lists of messages: one FIFO per priority, received highest
  priority first. Priorities are below mq_prio_max (MQ_PRIO_MAX = 32: EINVAL
  otherwise), so the reserved sorted list (MQ_PQRESQ, for a raised sysctl
  limit) stays empty here.
- Each mq_open gives a descriptor of type DTYPE_MQUEUE (mqd_t is that number)
  whose f_flag is FFLAGS(oflag) & (FREAD|FWRITE); sending needs FWRITE and
  receiving FREAD (EBADF otherwise, as for any descriptor of another type).
  mq_close is close(2). A process may hold mq_open_max = 512 of them (EMFILE).
  mq_unlink (by the owner or the superuser: EACCES) takes the name away, wakes
  every waiter and leaves the queue to its last close.
- Creation: O_EXEC is EINVAL; with O_CREAT an attribute structure (if given)
  needs 0 < mq_maxmsg <= mq_max_maxmsg (512) and 0 < mq_msgsize <=
  mq_max_msgsize (16384), else EINVAL; without one the queue holds
  mq_def_maxmsg (32) messages of MQ_DEF_MSGSIZE (1024) - sizeof(struct mq_msg)
  bytes (992 on LP64 ports, 1004 on ILP32). An existing queue: O_EXCL is
  EEXIST, otherwise read/write permission per the open mode (EACCES); a
  missing one without O_CREAT is ENOENT. The mode is kept as given
  (& ALLPERMS & ~S_ISTXT; nbemu keeps no umask).
- mq_send: priority >= MQ_PRIO_MAX is EINVAL; a message whose size with the
  kernel's header exceeds mq_max_msgsize, an empty one or one longer than the
  queue's mq_msgsize is EMSGSIZE. A full queue is EAGAIN under O_NONBLOCK,
  otherwise the sender sleeps interruptibly (a signal: EINTR, or ERESTART for
  an SA_RESTART handler); an unlink during the sleep ends the call with 0 and
  the message dropped, as NetBSD's code does.
- mq_receive: a buffer shorter than mq_msgsize is EMSGSIZE; an empty queue is
  EAGAIN under O_NONBLOCK, otherwise the receiver sleeps (MQ_RECEIVE set
  meanwhile); a signal or an unlink ends that sleep with EINTR (never
  restarted). Each send wakes one receiver, each receive one sender.
- Timed variants: an absolute CLOCK_REALTIME deadline, converted with ts2timo
  on the kernel clock (virtual under --deterministic) before each sleep: a
  deadline already past is ETIMEDOUT, a bad tv_nsec EINVAL, but only when the
  call has to wait; the end of the sleep's time is ETIMEDOUT.
- mq_notify: a SIGEV_SIGNAL event needs 0 < sigev_signo < NSIG (EINVAL); one
  registration per queue (EBUSY for any other, even by the same process);
  NULL removes it. A message arriving on an empty queue with no receiver
  waiting posts the signal (si_code SI_MESGQ, si_value sigev_value) to the
  registered process and removes the registration.
- mq_setattr changes O_NONBLOCK only and returns the old attributes.
- poll/select: readable when messages are queued, writable while the queue is
  not full. kevent cannot watch a queue (NetBSD 10's fnullop_kqfilter:
  EOPNOTSUPP).
"""
from __future__ import annotations

from typing import Generator

from .cstruct import CStruct
from .errno import Errno
from .kern_descrip import (FREAD, FWRITE, FFLAGS, O_ACCMODE, O_APPEND, O_ASYNC, O_CLOEXEC, O_CREAT,
                           O_DIRECT, O_DIRECTORY, O_DSYNC, O_EXCL, O_EXLOCK, O_NOCTTY, O_NOFOLLOW,
                           O_NONBLOCK, O_NOSIGPIPE, O_RSYNC, O_SHLOCK, O_SYNC, O_TRUNC, O_ALT_IO,
                           File, NbStat, fd_affix, fd_alloc, fd_close, fd_getfile)
from .kern_event import Filterops, Knote, knote
from .kern_prot import kauth_suser, proc_cred
from .kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue, sleepq_wake
from .kern_time import CLOCK_REALTIME, TIMER_ABSTIME, copyin_timespec
from .lwp import Lwp, Proc
from .poll import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM
from .signals import NSIG
from .table import syscall

DTYPE_MQUEUE = 7                    # sys/file.h
MQ_OPEN_MAX = 512                   # sys/mqueue.h
MQ_PRIO_MAX = 32
MQ_DEF_MSGSIZE = 1024
MQ_PQSIZE = 32
MQ_UNLINKED = 0x10000000
MQ_RECEIVE = 0x20000000
KERNEL_NAME_MAX = 255               # sys/param.h
MQ_NAMELEN = KERNEL_NAME_MAX + 1
mq_open_max = MQ_OPEN_MAX           # the sysctl defaults of sys_mqueue.c
mq_prio_max = MQ_PRIO_MAX
mq_max_msgsize = 16 * MQ_DEF_MSGSIZE
mq_def_maxmsg = 32
mq_max_maxmsg = 16 * 32
O_REGULAR, O_EXEC = 0x02000000, 0x04000000
O_MASK = (O_ACCMODE | O_NONBLOCK | O_APPEND | O_SHLOCK | O_EXLOCK | O_ASYNC | O_SYNC | O_CREAT
          | O_TRUNC | O_EXCL | O_DSYNC | O_RSYNC | O_NOCTTY | O_ALT_IO | O_NOFOLLOW | O_DIRECT
          | O_DIRECTORY | O_CLOEXEC | O_NOSIGPIPE | O_REGULAR | O_EXEC)
ALLPERMS, S_ISTXT = 0o7777, 0o1000
S_IRUSR, S_IWUSR, S_IRGRP, S_IWGRP, S_IROTH, S_IWOTH = 0o400, 0o200, 0o040, 0o020, 0o004, 0o002
SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD = 0, 1, 2

MQ_ATTR = CStruct("mq_attr", [("long", "mq_flags"), ("long", "mq_maxmsg"), ("long", "mq_msgsize"),
                              ("long", "mq_curmsgs")])
SIGEVENT = CStruct("sigevent", [("int", "sigev_notify"), ("int", "sigev_signo"),
                                ("ptr", "sigev_value"), ("ptr", "sigev_notify_function"),
                                ("ptr", "sigev_notify_attributes")])
# struct mq_msg: TAILQ_ENTRY, msg_len, msg_prio, msg_ptr[1] (its size is charged to each message)
MQ_MSG = CStruct("mq_msg", [("ptr", "tqe_next"), ("ptr", "tqe_prev"), ("size_t", "msg_len"),
                            ("u_int", "msg_prio"), ("uint8", "msg_ptr", 1)])


class Mqueue:
    """mqueue_t."""

    def __init__(self, name: bytes, attr: list[int], mode: int, uid: int, gid: int,
                 now: int) -> None:
        self.mq_name = name
        self.mq_attrib = attr               # [flags, maxmsg, msgsize, curmsgs]
        self.mq_mode = mode
        self.mq_euid = uid
        self.mq_egid = gid
        self.mq_refcnt = 1
        self.mq_head: list[list[tuple[bytes, int]]] = [[] for _ in range(1 + MQ_PQSIZE)]
        self.mq_notify_proc: Proc | None = None
        self.mq_sig_notify: tuple[int, int, int] = (0, 0, 0)   # notify, signo, value
        self.mq_sel: list[Knote] = []       # select/poll watchers (mq_rsel + mq_wsel)
        self.mq_atime = self.mq_mtime = self.mq_btime = now

    def __repr__(self) -> str:
        return f"<mqueue {self.mq_name!r} attr={self.mq_attrib} ref={self.mq_refcnt}>"


class MqState:
    """The module's globals (mqueue_head, each process's p_mqueue_cnt), per kernel."""

    def __init__(self) -> None:
        self.mqueue_head: dict[bytes, Mqueue] = {}
        self.mqueue_cnt: dict[int, int] = {}


def _state(k) -> MqState:
    if k.mqueue_state is None:
        k.mqueue_state = MqState()
    return k.mqueue_state


def _wchan_send(mq: Mqueue) -> tuple:
    return ("mqsendcv", id(mq))             # receivers wait here for a send


def _wchan_recv(mq: Mqueue) -> tuple:
    return ("mqrecvcv", id(mq))             # senders wait here for a receive


def _selnotify(mq: Mqueue) -> None:
    knote(mq.mq_sel, 0)


class MqueueFile(File):
    """A DTYPE_MQUEUE descriptor (mqops)."""
    f_type = DTYPE_MQUEUE

    def __init__(self, k, p: Proc, flag: int, mq: Mqueue | None = None) -> None:
        super().__init__(flag, "mq")
        self.k = k
        self.p = p
        self.f_mqueue = mq
        cred = proc_cred(p)
        self.f_uid, self.f_gid = cred.cr_euid, cred.cr_egid

    def fo_ioctl(self, l: Lwp, com: int, data: bytearray) -> int:
        return Errno.EOPNOTSUPP             # fbadop_ioctl

    def fo_poll(self, events: int) -> int:
        attr = self.f_mqueue.mq_attrib
        rev = 0
        if events & (POLLIN | POLLRDNORM) and attr[3]:
            rev |= events & (POLLIN | POLLRDNORM)
        if events & (POLLOUT | POLLWRNORM) and attr[3] < attr[1]:
            rev |= events & (POLLOUT | POLLWRNORM)
        return rev

    def fo_kqfilter(self, kn: Knote) -> int:
        if kn.kn_kq is not None:
            return Errno.EOPNOTSUPP         # fnullop_kqfilter: no kevent filters
        # select/poll's selrecord (sys_select.SelRecords): a watcher on mq_sel
        mq = self.f_mqueue
        kn.kn_fop = _mq_selops
        kn.kn_hook = mq
        mq.mq_sel.append(kn)
        return 0

    def fo_stat(self, l: Lwp) -> NbStat | int:
        mq = self.f_mqueue
        return NbStat(st_mode=mq.mq_mode, st_uid=self.f_uid, st_gid=self.f_gid,
                      st_atime_ns=mq.mq_atime, st_mtime_ns=mq.mq_mtime,
                      st_ctime_ns=mq.mq_btime, st_birthtime_ns=mq.mq_btime)

    def fo_close(self) -> int:
        """mq_close_fop: drop the reference; an unlinked queue goes with its last."""
        mq = self.f_mqueue
        mq.mq_refcnt -= 1
        if mq.mq_refcnt == 0 and mq.mq_attrib[0] & MQ_UNLINKED:
            mq.mq_head = [[] for _ in range(1 + MQ_PQSIZE)]
        cnt = _state(self.k).mqueue_cnt
        cnt[self.p.p_pid] = cnt.get(self.p.p_pid, 1) - 1
        return 0


def _mq_seldetach(kn: Knote) -> None:
    mq = kn.kn_hook
    if mq is not None and kn in mq.mq_sel:
        mq.mq_sel.remove(kn)


_mq_selops = Filterops(isfd=True, attach=None, detach=_mq_seldetach, event=lambda kn, hint: False)


def mqueue_access(l: Lwp, mq: Mqueue, fflag: int) -> int:
    """genfs_can_access on the queue's mode for the read/write of fflag."""
    cred = proc_cred(l.l_proc)
    if kauth_suser(l.l_proc):
        return 0
    if cred.cr_euid == mq.mq_euid:
        r, w = S_IRUSR, S_IWUSR
    elif cred.cr_egid == mq.mq_egid:
        r, w = S_IRGRP, S_IWGRP
    else:
        r, w = S_IROTH, S_IWOTH
    if (fflag & FREAD and not mq.mq_mode & r) or (fflag & FWRITE and not mq.mq_mode & w):
        return Errno.EACCES
    return 0


def mqueue_get(l: Lwp, mqd: int, fflag: int) -> tuple[int, Mqueue | None]:
    """The queue of descriptor mqd; EBADF for another type or a missing fflag."""
    fp = fd_getfile(l.l_proc, mqd) if -0x80000000 <= mqd <= 0x7FFFFFFF else None
    if fp is None or fp.f_type != DTYPE_MQUEUE:
        return Errno.EBADF, None
    if fflag and not fp.f_flag & fflag:
        return Errno.EBADF, None
    return 0, fp.f_mqueue  # type: ignore[attr-defined]


def _copyin_attr(l: Lwp, va: int) -> list[int] | int:
    lay = MQ_ATTR.on(l.l_proc.k.abi)
    data = l.l_proc.p_vmspace.copyin(va, lay.size)
    if isinstance(data, int):
        return data
    return list(lay.unpack(data))


def _copyout_attr(l: Lwp, attr: list[int], va: int) -> int:
    lay = MQ_ATTR.on(l.l_proc.k.abi)
    ws = 8 * lay.word_size
    vals = [((v + (1 << (ws - 1))) % (1 << ws)) - (1 << (ws - 1)) for v in attr]
    return l.l_proc.p_vmspace.copyout(lay.pack(*vals), va)


# -- open, close, unlink -------------------------------------------------------------
@syscall(257, "mq_open")
def sys_mq_open(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    k = p.k
    oflag = a.oflag
    if oflag & O_EXEC:
        return Errno.EINVAL
    attr = None
    if oflag & O_CREAT and a.attr:
        attr = _copyin_attr(l, a.attr)
        if isinstance(attr, int):
            return attr
    name = p.p_vmspace.copyinstr(a.name, MQ_NAMELEN - 1)
    if isinstance(name, int):
        return name
    name = bytes(name)
    error, mqd = fd_alloc(p, 0)
    if error:
        return error
    st = _state(k)
    if st.mqueue_cnt.get(p.p_pid, 0) + 1 > mq_open_max:
        return Errno.EMFILE
    fflag = FFLAGS(oflag) & (FREAD | FWRITE)
    mq_new = None
    if oflag & O_CREAT:                 # mqueue_create
        if not name:
            return Errno.EINVAL
        if attr is not None:
            if attr[1] <= 0 or attr[1] > mq_max_maxmsg or attr[2] <= 0 or attr[2] > mq_max_msgsize:
                return Errno.EINVAL
            attr[3] = 0
        else:
            attr = [0, mq_def_maxmsg, MQ_DEF_MSGSIZE - MQ_MSG.on(k.abi).size, 0]
        attr[0] = oflag & O_MASK
        cred = proc_cred(p)
        mq_new = Mqueue(name, attr, a.mode & ALLPERMS & ~S_ISTXT, cred.cr_euid, cred.cr_egid,
                        k.clock.realtime_ns())
    mq = st.mqueue_head.get(name)
    if mq is not None:
        if oflag & O_EXCL:
            return Errno.EEXIST
        if mqueue_access(l, mq, fflag):
            return Errno.EACCES
        mq.mq_refcnt += 1
    else:
        if mq_new is None:
            return Errno.ENOENT
        mq = mq_new
        st.mqueue_head[name] = mq
    st.mqueue_cnt[p.p_pid] = st.mqueue_cnt.get(p.p_pid, 0) + 1
    fd_affix(p, MqueueFile(k, p, fflag, mq), mqd)
    retval[0] = mqd
    return 0


@syscall(258, "mq_close")
def sys_mq_close(l: Lwp, a, retval: list[int]) -> int:
    """close(2) on the descriptor, whatever its type."""
    p = l.l_proc
    if not -0x80000000 <= a.mqdes <= 0x7FFFFFFF or fd_getfile(p, a.mqdes) is None:
        return Errno.EBADF
    return fd_close(p, a.mqdes)


@syscall(259, "mq_unlink")
def sys_mq_unlink(l: Lwp, a, retval: list[int]) -> int:
    k = l.l_proc.k
    name = l.l_proc.p_vmspace.copyinstr(a.name, MQ_NAMELEN - 1)
    if isinstance(name, int):
        return name
    st = _state(k)
    mq = st.mqueue_head.get(bytes(name))
    if mq is None:
        return Errno.ENOENT
    if proc_cred(l.l_proc).cr_euid != mq.mq_euid and not kauth_suser(l.l_proc):   # KAUTH_SYSTEM_MQUEUE
        return Errno.EACCES
    del st.mqueue_head[bytes(name)]
    if mq.mq_refcnt:
        mq.mq_attrib[0] |= MQ_UNLINKED
    sleepq_wake(k, _wchan_send(mq))
    sleepq_wake(k, _wchan_recv(mq))
    _selnotify(mq)
    return 0


# -- attributes and notification ---------------------------------------------------------
@syscall(260, "mq_getattr")
def sys_mq_getattr(l: Lwp, a, retval: list[int]) -> int:
    error, mq = mqueue_get(l, a.mqdes, 0)
    if error:
        return error
    assert mq is not None
    return _copyout_attr(l, list(mq.mq_attrib), a.mqstat)


@syscall(261, "mq_setattr")
def sys_mq_setattr(l: Lwp, a, retval: list[int]) -> int:
    attr = _copyin_attr(l, a.mqstat)
    if isinstance(attr, int):
        return attr
    nonblock = attr[0] & O_NONBLOCK
    error, mq = mqueue_get(l, a.mqdes, 0)
    if error:
        return error
    assert mq is not None
    old = list(mq.mq_attrib)
    if nonblock:
        mq.mq_attrib[0] |= O_NONBLOCK
    else:
        mq.mq_attrib[0] &= ~O_NONBLOCK
    if a.omqstat:
        return _copyout_attr(l, old, a.omqstat)
    return 0


@syscall(262, "mq_notify")
def sys_mq_notify(l: Lwp, a, retval: list[int]) -> int:
    sig = None
    if a.notification:
        lay = SIGEVENT.on(l.l_proc.k.abi)
        data = l.l_proc.p_vmspace.copyin(a.notification, lay.size)
        if isinstance(data, int):
            return data
        notify, signo, value, _, _ = lay.unpack(data)
        if notify == SIGEV_SIGNAL and not 0 < signo < NSIG:
            return Errno.EINVAL
        sig = (notify, signo, value)
    error, mq = mqueue_get(l, a.mqdes, 0)
    if error:
        return error
    assert mq is not None
    if sig is not None:
        if mq.mq_notify_proc is not None:
            return Errno.EBUSY
        mq.mq_sig_notify = sig
        mq.mq_notify_proc = l.l_proc
    else:
        mq.mq_notify_proc = None
    return 0


# -- send and receive -----------------------------------------------------------------------
def _timo(l: Lwp, ts: tuple[int, int] | None) -> tuple[int, int | None]:
    """ts2timo for one sleep: (ETIMEDOUT / EINVAL or 0, the deadline on the
    kernel's monotonic clock or None)."""
    from .kern_time import MAXTIMO_NS, ts2timo
    if ts is None:
        return 0, None
    error, rel, _ = ts2timo(l, CLOCK_REALTIME, TIMER_ABSTIME, ts, False)
    if error:
        return error, None
    return 0, l.l_proc.k.clock.monotonic_ns() + min(rel[0] * 10**9 + rel[1], MAXTIMO_NS)


def _sleep(l: Lwp, wchan: tuple, wmesg: str, deadline: int | None) -> Generator[str, int, int]:
    """cv_timedwait_sig: 0, EWOULDBLOCK at the deadline, or EINTR / ERESTART."""
    k = l.l_proc.k
    sleepq_enqueue(k, l, wchan, wmesg, sleep_syncobj, True)
    return (yield from sleepq_block(k, l, None, deadline))


def mq_send1(l: Lwp, mqdes: int, msg_ptr: int, msg_len: int, msg_prio: int,
             ts: tuple[int, int] | None) -> Generator[str, int, int]:
    from .kern_sig import SI_MESGQ, Ksiginfo, kpsignal2
    p = l.l_proc
    k = p.k
    if msg_prio >= mq_prio_max:
        return Errno.EINVAL
    if msg_len > mq_max_msgsize or MQ_MSG.on(k.abi).size + msg_len > mq_max_msgsize:
        return Errno.EMSGSIZE
    data = p.p_vmspace.copyin(msg_ptr, msg_len) if msg_len else b""
    if isinstance(data, int):
        return data
    error, mq = mqueue_get(l, mqdes, FWRITE)
    if error:
        return error
    assert mq is not None
    mq.mq_mtime = k.clock.realtime_ns()
    attr = mq.mq_attrib
    if msg_len <= 0 or msg_len > attr[2]:
        return Errno.EMSGSIZE
    while attr[3] >= attr[1]:
        if attr[0] & O_NONBLOCK:
            return Errno.EAGAIN
        error, deadline = _timo(l, ts)
        if error:
            return error
        error = yield from _sleep(l, _wchan_recv(mq), "mqsendcv", deadline)
        if error or attr[0] & MQ_UNLINKED:
            return Errno.ETIMEDOUT if error == Errno.EWOULDBLOCK else error
    mq.mq_head[MQ_PQSIZE - msg_prio].append((bytes(data), msg_prio))
    notify = None
    if attr[3] == 0 and mq.mq_notify_proc is not None and not attr[0] & MQ_RECEIVE \
            and mq.mq_sig_notify[0] == SIGEV_SIGNAL:
        notify = mq.mq_notify_proc
        mq.mq_notify_proc = None
    attr[3] += 1
    sleepq_wake(k, _wchan_send(mq), 1)                  # cv_signal(mq_send_cv)
    _selnotify(mq)
    if notify is not None:
        kpsignal2(notify, Ksiginfo(mq.mq_sig_notify[1], SI_MESGQ, value=mq.mq_sig_notify[2]))
    return 0


def mq_recv1(l: Lwp, mqdes: int, msg_ptr: int, msg_len: int, msg_prio: int,
             ts: tuple[int, int] | None, retval: list[int]) -> Generator[str, int, int]:
    p = l.l_proc
    k = p.k
    error, mq = mqueue_get(l, mqdes, FREAD)
    if error:
        return error
    assert mq is not None
    mq.mq_atime = k.clock.realtime_ns()
    attr = mq.mq_attrib
    if msg_len < attr[2]:
        return Errno.EMSGSIZE
    while attr[3] == 0:
        if attr[0] & O_NONBLOCK:
            return Errno.EAGAIN
        error, deadline = _timo(l, ts)
        if error:
            return error
        attr[0] |= MQ_RECEIVE
        error = yield from _sleep(l, _wchan_send(mq), "mqrecvcv", deadline)
        attr[0] &= ~MQ_RECEIVE
        if error or attr[0] & MQ_UNLINKED:
            return Errno.ETIMEDOUT if error == Errno.EWOULDBLOCK else Errno.EINTR
    q = next(q for q in mq.mq_head if q)
    data, prio = q.pop(0)
    attr[3] -= 1
    sleepq_wake(k, _wchan_recv(mq), 1)                  # cv_signal(mq_recv_cv)
    _selnotify(mq)
    retval[0] = len(data)
    error = p.p_vmspace.copyout(data, msg_ptr) if data else 0
    if not error and msg_prio:
        error = p.p_vmspace.copyout(prio.to_bytes(4, "little"), msg_prio)
    return error


@syscall(263, "mq_send")
def sys_mq_send(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from mq_send1(l, a.mqdes, a.msg_ptr, a.msg_len, a.msg_prio, None))


@syscall(264, "mq_receive")
def sys_mq_receive(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from mq_recv1(l, a.mqdes, a.msg_ptr, a.msg_len, a.msg_prio, None, retval))


@syscall(432, "__mq_timedsend50")
def sys___mq_timedsend50(l: Lwp, a, retval: list[int]) -> Generator:
    ts = None
    if a.abs_timeout:
        ts = copyin_timespec(l, a.abs_timeout)
        if isinstance(ts, int):
            return ts
    return (yield from mq_send1(l, a.mqdes, a.msg_ptr, a.msg_len, a.msg_prio, ts))


@syscall(433, "__mq_timedreceive50")
def sys___mq_timedreceive50(l: Lwp, a, retval: list[int]) -> Generator:
    ts = None
    if a.abs_timeout:
        ts = copyin_timespec(l, a.abs_timeout)
        if isinstance(ts, int):
            return ts
    return (yield from mq_recv1(l, a.mqdes, a.msg_ptr, a.msg_len, a.msg_prio, ts, retval))
