"""Opening a FIFO (NetBSD's miscfs/fifofs/fifo_vnops.c, fifo_open) without
blocking the emulator.

NetBSD's fifo_open counts the readers and writers of each FIFO; a blocking
open for reading sleeps (interruptibly: cv_wait_sig) until there is a writer or
something to read, a blocking open for writing until there is a reader; with
O_NONBLOCK the read side succeeds at once and the write side fails with ENXIO
when nobody reads. O_RDWR never waits.

Here the FIFO is a host FIFO, and the host's open(2) would block the one host
thread every LWP runs on. So the host open is always non-blocking, and the
waiting is the LWP's: it sleeps on the FIFO's wait channel for at most
HOSTPOLL_NS, then asks again. Openers in this kernel are counted per host
(st_dev, st_ino), as NetBSD's fi_readers / fi_writers, and wake each other at
once; openers in other host processes are seen by polling: a writer appears to
a waiting reader when it writes or closes (Linux cannot tell a reader that a
silent writer holds the FIFO open), a reader to a waiting writer as soon as it
opens (the non-blocking O_WRONLY open then succeeds).

Record/replay: the host's answers (data ready, a write open possible) go
through host_input("ready").
"""
from __future__ import annotations

import os
import select
from typing import Any, Callable, Generator

from .errno import Errno, from_host
from .hostinput import HOSTPOLL_NS, host_input
from .kern_descrip import FNONBLOCK, FREAD, FWRITE, FMASK, File, fd_affix, fd_alloc
from .kern_sleepq import kpause, sleepq_wake
from .lwp import Lwp
from .vfs_lookup import proc_fd

# HostFile(hfd, f_flag, name, owns_fd=, guest_path=): the vnode file of vfs_syscalls
VnFile = Callable[..., File]


class FifoCounts:
    """fifoinfo's fi_readers / fi_writers for one host FIFO."""
    __slots__ = ("readers", "writers")

    def __init__(self) -> None:
        self.readers = 0
        self.writers = 0


def _fifos(k: Any) -> dict[tuple, FifoCounts]:
    return k.fifo_opens


class FifoHold:
    """What one open file adds to its FIFO's counts; dropped when it closes."""
    __slots__ = ("k", "key", "rd", "wr")

    def __init__(self, k: Any, key: tuple, rd: bool, wr: bool) -> None:
        self.k, self.key, self.rd, self.wr = k, key, rd, wr
        c = _fifos(k).setdefault(key, FifoCounts())
        c.readers += rd
        c.writers += wr
        sleepq_wake(k, key)                  # openers waiting for a partner look again

    def drop(self) -> None:
        reg = _fifos(self.k)
        c = reg.get(self.key)
        if c is None:
            return
        c.readers -= self.rd
        c.writers -= self.wr
        self.rd = self.wr = False
        if c.readers <= 0 and c.writers <= 0:
            del reg[self.key]


def _host_readable(fd: int) -> bool:
    """Data, or a writer that came and went (POLLHUP), on the host FIFO."""
    try:
        r, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(r)


def fifo_open(l: Lwp, vp: int, st: os.stat_result, hflags: int, flags: int, name: str,
              comps: list[bytes], cloexec: bool, retval: list[int],
              vnfile: VnFile
              ) -> int | Generator[str, int, int]:
    """Open the FIFO held on vp (an O_PATH descriptor this call owns) with the
    host flags hflags and NetBSD f_flag flags; installs the file and sets
    retval[0]. A generator when it may have to wait. vnfile makes the open file
    (vfs_syscalls' HostFile: the vnode fileops sit above this module)."""
    k = l.l_proc.k
    key = ("fifo", st.st_dev, st.st_ino)
    c = _fifos(k).get(key)
    rd, wr = bool(flags & FREAD), bool(flags & FWRITE)
    nonblock = bool(flags & FNONBLOCK)
    hflags |= os.O_NONBLOCK

    def try_open() -> tuple[int, int]:
        try:
            return 0, os.open(proc_fd(vp), hflags)
        except OSError as e:
            return from_host(e.errno or Errno.EIO), -1

    if rd or (c is not None and c.readers):
        # The read side, O_RDWR, or a writer with a reader here: the host agrees at once.
        error, hfd = try_open()
        if error or not rd or wr or nonblock or (c is not None and c.writers):
            os.close(vp)
            return _finish(l, error, hfd, key, rd, wr, flags, name, comps, cloexec, retval, vnfile)
        return _wait_writer(l, vp, hfd, key, flags, name, comps, cloexec, retval, vnfile)
    # the write side: a host reader lets the open succeed; none here
    error, hfd = _try_write(try_open)
    if error != Errno.ENXIO or nonblock:
        os.close(vp)
        return _finish(l, error, hfd, key, rd, wr, flags, name, comps, cloexec, retval, vnfile)
    return _wait_reader(l, vp, try_open, key, flags, name, comps, cloexec, retval, vnfile)


def _try_write(try_open: Any) -> tuple[int, int]:
    """A non-blocking write open: ENXIO while nobody reads. Its outcome is a host
    input; a replay makes the same open live and keeps the logged verdict."""
    got: list[int] = []

    def fn() -> int:
        error, hfd = try_open()
        if not error:
            got.append(hfd)
        return error
    error = host_input("ready", fn)            # (the log knows no "fifo" kind)
    if not error and not got:                # replaying: open it for real now
        error, hfd = try_open()
        return error, hfd
    if error and got:                        # replaying a wait the host no longer has
        os.close(got.pop())
    return error, (got[0] if got else -1)


def _wait_writer(l: Lwp, vp: int, hfd: int, key: tuple, flags: int, name: str,
                 comps: list[bytes], cloexec: bool, retval: list[int],
                 vnfile: VnFile
                 ) -> Generator[str, int, int]:
    """A blocking read open: counted as a reader now (writers may come), then
    sleep until a writer opens here, or data or a hang-up shows on the host."""
    k = l.l_proc.k
    hold = FifoHold(k, key, True, False)
    try:
        while True:
            c = _fifos(k).get(key)
            if (c is not None and c.writers) or host_input(
                    "ready", lambda: _host_readable(hfd)):
                break
            error = yield from kpause(k, l, "fifoor", True, HOSTPOLL_NS, wchan=key)
            if error not in (0, Errno.EWOULDBLOCK):
                hold.drop()
                os.close(hfd)
                return error
    finally:
        os.close(vp)
    hold.drop()
    return _finish(l, 0, hfd, key, True, False, flags, name, comps, cloexec, retval, vnfile)


def _wait_reader(l: Lwp, vp: int, try_open: Any, key: tuple, flags: int, name: str,
                 comps: list[bytes], cloexec: bool, retval: list[int],
                 vnfile: VnFile
                 ) -> Generator[str, int, int]:
    """A blocking write open: sleep until a reader opens (here: woken at once;
    in another process: seen at the next poll)."""
    k = l.l_proc.k
    try:
        while True:
            error, hfd = _try_write(try_open)
            if error != Errno.ENXIO:
                break
            error = yield from kpause(k, l, "fifoow", True, HOSTPOLL_NS, wchan=key)
            if error not in (0, Errno.EWOULDBLOCK):
                return error
    finally:
        os.close(vp)
    return _finish(l, error, hfd, key, False, True, flags, name, comps, cloexec, retval, vnfile)


def _finish(l: Lwp, error: int, hfd: int, key: tuple, rd: bool, wr: bool, flags: int,
            name: str, comps: list[bytes], cloexec: bool, retval: list[int],
            vnfile: VnFile) -> int:
    """Install the opened FIFO in the lowest free slot (taken now: other LWPs
    may have opened files while this one slept)."""
    if error:
        return error
    p = l.l_proc
    error, fd = fd_alloc(p, 0)
    if error:
        os.close(hfd)
        return error
    # The host descriptor stays O_NONBLOCK: HostFile._fifo_read/_fifo_write wait.
    fp = vnfile(hfd, flags & FMASK, name, owns_fd=True, guest_path=comps)
    fp.fifo_hold = FifoHold(p.k, key, rd, wr)
    fd_affix(p, fp, fd, cloexec)
    retval[0] = fd
    return 0
