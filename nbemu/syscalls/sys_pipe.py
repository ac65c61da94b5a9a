"""Pipes (NetBSD's sys_pipe.c): an in-kernel buffer per pipe end, pipe(2)
and pipe2(2).

As in NetBSD, a pipe is two `Pipe` ends that are each other's pipe_peer; the
bytes written on the write end go into the buffer of its peer, the read end.
Every knote watching that buffer hangs on the read end's pipe_sel: EVFILT_READ
of the read end and EVFILT_WRITE of the write end (pipe_kqfilter attaches the
latter to pipe_peer). Sleepers use two wait channels per buffer: readers wait
for data on (pipe, "r"), writers for room on (pipe, "w").

- read: returns what is buffered (never waits once it has data), 0 at EOF
  (the write end is closed), EAGAIN if non-blocking, else sleeps
  interruptibly;
- write: EPIPE without a reader; a write of at most PIPE_BUF bytes is atomic
  (waits for room for all of it); a longer one moves what fits and waits for
  more room; EAGAIN or a short count if non-blocking.

The buffer starts at PIPE_SIZE (16 KiB) and grows to BIG_PIPE_SIZE (64 KiB)
for a large write into an empty pipe, as pipe_write's pipespace() does.
"""
from __future__ import annotations

import itertools
import os
import struct
from typing import Generator

from .errno import Errno
from .kern_descrip import (DTYPE_PIPE, FIOASYNC, FIOGETOWN, FIONBIO, FIONREAD, FIONSPACE,
                           FIONWRITE, FIOSETOWN, FNONBLOCK, FREAD, FWRITE, O_CLOEXEC,
                           O_NONBLOCK, O_NOSIGPIPE, S_IFIFO, S_IRUSR, S_IWUSR, File, NbStat,
                           fd_alloc, fd_affix, fd_close)
from .kern_event import EVFILT_READ, EVFILT_WRITE, Filterops, Knote, knote, knote_set_eof
from .kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue, sleepq_wake
from .lwp import Lwp
from .poll import POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM
from .table import syscall

PIPE_BUF = 512             # sys/syslimits.h: writes up to this size are atomic
PIPE_SIZE = 16384          # sys/pipe.h
BIG_PIPE_SIZE = 4 * PIPE_SIZE
PIPE_ASYNC = 0x001         # pipe_state bits (sys/pipe.h)
PIPE_EOF = 0x010

_pipe_ino = itertools.count(1)


class Pipe:
    """struct pipe: one end of a pipe."""

    def __init__(self, now_ns: int) -> None:
        self.pipe_buffer = bytearray()       # bytes to be read at this end
        self.pipe_size = PIPE_SIZE
        self.pipe_state = 0
        self.pipe_peer: Pipe | None = None
        self.pipe_sel: list[Knote] = []      # knotes watching this end's buffer
        self.pipe_atime = self.pipe_mtime = self.pipe_btime = now_ns
        self.pipe_ino = next(_pipe_ino)
        self.pipe_owner = 0

    @property
    def cnt(self) -> int:
        return len(self.pipe_buffer)


def pipeselwakeup(k, pipe: Pipe) -> None:
    """Something changed in pipe's buffer: wake sleepers and knotes."""
    sleepq_wake(k, (pipe, "r"))
    sleepq_wake(k, (pipe, "w"))
    knote(pipe.pipe_sel, 0)


class PipeFile(File):
    f_type = DTYPE_PIPE

    def __init__(self, k, flag: int, pipe: Pipe, name: str) -> None:
        super().__init__(flag, name)
        self.k = k
        self.f_pipe = pipe

    # -- read / write -------------------------------------------------------------
    def fo_read(self, l: Lwp, uio) -> Generator:
        rpipe = self.f_pipe
        k = self.k
        nread = 0
        error = 0
        while uio.resid:
            buf = rpipe.pipe_buffer
            if buf:
                n = uio.writable(min(uio.resid, len(buf)))
                if n == 0:
                    error = Errno.EFAULT
                    break
                uio.copyout(bytes(buf[:n]))
                del buf[:n]
                nread += n
                continue
            if nread:
                break                              # never wait once data was read
            peer = rpipe.pipe_peer
            if rpipe.pipe_state & PIPE_EOF or peer is None or peer.pipe_state & PIPE_EOF:
                break                              # EOF
            if self.f_flag & FNONBLOCK:
                error = Errno.EAGAIN
                break
            sleepq_enqueue(k, l, (rpipe, "r"), "piperd", sleep_syncobj, True)
            error = yield from sleepq_block(k, l, None)
            if error:
                break
        if nread:
            rpipe.pipe_atime = k.clock.realtime_ns()
            pipeselwakeup(k, rpipe)
        return error

    def fo_write(self, l: Lwp, uio) -> Generator:
        k = self.k
        error = 0
        while uio.resid:
            wpipe = self.f_pipe.pipe_peer          # the buffer we write into
            if wpipe is None or wpipe.pipe_state & PIPE_EOF:
                error = Errno.EPIPE
                break
            if uio.resid > PIPE_SIZE and wpipe.pipe_size <= PIPE_SIZE and not wpipe.cnt:
                wpipe.pipe_size = BIG_PIPE_SIZE
            space = wpipe.pipe_size - wpipe.cnt
            if space > 0 and (space >= uio.resid or uio.resid > PIPE_BUF):
                data, error = uio.copyin(min(space, uio.resid))
                if data:
                    wpipe.pipe_buffer += data
                    uio.advance(len(data))
                    wpipe.pipe_mtime = k.clock.realtime_ns()
                    pipeselwakeup(k, wpipe)
                if error:
                    break
                continue
            if self.f_flag & FNONBLOCK:
                error = Errno.EAGAIN
                break
            sleepq_enqueue(k, l, (wpipe, "w"), "pipewr", sleep_syncobj, True)
            error = yield from sleepq_block(k, l, None)
            if error:
                break
        return error

    # -- control ------------------------------------------------------------------
    def fo_ioctl(self, l: Lwp, com: int, data: bytearray) -> int:
        pipe = self.f_pipe
        if com == FIONBIO:
            return 0
        if com == FIOASYNC:
            on = struct.unpack_from("<i", data)[0]
            pipe.pipe_state = (pipe.pipe_state | PIPE_ASYNC) if on else (pipe.pipe_state & ~PIPE_ASYNC)
            return 0
        if com == FIONREAD:
            data[:4] = struct.pack("<i", pipe.cnt)
            return 0
        if com in (FIONWRITE, FIONSPACE):          # look at the other side
            peer = pipe.pipe_peer
            n = 0 if peer is None else (peer.cnt if com == FIONWRITE else peer.pipe_size - peer.cnt)
            data[:4] = struct.pack("<i", n)
            return 0
        if com == FIOSETOWN:
            pipe.pipe_owner = struct.unpack_from("<i", data)[0]
            return 0
        if com == FIOGETOWN:
            data[:4] = struct.pack("<i", pipe.pipe_owner)
            return 0
        return Errno.ENOTTY

    def fo_stat(self, l: Lwp) -> NbStat:
        pipe = self.f_pipe
        size = pipe.pipe_size or (pipe.pipe_peer.pipe_size if pipe.pipe_peer else 0)
        return NbStat(st_mode=S_IFIFO | S_IRUSR | S_IWUSR, st_ino=pipe.pipe_ino,
                      st_blksize=size, st_size=pipe.cnt, st_blocks=1 if pipe.cnt else 0,
                      st_atime_ns=pipe.pipe_atime, st_mtime_ns=pipe.pipe_mtime,
                      st_ctime_ns=pipe.pipe_mtime, st_birthtime_ns=pipe.pipe_btime,
                      st_uid=os.geteuid(), st_gid=os.getegid(), st_nlink=1)

    def fo_poll(self, events: int) -> int:
        pipe = self.f_pipe
        peer = pipe.pipe_peer
        rev = 0
        if events & (POLLIN | POLLRDNORM) and (pipe.cnt or pipe.pipe_state & PIPE_EOF):
            rev |= events & (POLLIN | POLLRDNORM)
        eof = pipe.pipe_state & PIPE_EOF or peer is None or peer.pipe_state & PIPE_EOF
        if events & (POLLOUT | POLLWRNORM) and (eof or peer.pipe_size - peer.cnt >= PIPE_BUF):
            rev |= events & (POLLOUT | POLLWRNORM)
        if eof:
            rev |= POLLHUP
        return rev

    def fo_kqfilter(self, kn: Knote) -> int:
        pipe = self.f_pipe
        if kn.kn_filter == EVFILT_READ:
            kn.kn_fop = pipe_rfiltops
        elif kn.kn_filter == EVFILT_WRITE:
            kn.kn_fop = pipe_wfiltops
            pipe = pipe.pipe_peer
            if pipe is None:
                return Errno.EBADF                 # the other end is closed
        else:
            return Errno.EINVAL
        kn.kn_hook = pipe
        pipe.pipe_sel.append(kn)
        return 0

    def fo_close(self) -> int:
        """pipeclose(): mark EOF on both ends, wake everyone, disconnect."""
        pipe = self.f_pipe
        pipe.pipe_state |= PIPE_EOF
        pipeselwakeup(self.k, pipe)
        peer = pipe.pipe_peer
        if peer is not None:
            peer.pipe_state |= PIPE_EOF
            peer.pipe_peer = None
            pipe.pipe_peer = None
            pipeselwakeup(self.k, peer)
        return 0


# -- kqueue filters (EV_EOF when the other end is gone) ----------------------------
def filt_pipedetach(kn: Knote) -> None:
    pipe = kn.kn_hook
    if pipe is not None and kn in pipe.pipe_sel:
        pipe.pipe_sel.remove(kn)


def filt_piperead(kn: Knote, hint: int) -> bool:
    rpipe: Pipe = kn.kn_obj.f_pipe
    wpipe = rpipe.pipe_peer
    kn.kn_data = rpipe.cnt
    if rpipe.pipe_state & PIPE_EOF or wpipe is None or wpipe.pipe_state & PIPE_EOF:
        knote_set_eof(kn, 0)
        return True
    return kn.kn_data > 0


def filt_pipewrite(kn: Knote, hint: int) -> bool:
    wpipe = kn.kn_obj.f_pipe.pipe_peer
    if wpipe is None or wpipe.pipe_state & PIPE_EOF:
        kn.kn_data = 0
        knote_set_eof(kn, 0)
        return True
    kn.kn_data = wpipe.pipe_size - wpipe.cnt
    return kn.kn_data >= PIPE_BUF


pipe_rfiltops = Filterops(isfd=True, attach=None, detach=filt_pipedetach, event=filt_piperead)
pipe_wfiltops = Filterops(isfd=True, attach=None, detach=filt_pipedetach, event=filt_pipewrite)


# -- system calls -------------------------------------------------------------------------
def pipe1(l: Lwp, flags: int) -> tuple[int, int, int]:
    """Create a pipe: (0, read fd, write fd) or (errno, -1, -1)."""
    if flags & ~(O_CLOEXEC | O_NONBLOCK | O_NOSIGPIPE):
        return Errno.EINVAL, -1, -1
    p = l.l_proc
    k = p.k
    now = k.clock.realtime_ns()
    rpipe, wpipe = Pipe(now), Pipe(now)
    rpipe.pipe_peer, wpipe.pipe_peer = wpipe, rpipe
    error, rfd = fd_alloc(p, 0)
    if error:
        return error, -1, -1
    # NetBSD stores the pipe2 flags (O_CLOEXEC included) in f_flag as they are.
    rf = PipeFile(k, FREAD | flags, rpipe, "pipe")
    fd_affix(p, rf, rfd, bool(flags & O_CLOEXEC))
    error, wfd = fd_alloc(p, 0)
    if error:
        fd_close(p, rfd)
        return error, -1, -1
    wf = PipeFile(k, FWRITE | flags, wpipe, "pipe")
    fd_affix(p, wf, wfd, bool(flags & O_CLOEXEC))
    return 0, rfd, wfd


@syscall(42, "pipe")
def sys_pipe(l: Lwp, a, retval: list[int]) -> int:
    """The old pipe(2): both descriptors come back in registers (rax, rdx)."""
    error, rfd, wfd = pipe1(l, 0)
    if error:
        return error
    retval[0], retval[1] = rfd, wfd
    return 0


@syscall(453, "pipe2")
def sys_pipe2(l: Lwp, a, retval: list[int]) -> int:
    """pipe2(2): the descriptors are copied out to fildes[2]; the call returns 0.
    On a copyout fault nbemu closes the two descriptors again (NetBSD leaves
    them open, unreachable)."""
    error, rfd, wfd = pipe1(l, a.flags)
    if error:
        return error
    error = l.l_proc.p_vmspace.copyout(struct.pack("<ii", rfd, wfd), a.fildes)
    if error:
        fd_close(l.l_proc, rfd)
        fd_close(l.l_proc, wfd)
        return error
    retval[0] = 0
    return 0


__all__ = ["Pipe", "PipeFile", "pipe1", "PIPE_BUF", "PIPE_SIZE", "BIG_PIPE_SIZE"]
