"""Generic descriptor I/O (NetBSD's sys_generic.c): read, write, readv,
writev, pread, pwrite, preadv, pwritev, ioctl; and the Uio that carries a
transfer between guest memory and a File (struct uio and uiomove of
kern_subr.c / subr_copy.c).

Guest buffers are touched only through the VmMap's copyin / copyout. A
transfer moves at most CHUNK bytes at a time, so a huge count never becomes a
huge host buffer. As in NetBSD, a transfer that faults or is interrupted part
way returns the count moved (EFAULT and others after progress still return
the error, as dofileread / dofilewrite do).
"""
from __future__ import annotations

import struct
from types import GeneratorType
from typing import Generator

from .cstruct import IOVEC, ssize_max
from .errno import Errno, KernErrno
from .kern_descrip import (DTYPE_VNODE, FASYNC, FIOASYNC, FIOCLEX, FIONBIO, FIONCLEX,
                           FNONBLOCK, FNOSIGPIPE, FREAD, FWRITE, IOC_IN, IOC_OUT, IOC_VOID,
                           IOCPARM_LEN, File, fd_getfile, fd_set_exclose)
from .lwp import Lwp
from .table import syscall
from .uvm_map import PROT_READ, PROT_WRITE
from .vfs_syscalls import VCHR, VFIFO

CHUNK = 1 << 20            # largest host buffer one step of a transfer uses
IOV_MAX = 1024             # sys/uio.h (limits.h)
IOCPARM_MAX = 4096         # NBPG on amd64
EPASSTHROUGH = int(KernErrno.EPASSTHROUGH)
ERESTART = int(KernErrno.ERESTART)


def mapped_prefix(vm, va: int, n: int, prot: int) -> int:
    """How many of the n bytes at va are mapped with `prot` (from the start)."""
    done = 0
    while done < n:
        e = vm.lookup(va + done)
        if e is None or (e.prot & prot) != prot:
            break
        done += min(e.end - (va + done), n - done)
    return done


class Uio:
    """A transfer between guest iovecs and a file (struct uio).

    `offset` is None for the file's own offset (read/write), or the explicit
    offset of pread/pwrite. Moving data advances the iovecs and lowers resid.
    """
    __slots__ = ("vm", "iov", "resid", "offset")

    def __init__(self, vm, iov: list[tuple[int, int]], offset: int | None = None) -> None:
        self.vm = vm
        self.iov = [[base, n] for base, n in iov if n]
        self.resid = sum(n for _, n in self.iov)
        self.offset = offset

    def _segs(self, n: int):
        """(guest address, length) pieces of the next n bytes (no advance)."""
        for base, ln in self.iov:
            if n <= 0:
                return
            k = min(ln, n)
            yield base, k
            n -= k

    def advance(self, n: int) -> None:
        self.resid -= n
        while n:
            seg = self.iov[0]
            k = min(seg[1], n)
            seg[0] += k
            seg[1] -= k
            n -= k
            if not seg[1]:
                self.iov.pop(0)

    def copyout(self, data: bytes) -> int:
        """Kernel -> guest (a read): move data, advancing; EFAULT after moving
        the mapped prefix if the buffer faults part way."""
        vm = self.vm
        pos = 0
        mv = memoryview(data)
        for base, k in list(self._segs(len(data))):
            if vm.copyout(bytes(mv[pos:pos + k]), base):
                m = mapped_prefix(vm, base, k, PROT_WRITE)
                if m:
                    vm.copyout(bytes(mv[pos:pos + m]), base)
                self.advance(pos + m)
                return Errno.EFAULT
            pos += k
        self.advance(pos)
        return 0

    def copyin(self, n: int) -> tuple[bytes, int]:
        """Guest -> kernel (a write): up to n bytes from the current position,
        without advancing; (bytes, EFAULT) when a fault cut them short."""
        vm = self.vm
        parts = []
        for base, k in self._segs(n):
            d = vm.copyin(base, k)
            if isinstance(d, int):
                m = mapped_prefix(vm, base, k, PROT_READ)
                if m:
                    parts.append(vm.copyin(base, m))
                return b"".join(parts), Errno.EFAULT
            parts.append(d)
        return b"".join(parts), 0

    def _accessible(self, n: int, prot: int) -> int:
        total = 0
        for base, k in self._segs(n):
            m = mapped_prefix(self.vm, base, k, prot)
            total += m
            if m < k:
                break
        return total

    def writable(self, n: int) -> int:
        """How many of the next n bytes can be copied out: checked before a
        read that consumes its source (pipes, ttys), so a fault loses nothing."""
        return self._accessible(n, PROT_WRITE)

    def readable(self, n: int) -> int:
        """How many of the next n bytes can be copied in."""
        return self._accessible(n, PROT_READ)


def run_fileop(res: int | Generator) -> Generator:
    """Run a fileop's result: an errno, or a generator that may sleep."""
    if res.__class__ is GeneratorType:
        return (yield from res)      # type: ignore[misc]
    return res


def sigpipe_hook(l: Lwp, fp: File) -> None:
    """A write found no reader (EPIPE): NetBSD's dofilewrite posts SIGPIPE to
    the process (psignal) unless the file has FNOSIGPIPE."""
    if not fp.f_flag & FNOSIGPIPE:
        l.l_proc.k.event("sigpipe", l, file=fp.name)
        from .kern_sig import psignal
        from .signals import Sig
        psignal(l.l_proc, Sig.SIGPIPE)


def dofileread(l: Lwp, fp: File, uio: Uio, retval: list[int]) -> Generator:
    cnt = uio.resid
    error = yield from run_fileop(fp.fo_read(l, uio))
    if error and uio.resid != cnt and error in (ERESTART, Errno.EINTR, Errno.EWOULDBLOCK):
        error = 0
    retval[0] = cnt - uio.resid
    return error


def dofilewrite(l: Lwp, fp: File, uio: Uio, retval: list[int]) -> Generator:
    cnt = uio.resid
    error = yield from run_fileop(fp.fo_write(l, uio))
    if error:
        if uio.resid != cnt and error in (ERESTART, Errno.EINTR, Errno.EWOULDBLOCK):
            error = 0
        if error == Errno.EPIPE:
            sigpipe_hook(l, fp)
    retval[0] = cnt - uio.resid
    return error


def _getfile(l: Lwp, fd: int, need: int) -> File | int:
    fp = fd_getfile(l.l_proc, fd)
    if fp is None or not fp.f_flag & need:
        return Errno.EBADF
    return fp


def _positional(fp: File, offset: int) -> int:
    """pread/pwrite checks: only seekable vnodes; negative offsets only on
    character devices."""
    vtype = fp.v_type
    if fp.f_type != DTYPE_VNODE or vtype == VFIFO:
        return Errno.ESPIPE
    if offset < 0 and vtype != VCHR:
        return Errno.EINVAL
    return 0


def copyin_iovec(l: Lwp, iovp: int, iovcnt: int) -> list[tuple[int, int]] | int:
    """The guest's struct iovec array, checked as dofilereadv does."""
    if iovcnt <= 0 or iovcnt > IOV_MAX:
        return Errno.EINVAL
    lay = IOVEC.on(l.l_proc.k.abi)
    data = l.l_proc.p_vmspace.copyin(iovp, lay.size * iovcnt)
    if isinstance(data, int):
        return data
    iov = list(lay.iter_unpack(data))
    total = 0
    limit = ssize_max(l.l_proc.k.abi)
    for _, n in iov:
        total += n
        if n > limit or total > limit:
            return Errno.EINVAL
    return iov


def _rw_file(l: Lwp, a, write: bool, positional: bool) -> tuple[File, int | None] | int:
    """The checks every read/write call makes first: the descriptor open for
    it (EBADF) and, for the positional ones, a seekable file and offset
    (_positional). (fp, the explicit offset or None) or an errno."""
    fp = _getfile(l, a.fd, FWRITE if write else FREAD)
    if isinstance(fp, int):
        return fp
    if not positional:
        return fp, None
    error = _positional(fp, a.offset)
    return error or (fp, a.offset)


def _rw(l: Lwp, a, retval: list[int], write: bool, positional: bool) -> Generator:
    """read, write, pread, pwrite: one buffer of at most SSIZE_MAX bytes."""
    f = _rw_file(l, a, write, positional)
    if isinstance(f, int):
        return f
    if a.nbyte > ssize_max(l.l_proc.k.abi):
        return Errno.EINVAL
    uio = Uio(l.l_proc.p_vmspace, [(a.buf, a.nbyte)], f[1])
    return (yield from (dofilewrite if write else dofileread)(l, f[0], uio, retval))


def _rwv(l: Lwp, a, retval: list[int], write: bool, positional: bool) -> Generator:
    """readv, writev, preadv, pwritev: the guest's iovec array."""
    f = _rw_file(l, a, write, positional)
    if isinstance(f, int):
        return f
    iov = copyin_iovec(l, a.iovp, a.iovcnt)
    if isinstance(iov, int):
        return iov
    uio = Uio(l.l_proc.p_vmspace, iov, f[1])
    return (yield from (dofilewrite if write else dofileread)(l, f[0], uio, retval))


@syscall(3, "read")
def sys_read(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _rw(l, a, retval, False, False))


@syscall(4, "write")
def sys_write(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _rw(l, a, retval, True, False))


@syscall(173, "pread")
def sys_pread(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _rw(l, a, retval, False, True))


@syscall(174, "pwrite")
def sys_pwrite(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _rw(l, a, retval, True, True))


@syscall(120, "readv")
def sys_readv(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _rwv(l, a, retval, False, False))


@syscall(121, "writev")
def sys_writev(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _rwv(l, a, retval, True, False))


@syscall(289, "preadv")
def sys_preadv(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _rwv(l, a, retval, False, True))


@syscall(290, "pwritev")
def sys_pwritev(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _rwv(l, a, retval, True, True))


@syscall(54, "ioctl")
def sys_ioctl(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    fd, com = a.fd, a.com
    fp = fd_getfile(p, fd)
    if fp is None:
        return Errno.EBADF
    if not fp.f_flag & (FREAD | FWRITE):
        return Errno.EBADF
    if com == FIONCLEX:
        fd_set_exclose(p, fd, False)
        return 0
    if com == FIOCLEX:
        fd_set_exclose(p, fd, True)
        return 0
    size = IOCPARM_LEN(com)
    if size > IOCPARM_MAX:
        return Errno.ENOTTY
    vm = p.p_vmspace
    if com & IOC_IN and size:
        d = vm.copyin(a.data, size)
        if isinstance(d, int):
            return d
        data = bytearray(d)
    elif com & (IOC_IN | IOC_VOID) and not (com & IOC_OUT and size):
        # *(void **)data = SCARG(uap, data): the argument itself, pointer-sized
        data = bytearray(a.data.to_bytes(p.k.abi.word_size, "little"))
    else:
        data = bytearray(size)                          # IOC_OUT: zeroed
    if com in (FIONBIO, FIOASYNC):
        bit = FNONBLOCK if com == FIONBIO else FASYNC
        on = struct.unpack_from("<i", data)[0] != 0
        fp.f_flag = (fp.f_flag | bit) if on else (fp.f_flag & ~bit)
        error = fp.fo_ioctl(l, com, data)
    else:
        error = fp.fo_ioctl(l, com, data)
        if error == 0 and com & IOC_OUT and size:
            error = vm.copyout(bytes(data[:size]), a.data)
    if error == EPASSTHROUGH:
        error = Errno.ENOTTY
    return error
