"""Descriptors, files, paths and pipes: kern_descrip, sys_generic,
vfs_lookup / vfs_syscalls and sys_pipe, driven through the syscall table
without an engine (tests/khelp.py), with a temporary directory as guest root."""
from __future__ import annotations

import os
import stat as host_stat
import struct

import pytest

from nbemu.syscalls.errno import Errno
from nbemu.syscalls.kern_descrip import (F_CLOSEM, F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL,
                                   F_GETLK, F_GETNOSIGPIPE, F_MAXFD, F_SETFD, F_SETFL, F_SETLK,
                                   F_SETNOSIGPIPE, F_UNLCK, F_WRLCK, FD_CLOEXEC, FIONBIO,
                                   FIONREAD, FNONBLOCK, O_APPEND, O_CLOEXEC, O_CREAT,
                                   O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_RDWR,
                                   O_TRUNC, O_WRONLY, fd_getfile)
from nbemu.syscalls.lwp import LSRUN, LSSLEEP, Lwp
from nbemu.syscalls.sys_pipe import BIG_PIPE_SIZE, PIPE_SIZE
from nbemu.syscalls.vfs_syscalls import TIOCGETA
from tests.khelp import call, err, make_kernel, ok, resume, scratch, second_lwp

AT_FDCWD = -100
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
BAD = 0x7000_0000_0000                 # never mapped
DT_DIR, DT_REG, DT_LNK = 4, 8, 10


# -- fixtures and helpers -------------------------------------------------------------
@pytest.fixture
def env(tmp_path):
    """A guest root with files, directories and symlinks, and a secret beside it."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"host secret")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_bytes(b"root:*:0:0\n")
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "a.txt").write_bytes(b"hello world")
    os.chmod(root / "dir" / "a.txt", 0o644)
    os.symlink("/etc/passwd", root / "abs_link")              # absolute: inside the root
    os.symlink("dir/a.txt", root / "rel_link")
    os.symlink("../secret.txt", root / "up_link")             # ".." above the root
    os.symlink(str(secret), root / "host_abs_link")           # a host path: not the host's
    os.symlink("../../../../..", root / "dir" / "sub" / "far_up")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    os.symlink("nowhere", root / "dangling")
    k, l = make_kernel(root=str(root))
    buf = scratch(l, 0x400000)
    return k, l, buf, root


class Mem:
    """Guest strings and buffers in a scratch area."""

    def __init__(self, l: Lwp, base: int) -> None:
        self.vm = l.l_proc.p_vmspace
        self.base = base
        self.next = base + 0x200000          # strings live in the upper half

    def str(self, s: bytes | str) -> int:
        if isinstance(s, str):
            s = s.encode()
        va = self.next
        assert self.vm.copyout(s + b"\0", va) == 0
        self.next += (len(s) + 16) & ~7
        return va

    def put(self, va: int, data: bytes) -> int:
        assert self.vm.copyout(data, va) == 0
        return va

    def get(self, va: int, n: int) -> bytes:
        data = self.vm.copyin(va, n)
        assert isinstance(data, bytes)
        return data


def open_(l: Lwp, m: Mem, path: str, flags: int = O_RDONLY, mode: int = 0) -> int:
    return ok(l, "open", m.str(path), flags, mode)[0]


def read_(l: Lwp, m: Mem, fd: int, n: int) -> bytes:
    got = ok(l, "read", fd, m.base, n)[0]
    return m.get(m.base, got) if got else b""


def write_(l: Lwp, m: Mem, fd: int, data: bytes) -> int:
    m.put(m.base, data)
    return ok(l, "write", fd, m.base, len(data))[0]


STAT_SIZE = 152      # struct stat on amd64 (khelp's ABI); tests/test_cstruct.py checks it


def unpack_stat(raw: bytes) -> dict:
    v = struct.unpack("<QI4xQIII4xQ8qqqiIIII4x", raw)
    keys = ["dev", "mode", "ino", "nlink", "uid", "gid", "rdev", "atime", "atimens", "mtime",
            "mtimens", "ctime", "ctimens", "btime", "btimens", "size", "blocks", "blksize",
            "flags", "gen", "spare0", "spare1"]
    return dict(zip(keys, v))


# -- open / read / write / lseek ---------------------------------------------------------
def test_std_descriptors_follow_the_host(env):
    import fcntl
    k, l, buf, root = env
    for fd in (0, 1, 2):
        assert fd_getfile(l.l_proc, fd) is not None
        host_mode = fcntl.fcntl(fd, fcntl.F_GETFL) & 3
        assert ok(l, "fcntl", fd, F_GETFL)[0] & 3 == host_mode


def test_tty_ioctls_forward_to_the_host(env):
    import termios
    from nbemu.syscalls.kern_descrip import FREAD, FWRITE, fd_allocfile
    from nbemu.syscalls.vfs_syscalls import TIOCGWINSZ, TIOCSETA, TIOCSWINSZ, HostFile
    k, l, buf, root = env
    m = Mem(l, buf)
    master, slave = os.openpty()
    try:
        fp = HostFile(slave, FREAD | FWRITE, "pty", owns_fd=False, guest_path=None)
        e, fd = fd_allocfile(l.l_proc, fp)
        ok(l, "ioctl", fd, TIOCGETA, buf)
        iflag, oflag, cflag, lflag, *rest = struct.unpack("<4I20Bii", m.get(buf, 44))
        cc, ispeed, ospeed = rest[:20], rest[20], rest[21]
        host = termios.tcgetattr(slave)
        assert bool(lflag & 0x8) == bool(host[3] & termios.ECHO)          # ECHO
        assert bool(lflag & 0x100) == bool(host[3] & termios.ICANON)      # ICANON
        assert bool(iflag & 0x100) == bool(host[0] & termios.ICRNL)       # ICRNL
        if host[2] & termios.CSIZE == termios.CS8:
            assert cflag & 0x300 == 0x300                                # CS8
        assert cc[8] == host[6][termios.VINTR][0]                        # VINTR is 8 on NetBSD
        speeds = {getattr(termios, n): int(n[1:]) for n in dir(termios)
                  if n.startswith("B") and n[1:].isdigit()}
        assert ospeed == speeds[host[5]]                                 # a number, not a code
        # clear ECHO through TIOCSETA: the host terminal follows
        m.put(buf, struct.pack("<4I20Bii", iflag, oflag, cflag, lflag & ~0x8, *cc, ispeed, ospeed))
        ok(l, "ioctl", fd, TIOCSETA, buf)
        assert not termios.tcgetattr(slave)[3] & termios.ECHO
        m.put(buf, struct.pack("<4H", 24, 80, 0, 0))
        ok(l, "ioctl", fd, TIOCSWINSZ, buf)
        ok(l, "ioctl", fd, TIOCGWINSZ, buf + 0x100)
        assert struct.unpack("<4H", m.get(buf + 0x100, 8))[:2] == (24, 80)
    finally:
        os.close(master)
        os.close(slave)


def test_random_devices_are_seeded_when_deterministic():
    def first_bytes() -> bytes:
        k, l = make_kernel(deterministic=True, root="/")
        m = Mem(l, scratch(l, 0x400000))
        fd = open_(l, m, "/dev/urandom")
        return read_(l, m, fd, 32)
    if not os.path.exists("/dev/urandom"):
        pytest.skip("no /dev/urandom on this host")
    assert first_bytes() == first_bytes()


def test_open_read_lseek(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    fd = open_(l, m, "/dir/a.txt")
    assert fd == 3                                # lowest free after 0, 1, 2
    assert read_(l, m, fd, 5) == b"hello"
    assert ok(l, "lseek", fd, 0, 0, SEEK_CUR)[0] == 5
    assert read_(l, m, fd, 100) == b" world"
    assert read_(l, m, fd, 100) == b""            # EOF
    assert ok(l, "lseek", fd, 0, -5, SEEK_END)[0] == 6
    assert read_(l, m, fd, 5) == b"world"
    assert err(l, "lseek", fd, 0, -100, SEEK_SET) == Errno.EINVAL
    assert err(l, "lseek", fd, 0, 0, 7) == Errno.EINVAL
    assert err(l, "write", fd, m.base, 1) == Errno.EBADF   # opened read-only
    ok(l, "close", fd)
    assert err(l, "close", fd) == Errno.EBADF


def test_create_write_truncate_append(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    fd = open_(l, m, "/new.txt", O_WRONLY | O_CREAT | O_TRUNC, 0o666)
    assert write_(l, m, fd, b"abc") == 3
    ok(l, "close", fd)
    assert (root / "new.txt").read_bytes() == b"abc"
    assert host_stat.S_IMODE(os.stat(root / "new.txt").st_mode) == 0o644   # umask 022
    assert err(l, "open", m.str("/new.txt"), O_WRONLY | O_CREAT | O_EXCL, 0o600) == Errno.EEXIST
    fd = open_(l, m, "/new.txt", O_WRONLY | O_APPEND)
    write_(l, m, fd, b"def")
    ok(l, "close", fd)
    assert (root / "new.txt").read_bytes() == b"abcdef"
    fd = open_(l, m, "/new.txt", O_RDWR | O_TRUNC)
    assert (root / "new.txt").read_bytes() == b""
    ok(l, "close", fd)
    # umask(2) changes the creation mask and returns the old one
    assert ok(l, "umask", 0o077)[0] == 0o022
    fd = open_(l, m, "/private", O_WRONLY | O_CREAT, 0o666)
    assert host_stat.S_IMODE(os.stat(root / "private").st_mode) == 0o600
    assert err(l, "open", m.str("/dir"), O_WRONLY) == Errno.EISDIR
    assert err(l, "open", m.str("/x"), 3) == Errno.EINVAL          # O_ACCMODE: no access


def test_readv_writev_pread_pwrite(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    fd = open_(l, m, "/v.txt", O_RDWR | O_CREAT, 0o644)
    m.put(buf + 0x1000, b"abc")
    m.put(buf + 0x2000, b"defg")
    iov = m.put(buf + 0x3000, struct.pack("<QQQQ", buf + 0x1000, 3, buf + 0x2000, 4))
    assert ok(l, "writev", fd, iov, 2)[0] == 7
    assert (root / "v.txt").read_bytes() == b"abcdefg"
    assert ok(l, "pread", fd, buf, 3, 0, 2)[0] == 3
    assert m.get(buf, 3) == b"cde"
    assert ok(l, "lseek", fd, 0, 0, SEEK_CUR)[0] == 7               # pread kept the offset
    m.put(buf, b"XY")
    assert ok(l, "pwrite", fd, buf, 2, 0, 1)[0] == 2
    assert (root / "v.txt").read_bytes() == b"aXYdefg"
    ok(l, "lseek", fd, 0, 0, SEEK_SET)
    m.put(buf + 0x3000, struct.pack("<QQQQ", buf + 0x1000, 4, buf + 0x2000, 10))
    assert ok(l, "readv", fd, buf + 0x3000, 2)[0] == 7
    assert m.get(buf + 0x1000, 4) + m.get(buf + 0x2000, 3) == b"aXYdefg"
    assert err(l, "readv", fd, buf + 0x3000, 0) == Errno.EINVAL
    assert err(l, "readv", fd, buf + 0x3000, 1025) == Errno.EINVAL
    assert err(l, "readv", fd, BAD, 1) == Errno.EFAULT
    assert err(l, "pread", fd, buf, 1, 0, -1) == Errno.EINVAL


def test_large_transfer_is_chunked(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    big = bytes(range(256)) * (3 * 4096 + 17)          # ~3 MiB: several 1 MiB chunks
    (root / "big").write_bytes(big)
    va = scratch(l, 4 << 20)
    fd = open_(l, m, "/big")
    assert ok(l, "read", fd, va, 4 << 20)[0] == len(big)
    assert l.l_proc.p_vmspace.copyin(va, len(big)) == big
    fd2 = open_(l, m, "/big2", O_WRONLY | O_CREAT, 0o644)
    assert ok(l, "write", fd2, va, len(big))[0] == len(big)
    assert (root / "big2").read_bytes() == big
    # file-backed mmap reads through File.pread
    fp = fd_getfile(l.l_proc, fd)
    assert fp.pread(10, 256) == big[256:266]
    assert fp.name == "/big"


# -- the guest root ----------------------------------------------------------------------
def test_dotdot_stays_in_root(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    assert err(l, "open", m.str("/../secret.txt")) == Errno.ENOENT
    assert err(l, "open", m.str("../../../secret.txt")) == Errno.ENOENT
    fd = open_(l, m, "/../../etc/../etc/passwd")
    assert read_(l, m, fd, 100) == b"root:*:0:0\n"
    ok(l, "chdir", m.str("/.."))
    ok(l, "__getcwd", buf, 100)
    assert m.get(buf, 2) == b"/\0"


def test_symlinks_resolve_inside_root(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    fd = open_(l, m, "/abs_link")                  # "/etc/passwd" of the guest
    assert read_(l, m, fd, 100) == b"root:*:0:0\n"
    fd = open_(l, m, "rel_link")
    assert read_(l, m, fd, 100) == b"hello world"
    assert err(l, "open", m.str("/up_link")) == Errno.ENOENT          # ../secret.txt
    assert err(l, "open", m.str("/host_abs_link")) == Errno.ENOENT    # host path: not here
    # a relative link climbing far above the root lands at the root
    fd = open_(l, m, "/dir/sub/far_up/etc/passwd")
    assert read_(l, m, fd, 4) == b"root"
    ok(l, "chdir", m.str("/dir/sub/far_up"))
    ok(l, "__getcwd", buf, 100)
    assert m.get(buf, 2) == b"/\0"
    assert err(l, "open", m.str("/loop1")) == Errno.ELOOP
    assert err(l, "open", m.str("/dangling")) == Errno.ENOENT
    assert err(l, "open", m.str("/rel_link"), O_RDONLY | O_NOFOLLOW) == Errno.EFTYPE
    # O_CREAT through a dangling link creates its target, inside the root
    fd = open_(l, m, "/dangling", O_WRONLY | O_CREAT, 0o644)
    assert (root / "nowhere").exists()


def test_lookup_errors(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    assert err(l, "open", m.str("/missing")) == Errno.ENOENT
    assert err(l, "open", m.str("/missing/x")) == Errno.ENOENT
    assert err(l, "open", m.str("/dir/a.txt/x")) == Errno.ENOTDIR
    assert err(l, "open", m.str("/dir/a.txt/")) == Errno.ENOTDIR
    assert err(l, "open", m.str("/dir/a.txt"), O_RDONLY | O_DIRECTORY) == Errno.ENOTDIR
    assert err(l, "open", m.str("")) == Errno.ENOENT
    assert err(l, "open", m.str("/" + "a" * 1100)) == Errno.ENAMETOOLONG
    assert err(l, "open", m.str("/" + "a" * 600)) == Errno.ENAMETOOLONG   # NAME_MAX 511
    assert err(l, "open", BAD) == Errno.EFAULT
    assert err(l, "chdir", m.str("/dir/a.txt")) == Errno.ENOTDIR


def test_cwd_and_at_calls(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    ok(l, "chdir", m.str("dir"))
    assert ok(l, "__getcwd", buf, 100)[0] == 5
    assert m.get(buf, 5) == b"/dir\0"
    assert err(l, "__getcwd", buf, 3) == Errno.ERANGE
    assert err(l, "__getcwd", buf, 1) == Errno.ERANGE
    fd = open_(l, m, "a.txt")
    assert read_(l, m, fd, 5) == b"hello"
    dfd = open_(l, m, "/dir/sub", O_RDONLY | O_DIRECTORY)
    fd = ok(l, "openat", dfd, m.str("../a.txt"), O_RDONLY, 0)[0]
    assert read_(l, m, fd, 5) == b"hello"
    fd = ok(l, "openat", AT_FDCWD, m.str("a.txt"), O_RDONLY, 0)[0]
    assert err(l, "openat", fd, m.str("x"), O_RDONLY, 0) == Errno.ENOTDIR
    assert err(l, "openat", 77, m.str("x"), O_RDONLY, 0) == Errno.EBADF
    ok(l, "fchdir", dfd)
    ok(l, "__getcwd", buf, 100)
    assert m.get(buf, 9) == b"/dir/sub\0"
    assert err(l, "fchdir", fd) == Errno.ENOTDIR
    ok(l, "fstatat", dfd, m.str("../a.txt"), buf, 0)
    assert unpack_stat(m.get(buf, STAT_SIZE))["size"] == 11


# -- stat -----------------------------------------------------------------------------------
def test_stat_layout_and_fields(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    assert STAT_SIZE == 152
    host = os.stat(root / "dir" / "a.txt")
    ok(l, "__stat50", m.str("/dir/a.txt"), buf)
    st = unpack_stat(m.get(buf, STAT_SIZE))
    assert st["mode"] == host_stat.S_IFREG | 0o644
    assert st["ino"] == host.st_ino
    assert st["size"] == 11
    assert st["nlink"] == 1
    assert st["uid"] == host.st_uid and st["gid"] == host.st_gid
    assert st["mtime"] == host.st_mtime_ns // 10**9
    assert st["mtimens"] == host.st_mtime_ns % 10**9
    assert st["blksize"] == host.st_blksize
    assert st["flags"] == 0 and st["gen"] == 0
    # raw offsets of a few fields (sys/stat.h, amd64)
    raw = m.get(buf, STAT_SIZE)
    assert struct.unpack_from("<I", raw, 8)[0] == st["mode"]
    assert struct.unpack_from("<Q", raw, 16)[0] == host.st_ino
    assert struct.unpack_from("<q", raw, 112)[0] == 11
    fd = open_(l, m, "/dir/a.txt")
    ok(l, "__fstat50", fd, buf + 0x1000)
    assert m.get(buf + 0x1000, STAT_SIZE) == raw
    ok(l, "__lstat50", m.str("/rel_link"), buf)
    assert host_stat.S_ISLNK(unpack_stat(m.get(buf, STAT_SIZE))["mode"])
    ok(l, "__stat50", m.str("/rel_link"), buf)
    assert unpack_stat(m.get(buf, STAT_SIZE))["size"] == 11
    ok(l, "__stat50", m.str("/dir"), buf)
    assert host_stat.S_ISDIR(unpack_stat(m.get(buf, STAT_SIZE))["mode"])
    assert err(l, "__stat50", m.str("/dir/a.txt"), BAD) == Errno.EFAULT
    assert err(l, "__fstat50", 99, buf) == Errno.EBADF
    assert err(l, "fstatat", AT_FDCWD, m.str("/dir"), buf, 0x1) == Errno.EINVAL


# -- EFAULT and EBADF -------------------------------------------------------------------------
def test_efault_before_side_effects(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    fd = open_(l, m, "/dir/a.txt")
    assert err(l, "read", fd, BAD, 5) == Errno.EFAULT
    assert ok(l, "lseek", fd, 0, 0, SEEK_CUR)[0] == 0        # nothing consumed
    wfd = open_(l, m, "/w", O_WRONLY | O_CREAT, 0o644)
    assert err(l, "write", wfd, BAD, 5) == Errno.EFAULT
    assert (root / "w").read_bytes() == b""
    # a buffer that faults part way: a file write is undone as a whole (IO_UNIT);
    # a read delivers the mapped prefix, moves the offset past it, says EFAULT
    vm = l.l_proc.p_vmspace
    page = scratch(l, 0x1000)
    assert vm.lookup(page + 0x1000) is None
    m.put(page + 0x1000 - 4, b"WXYZ")
    assert err(l, "write", wfd, page + 0x1000 - 4, 100) == Errno.EFAULT
    assert (root / "w").read_bytes() == b""
    assert err(l, "read", fd, page + 0x1000 - 3, 100) == Errno.EFAULT
    assert m.get(page + 0x1000 - 3, 3) == b"hel"
    assert ok(l, "lseek", fd, 0, 0, SEEK_CUR)[0] == 3
    ro = scratch(l, 0x1000, prot=1)
    assert err(l, "read", fd, ro, 5) == Errno.EFAULT


def test_ebadf(env):
    k, l, buf, root = env
    for name, args in (("read", (99, buf, 1)), ("write", (99, buf, 1)), ("close", (99,)),
                       ("dup", (99,)), ("dup2", (99, 5)), ("fcntl", (99, F_GETFD)),
                       ("lseek", (99, 0, 0, 0)), ("__fstat50", (99, buf)),
                       ("ioctl", (99, FIONREAD, buf)), ("read", (-1, buf, 1)),
                       ("fsync", (99,)), ("__getdents30", (99, buf, 4096))):
        assert err(l, name, *args) == Errno.EBADF, name
    assert err(l, "dup2", 0, -1) == Errno.EBADF
    assert err(l, "dup2", 0, 5000) == Errno.EBADF


def test_emfile(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    l.l_proc.p_limits[8] = [8, 8]                  # RLIMIT_NOFILE
    path = m.str("/dir/a.txt")
    fds = [ok(l, "open", path, O_RDONLY, 0)[0] for _ in range(5)]
    assert fds == [3, 4, 5, 6, 7]
    assert err(l, "open", path, O_RDONLY, 0) == Errno.EMFILE
    assert err(l, "dup", 0) == Errno.EMFILE
    assert err(l, "pipe2", buf, 0) == Errno.EMFILE
    assert err(l, "fcntl", 0, F_DUPFD, 8) == Errno.EINVAL
    assert err(l, "dup2", 0, 8) == Errno.EBADF
    ok(l, "close", 5)
    assert ok(l, "dup", 0)[0] == 5


# -- descriptors and fcntl ------------------------------------------------------------------------
def test_dup_and_fcntl(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    fd = open_(l, m, "/dir/a.txt", O_RDONLY | O_CLOEXEC)
    assert ok(l, "fcntl", fd, F_GETFD)[0] == FD_CLOEXEC
    ok(l, "fcntl", fd, F_SETFD, 0)
    assert ok(l, "fcntl", fd, F_GETFD)[0] == 0
    d = ok(l, "dup", fd)[0]
    assert ok(l, "fcntl", d, F_GETFD)[0] == 0
    read_(l, m, fd, 6)
    assert read_(l, m, d, 5) == b"world"           # dups share the offset
    assert ok(l, "fcntl", fd, F_DUPFD, 10)[0] == 10
    assert ok(l, "fcntl", fd, F_DUPFD_CLOEXEC, 10)[0] == 11
    assert ok(l, "fcntl", 11, F_GETFD)[0] == FD_CLOEXEC
    assert ok(l, "fcntl", 0, F_MAXFD)[0] == 11
    assert ok(l, "dup2", fd, 20)[0] == 20
    assert ok(l, "dup2", 20, 20)[0] == 20
    assert err(l, "__dup3100", 20, 20, 0) == Errno.EINVAL
    assert ok(l, "compat_100_dup3", 20, 20, 0)[0] == 20
    assert ok(l, "__dup3100", fd, 21, O_CLOEXEC)[0] == 21
    assert ok(l, "fcntl", 21, F_GETFD)[0] == FD_CLOEXEC
    assert err(l, "__dup3100", fd, 22, O_TRUNC) == Errno.EINVAL
    # status flags
    assert ok(l, "fcntl", fd, F_GETFL)[0] == O_RDONLY
    ok(l, "fcntl", fd, F_SETFL, O_NONBLOCK | O_APPEND)
    assert ok(l, "fcntl", d, F_GETFL)[0] == O_NONBLOCK | O_APPEND   # shared by the dup
    assert ok(l, "fcntl", fd, F_GETNOSIGPIPE)[0] == 0
    ok(l, "fcntl", fd, F_SETNOSIGPIPE, 1)
    assert ok(l, "fcntl", fd, F_GETNOSIGPIPE)[0] == 1
    # record locks: validated, then granted
    flock = m.put(buf, struct.pack("<qqiHH", 0, 0, 0, F_WRLCK, 0))
    assert err(l, "fcntl", fd, F_SETLK, flock) == Errno.EBADF         # not open for writing
    wfd = open_(l, m, "/lk", O_RDWR | O_CREAT, 0o644)
    ok(l, "fcntl", wfd, F_SETLK, flock)
    ok(l, "fcntl", wfd, F_GETLK, flock)
    assert struct.unpack("<qqiHH", m.get(buf, 24))[3] == F_UNLCK
    assert err(l, "fcntl", wfd, F_SETLK, BAD) == Errno.EFAULT
    assert err(l, "fcntl", fd, 999) == Errno.EINVAL
    # F_CLOSEM closes everything from the given descriptor up
    ok(l, "fcntl", 10, F_CLOSEM)
    assert ok(l, "fcntl", 0, F_MAXFD)[0] == max(fd, d, wfd)
    assert err(l, "fcntl", -1, F_CLOSEM) == Errno.EBADF


def test_stdio_close_keeps_host_fds(env):
    k, l, buf, root = env
    ok(l, "close", 1)
    ok(l, "close", 2)
    os.fstat(1)                                    # the host's own stdout is still open
    os.fstat(2)
    assert ok(l, "dup", 0)[0] == 1                 # lowest free slot


def test_getdents(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    fd = open_(l, m, "/dir", O_RDONLY | O_DIRECTORY)

    def listing() -> dict[bytes, int]:
        out = {}
        while True:
            n = ok(l, "__getdents30", fd, buf, 64)[0]     # small: several calls
            if n == 0:
                return out
            raw = m.get(buf, n)
            pos = 0
            while pos < n:
                ino, reclen, namlen, dtype = struct.unpack_from("<QHHB", raw, pos)
                assert reclen % 8 == 0 and reclen >= 13 + namlen + 1
                name = raw[pos + 13:pos + 13 + namlen]
                assert raw[pos + 13 + namlen] == 0
                out[name] = dtype
                pos += reclen
    names = listing()
    assert names == {b".": DT_DIR, b"..": DT_DIR, b"a.txt": DT_REG, b"sub": DT_DIR}
    ok(l, "lseek", fd, 0, 0, SEEK_SET)
    assert listing() == names
    ok(l, "lseek", fd, 0, 0, SEEK_SET)
    assert err(l, "__getdents30", fd, buf, 8) == Errno.EINVAL   # not even one record
    assert err(l, "__getdents30", fd, BAD, 4096) == Errno.EFAULT
    assert listing() == names                                    # nothing was consumed
    ffd = open_(l, m, "/dir/a.txt")
    assert err(l, "__getdents30", ffd, buf, 4096) == Errno.EINVAL
    assert err(l, "read", fd, buf, 10) == Errno.EISDIR


def test_namespace_calls(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    ok(l, "mkdir", m.str("/newdir"), 0o777)
    assert host_stat.S_IMODE(os.stat(root / "newdir").st_mode) == 0o755
    assert err(l, "mkdir", m.str("/newdir"), 0o777) == Errno.EEXIST
    assert err(l, "mkdir", m.str("/dangling"), 0o777) == Errno.EEXIST
    assert err(l, "mkdir", m.str("/nope/x"), 0o777) == Errno.ENOENT
    assert err(l, "unlink", m.str("/newdir")) == Errno.EPERM
    assert err(l, "rmdir", m.str("/dir")) == Errno.ENOTEMPTY
    assert err(l, "rmdir", m.str("/dir/a.txt")) == Errno.ENOTDIR
    assert err(l, "rmdir", m.str("/newdir/.")) == Errno.EINVAL
    assert err(l, "rmdir", m.str("/")) == Errno.EBUSY
    ok(l, "rename", m.str("/newdir"), m.str("/renamed"))
    assert (root / "renamed").is_dir()
    ok(l, "rmdir", m.str("/renamed"))
    assert not (root / "renamed").exists()
    assert ok(l, "readlink", m.str("/rel_link"), buf, 100)[0] == 9
    assert m.get(buf, 9) == b"dir/a.txt"
    assert ok(l, "readlink", m.str("/rel_link"), buf, 3)[0] == 3
    assert err(l, "readlink", m.str("/dir/a.txt"), buf, 100) == Errno.EINVAL
    ok(l, "symlink", m.str("/etc/passwd"), m.str("/dir/pw"))
    assert os.readlink(root / "dir" / "pw") == "/etc/passwd"
    fd = open_(l, m, "/dir/pw")
    assert read_(l, m, fd, 4) == b"root"
    ok(l, "unlink", m.str("/dir/pw"))
    assert err(l, "unlink", m.str("/dir/pw")) == Errno.ENOENT
    ok(l, "access", m.str("/dir/a.txt"), 4)
    assert err(l, "access", m.str("/dir/a.txt"), 8) == Errno.EINVAL
    assert err(l, "access", m.str("/nope"), 0) == Errno.ENOENT
    ok(l, "chmod", m.str("/dir/a.txt"), 0o600)
    assert host_stat.S_IMODE(os.stat(root / "dir" / "a.txt").st_mode) == 0o600
    fd = open_(l, m, "/dir/a.txt", O_RDWR)
    ok(l, "ftruncate", fd, 0, 5)
    assert (root / "dir" / "a.txt").read_bytes() == b"hello"
    ok(l, "fsync", fd)
    ok(l, "truncate", m.str("/dir/a.txt"), 0, 2)
    assert (root / "dir" / "a.txt").read_bytes() == b"he"
    tv = m.put(buf, struct.pack("<qi4xqi4x", 1000, 0, 2000, 500000))
    ok(l, "__utimes50", m.str("/dir/a.txt"), tv)
    st = os.stat(root / "dir" / "a.txt")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1000 * 10**9, 2000 * 10**9 + 500000 * 1000)
    assert err(l, "__posix_fadvise50", fd, 0, 0, 0, 0) == 0
    assert ok(l, "__posix_fadvise50", fd, 0, 0, 0, 99)[0] == Errno.EINVAL


# -- ioctl -----------------------------------------------------------------------------------------
def test_ioctl(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    fd = open_(l, m, "/dir/a.txt")
    assert err(l, "ioctl", fd, TIOCGETA, buf) == Errno.ENOTTY
    ok(l, "ioctl", fd, FIONREAD, buf)
    assert struct.unpack("<i", m.get(buf, 4))[0] == 11
    m.put(buf, struct.pack("<i", 1))
    ok(l, "ioctl", fd, FIONBIO, buf)
    assert fd_getfile(l.l_proc, fd).f_flag & FNONBLOCK
    assert err(l, "ioctl", fd, 0x20007400, buf) == Errno.ENOTTY          # an unknown _IO
    assert err(l, "ioctl", fd, FIONBIO, BAD) == Errno.EFAULT


# -- pipes --------------------------------------------------------------------------------------------
def _pipe2(l: Lwp, m: Mem, flags: int = 0) -> tuple[int, int]:
    rv = ok(l, "pipe2", m.base + 0x100000, flags)
    assert rv[0] == 0
    return struct.unpack("<ii", m.get(m.base + 0x100000, 8))


def test_pipe2_read_write_eof(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    r, w = _pipe2(l, m)
    assert (r, w) == (3, 4)
    assert write_(l, m, w, b"hello") == 5
    m.put(buf, struct.pack("<i", 0))
    ok(l, "ioctl", r, FIONREAD, buf)
    assert struct.unpack("<i", m.get(buf, 4))[0] == 5
    assert read_(l, m, r, 3) == b"hel"
    assert read_(l, m, r, 100) == b"lo"
    ok(l, "close", w)
    assert read_(l, m, r, 100) == b""                       # EOF
    ok(l, "__fstat50", r, buf)
    assert host_stat.S_ISFIFO(unpack_stat(m.get(buf, STAT_SIZE))["mode"])
    assert err(l, "lseek", r, 0, 0, 0) == Errno.ESPIPE
    assert err(l, "pread", r, buf, 1, 0, 0) == Errno.ESPIPE
    assert err(l, "write", r, buf, 1) == Errno.EBADF
    assert err(l, "pipe2", m.base, 0x8) == Errno.EINVAL      # O_APPEND is not a pipe2 flag
    assert err(l, "pipe2", BAD, 0) == Errno.EFAULT
    assert fd_getfile(l.l_proc, 4) is None                  # undone after the fault


def test_old_pipe_returns_both_fds(env):
    k, l, buf, root = env
    rv = ok(l, "pipe")
    assert rv == [3, 4]


def test_pipe_nonblocking_and_epipe(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    r, w = _pipe2(l, m, O_NONBLOCK | O_CLOEXEC)
    assert ok(l, "fcntl", r, F_GETFL)[0] & O_NONBLOCK
    assert ok(l, "fcntl", w, F_GETFD)[0] == FD_CLOEXEC
    assert err(l, "read", r, buf, 10) == Errno.EAGAIN
    # fill the pipe: a big write grows it to BIG_PIPE_SIZE, then only what fits goes in
    va = scratch(l, 1 << 20)
    assert ok(l, "write", w, va, 1 << 20)[0] == BIG_PIPE_SIZE
    assert err(l, "write", w, va, 1) == Errno.EAGAIN
    assert ok(l, "read", r, va, 600)[0] == 600
    assert ok(l, "write", w, va, 100)[0] == 100              # atomic: fits
    assert err(l, "write", w, va, 512) == Errno.EAGAIN       # atomic, no room for all
    ok(l, "close", r)
    assert err(l, "write", w, va, 1) == Errno.EPIPE
    r2, w2 = _pipe2(l, m)
    assert ok(l, "write", w2, va, PIPE_SIZE)[0] == PIPE_SIZE  # not grown: exactly fits


def test_pipe_blocking_read_woken_by_write(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    r, w = _pipe2(l, m)
    gen, rv = call(l, "read", r, buf, 100)
    assert hasattr(gen, "send"), "the read should block"
    assert l.l_stat == LSSLEEP and l.l_wmesg == "piperd"
    l2 = second_lwp(k, l)
    m.put(buf + 0x1000, b"wake up")
    e2, rv2 = call(l2, "write", w, buf + 0x1000, 7)
    assert e2 == 0 and rv2[0] == 7
    assert l.l_stat == LSRUN
    assert resume(k, l, gen) == 0
    assert rv[0] == 7
    assert m.get(buf, 7) == b"wake up"


def test_pipe_blocking_read_sees_eof_and_interrupt(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    r, w = _pipe2(l, m)
    gen, rv = call(l, "read", r, buf, 100)
    l2 = second_lwp(k, l)
    ok(l2, "close", w)
    assert resume(k, l, gen) == 0 and rv[0] == 0            # EOF
    r, w = _pipe2(l, m)
    gen, rv = call(l, "read", r, buf, 100)
    from nbemu.syscalls.kern_sleepq import sleepq_abort_interruptible
    assert sleepq_abort_interruptible(k, l, Errno.EINTR)
    assert resume(k, l, gen) == Errno.EINTR


def test_pipe_blocking_write_woken_by_read(env):
    k, l, buf, root = env
    m = Mem(l, buf)
    r, w = _pipe2(l, m)
    va = scratch(l, 1 << 20)
    assert ok(l, "write", w, va, PIPE_SIZE)[0] == PIPE_SIZE
    gen, rv = call(l, "write", w, va, 100)
    assert hasattr(gen, "send") and l.l_wmesg == "pipewr"
    l2 = second_lwp(k, l)
    assert ok(l2, "read", r, buf, 1000)[0] == 1000
    assert l.l_stat == LSRUN
    assert resume(k, l, gen) == 0 and rv[0] == 100


def test_transfer_size_limit_is_the_ports_ssize_max() -> None:
    """dofileread's EINVAL for a count above SSIZE_MAX: 2^31 - 1 on ILP32 ports,
    where 0x80000000 bytes is too many; on amd64 it is merely a large read."""
    from nbemu.guest.arch import i386
    k, l = make_kernel(abi=i386.ABI)
    buf = scratch(l, 0x1000)
    assert err(l, "read", 0, buf, 0x80000000) == Errno.EINVAL
    assert err(l, "write", 1, buf, 0x80000000) == Errno.EINVAL
    k, l = make_kernel()
    buf = scratch(l, 0x1000)
    assert err(l, "write", 1, buf, 0x80000000) == Errno.EFAULT     # checked, then copied
