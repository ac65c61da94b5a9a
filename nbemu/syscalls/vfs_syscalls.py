"""File-system system calls (NetBSD's vfs_syscalls.c), and the vnode fileops
of vfs_vnops.c for files backed by host descriptors (HostFile).

Every path goes through vfs_lookup.namei, which keeps the guest inside its
root (k.root) by construction: host calls then act on what namei holds open,
(ni_dvp, ni_name) without following a link, or the object's own descriptor
(ni_vp, or /proc/self/fd/N for calls that take a path) -- never a host path
string the host would walk again. Guest constants
(O_*, AT_*, struct stat, struct dirent, termios) are NetBSD's and are
translated here, at the one boundary with the host; a host OSError becomes
a NetBSD errno through from_host().

What is a vnode here: a HostFile owns (or, for the host's stdin/stdout/stderr,
borrows) one host descriptor. Its offset is the host descriptor's offset, so
descriptors that share the File (dup, fork) share it as NetBSD's do. Guest
O_NONBLOCK is never set on the host descriptor: for the non-seekable ones it
is emulated with a zero-timeout select() before the host call, so the host's
terminal is never left non-blocking. The exception is a FIFO the guest opened
(fifo_vnops.py): its private host descriptor stays O_NONBLOCK and the LWP
sleeps on EAGAIN.
"""
from __future__ import annotations

import fcntl as host_fcntl
import os
import select
import stat as host_stat
import struct
import termios
from typing import Any, Callable, Generator

from .cstruct import TIMESPEC, TIMEVAL, set_retval_off
from .errno import Errno, from_host
from .hostinput import HOSTPOLL_NS, host_input
from .kern_sleepq import kpause, sleepq_wake
from .kern_descrip import (DTYPE_VNODE, FAPPEND, FIOASYNC, FIONBIO, FIONREAD, FMASK,
                           FNONBLOCK, FREAD, FWRITE, F_GETPATH, F_SETFL, FFLAGS, Filedesc, NbStat,
                           O_ACCMODE, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_DSYNC, O_EXCL,
                           O_NOFOLLOW, O_NONBLOCK, O_REGULAR, O_RSYNC, O_SYNC, O_TRUNC,
                           SEEK_CUR, SEEK_END, SEEK_SET, File, fd_affix, fd_alloc, fd_getfile,
                           stat_from_host)
from .lwp import Lwp, Proc
from .poll import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM
from .table import syscall
from .vfs_lookup import (VBAD, VBLK, VCHR, VDIR, VFIFO, VLNK, VNON, VREG, VSOCK,  # noqa: F401
                         AT_FDCWD, MAXPATHLEN, O_PATH, Nameidata, Vnode, cwd_set, cwd_vnode,
                         guest_path, is_root, vnode_path, namei, namei_at, proc_fd, split_guest,
                         start_dir)


AT_EACCESS, AT_SYMLINK_NOFOLLOW, AT_SYMLINK_FOLLOW, AT_REMOVEDIR = 0x100, 0x200, 0x400, 0x800
F_OK, X_OK, W_OK, R_OK = 0, 1, 2, 4
ALLPERMS, ACCESSPERMS = 0o7777, 0o777
CMASK = 0o022                      # the default umask (sys/param.h)
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2

# dirent (sys/dirent.h): d_fileno u64, d_reclen u16, d_namlen u16, d_type u8, d_name
DIRENT_HDR = struct.Struct("<QHHB")       # 13 bytes, d_name follows
DT_UNKNOWN = 0


def IFTODT(mode: int) -> int:
    return (mode & 0o170000) >> 12


def dirent_reclen(namlen: int) -> int:
    return (DIRENT_HDR.size + namlen + 1 + 7) & ~7


def vtype_of(mode: int) -> int:
    for test, vt in ((host_stat.S_ISREG, VREG), (host_stat.S_ISDIR, VDIR),
                     (host_stat.S_ISCHR, VCHR), (host_stat.S_ISBLK, VBLK),
                     (host_stat.S_ISLNK, VLNK), (host_stat.S_ISSOCK, VSOCK),
                     (host_stat.S_ISFIFO, VFIFO)):
        if test(mode):
            return vt
    return VBAD


def cmask_of(p: Proc) -> int:
    """The process's umask (NetBSD keeps it in cwdinfo; Proc has no field yet)."""
    return p.p_cmask


def _host(fn: Callable, *args: Any, **kw: Any) -> tuple[int, Any]:
    """Call a host os function: (0, its result) or (NetBSD errno, None). An
    operation Python cannot do on this host is EOPNOTSUPP."""
    try:
        return 0, fn(*args, **kw)
    except OSError as e:
        return from_host(e.errno or Errno.EIO), None
    except NotImplementedError:
        return Errno.EOPNOTSUPP, None
    except (OverflowError, ValueError):      # a guest value the host cannot represent
        return Errno.EINVAL, None


def _host_err(fn: Callable, *args: Any, **kw: Any) -> int:
    """_host for calls whose result is not needed: just the errno."""
    return _host(fn, *args, **kw)[0]


# -- termios: NetBSD <-> Linux -------------------------------------------------------
TIOCGETA, TIOCSETA, TIOCSETAW, TIOCSETAF = 0x402C7413, 0x802C7414, 0x802C7415, 0x802C7416
TIOCGWINSZ, TIOCSWINSZ = 0x40087468, 0x80087467
TERMIOS_FMT = "<4I20Bii"                   # struct termios: 44 bytes
NCCS = 20
_POSIX_VDISABLE = 0xFF


def _bits(pairs: list[tuple[int, str]]) -> list[tuple[int, int]]:
    return [(nb, getattr(termios, name)) for nb, name in pairs if hasattr(termios, name)]


_IFLAG = _bits([(0x1, "IGNBRK"), (0x2, "BRKINT"), (0x4, "IGNPAR"), (0x8, "PARMRK"),
                (0x10, "INPCK"), (0x20, "ISTRIP"), (0x40, "INLCR"), (0x80, "IGNCR"),
                (0x100, "ICRNL"), (0x200, "IXON"), (0x400, "IXOFF"), (0x800, "IXANY"),
                (0x2000, "IMAXBEL")])
_OFLAG = _bits([(0x1, "OPOST"), (0x2, "ONLCR"), (0x10, "OCRNL"), (0x20, "ONOCR"),
                (0x40, "ONLRET")])
_CFLAG = _bits([(0x400, "CSTOPB"), (0x800, "CREAD"), (0x1000, "PARENB"), (0x2000, "PARODD"),
                (0x4000, "HUPCL"), (0x8000, "CLOCAL"), (0x10000, "CRTSCTS")])
_LFLAG = _bits([(0x1, "ECHOKE"), (0x2, "ECHOE"), (0x4, "ECHOK"), (0x8, "ECHO"),
                (0x10, "ECHONL"), (0x20, "ECHOPRT"), (0x40, "ECHOCTL"), (0x80, "ISIG"),
                (0x100, "ICANON"), (0x400, "IEXTEN"), (0x800, "EXTPROC"),
                (0x400000, "TOSTOP"), (0x800000, "FLUSHO"), (0x20000000, "PENDIN"),
                (0x80000000, "NOFLSH")])
_CSIZE = [(0x000, "CS5"), (0x100, "CS6"), (0x200, "CS7"), (0x300, "CS8")]
_CC = [(i, getattr(termios, n)) for i, n in (
    (0, "VEOF"), (1, "VEOL"), (2, "VEOL2"), (3, "VERASE"), (4, "VWERASE"), (5, "VKILL"),
    (6, "VREPRINT"), (8, "VINTR"), (9, "VQUIT"), (10, "VSUSP"), (12, "VSTART"),
    (13, "VSTOP"), (14, "VLNEXT"), (15, "VDISCARD"), (16, "VMIN"), (17, "VTIME"))
    if hasattr(termios, n)]
OXTABS = 0x4
_SPEEDS = {getattr(termios, n): int(n[1:]) for n in dir(termios)
           if n.startswith("B") and n[1:].isdigit()}
_SPEED_CODES = {v: k for k, v in _SPEEDS.items()}


def _to_nb(v: int, table: list[tuple[int, int]]) -> int:
    return sum(nb for nb, lx in table if v & lx)


def _from_nb(v: int, table: list[tuple[int, int]], old: int) -> int:
    for nb, lx in table:
        old = (old | lx) if v & nb else (old & ~lx)
    return old


def termios_to_netbsd(attr: list) -> bytes:
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attr
    o = _to_nb(oflag, _OFLAG)
    if (oflag & termios.TABDLY) == termios.TAB3:
        o |= OXTABS
    c = _to_nb(cflag, _CFLAG)
    for nb, name in _CSIZE:
        if (cflag & termios.CSIZE) == getattr(termios, name):
            c |= nb
    ccs = [_POSIX_VDISABLE] * NCCS
    for i, lx in _CC:
        v = cc[lx]
        ccs[i] = v[0] if isinstance(v, bytes) else int(v)
    return struct.pack(TERMIOS_FMT, _to_nb(iflag, _IFLAG), o, c, _to_nb(lflag, _LFLAG),
                       *ccs, _SPEEDS.get(ispeed, 0), _SPEEDS.get(ospeed, 0))


def termios_from_netbsd(data: bytes, old: list) -> list:
    v = struct.unpack(TERMIOS_FMT, data)
    iflag, oflag, cflag, lflag = v[:4]
    ccs, ispeed, ospeed = v[4:4 + NCCS], v[-2], v[-1]
    attr = list(old)
    attr[0] = _from_nb(iflag, _IFLAG, old[0])
    tabs = old[1] & termios.TABDLY              # OXTABS is Linux's TAB3 tab delay
    if oflag & OXTABS:
        tabs = termios.TAB3
    elif tabs == termios.TAB3:
        tabs = 0
    attr[1] = (_from_nb(oflag, _OFLAG, old[1]) & ~termios.TABDLY) | tabs
    c = _from_nb(cflag, _CFLAG, old[2]) & ~termios.CSIZE
    for nb, name in _CSIZE:
        if cflag & 0x300 == nb:
            c |= getattr(termios, name)
    attr[2] = c
    attr[3] = _from_nb(lflag, _LFLAG, old[3])
    attr[4] = _SPEED_CODES.get(ispeed, old[4])
    attr[5] = _SPEED_CODES.get(ospeed, old[5])
    cc = list(old[6])
    for i, lx in _CC:
        cc[lx] = ccs[i]
    attr[6] = cc
    return attr


# -- the vnode fileops ------------------------------------------------------------------
CHUNK = 1 << 20


class HostFile(File):
    """A vnode: a file, directory, device or FIFO reached through a host fd."""
    f_mmap = True
    f_type = DTYPE_VNODE

    def __init__(self, hostfd: int, flag: int, name: str, owns_fd: bool,
                 guest_path: list[bytes] | None, v_type: int | None = None) -> None:
        super().__init__(flag, name)
        self.hostfd = hostfd
        self.owns_fd = owns_fd
        self.f_guest = guest_path
        if v_type is None:                    # (sockets know theirs: there may be no fd)
            try:
                v_type = vtype_of(os.fstat(hostfd).st_mode)
            except OSError:
                v_type = VBAD                 # e.g. the host started us with fd 1 closed
        self.v_type = v_type
        # Reads that can wait for the world: pipes, sockets and terminals (not
        # /dev/null, /dev/urandom and other character devices that never block).
        self.may_block = self.v_type in (VFIFO, VSOCK) or (
            self.v_type == VCHR and os.isatty(hostfd))
        self.is_dir = self.v_type == VDIR
        self._dirents: list[tuple[int, int, bytes]] | None = None
        self._dirpos = 0
        self._soft_off = 0                    # character devices: NetBSD lets them seek
        self._pending_pos = 0

    @property
    def seekable(self) -> bool:
        return self.v_type in (VREG, VBLK)

    # readiness of a non-seekable host descriptor (no O_NONBLOCK on the host)
    def _ready(self, write: bool) -> bool:
        return host_input("ready", lambda: self._host_ready(write))

    def _host_ready(self, write: bool) -> bool:
        try:
            r, w, _ = select.select([] if write else [self.hostfd],
                                    [self.hostfd] if write else [], [], 0)
        except (OSError, ValueError):
            return True                       # let the host call report the error
        return bool(w if write else r)

    def fo_read(self, l: Lwp, uio) -> int:
        if self.is_dir:
            return Errno.EISDIR
        if self.v_type == VBAD:
            return Errno.EBADF
        if self.v_type == VCHR and l.l_proc.k.tty_state is not None:
            from .kern_tty import tty_rw_check
            error = tty_rw_check(l, self, False)      # ttread: a background reader
            if error:
                return error
        if not uio.resid:
            return 0
        fd = self.hostfd
        if self.seekable:
            # pread at the file offset, then move the offset by what reached the
            # guest: a fault part way leaves the offset after the bytes delivered.
            off = uio.offset
            if off is None:
                error, off = _host(os.lseek, fd, 0, SEEK_CUR)
                if error:
                    return error
            start = off
            error = 0
            while uio.resid:
                want = min(uio.resid, CHUNK)
                error, data = host_input("pread", lambda: _host(os.pread, fd, want, off))
                if error:
                    break
                before = uio.resid
                error = uio.copyout(data)
                off += before - uio.resid
                if error or len(data) < want:
                    break
            if uio.offset is None and off != start:
                _host(os.lseek, fd, off, SEEK_SET)
            return error
        # tty, pipe, socket: one host read, into memory known to be writable
        n = uio.writable(min(uio.resid, CHUNK))
        if n == 0:
            return Errno.EFAULT
        if self.fifo_hold is not None:
            return self._fifo_read(l, uio, n)
        if self.f_flag & FNONBLOCK:
            if not self._ready(False):
                return Errno.EAGAIN
        elif self.may_block and not l.l_proc.k.clock.virtual and not self._ready(False):
            # (A virtual clock would spin through the polls while the host waits:
            # --deterministic runs take the host's blocking read; everything waits.)
            return self._read_when_ready(l, uio, n)
        error, data = host_input("read", lambda: _host(os.read, fd, n))
        return error or uio.copyout(data)

    def _read_when_ready(self, l: Lwp, uio, n: int) -> Generator[str, int, int]:
        """A blocking read of a host tty/pipe that has nothing yet: the LWP sleeps
        (interruptibly, as a tty read does on NetBSD) and polls the host, so the
        other LWPs run and a signal ends the wait (EINTR, or ERESTART for
        SA_RESTART handlers), instead of the whole emulator blocking in read(2)."""
        k = l.l_proc.k
        while not self._ready(False):
            error = yield from kpause(k, l, "ttyin", True, HOSTPOLL_NS)
            if error != Errno.EWOULDBLOCK:
                return error
        error, data = host_input("read", lambda: _host(os.read, self.hostfd, n))
        return error or uio.copyout(data)

    # A FIFO opened by the guest keeps O_NONBLOCK on its (private) host descriptor,
    # so the host answers as NetBSD's fifo does: data, 0 when no writer is left
    # (even one that never came), EAGAIN when writers may still write. EAGAIN is
    # the LWP's to wait on: it sleeps on the FIFO's channel (woken by I/O of this
    # kernel's other LWPs on the FIFO) or HOSTPOLL_NS (another process's).
    def _fifo_read(self, l: Lwp, uio, n: int) -> Generator[str, int, int]:
        k = l.l_proc.k
        while True:
            error, data = host_input("read", lambda: _host(os.read, self.hostfd, n))
            if error != Errno.EAGAIN or self.f_flag & FNONBLOCK:
                break
            error = yield from kpause(k, l, "fiforead", True, HOSTPOLL_NS,
                                      wchan=self.fifo_hold.key)
            if error != Errno.EWOULDBLOCK and error:
                return error
        if error:
            return error
        if data:
            sleepq_wake(k, self.fifo_hold.key)     # a writer may wait for room
        return uio.copyout(data)

    def _fifo_write(self, l: Lwp, uio) -> Generator[str, int, int]:
        k = l.l_proc.k
        while uio.resid:
            data, error = uio.copyin(min(uio.resid, CHUNK))
            if not data:
                return error
            error, n = _host(os.write, self.hostfd, data)
            if error == Errno.EAGAIN:
                if self.f_flag & FNONBLOCK:
                    return error
                error = yield from kpause(k, l, "fifowrite", True, HOSTPOLL_NS,
                                          wchan=self.fifo_hold.key)
                if error != Errno.EWOULDBLOCK and error:
                    return error
                continue
            if error:
                return error
            uio.advance(n)
            sleepq_wake(k, self.fifo_hold.key)     # a reader may wait for data
        return 0

    def fo_write(self, l: Lwp, uio) -> int | Generator[str, int, int]:
        if self.v_type == VBAD:
            return Errno.EBADF
        if self.v_type == VCHR and l.l_proc.k.tty_state is not None:
            from .kern_tty import tty_rw_check
            error = tty_rw_check(l, self, True)       # ttwrite: background with TOSTOP
            if error:
                return error
        if self.fifo_hold is not None:
            return self._fifo_write(l, uio)
        fd = self.hostfd
        off = uio.offset
        if self.v_type == VREG and uio.readable(uio.resid) < uio.resid:
            # vn_write passes IO_UNIT: a write that faults is undone as a whole.
            return Errno.EFAULT
        while uio.resid:
            data, error = uio.copyin(min(uio.resid, CHUNK))
            if data:
                if not self.seekable and self.f_flag & FNONBLOCK and not self._ready(True):
                    return Errno.EAGAIN
                if off is not None:
                    error, n = _host(os.pwrite, fd, data, off)
                else:
                    error, n = _host(os.write, fd, data)
                if error:
                    return error
                uio.advance(n)
                if off is not None:
                    off += n
                if n < len(data):
                    return 0
            if error:
                return error
        return 0

    def pread(self, n: int, off: int) -> bytes | int:
        """Up to n bytes at off (file-backed mmap); short only at end of file."""
        return host_input("mmap", lambda: self._host_pread(n, off))

    def _host_pread(self, n: int, off: int) -> bytes | int:
        parts = []
        while n > 0:
            try:
                d = os.pread(self.hostfd, min(n, 1 << 30), off)
            except OSError as e:
                return from_host(e.errno or 5)
            if not d:
                break
            parts.append(d)
            n -= len(d)
            off += len(d)
        return b"".join(parts)

    def pwrite(self, data: bytes, off: int) -> int:
        """Bytes written at off (>= 0), or a negative errno."""
        try:
            return os.pwrite(self.hostfd, data, off)
        except OSError as e:
            return -from_host(e.errno or 5)

    def fo_seek(self, offset: int, whence: int) -> int:
        if self.is_dir:
            base = {SEEK_SET: 0, SEEK_CUR: self._dirpos,
                    SEEK_END: len(self._dirents or ())}[whence]
            new = base + offset
            if new < 0:
                return -Errno.EINVAL
            self._dirpos = new
            if new == 0:
                self._dirents = None          # rewinddir: read the directory afresh
            return new
        if self.v_type == VCHR:
            base = {SEEK_SET: 0, SEEK_CUR: self._soft_off, SEEK_END: 0}[whence]
            self._soft_off = base + offset
            return self._soft_off
        error, new = _host(os.lseek, self.hostfd, offset, whence)
        return -error if error else new

    def fo_stat(self, l: Lwp) -> NbStat | int:
        error, st = _host(os.fstat, self.hostfd)
        return error or stat_from_host(st)

    def fo_fcntl(self, cmd: int, arg: Any) -> Any:
        if cmd == F_SETFL:
            if self.owns_fd and self.v_type == VREG and (arg ^ self.f_flag) & FAPPEND:
                try:
                    fl = host_fcntl.fcntl(self.hostfd, host_fcntl.F_GETFL)
                    fl = (fl | os.O_APPEND) if arg & FAPPEND else (fl & ~os.O_APPEND)
                    host_fcntl.fcntl(self.hostfd, host_fcntl.F_SETFL, fl)
                except OSError as e:
                    return from_host(e.errno or 5)
            return 0
        if cmd == F_GETPATH:
            if self.f_guest is None:
                return Errno.ENOENT
            return guest_path(self.f_guest)
        return Errno.EOPNOTSUPP

    def fo_ioctl(self, l: Lwp, com: int, data: bytearray) -> int:
        if com in (FIONBIO, FIOASYNC):
            return 0
        if self.v_type == VCHR:
            from .kern_tty import tty_ioctl
            error = tty_ioctl(l, self, com, data)     # job control (kern_tty.py)
            if error is not None:
                return error
        if com == FIONREAD:
            if self.v_type in (VREG, VDIR):      # bytes between the offset and EOF
                error, st = _host(os.fstat, self.hostfd)
                if error:
                    return error
                if self.is_dir:
                    pos = self._dirpos
                else:
                    error, pos = _host(os.lseek, self.hostfd, 0, SEEK_CUR)
                    if error:
                        return error
                n = max(min(st.st_size - pos, 0x7FFFFFFF), -0x80000000)
                data[:4] = struct.pack("<i", n)
                return 0
            error, buf = _host(host_fcntl.ioctl, self.hostfd, termios.FIONREAD, b"\0" * 4)
            if error:
                return Errno.ENOTTY
            data[:4] = buf[:4]
            return 0
        if com in (TIOCGETA, TIOCSETA, TIOCSETAW, TIOCSETAF, TIOCGWINSZ, TIOCSWINSZ):
            if self.v_type != VCHR or not os.isatty(self.hostfd):
                return Errno.ENOTTY
            return self._tty_ioctl(com, data)
        return Errno.ENOTTY

    def _tty_ioctl(self, com: int, data: bytearray) -> int:
        fd = self.hostfd
        try:
            if com == TIOCGETA:
                data[:44] = termios_to_netbsd(termios.tcgetattr(fd))
            elif com in (TIOCSETA, TIOCSETAW, TIOCSETAF):
                when = {TIOCSETA: termios.TCSANOW, TIOCSETAW: termios.TCSADRAIN,
                        TIOCSETAF: termios.TCSAFLUSH}[com]
                termios.tcsetattr(fd, when, termios_from_netbsd(bytes(data[:44]),
                                                                termios.tcgetattr(fd)))
            elif com == TIOCGWINSZ:
                data[:8] = host_fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)[:8]
            else:
                host_fcntl.ioctl(fd, termios.TIOCSWINSZ, bytes(data[:8]))
        except termios.error as e:
            return from_host(e.args[0]) if e.args and isinstance(e.args[0], int) else Errno.ENOTTY
        except OSError as e:
            return from_host(e.errno or 5)
        return 0

    def fo_poll(self, events: int) -> int:
        if self.v_type in (VREG, VDIR, VBLK):
            return events & (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM)
        rev = 0
        if events & (POLLIN | POLLRDNORM) and self._ready(False):
            rev |= events & (POLLIN | POLLRDNORM)
        if events & (POLLOUT | POLLWRNORM) and self._ready(True):
            rev |= events & (POLLOUT | POLLWRNORM)
        return rev

    def fo_kqfilter(self, kn: Any) -> int:
        from .kern_event import vnode_kqfilter
        return vnode_kqfilter(self, kn)

    fifo_hold: Any = None                     # fifo_vnops.FifoHold of an open FIFO
    stdio_release = False                     # release_host_stdio: the last close frees it

    def fo_close(self) -> int:
        if self.fifo_hold is not None:
            self.fifo_hold.drop()
        if self.stdio_release:
            _host_fd_to_null(self.hostfd)
        if self.owns_fd:
            try:
                os.close(self.hostfd)
            except OSError as e:
                return from_host(e.errno or 5)
        return 0

    def getdents(self, k, count: int) -> bytes | int:
        """NetBSD struct dirent records from the current position, at most
        count bytes; EINVAL if not even the next record fits."""
        if self._dirents is None:
            ents = host_input("readdir", lambda: self._read_dir(k))
            if isinstance(ents, int):
                return ents
            self._dirents = ents
        out = bytearray()
        pos = self._dirpos
        while pos < len(self._dirents):
            ino, dtype, name = self._dirents[pos]
            reclen = dirent_reclen(len(name))
            if len(out) + reclen > count:
                break
            rec = DIRENT_HDR.pack(ino, reclen, len(name), dtype) + name
            out += rec + b"\0" * (reclen - len(rec))
            pos += 1
        if not out and pos < len(self._dirents):
            return Errno.EINVAL
        self._pending_pos = pos
        return bytes(out)

    def getdents_commit(self) -> None:
        """The records were copied out: move past them."""
        self._dirpos = self._pending_pos

    def _read_dir(self, k) -> list[tuple[int, int, bytes]] | int:
        try:
            st = os.fstat(self.hostfd)
            entries = [(st.st_ino, IFTODT(st.st_mode), b".")]
            # ".." of the root is itself; elsewhere the held directory's parent
            pst = st if is_root(k, self.hostfd) else os.stat("..", dir_fd=self.hostfd)
            entries.append((pst.st_ino, IFTODT(pst.st_mode), b".."))
            with os.scandir(self.hostfd) as it:        # CPython reads a dup and rewinds
                for e in it:
                    try:
                        dtype = IFTODT(e.stat(follow_symlinks=False).st_mode)
                    except OSError:
                        dtype = DT_UNKNOWN
                    entries.append((e.inode(), dtype, os.fsencode(e.name)))
        except OSError as e:
            return from_host(e.errno or 5)
        return entries


class SeededRandomFile(HostFile):
    """/dev/random and /dev/urandom under --deterministic: reads come from the
    kernel's seeded generator (as kern.arandom does), so a run repeats."""

    def fo_read(self, l: Lwp, uio) -> int:
        rng = l.l_proc.k.rng
        while uio.resid:
            n = uio.writable(min(uio.resid, CHUNK))
            if n == 0:
                return Errno.EFAULT
            error = uio.copyout(rng.randbytes(n))
            if error:
                return error
        return 0


RANDOM_DEVICES = (b"/dev/random", b"/dev/urandom")


# -- helpers for the calls ---------------------------------------------------------------
def _lookup(l: Lwp, dirfd: int, path_va: int, follow: bool, must_exist: bool = True
            ) -> Nameidata | int:
    nd = namei_at(l, dirfd, path_va, follow)
    if isinstance(nd, int):
        return nd
    if must_exist and not nd.ni_exists:
        nd.close()
        return Errno.ENOENT
    return nd


def _lookup_create(l: Lwp, dirfd: int, path_va: int, createdir: bool = False
                   ) -> Nameidata | int:
    """namei for a name to make (link, symlink, rename's target, mkfifo, mkdir):
    a trailing slash requires a directory (REQUIREDIR), so a name that does not
    exist yet is ENOENT unless a directory is being made (CREATEDIR)."""
    nd = _lookup(l, dirfd, path_va, False, must_exist=False)
    if isinstance(nd, int):
        return nd
    if not nd.ni_exists and nd.ni_trailing_slash and not createdir:
        nd.close()
        return Errno.ENOENT
    return nd


def filedesc_init(p: Proc) -> Filedesc:
    """A fresh table with fd 0, 1, 2 bound to the host's stdin/stdout/stderr
    (the first process's, made by emu/boot.py; tests/khelp.py)."""
    fdp = Filedesc()
    p.p_fd = fdp
    for fd, name in enumerate(("<stdin>", "<stdout>", "<stderr>")):
        try:
            hflags = host_fcntl.fcntl(fd, host_fcntl.F_GETFL)
        except OSError:
            continue                         # the host gave us no such descriptor
        # the host descriptor's access mode and append flag, in NetBSD's terms
        flag = FFLAGS(hflags & O_ACCMODE) | (FAPPEND if hflags & os.O_APPEND else 0)
        fd_affix(p, HostFile(fd, flag, name, owns_fd=False, guest_path=None), fd)
    return fdp


def _host_fd_to_null(fd: int) -> None:
    """/dev/null in place of host descriptor fd: what was there is closed, and
    the number is not free for a host open() while nbemu may print to it."""
    try:
        nul = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    os.dup2(nul, fd)
    os.close(nul)


def release_host_stdio(k: Any) -> None:
    """For a host process that runs guest processes on after nbemu's command
    returned (emu/survivors.py): the host's stdin/stdout/stderr stay open only
    while a live guest process still has them open; the last close releases
    them, so whoever reads nbemu's output sees EOF as with a native daemon."""
    held: set[int] = set()
    for p in k.live_procs():
        fdp = p.p_fd
        for fp in (fdp.fd_ofiles if fdp is not None else ()):
            if isinstance(fp, HostFile) and not fp.owns_fd and fp.hostfd in (0, 1, 2):
                fp.stdio_release = True
                held.add(fp.hostfd)
    for fd in (0, 1, 2):
        if fd not in held:
            _host_fd_to_null(fd)


def fd_getvnode(p: Proc, fd: int) -> HostFile | int:
    """The vnode open on fd: EBADF if none, EINVAL if not a vnode."""
    fp = fd_getfile(p, fd)
    if fp is None:
        return Errno.EBADF
    if fp.f_type != DTYPE_VNODE or not isinstance(fp, HostFile):
        return Errno.EINVAL
    return fp


def _now_ns(l: Lwp) -> int:
    return l.l_proc.k.clock.realtime_ns()


# -- open ---------------------------------------------------------------------------------
def do_open(l: Lwp, dirfd: int, path_va: int, oflags: int, mode: int, retval: list[int]
            ) -> int | Generator[str, int, int]:
    p = l.l_proc
    k = p.k
    flags = FFLAGS(oflags)
    if not flags & (FREAD | FWRITE):
        return Errno.EINVAL
    path = p.p_vmspace.copyinstr(path_va, MAXPATHLEN)
    if isinstance(path, int):
        return path
    error, fd = fd_alloc(p, 0)                   # fd_allocfile comes before the lookup
    if error:
        return error
    start = start_dir(l, dirfd, path)
    if isinstance(start, int):
        return start
    follow = not (oflags & O_NOFOLLOW) and not (oflags & O_CREAT and oflags & O_EXCL)
    nd = namei(k, start, path, follow)
    if isinstance(nd, int):
        return nd
    with nd:
        hflags = (oflags & O_ACCMODE) | os.O_CLOEXEC | os.O_NOCTTY
        if oflags & O_APPEND:
            hflags |= os.O_APPEND
        if oflags & O_SYNC:
            hflags |= os.O_SYNC
        if oflags & (O_DSYNC | O_RSYNC):
            hflags |= os.O_DSYNC
        if oflags & O_NONBLOCK:
            hflags |= os.O_NONBLOCK              # device open semantics; cleared below
        cmode = mode & ALLPERMS & ~cmask_of(p)
        created = False
        if not nd.ni_exists:
            if not oflags & O_CREAT:
                return Errno.ENOENT
            if nd.ni_trailing_slash:
                return Errno.EISDIR
            # a new name in the held directory; O_NOFOLLOW|O_EXCL: never through a link
            error, hfd = _host(os.open, nd.ni_name,
                               hflags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, cmode,
                               dir_fd=nd.ni_dvp)
            created = True
        else:
            m = nd.ni_st.st_mode  # type: ignore[union-attr]
            if oflags & O_CREAT and oflags & O_EXCL:
                return Errno.EEXIST
            if host_stat.S_ISLNK(m):
                return Errno.EFTYPE              # O_NOFOLLOW on a symbolic link
            if host_stat.S_ISSOCK(m):
                return Errno.EOPNOTSUPP
            if oflags & O_DIRECTORY and not host_stat.S_ISDIR(m):
                return Errno.ENOTDIR
            if oflags & O_REGULAR and not host_stat.S_ISREG(m):
                return Errno.EFTYPE
            if host_stat.S_ISDIR(m) and (flags & FWRITE or oflags & O_TRUNC):
                return Errno.EISDIR
            if oflags & O_TRUNC:
                hflags |= os.O_TRUNC
            if host_stat.S_ISFIFO(m):
                from .fifo_vnops import fifo_open
                return fifo_open(l, nd.take_vp(), nd.ni_st, hflags, flags,
                                 os.fsdecode(nd.ni_guest), nd.ni_comps,
                                 bool(oflags & O_CLOEXEC), retval, HostFile)
            # re-open the very object namei holds (not a path the host walks)
            error, hfd = _host(os.open, nd.ni_proc, hflags)
        guest, comps = nd.ni_guest, nd.ni_comps
    if error:
        return error
    if created:
        _host(os.fchmod, hfd, cmode)             # undo the host's own umask
    if oflags & O_NONBLOCK:
        _host(os.set_blocking, hfd, True)
    cls = HostFile
    if k.deterministic and guest in RANDOM_DEVICES:
        cls = SeededRandomFile
    fp = cls(hfd, flags & FMASK, os.fsdecode(guest), owns_fd=True, guest_path=comps)
    fd_affix(p, fp, fd, bool(oflags & O_CLOEXEC))
    retval[0] = fd
    return 0


@syscall(5, "open")
def sys_open(l: Lwp, a, retval: list[int]) -> int:
    return do_open(l, AT_FDCWD, a.path, a.flags, a.mode, retval)


@syscall(468, "openat")
def sys_openat(l: Lwp, a, retval: list[int]) -> int:
    return do_open(l, a.fd, a.path, a.oflags, a.mode, retval)


# -- stat ----------------------------------------------------------------------------------
def _stat_path(l: Lwp, dirfd: int, path_va: int, follow: bool, ub: int) -> int:
    nd = _lookup(l, dirfd, path_va, follow)
    if isinstance(nd, int):
        return nd
    nd.close()                                   # ni_st is the held object's fstat
    return l.l_proc.p_vmspace.copyout(stat_from_host(nd.ni_st).pack(l.l_proc.k.abi), ub)  # type: ignore[arg-type]


@syscall(439, "__stat50")
def sys___stat50(l: Lwp, a, retval: list[int]) -> int:
    return _stat_path(l, AT_FDCWD, a.path, True, a.ub)


@syscall(441, "__lstat50")
def sys___lstat50(l: Lwp, a, retval: list[int]) -> int:
    return _stat_path(l, AT_FDCWD, a.path, False, a.ub)


@syscall(466, "fstatat")
def sys_fstatat(l: Lwp, a, retval: list[int]) -> int:
    if a.flag & ~AT_SYMLINK_NOFOLLOW:
        return Errno.EINVAL
    return _stat_path(l, a.fd, a.path, not a.flag & AT_SYMLINK_NOFOLLOW, a.buf)


# -- lseek ---------------------------------------------------------------------------------
@syscall(199, "lseek")
def sys_lseek(l: Lwp, a, retval: list[int]) -> int:
    fp = fd_getfile(l.l_proc, a.fd)
    if fp is None:
        return Errno.EBADF
    if fp.f_type != DTYPE_VNODE or fp.v_type == VFIFO:
        return Errno.ESPIPE
    if a.whence not in (SEEK_SET, SEEK_CUR, SEEK_END):
        return Errno.EINVAL
    new = fp.fo_seek(a.offset, a.whence)
    if new < 0:
        return -new
    set_retval_off(l.l_proc.k.abi, retval, new)
    return 0


# -- access ----------------------------------------------------------------------------------
def _access(l: Lwp, dirfd: int, path_va: int, amode: int, follow: bool) -> int:
    if amode & ~(R_OK | W_OK | X_OK):
        return Errno.EINVAL
    nd = _lookup(l, dirfd, path_va, follow)
    if isinstance(nd, int):
        return nd
    with nd:
        if amode:
            if nd.is_link:                       # AT_SYMLINK_NOFOLLOW on a link
                error, ok = _host(os.access, nd.ni_name, amode, dir_fd=nd.ni_dvp,
                                  follow_symlinks=False)
            else:
                error, ok = _host(os.access, nd.ni_proc, amode)
            if error:
                return error
            if not ok:
                return Errno.EACCES
    return 0


@syscall(33, "access")
def sys_access(l: Lwp, a, retval: list[int]) -> int:
    return _access(l, AT_FDCWD, a.path, a.flags, True)


@syscall(462, "faccessat")
def sys_faccessat(l: Lwp, a, retval: list[int]) -> int:
    if a.flag & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW):
        return Errno.EINVAL
    return _access(l, a.fd, a.path, a.amode, not a.flag & AT_SYMLINK_NOFOLLOW)


# -- working directory -------------------------------------------------------------------------
@syscall(296, "__getcwd")
def sys___getcwd(l: Lwp, a, retval: list[int]) -> int:
    length = a.length & 0xFFFFFFFF                      # NetBSD keeps it in an int
    if length & 0x80000000:
        length -= 1 << 32
    if length > MAXPATHLEN * 4:
        length = MAXPATHLEN * 4
    elif length < 2:
        return Errno.ERANGE
    p = l.l_proc
    path = vnode_path(p.k, cwd_vnode(p))
    if isinstance(path, int):
        return path
    path += b"\0"
    if len(path) > length:
        return Errno.ERANGE
    error = l.l_proc.p_vmspace.copyout(path, a.bufp)
    if error:
        return error
    retval[0] = len(path)
    return 0


def _set_cwd(p: Proc, fd: int, comps: list[bytes]) -> int:
    """The directory on fd becomes the cwd, held by a descriptor of its own."""
    if not os.access(proc_fd(fd), os.X_OK):
        return Errno.EACCES
    error, hold = _host(os.open, proc_fd(fd), O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if error:
        return error
    cwd_set(p, Vnode(hold, list(comps)))
    return 0


@syscall(12, "chdir")
def sys_chdir(l: Lwp, a, retval: list[int]) -> int:
    nd = _lookup(l, AT_FDCWD, a.path, True)
    if isinstance(nd, int):
        return nd
    with nd:
        if not host_stat.S_ISDIR(nd.ni_st.st_mode):  # type: ignore[union-attr]
            return Errno.ENOTDIR
        return _set_cwd(l.l_proc, nd.ni_vp, nd.ni_comps)  # type: ignore[arg-type]


@syscall(13, "fchdir")
def sys_fchdir(l: Lwp, a, retval: list[int]) -> int:
    fp = fd_getvnode(l.l_proc, a.fd)
    if isinstance(fp, int):
        return fp
    if not fp.is_dir or fp.hostfd < 0 or fp.f_guest is None:
        return Errno.ENOTDIR                     # f_guest None: a host directory as stdin
    return _set_cwd(l.l_proc, fp.hostfd, fp.f_guest)


# -- symbolic links ---------------------------------------------------------------------------
def _readlink(l: Lwp, dirfd: int, path_va: int, buf: int, count: int, retval: list[int]) -> int:
    nd = _lookup(l, dirfd, path_va, False)
    if isinstance(nd, int):
        return nd
    with nd:
        if not nd.is_link:
            return Errno.EINVAL
        error, target = _host(os.readlink, b"", dir_fd=nd.ni_vp)    # the held link itself
    if error:
        return error
    n = min(count, len(target))
    error = l.l_proc.p_vmspace.copyout(target[:n], buf)
    if error:
        return error
    retval[0] = n
    return 0


@syscall(58, "readlink")
def sys_readlink(l: Lwp, a, retval: list[int]) -> int:
    return _readlink(l, AT_FDCWD, a.path, a.buf, a.count, retval)


@syscall(469, "readlinkat")
def sys_readlinkat(l: Lwp, a, retval: list[int]) -> int:
    return _readlink(l, a.fd, a.path, a.buf, a.bufsize, retval)


def _symlink(l: Lwp, target_va: int, dirfd: int, link_va: int) -> int:
    target = l.l_proc.p_vmspace.copyinstr(target_va, MAXPATHLEN)
    if isinstance(target, int):
        return target
    nd = _lookup_create(l, dirfd, link_va)
    if isinstance(nd, int):
        return nd
    with nd:
        if nd.ni_exists:
            return Errno.EEXIST
        return _host_err(os.symlink, target, nd.ni_name, dir_fd=nd.ni_dvp)


@syscall(57, "symlink")
def sys_symlink(l: Lwp, a, retval: list[int]) -> int:
    return _symlink(l, a.path, AT_FDCWD, a.link)


@syscall(470, "symlinkat")
def sys_symlinkat(l: Lwp, a, retval: list[int]) -> int:
    return _symlink(l, a.path1, a.fd, a.path2)


def _link(l: Lwp, fd1: int, name1: int, fd2: int, name2: int, follow: bool) -> int:
    src = _lookup(l, fd1, name1, follow)
    if isinstance(src, int):
        return src
    with src:
        if host_stat.S_ISDIR(src.ni_st.st_mode) or src.ni_dvp is None:  # type: ignore[union-attr]
            return Errno.EPERM
        dst = _lookup_create(l, fd2, name2)
        if isinstance(dst, int):
            return dst
        with dst:
            if dst.ni_exists:
                return Errno.EEXIST
            return _host_err(os.link, src.ni_name, dst.ni_name, src_dir_fd=src.ni_dvp,
                             dst_dir_fd=dst.ni_dvp, follow_symlinks=False)


@syscall(9, "link")
def sys_link(l: Lwp, a, retval: list[int]) -> int:
    return _link(l, AT_FDCWD, a.path, AT_FDCWD, a.link, False)


@syscall(457, "linkat")
def sys_linkat(l: Lwp, a, retval: list[int]) -> int:
    if a.flags & ~AT_SYMLINK_FOLLOW:
        return Errno.EINVAL
    return _link(l, a.fd1, a.name1, a.fd2, a.name2, bool(a.flags & AT_SYMLINK_FOLLOW))


# -- creating and removing names -------------------------------------------------------------
def _unlink(l: Lwp, dirfd: int, path_va: int) -> int:
    nd = _lookup(l, dirfd, path_va, False)
    if isinstance(nd, int):
        return nd
    with nd:
        if host_stat.S_ISDIR(nd.ni_st.st_mode) or nd.ni_dvp is None:  # type: ignore[union-attr]
            return Errno.EPERM                   # ufs/tmpfs: unlink of a directory
        return _host_err(os.unlink, nd.ni_name, dir_fd=nd.ni_dvp)


def _rmdir(l: Lwp, dirfd: int, path_va: int) -> int:
    nd = _lookup(l, dirfd, path_va, False)
    if isinstance(nd, int):
        return nd
    with nd:
        if nd.ni_lastname == b".":
            return Errno.EINVAL
        if nd.ni_lastname == b"..":
            return Errno.ENOTEMPTY
        if not host_stat.S_ISDIR(nd.ni_st.st_mode):  # type: ignore[union-attr]
            return Errno.ENOTDIR
        if nd.is_root or nd.ni_dvp is None:
            return Errno.EBUSY
        return _host_err(os.rmdir, nd.ni_name, dir_fd=nd.ni_dvp)


@syscall(10, "unlink")
def sys_unlink(l: Lwp, a, retval: list[int]) -> int:
    return _unlink(l, AT_FDCWD, a.path)


@syscall(137, "rmdir")
def sys_rmdir(l: Lwp, a, retval: list[int]) -> int:
    return _rmdir(l, AT_FDCWD, a.path)


@syscall(471, "unlinkat")
def sys_unlinkat(l: Lwp, a, retval: list[int]) -> int:
    if a.flag & ~AT_REMOVEDIR:
        return Errno.EINVAL
    if a.flag & AT_REMOVEDIR:
        return _rmdir(l, a.fd, a.path)
    return _unlink(l, a.fd, a.path)


def _mknode(l: Lwp, dirfd: int, path_va: int, mode: int, make: Callable[..., None]
            ) -> int:
    nd = _lookup_create(l, dirfd, path_va, createdir=make is os.mkdir)
    if isinstance(nd, int):
        return nd
    with nd:
        if nd.ni_exists:
            return Errno.EEXIST
        error = _host_err(make, nd.ni_name, mode, dir_fd=nd.ni_dvp)
        if error:
            return error
        _chmod_new(nd.ni_dvp, nd.ni_name, mode)   # type: ignore[arg-type]
    return 0


def _chmod_new(dvp: int, name: bytes, mode: int) -> None:
    """Give a node just made in dvp the guest's mode (the guest's umask, not the
    host's), on the node itself: never through a link put in its place."""
    error, fd = _host(os.open, name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dvp)
    if error:
        return
    try:
        if not host_stat.S_ISLNK(os.fstat(fd).st_mode):
            _host(os.chmod, proc_fd(fd), mode)
    finally:
        os.close(fd)


@syscall(136, "mkdir")
def sys_mkdir(l: Lwp, a, retval: list[int]) -> int:
    return _mknode(l, AT_FDCWD, a.path, a.mode & ACCESSPERMS & ~cmask_of(l.l_proc), os.mkdir)


@syscall(461, "mkdirat")
def sys_mkdirat(l: Lwp, a, retval: list[int]) -> int:
    return _mknode(l, a.fd, a.path, a.mode & ACCESSPERMS & ~cmask_of(l.l_proc), os.mkdir)


@syscall(132, "mkfifo")
def sys_mkfifo(l: Lwp, a, retval: list[int]) -> int:
    return _mknode(l, AT_FDCWD, a.path, a.mode & ALLPERMS & ~cmask_of(l.l_proc), os.mkfifo)


@syscall(459, "mkfifoat")
def sys_mkfifoat(l: Lwp, a, retval: list[int]) -> int:
    return _mknode(l, a.fd, a.path, a.mode & ALLPERMS & ~cmask_of(l.l_proc), os.mkfifo)


def _rename(l: Lwp, fromfd: int, from_va: int, tofd: int, to_va: int) -> int:
    src = _lookup(l, fromfd, from_va, False)
    if isinstance(src, int):
        return src
    with src:
        if src.ni_lastname in (b".", b"..") or src.is_root or src.ni_dvp is None:
            return Errno.EINVAL
        dst = _lookup_create(l, tofd, to_va,
                             createdir=host_stat.S_ISDIR(src.ni_st.st_mode))  # type: ignore[union-attr]
        if isinstance(dst, int):
            return dst
        with dst:
            if dst.ni_lastname in (b".", b"..") or dst.is_root or dst.ni_dvp is None:
                return Errno.EINVAL
            return _host_err(os.rename, src.ni_name, dst.ni_name, src_dir_fd=src.ni_dvp,
                             dst_dir_fd=dst.ni_dvp)


@syscall(128, "rename")
def sys_rename(l: Lwp, a, retval: list[int]) -> int:
    return _rename(l, AT_FDCWD, a[0], AT_FDCWD, a[1])    # a.from is a Python keyword


@syscall(458, "renameat")
def sys_renameat(l: Lwp, a, retval: list[int]) -> int:
    return _rename(l, a.fromfd, a[1], a.tofd, a.to)


# -- directories ---------------------------------------------------------------------------------
@syscall(390, "__getdents30")
def sys___getdents30(l: Lwp, a, retval: list[int]) -> int:
    fp = fd_getvnode(l.l_proc, a.fd)
    if isinstance(fp, int):
        return fp
    if not fp.f_flag & FREAD:
        return Errno.EBADF
    if not fp.is_dir:
        return Errno.EINVAL
    data = fp.getdents(l.l_proc.k, min(a.count, 1 << 24))
    if isinstance(data, int):
        return data
    error = l.l_proc.p_vmspace.copyout(data, a.buf)
    if error:
        return error
    fp.getdents_commit()
    retval[0] = len(data)
    return 0


# -- data and attributes ---------------------------------------------------------------------------
def _fsync(l: Lwp, fd: int, need_write: bool, fn: Callable[[int], None]) -> int:
    fp = fd_getvnode(l.l_proc, fd)
    if isinstance(fp, int):
        return fp
    if need_write and not fp.f_flag & FWRITE:
        return Errno.EBADF
    if fp.v_type not in (VREG, VDIR, VBLK):
        return 0                                 # ttys and FIFOs: nothing to flush
    return _host_err(fn, fp.hostfd)


@syscall(95, "fsync")
def sys_fsync(l: Lwp, a, retval: list[int]) -> int:
    return _fsync(l, a.fd, False, os.fsync)


@syscall(241, "fdatasync")
def sys_fdatasync(l: Lwp, a, retval: list[int]) -> int:
    return _fsync(l, a.fd, True, os.fdatasync)


@syscall(201, "ftruncate")
def sys_ftruncate(l: Lwp, a, retval: list[int]) -> int:
    if a.length < 0:
        return Errno.EINVAL
    fp = fd_getvnode(l.l_proc, a.fd)
    if isinstance(fp, int):
        return fp
    if not fp.f_flag & FWRITE:
        return Errno.EINVAL
    if fp.is_dir:
        return Errno.EISDIR
    return _host_err(os.ftruncate, fp.hostfd, a.length)


@syscall(200, "truncate")
def sys_truncate(l: Lwp, a, retval: list[int]) -> int:
    if a.length < 0:
        return Errno.EINVAL
    nd = _lookup(l, AT_FDCWD, a.path, True)
    if isinstance(nd, int):
        return nd
    with nd:
        if host_stat.S_ISDIR(nd.ni_st.st_mode):  # type: ignore[union-attr]
            return Errno.EISDIR
        return _host_err(os.truncate, nd.ni_proc, a.length)


@syscall(60, "umask")
def sys_umask(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    retval[0] = cmask_of(p)
    p.p_cmask = a.newmask & ALLPERMS
    return 0


def _chmod_path(l: Lwp, dirfd: int, path_va: int, mode: int, follow: bool) -> int:
    nd = _lookup(l, dirfd, path_va, follow)
    if isinstance(nd, int):
        return nd
    with nd:
        if nd.is_link:
            return 0                             # Linux links have no mode of their own
        return _host_err(os.chmod, nd.ni_proc, mode & ALLPERMS)


@syscall(15, "chmod")
def sys_chmod(l: Lwp, a, retval: list[int]) -> int:
    return _chmod_path(l, AT_FDCWD, a.path, a.mode, True)


@syscall(274, "lchmod")
def sys_lchmod(l: Lwp, a, retval: list[int]) -> int:
    return _chmod_path(l, AT_FDCWD, a.path, a.mode, False)


@syscall(463, "fchmodat")
def sys_fchmodat(l: Lwp, a, retval: list[int]) -> int:
    if a.flag & ~AT_SYMLINK_NOFOLLOW:
        return Errno.EINVAL
    return _chmod_path(l, a.fd, a.path, a.mode, not a.flag & AT_SYMLINK_NOFOLLOW)


@syscall(124, "fchmod")
def sys_fchmod(l: Lwp, a, retval: list[int]) -> int:
    fp = fd_getvnode(l.l_proc, a.fd)
    if isinstance(fp, int):
        return fp
    return _host_err(os.fchmod, fp.hostfd, a.mode & ALLPERMS)


def _id(v: int) -> int:
    return -1 if v == 0xFFFFFFFF else v          # (uid_t)-1: leave unchanged


def _chown_path(l: Lwp, dirfd: int, path_va: int, uid: int, gid: int, follow: bool) -> int:
    nd = _lookup(l, dirfd, path_va, follow)
    if isinstance(nd, int):
        return nd
    with nd:
        if nd.is_link:
            return _host_err(os.chown, nd.ni_name, _id(uid), _id(gid), dir_fd=nd.ni_dvp,
                             follow_symlinks=False)
        return _host_err(os.chown, nd.ni_proc, _id(uid), _id(gid))


@syscall(16, "chown")
def sys_chown(l: Lwp, a, retval: list[int]) -> int:
    return _chown_path(l, AT_FDCWD, a.path, a.uid, a.gid, True)


@syscall(275, "lchown")
def sys_lchown(l: Lwp, a, retval: list[int]) -> int:
    return _chown_path(l, AT_FDCWD, a.path, a.uid, a.gid, False)


@syscall(464, "fchownat")
def sys_fchownat(l: Lwp, a, retval: list[int]) -> int:
    if a.flag & ~AT_SYMLINK_NOFOLLOW:
        return Errno.EINVAL
    return _chown_path(l, a.fd, a.path, a.owner, a.group, not a.flag & AT_SYMLINK_NOFOLLOW)


@syscall(123, "fchown")
def sys_fchown(l: Lwp, a, retval: list[int]) -> int:
    fp = fd_getvnode(l.l_proc, a.fd)
    if isinstance(fp, int):
        return fp
    return _host_err(os.fchown, fp.hostfd, _id(a.uid), _id(a.gid))


# -- times ---------------------------------------------------------------------------------------
def _copyin_times(l: Lwp, tptr: int, timeval: bool) -> tuple[int | None, int | None] | int:
    """(atime_ns, mtime_ns) from the guest; None = leave (UTIME_OMIT);
    NULL = both now."""
    now = _now_ns(l)
    if not tptr:
        return now, now
    lay = (TIMEVAL if timeval else TIMESPEC).on(l.l_proc.k.abi)
    data = l.l_proc.p_vmspace.copyin(tptr, 2 * lay.size)
    if isinstance(data, int):
        return data
    out: list[int | None] = []
    for i in range(2):
        if timeval:
            sec, usec = lay.unpack_from(data, lay.size * i)
            if not 0 <= usec < 10**6:
                return Errno.EINVAL
            out.append(sec * 10**9 + usec * 1000)
        else:
            sec, nsec = lay.unpack_from(data, lay.size * i)
            if nsec == UTIME_NOW:
                out.append(now)
            elif nsec == UTIME_OMIT:
                out.append(None)
            elif not 0 <= nsec < 10**9:
                return Errno.EINVAL
            else:
                out.append(sec * 10**9 + nsec)
    return out[0], out[1]


def _utimes(target: Any, times: tuple[int | None, int | None], follow: bool) -> int:
    at, mt = times
    if at is None or mt is None:
        if isinstance(target, int):
            error, st = _host(os.fstat, target)
        else:
            error, st = _host(os.stat, target, follow_symlinks=follow)
        if error:
            return error
        at = st.st_atime_ns if at is None else at
        mt = st.st_mtime_ns if mt is None else mt
    if isinstance(target, int):
        return _host_err(os.utime, target, ns=(at, mt))
    return _host_err(os.utime, target, ns=(at, mt), follow_symlinks=follow)


def _utimes_path(l: Lwp, dirfd: int, path_va: int, tptr: int, timeval: bool, follow: bool
                 ) -> int:
    times = _copyin_times(l, tptr, timeval)
    if isinstance(times, int):
        return times
    nd = _lookup(l, dirfd, path_va, follow)
    if isinstance(nd, int):
        return nd
    return utimes_nd(nd, times)


def utimes_nd(nd: Any, times: tuple[int | None, int | None]) -> int:
    """Set the times (ns; None: leave) of the object a lookup holds (closes nd)."""
    with nd:
        at, mt = times
        st = nd.ni_st                            # the held object's (a link's: lstat)
        ns = (st.st_atime_ns if at is None else at,   # type: ignore[union-attr]
              st.st_mtime_ns if mt is None else mt)   # type: ignore[union-attr]
        if nd.is_link:
            return _host_err(os.utime, nd.ni_name, ns=ns, dir_fd=nd.ni_dvp,
                             follow_symlinks=False)
        return _host_err(os.utime, nd.ni_proc, ns=ns)


def _utimes_fd(l: Lwp, fd: int, tptr: int, timeval: bool) -> int:
    times = _copyin_times(l, tptr, timeval)
    if isinstance(times, int):
        return times
    fp = fd_getvnode(l.l_proc, fd)
    if isinstance(fp, int):
        return fp
    return _utimes(fp.hostfd, times, True)


@syscall(420, "__utimes50")
def sys___utimes50(l: Lwp, a, retval: list[int]) -> int:
    return _utimes_path(l, AT_FDCWD, a.path, a.tptr, True, True)


@syscall(424, "__lutimes50")
def sys___lutimes50(l: Lwp, a, retval: list[int]) -> int:
    return _utimes_path(l, AT_FDCWD, a.path, a.tptr, True, False)


@syscall(423, "__futimes50")
def sys___futimes50(l: Lwp, a, retval: list[int]) -> int:
    return _utimes_fd(l, a.fd, a.tptr, True)


@syscall(467, "utimensat")
def sys_utimensat(l: Lwp, a, retval: list[int]) -> int:
    if a.flag & ~AT_SYMLINK_NOFOLLOW:
        return Errno.EINVAL
    return _utimes_path(l, a.fd, a.path, a.tptr, False, not a.flag & AT_SYMLINK_NOFOLLOW)


@syscall(472, "futimens")
def sys_futimens(l: Lwp, a, retval: list[int]) -> int:
    return _utimes_fd(l, a.fd, a.tptr, False)


__all__ = ["HostFile", "VREG", "VDIR", "VCHR", "VFIFO", "fd_getvnode", "do_open",
           "split_guest"]


# -- fsync_range (vfs_syscalls.c) ---------------------------------------------------------
FDATASYNC, FFILESYNC, FDISKSYNC = 0x0010, 0x0020, 0x10000    # sys/fcntl.h
OFF_T_MAX = (1 << 63) - 1


@syscall(354, "fsync_range")
def sys_fsync_range(l: Lwp, a, retval: list[int]) -> int:
    fp = fd_getvnode(l.l_proc, a.fd)
    if isinstance(fp, int):
        return fp
    if not fp.f_flag & FWRITE:
        return Errno.EBADF
    flags = a.flags
    if not flags & (FDATASYNC | FFILESYNC) or not ~flags & (FDATASYNC | FFILESYNC):
        return Errno.EINVAL
    if a.length:
        if a.start < 0 or a.length < 0 or a.length > OFF_T_MAX - a.start:
            return Errno.EINVAL
    if fp.v_type not in (VREG, VDIR, VBLK):
        return 0
    return _host_err(os.fdatasync if flags & FDATASYNC else os.fsync, fp.hostfd)


# -- pathconf, fpathconf, lpathconf (VOP_PATHCONF of ufs, spec and fifo vnodes) -----------
(_PC_LINK_MAX, _PC_MAX_CANON, _PC_MAX_INPUT, _PC_NAME_MAX, _PC_PATH_MAX, _PC_PIPE_BUF,
 _PC_CHOWN_RESTRICTED, _PC_NO_TRUNC, _PC_VDISABLE, _PC_SYNC_IO, _PC_FILESIZEBITS,
 _PC_SYMLINK_MAX, _PC_2_SYMLINKS, _PC_ACL_EXTENDED, _PC_MIN_HOLE_SIZE) = range(1, 16)
_PC_ACL_NFS4 = 17
LINK_MAX, MAX_CANON, MAX_INPUT, PIPE_BUF_PC, FFS_MAXNAMLEN = 32767, 255, 255, 512, 255
_POSIX_VDISABLE = 0xFF


def vop_pathconf(vtype: int, name: int, blksize: int) -> tuple[int, int]:
    """(errno, value): ufs_pathconf for files, directories and links;
    spec_pathconf for devices; fifo_pathconf for FIFOs; genfs_pathconf's
    _PC_PATH_MAX and ACL answers otherwise; EINVAL for the rest."""
    if vtype in (VCHR, VBLK):
        table = {_PC_LINK_MAX: LINK_MAX, _PC_MAX_CANON: MAX_CANON, _PC_MAX_INPUT: MAX_INPUT,
                 _PC_PIPE_BUF: PIPE_BUF_PC, _PC_CHOWN_RESTRICTED: 1,
                 _PC_VDISABLE: _POSIX_VDISABLE, _PC_SYNC_IO: 1}
    elif vtype == VFIFO:
        table = {_PC_LINK_MAX: LINK_MAX, _PC_PIPE_BUF: PIPE_BUF_PC, _PC_CHOWN_RESTRICTED: 1,
                 _PC_SYNC_IO: 1}
    else:
        table = {_PC_LINK_MAX: LINK_MAX, _PC_NAME_MAX: FFS_MAXNAMLEN, _PC_PATH_MAX: MAXPATHLEN,
                 _PC_PIPE_BUF: PIPE_BUF_PC, _PC_CHOWN_RESTRICTED: 1, _PC_NO_TRUNC: 1,
                 _PC_SYNC_IO: 1, _PC_FILESIZEBITS: 42, _PC_SYMLINK_MAX: MAXPATHLEN,
                 _PC_2_SYMLINKS: 1, _PC_ACL_EXTENDED: 0, _PC_ACL_NFS4: 0,
                 _PC_MIN_HOLE_SIZE: blksize}
    if name in table:
        return 0, table[name]
    return Errno.EINVAL, 0


def _pathconf_path(l: Lwp, path_va: int, name: int, follow: bool, retval: list[int]) -> int:
    nd = _lookup(l, AT_FDCWD, path_va, follow)
    if isinstance(nd, int):
        return nd
    nd.close()
    st = nd.ni_st
    error, val = vop_pathconf(vtype_of(st.st_mode), name, st.st_blksize)
    if not error:
        retval[0] = val
    return error


@syscall(191, "pathconf")
def sys_pathconf(l: Lwp, a, retval: list[int]) -> int:
    return _pathconf_path(l, a.path, a.name, True, retval)


@syscall(499, "lpathconf")
def sys_lpathconf(l: Lwp, a, retval: list[int]) -> int:
    return _pathconf_path(l, a.path, a.name, False, retval)


@syscall(192, "fpathconf")
def sys_fpathconf(l: Lwp, a, retval: list[int]) -> int:
    from .kern_descrip import DTYPE_KQUEUE, DTYPE_PIPE, DTYPE_SOCKET
    fp = fd_getfile(l.l_proc, a.fd)
    if fp is None:
        return Errno.EBADF
    if fp.f_type in (DTYPE_SOCKET, DTYPE_PIPE):
        if a.name != _PC_PIPE_BUF:
            return Errno.EINVAL
        retval[0] = PIPE_BUF_PC
        return 0
    if fp.f_type == DTYPE_VNODE and isinstance(fp, HostFile):
        error, st = _host(os.fstat, fp.hostfd)
        if error:
            return error
        error, val = vop_pathconf(fp.v_type, a.name, st.st_blksize)
        if not error:
            retval[0] = val
        return error
    if fp.f_type == DTYPE_KQUEUE:
        return Errno.EINVAL
    return Errno.EOPNOTSUPP
