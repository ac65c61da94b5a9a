"""The per-process file table (NetBSD's kern_descrip.c) and the descriptor
system calls of sys_descrip.c: close, dup, dup2, dup3, fcntl, fstat, flock,
and posix_fadvise.

Model
-----
A process owns one Filedesc (p.p_fd): a list of slots, each None or a File,
and a parallel list of close-on-exec bits (NetBSD's ff_exclose). A File is
NetBSD's file_t: an open object shared by every descriptor that dup'ed it
(and, after fork, by the child), with f_flag (FREAD, FWRITE and the
FCNTLFLAGS status bits, NetBSD's values), f_type (DTYPE_*) and f_count, the
number of descriptor slots that reference it. When f_count drops to zero the
File's fo_close runs (closef).

The File subclasses (fileops) live next to what they model: host-backed
vnodes in vfs_syscalls.py (vfs_vnops.c), pipes in sys_pipe.py, kqueues in
kern_event.py. Operations a File does not support answer as NetBSD's fbadop_*
/ fnullop_* do.

fd 0, 1 and 2 start bound to the host's stdin, stdout and stderr, with the
host descriptors' access modes; a guest close() only drops the guest's
reference, the host's descriptors stay open.
"""
from __future__ import annotations

import os
import stat as host_stat
import struct
from collections import namedtuple
from typing import TYPE_CHECKING, Any, Generator

from . import upcall
from .cstruct import FLOCK, STAT
from .errno import Errno
from .lwp import Lwp, Proc
from .table import syscall

if TYPE_CHECKING:
    from .sys_generic import Uio

# -- fcntl.h (NetBSD values) ---------------------------------------------------
O_RDONLY, O_WRONLY, O_RDWR, O_ACCMODE = 0x0, 0x1, 0x2, 0x3
O_NONBLOCK = 0x00000004
O_APPEND = 0x00000008
O_SHLOCK = 0x00000010
O_EXLOCK = 0x00000020
O_ASYNC = 0x00000040
O_SYNC = 0x00000080
O_NOFOLLOW = 0x00000100
O_CREAT = 0x00000200
O_TRUNC = 0x00000400
O_EXCL = 0x00000800
O_NOCTTY = 0x00008000
O_DSYNC = 0x00010000
O_RSYNC = 0x00020000
O_ALT_IO = 0x00040000
O_DIRECT = 0x00080000
O_DIRECTORY = 0x00200000
O_CLOEXEC = 0x00400000
O_SEARCH = 0x00800000
O_NOSIGPIPE = 0x01000000
O_REGULAR = 0x02000000
O_EXEC = 0x04000000
O_CLOFORK = 0x08000000

FREAD, FWRITE = 0x1, 0x2
FNONBLOCK, FAPPEND, FASYNC, FFSYNC = O_NONBLOCK, O_APPEND, O_ASYNC, O_SYNC
FDSYNC, FRSYNC, FALTIO, FDIRECT, FNOSIGPIPE = O_DSYNC, O_RSYNC, O_ALT_IO, O_DIRECT, O_NOSIGPIPE
FEXEC = O_EXEC
FHASLOCK = 0x00004000
FCNTLFLAGS = (FAPPEND | FASYNC | FFSYNC | FNONBLOCK | FDSYNC | FRSYNC | FALTIO
              | FDIRECT | FNOSIGPIPE)
FMASK = FREAD | FWRITE | FCNTLFLAGS | FEXEC


def FFLAGS(oflags: int) -> int:
    """open(2) flags -> f_flag (O_RDONLY 0 becomes FREAD 1, ...)."""
    return oflags + 1


def OFLAGS(fflags: int) -> int:
    return fflags - 1


F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
F_GETOWN, F_SETOWN, F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7, 8, 9
F_CLOSEM, F_MAXFD, F_DUPFD_CLOEXEC, F_GETNOSIGPIPE, F_SETNOSIGPIPE = 10, 11, 12, 13, 14
F_GETPATH = 15
F_FSCTL = 0x80000000
FD_CLOEXEC = 1
F_RDLCK, F_UNLCK, F_WRLCK = 1, 2, 3
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 0x1, 0x2, 0x4, 0x8
POSIX_FADV_NORMAL, POSIX_FADV_NOREUSE = 0, 5

# -- sys/file.h ----------------------------------------------------------------
DTYPE_VNODE, DTYPE_SOCKET, DTYPE_PIPE, DTYPE_KQUEUE, DTYPE_MISC = 1, 2, 3, 4, 5

# -- sys/filio.h, sys/ioccom.h (amd64 values, checked against the headers) -----
IOC_VOID, IOC_OUT, IOC_IN = 0x20000000, 0x40000000, 0x80000000
IOCPARM_MASK, IOCPARM_SHIFT = 0x1FFF, 16
FIOCLEX, FIONCLEX = 0x20006601, 0x20006602
FIONREAD, FIONBIO, FIOASYNC = 0x4004667F, 0x8004667E, 0x8004667D
FIOSETOWN, FIOGETOWN = 0x8004667C, 0x4004667B
FIONWRITE, FIONSPACE = 0x40046679, 0x40046678

# -- limits ----------------------------------------------------------------------
RLIMIT_NOFILE = 8
DEFAULT_NOFILE = 1024          # when p_limits has no RLIMIT_NOFILE
MAXFILES = 3404                # kern.maxfiles default: 3 * (NPROC + MAXUSERS) + 80
MAXPATHLEN = 1024


def IOCPARM_LEN(com: int) -> int:
    return (com >> IOCPARM_SHIFT) & IOCPARM_MASK


# struct stat (sys/stat.h) is laid out per port by syscalls/cstruct.py (STAT):
# 152 bytes on amd64, aarch64 and earm, 124 on i386.

S_IFMT, S_IFIFO, S_IFCHR, S_IFDIR = 0o170000, 0o010000, 0o020000, 0o040000
S_IFBLK, S_IFREG, S_IFLNK, S_IFSOCK = 0o060000, 0o100000, 0o120000, 0o140000
S_IRUSR, S_IWUSR = 0o400, 0o200
# NetBSD's S_IF* type bits equal Linux's; the host mode passes through as is.
assert (host_stat.S_IFIFO, host_stat.S_IFCHR, host_stat.S_IFDIR, host_stat.S_IFBLK,
        host_stat.S_IFREG, host_stat.S_IFLNK, host_stat.S_IFSOCK) == (
        S_IFIFO, S_IFCHR, S_IFDIR, S_IFBLK, S_IFREG, S_IFLNK, S_IFSOCK)


# (collections.namedtuple, not a typing.NamedTuple class: with string annotations
# that compile()s every field's type at import, and the first compile() of a
# process costs ~10M instructions)
class NbStat(namedtuple("NbStat", (
        "st_dev", "st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_rdev",
        "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_birthtime_ns", "st_size",
        "st_blocks", "st_blksize", "st_flags", "st_gen"), defaults=(0,) * 16)):
    """NetBSD's struct stat, field for field (times in nanoseconds); every field
    an int, 0 by default."""
    __slots__ = ()

    def pack(self, abi: Any) -> bytes:
        ts: list[int] = []
        for ns in (self.st_atime_ns, self.st_mtime_ns, self.st_ctime_ns, self.st_birthtime_ns):
            ts += divmod(ns, 10**9)
        return STAT.on(abi).pack(self.st_dev & (2**64 - 1), self.st_mode, self.st_ino,
                           self.st_nlink & 0xFFFFFFFF, self.st_uid, self.st_gid, self.st_rdev,
                           *ts, self.st_size, self.st_blocks, self.st_blksize, self.st_flags,
                           self.st_gen, 0, 0)


def netbsd_makedev(major: int, minor: int) -> int:
    """NetBSD's makedev(): 12 bits of major, 20 of minor, interleaved."""
    return (((major << 8) & 0x000FFF00) | ((minor << 12) & 0xFFF00000)
            | (minor & 0x000000FF))


def stat_from_host(st: os.stat_result) -> NbStat:
    """A host stat translated to NetBSD's (device numbers re-encoded; Linux has
    no birth time here, so st_birthtim stays 0 as NetBSD reports VNOVAL times)."""
    return NbStat(
        st_dev=netbsd_makedev(os.major(st.st_dev), os.minor(st.st_dev)),
        st_mode=st.st_mode & 0xFFFFFFFF, st_ino=st.st_ino, st_nlink=st.st_nlink,
        st_uid=st.st_uid, st_gid=st.st_gid,
        st_rdev=netbsd_makedev(os.major(st.st_rdev), os.minor(st.st_rdev)),
        st_atime_ns=st.st_atime_ns, st_mtime_ns=st.st_mtime_ns, st_ctime_ns=st.st_ctime_ns,
        st_size=st.st_size, st_blocks=st.st_blocks, st_blksize=st.st_blksize)


# -- files -----------------------------------------------------------------------
class File:
    """file_t: an open object. Subclasses override the fileops they support;
    the defaults answer as NetBSD's fbadop_* / fnullop_* helpers do.

    fo_read / fo_write may return an errno or a generator (for a call that
    may sleep); the generic code in sys_generic.py runs either.
    """
    f_type = DTYPE_MISC
    # What a vnode file backed by a host descriptor (vfs_syscalls.HostFile, and its
    # sockets) has and the other files have not: declared here, so that generic
    # code asks the file instead of probing it.
    hostfd: int | None = None            # the host descriptor (-1: none after all)
    v_type: int | None = None            # enum vtype of a vnode (vfs_lookup.VREG, ...)
    f_guest: list[bytes] | None = None   # the guest path's components, when known
    is_dir = False
    f_mmap = False                       # fo_mmap != NULL: mmap can map it (else ENODEV)

    def __init__(self, flag: int, name: str) -> None:
        self.f_flag = flag
        self.f_count = 0          # descriptor slots referring to this file
        self.name = name          # for mmap entry names, traces and F_GETPATH
        self.f_owner = 0          # F_SETOWN / FIOSETOWN (recorded only)
        self.f_lockk: Any = None  # the kernel holding this file's flock lock (FHASLOCK)

    def fo_read(self, l: Lwp, uio: "Uio") -> int | Generator:
        return Errno.EOPNOTSUPP

    def fo_write(self, l: Lwp, uio: "Uio") -> int | Generator:
        return Errno.EOPNOTSUPP

    def fo_ioctl(self, l: Lwp, com: int, data: bytearray) -> int:
        """data is the kernel copy of the argument (IOCPARM_LEN bytes; for an
        _IO command the raw pointer as 8 bytes). Unknown commands: ENOTTY."""
        return Errno.ENOTTY

    def fo_fcntl(self, cmd: int, arg: Any) -> int:
        return 0 if cmd == F_SETFL else Errno.EOPNOTSUPP

    def fo_poll(self, events: int) -> int:
        return 0

    def fo_stat(self, l: Lwp) -> NbStat | int:
        return Errno.EOPNOTSUPP

    def fo_close(self) -> int:
        return 0

    def fo_kqfilter(self, kn: Any) -> int:
        return Errno.EINVAL

    def fo_seek(self, offset: int, whence: int) -> int:
        """New offset (>= 0) or a negative errno; only vnodes seek."""
        return -Errno.ESPIPE

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} flag={self.f_flag:#x} count={self.f_count}>"


class Filedesc:
    """struct filedesc: descriptor slots, close-on-exec bits, and the knotes
    that kqueues attached to each descriptor (kern_event.py)."""

    def __init__(self) -> None:
        self.fd_ofiles: list[File | None] = []
        self.fd_exclose: list[bool] = []
        self.fd_knlist: dict[int, list[Any]] = {}

    @property
    def fd_lastfile(self) -> int:
        """Highest descriptor in use, -1 when none."""
        for fd in range(len(self.fd_ofiles) - 1, -1, -1):
            if self.fd_ofiles[fd] is not None:
                return fd
        return -1

    def nopen(self) -> int:
        return sum(1 for f in self.fd_ofiles if f is not None)


def fd_limit(p: Proc) -> int:
    """The descriptor limit: RLIMIT_NOFILE's soft value (or 1024), at most
    maxfiles as NetBSD also checks."""
    lim = p.p_limits.get(RLIMIT_NOFILE) if p.p_limits else None
    if lim:
        return min(int(lim[0]), MAXFILES)
    return DEFAULT_NOFILE


def _fdp(p: Proc) -> Filedesc:
    fdp = p.p_fd
    if fdp is None:
        fdp = p.p_fd = Filedesc()
    return fdp


def fd_getfile(p: Proc, fd: int) -> File | None:
    """The File open on fd, or None (the caller answers EBADF)."""
    fdp = p.p_fd
    if fdp is None or fd < 0 or fd >= len(fdp.fd_ofiles):
        return None
    return fdp.fd_ofiles[fd]


def fd_alloc(p: Proc, minfd: int) -> tuple[int, int]:
    """(0, lowest free descriptor >= minfd) or (EMFILE, -1)."""
    fdp = _fdp(p)
    lim = fd_limit(p)
    fd = max(minfd, 0)
    while fd < len(fdp.fd_ofiles) and fdp.fd_ofiles[fd] is not None:
        fd += 1
    if fd >= lim:
        return Errno.EMFILE, -1
    return 0, fd


def fd_affix(p: Proc, fp: File, fd: int, exclose: bool = False) -> None:
    """Install fp in slot fd (which must be free) and count the reference."""
    fdp = _fdp(p)
    while len(fdp.fd_ofiles) <= fd:
        fdp.fd_ofiles.append(None)
        fdp.fd_exclose.append(False)
    assert fdp.fd_ofiles[fd] is None, f"fd {fd} busy"
    fdp.fd_ofiles[fd] = fp
    fdp.fd_exclose[fd] = exclose
    fp.f_count += 1


def fd_allocfile(p: Proc, fp: File, exclose: bool = False, minfd: int = 0) -> tuple[int, int]:
    """fd_allocfile + fd_affix: (0, fd) or (EMFILE, -1)."""
    error, fd = fd_alloc(p, minfd)
    if error:
        return error, -1
    fd_affix(p, fp, fd, exclose)
    return 0, fd


def fd_set_exclose(p: Proc, fd: int, exclose: bool) -> None:
    _fdp(p).fd_exclose[fd] = exclose


def closef(fp: File) -> int:
    """Drop one reference; the last one closes the object."""
    fp.f_count -= 1
    assert fp.f_count >= 0, fp
    if fp.f_count == 0:
        if fp.f_flag & FHASLOCK and fp.f_lockk is not None:
            from .vfs_lockf import lf_release, vnode_key
            lf_release(fp.f_lockk, vnode_key(fp), fp)    # the open file's flock lock
        return fp.fo_close()
    return 0


def fd_close(p: Proc, fd: int) -> int:
    """Close descriptor fd (which must be open): detach its knotes, free the
    slot, drop the file reference."""
    fdp = _fdp(p)
    fp = fdp.fd_ofiles[fd]
    assert fp is not None
    if fdp.fd_knlist.get(fd):
        upcall.knote_fdclose(p, fd)
    fdp.fd_ofiles[fd] = None
    fdp.fd_exclose[fd] = False
    if fp.f_type == DTYPE_VNODE and p.k is not None and p.k.lockf_state is not None:
        from .vfs_lockf import lf_release, vnode_key
        lf_release(p.k, vnode_key(fp), p)     # any close drops the process's POSIX locks
    return closef(fp)


def fd_dup(p: Proc, fp: File, minfd: int, exclose: bool) -> tuple[int, int]:
    return fd_allocfile(p, fp, exclose, minfd)


def fd_dup2(p: Proc, fp: File, newfd: int, flags: int) -> int:
    """dup2 / dup3 onto newfd, closing what was there."""
    if flags & ~(O_CLOEXEC | O_NONBLOCK | O_NOSIGPIPE):
        return Errno.EINVAL
    if fd_getfile(p, newfd) is not None:
        fd_close(p, newfd)
    fd_affix(p, fp, newfd, bool(flags & O_CLOEXEC))
    if flags & O_NONBLOCK:
        fp.f_flag |= FNONBLOCK
    if flags & O_NOSIGPIPE:
        fp.f_flag |= FNOSIGPIPE
    return 0


def fd_closeexec(p: Proc) -> None:
    """exec: close every descriptor marked close-on-exec."""
    fdp = _fdp(p)
    for fd, fp in enumerate(fdp.fd_ofiles):
        if fp is not None and fdp.fd_exclose[fd]:
            fd_close(p, fd)


def fd_copy(p: Proc) -> Filedesc:
    """fork: a copy of p's table sharing the Files (and their offsets)."""
    src = _fdp(p)
    new = Filedesc()
    new.fd_ofiles = list(src.fd_ofiles)
    new.fd_exclose = list(src.fd_exclose)
    for fd, fp in enumerate(new.fd_ofiles):
        if fp is None:
            continue
        if fp.f_type == DTYPE_KQUEUE:           # kqueues are not inherited
            new.fd_ofiles[fd] = None
            new.fd_exclose[fd] = False
        else:
            fp.f_count += 1
    return new


def fd_free(p: Proc) -> None:
    """exit: close every descriptor."""
    fdp = p.p_fd
    if fdp is None:
        return
    for fd, fp in enumerate(fdp.fd_ofiles):
        if fp is not None:
            fd_close(p, fd)


# -- system calls -------------------------------------------------------------------
@syscall(6, "close")
def sys_close(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    if fd_getfile(p, a.fd) is None:
        return Errno.EBADF
    return fd_close(p, a.fd)


@syscall(41, "dup")
def sys_dup(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    fp = fd_getfile(p, a.fd)
    if fp is None:
        return Errno.EBADF
    error, new = fd_dup(p, fp, 0, False)
    if error:
        return error
    retval[0] = new
    return 0


def dodup(l: Lwp, old: int, new: int, flags: int, retval: list[int]) -> int:
    p = l.l_proc
    fp = fd_getfile(p, old)
    if fp is None:
        return Errno.EBADF
    if new < 0 or new >= fd_limit(p):
        return Errno.EBADF
    if old != new:
        fp.f_count += 1              # hold fp while new's old file is closed
        error = fd_dup2(p, fp, new, flags)
        closef(fp)
        if error:
            return error
    retval[0] = new
    return 0


@syscall(90, "dup2")
def sys_dup2(l: Lwp, a, retval: list[int]) -> int:
    return dodup(l, a[0], a[1], 0, retval)          # a.from is a Python keyword


@syscall(505, "__dup3100")
def sys___dup3100(l: Lwp, a, retval: list[int]) -> int:
    if a[0] == a[1]:
        return Errno.EINVAL                         # POSIX dup3; libc handles old == new
    return dodup(l, a[0], a[1], a[2], retval)


@syscall(454, "compat_100_dup3")
def compat_100_sys_dup3(l: Lwp, a, retval: list[int]) -> int:
    return dodup(l, a[0], a[1], a[2], retval)


def _fcntl_lock(l: Lwp, fd: int, cmd: int, argp: int) -> int | Generator:
    """F_GETLK / F_SETLK / F_SETLKW (do_fcntl_lock + lf_advlock): the range from
    l_whence/l_start/l_len, locks owned by the process (vfs_lockf.py)."""
    from .vfs_lockf import F_UNLCK as _UN, lf_getlock, lf_setlock, vnode_key
    p = l.l_proc
    vm = p.p_vmspace
    lay = FLOCK.on(p.k.abi)
    data = vm.copyin(argp, lay.size)
    if isinstance(data, int):
        return data
    start, length, _pid, ltype, whence = lay.unpack(data)
    fp = fd_getfile(p, fd)
    if fp is None:
        return Errno.EBADF
    if fp.f_type != DTYPE_VNODE:
        return Errno.EINVAL
    if cmd in (F_SETLK, F_SETLKW):
        if ltype == F_RDLCK and not fp.f_flag & FREAD:
            return Errno.EBADF
        if ltype == F_WRLCK and not fp.f_flag & FWRITE:
            return Errno.EBADF
    if ltype not in (F_RDLCK, F_WRLCK, F_UNLCK):
        return Errno.EINVAL
    # lf_advlock's range: whence, then the sign of l_len; end -1 is "to EOF".
    if whence == SEEK_CUR:
        cur = fp.fo_seek(0, SEEK_CUR)
        start += max(cur, 0)
    elif whence == SEEK_END:
        try:
            start += os.fstat(fp.hostfd).st_size   # type: ignore[attr-defined]
        except (OSError, AttributeError):
            return Errno.EINVAL
    elif whence != SEEK_SET:
        return Errno.EINVAL
    if start < 0:
        return Errno.EINVAL
    if length == 0:
        end = -1
    elif length > 0:
        end = start + length - 1
    else:
        if start + length < 0:
            return Errno.EINVAL
        start, end = start + length, start - 1
    key = vnode_key(fp)
    if key is None:
        return Errno.EINVAL
    if cmd == F_GETLK:
        blk = lf_getlock(p.k, key, p, ltype, start, end) if ltype != _UN else None
        if blk is None:
            out = lay.pack(start, length, _pid, F_UNLCK, whence)
        else:
            n = 0 if blk.lf_end == -1 else blk.lf_end - blk.lf_start + 1
            out = lay.pack(blk.lf_start, n, blk.lf_pid, blk.lf_type, SEEK_SET)
        return vm.copyout(out, argp)
    return lf_setlock(l, key, p, ltype, start, end, cmd == F_SETLKW, False)


@syscall(92, "fcntl")
def sys_fcntl(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    fd, cmd, arg = a.fd, a.cmd, a.arg
    # Commands that do not need fd to be open come first, as in sys_fcntl().
    if cmd == F_CLOSEM:
        if fd < 0:
            return Errno.EBADF
        fdp = _fdp(p)
        for i in range(len(fdp.fd_ofiles) - 1, fd - 1, -1):
            if fdp.fd_ofiles[i] is not None:
                fd_close(p, i)
        return 0
    if cmd == F_MAXFD:
        retval[0] = _fdp(p).fd_lastfile
        return 0
    if cmd in (F_GETLK, F_SETLK, F_SETLKW):
        return _fcntl_lock(l, fd, cmd, arg)
    fp = fd_getfile(p, fd)
    if fp is None:
        return Errno.EBADF
    if cmd < 0:                      # F_FSCTL: file-system specific, none supported
        return Errno.EINVAL if fp.f_flag & (FREAD | FWRITE) else Errno.EBADF
    iarg = arg & 0xFFFFFFFF
    if iarg & 0x80000000:
        iarg -= 1 << 32
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        if iarg < 0 or iarg >= fd_limit(p):
            return Errno.EINVAL
        error, new = fd_dup(p, fp, iarg, cmd == F_DUPFD_CLOEXEC)
        if error:
            return error
        retval[0] = new
        return 0
    if cmd == F_GETFD:
        retval[0] = FD_CLOEXEC if _fdp(p).fd_exclose[fd] else 0
        return 0
    if cmd == F_SETFD:
        fd_set_exclose(p, fd, bool(arg & FD_CLOEXEC))
        return 0
    if cmd == F_GETNOSIGPIPE:
        retval[0] = 1 if fp.f_flag & FNOSIGPIPE else 0
        return 0
    if cmd == F_SETNOSIGPIPE:
        if arg:
            fp.f_flag |= FNOSIGPIPE
        else:
            fp.f_flag &= ~FNOSIGPIPE
        retval[0] = 0
        return 0
    if cmd == F_GETFL:
        retval[0] = OFLAGS(fp.f_flag)
        return 0
    if cmd == F_SETFL:
        tmp = FFLAGS(iarg) & FCNTLFLAGS
        error = fp.fo_fcntl(F_SETFL, tmp)
        if error:
            return error
        changed = tmp ^ fp.f_flag
        if changed & FNONBLOCK:
            error = fp.fo_ioctl(l, FIONBIO, bytearray(struct.pack("<i", 1 if tmp & FNONBLOCK else 0)))
            if error:
                fp.fo_fcntl(F_SETFL, fp.f_flag)
                return error
        if changed & FASYNC:
            error = fp.fo_ioctl(l, FIOASYNC, bytearray(struct.pack("<i", 1 if tmp & FASYNC else 0)))
            if error:
                if changed & FNONBLOCK:
                    fp.fo_ioctl(l, FIONBIO, bytearray(struct.pack("<i", fp.f_flag & FNONBLOCK)))
                fp.fo_fcntl(F_SETFL, fp.f_flag)
                return error
        fp.f_flag = (fp.f_flag & ~FCNTLFLAGS) | tmp
        return 0
    if cmd == F_GETOWN:
        buf = bytearray(4)
        error = fp.fo_ioctl(l, FIOGETOWN, buf)
        retval[0] = struct.unpack("<i", buf)[0]
        return error
    if cmd == F_SETOWN:
        return fp.fo_ioctl(l, FIOSETOWN, bytearray(struct.pack("<i", iarg)))
    if cmd == F_GETPATH:
        path = fp.fo_fcntl(F_GETPATH, None)
        if isinstance(path, int):
            return path
        if len(path) + 1 > MAXPATHLEN:
            return Errno.ENAMETOOLONG
        return p.p_vmspace.copyout(path + b"\0", arg)
    return Errno.EINVAL


def do_fstat(l: Lwp, fd: int) -> NbStat | int:
    """The stat of the file open on fd (fo_stat), or an errno (EBADF)."""
    fp = fd_getfile(l.l_proc, fd)
    if fp is None:
        return Errno.EBADF
    return fp.fo_stat(l)


@syscall(440, "__fstat50")
def sys___fstat50(l: Lwp, a, retval: list[int]) -> int:
    st = do_fstat(l, a.fd)
    if isinstance(st, int):
        return st
    return l.l_proc.p_vmspace.copyout(st.pack(l.l_proc.k.abi), a.sb)


@syscall(131, "flock")
def sys_flock(l: Lwp, a, retval: list[int]) -> int | Generator:
    """A whole-file lock owned by the open file (vfs_lockf.py): LOCK_SH/LOCK_EX
    wait for other owners unless LOCK_NB (EWOULDBLOCK), LOCK_UN drops it."""
    from .vfs_lockf import F_UNLCK as _UN, lf_setlock, vnode_key
    fp = fd_getfile(l.l_proc, a.fd)
    if fp is None:
        return Errno.EBADF
    if fp.f_type != DTYPE_VNODE:
        return Errno.EOPNOTSUPP
    how = a.how & ~LOCK_NB
    key = vnode_key(fp)
    if how == LOCK_UN:
        fp.f_flag &= ~FHASLOCK
        if key is None:
            return 0
        return lf_setlock(l, key, fp, _UN, 0, -1, False, True)
    if how not in (LOCK_EX, LOCK_SH):
        return Errno.EINVAL
    if key is None:
        return Errno.EOPNOTSUPP
    fp.f_flag |= FHASLOCK
    fp.f_lockk = l.l_proc.k
    return lf_setlock(l, key, fp, F_WRLCK if how == LOCK_EX else F_RDLCK, 0, -1,
                      not a.how & LOCK_NB, True)


@syscall(416, "__posix_fadvise50")
def sys___posix_fadvise50(l: Lwp, a, retval: list[int]) -> int:
    """posix_fadvise returns its error as the value (not -1/errno)."""
    retval[0] = _do_posix_fadvise(l, a.fd, a.offset, a.len, a.advice)
    return 0


def _do_posix_fadvise(l: Lwp, fd: int, offset: int, length: int, advice: int) -> int:
    if length < 0 or (length > 0 and (1 << 63) - 1 - offset < length):
        return Errno.EINVAL
    fp = fd_getfile(l.l_proc, fd)
    if fp is None:
        return Errno.EBADF
    if fp.f_type != DTYPE_VNODE:
        return Errno.ESPIPE if fp.f_type in (DTYPE_PIPE, DTYPE_SOCKET) else Errno.EOPNOTSUPP
    if not POSIX_FADV_NORMAL <= advice <= POSIX_FADV_NOREUSE:
        return Errno.EINVAL
    return 0                         # advice only: nothing to do on the host's behalf
