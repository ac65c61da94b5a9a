"""Sockets (syscalls/uipc_syscalls.py), driven through the syscall table without an
engine (tests/khelp.py): errno branches of uipc_syscalls.c and the translation of
struct sockaddr, options and flags between NetBSD and the host."""
from __future__ import annotations

import os
import struct

import pytest

from nbemu.syscalls.errno import Errno
from nbemu.syscalls.kern_descrip import FNONBLOCK, fd_getfile
from nbemu.syscalls.uipc_syscalls import (AF_INET, AF_INET6, AF_LOCAL, SO_ERROR, SO_RCVTIMEO,
                                    SO_REUSEADDR, SO_TYPE, SOCK_CLOEXEC, SOCK_DGRAM,
                                    SOCK_NONBLOCK, SOCK_STREAM, SOL_SOCKET, IPPROTO_TCP,
                                    TCP_NODELAY, SocketFile, sockaddr_from_host)
from tests.khelp import call, err, make_kernel, ok, scratch

BAD = 0x7000_0000_0000


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    k, l = make_kernel(root=str(root))
    return k, l, scratch(l, 0x10000), root


def sin(port: int, addr: bytes = b"\x7f\0\0\1", length: int = 16, family: int = AF_INET) -> bytes:
    return bytes((length, family)) + struct.pack(">H", port) + addr + bytes(8)


def put(l, va: int, data: bytes) -> int:
    assert l.l_proc.p_vmspace.copyout(data, va) == 0
    return va


def get(l, va: int, n: int) -> bytes:
    return l.l_proc.p_vmspace.copyin(va, n)


def sock(l, domain=AF_INET, type_=SOCK_STREAM) -> int:
    return ok(l, "__socket30", domain, type_, 0)[0]


def sockname(l, buf: int, fd: int, peer: bool = False, room: int = 128) -> bytes:
    put(l, buf + 0x800, struct.pack("<I", room))
    ok(l, "getpeername" if peer else "getsockname", fd, buf + 0x900, buf + 0x800)
    n = struct.unpack("<I", get(l, buf + 0x800, 4))[0]
    return get(l, buf + 0x900, n)



def _host_readable(l, fd: int) -> None:
    """Wait until the host socket behind guest fd has data or EOF: loopback TCP
    delivers when the host gets to it (a handshake, not a sleep)."""
    import select
    from nbemu.syscalls.kern_descrip import fd_getfile
    fp = fd_getfile(l.l_proc, fd)
    assert select.select([fp.hostfd], [], [], 60)[0], f"fd {fd}: nothing came in 60 s"

def test_socket_errnos(env):
    k, l, buf, _ = env
    assert err(l, "__socket30", 99, SOCK_STREAM, 0) == Errno.EAFNOSUPPORT
    assert err(l, "__socket30", AF_INET, 9, 0) == Errno.EPROTOTYPE      # unknown type
    assert err(l, "bind", 55, buf, 16) == Errno.EBADF
    assert err(l, "listen", 0, 5) == Errno.ENOTSOCK                      # stdin: a vnode
    assert err(l, "socketpair", AF_INET, SOCK_STREAM, 0, buf) == Errno.EOPNOTSUPP


def test_socket_flags(env):
    k, l, buf, _ = env
    fd = sock(l, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)
    fp = fd_getfile(l.l_proc, fd)
    assert isinstance(fp, SocketFile) and fp.f_flag & FNONBLOCK
    assert l.l_proc.p_fd.fd_exclose[fd]
    assert ok(l, "fcntl", fd, 3)[0] & 0x4                                # F_GETFL: O_NONBLOCK
    ok(l, "close", fd)


def test_bind_errnos(env):
    k, l, buf, _ = env
    fd = sock(l)
    assert err(l, "bind", fd, put(l, buf, sin(0)), 8) == Errno.EINVAL    # shorter than sockaddr_in
    assert err(l, "bind", fd, put(l, buf, sin(0)), 300) == Errno.EINVAL  # > UCHAR_MAX
    assert err(l, "bind", fd, put(l, buf, sin(0, family=AF_INET6)), 16) == Errno.EAFNOSUPPORT
    assert err(l, "bind", fd, BAD, 16) == Errno.EFAULT
    assert err(l, "accept", fd, 0, 0) == Errno.EINVAL                     # not listening
    assert err(l, "paccept", fd, 0, 0, 0, 0x1) == Errno.EINVAL            # unknown flag


def test_tcp_loopback_and_sockaddr(env):
    k, l, buf, _ = env
    srv = sock(l)
    put(l, buf + 0x100, struct.pack("<i", 1))
    ok(l, "setsockopt", srv, SOL_SOCKET, SO_REUSEADDR, buf + 0x100, 4)
    ok(l, "bind", srv, put(l, buf, sin(0, length=0)), 16)               # sa_len is ignored
    ok(l, "listen", srv, 5)
    sa = sockname(l, buf, srv)
    assert len(sa) == 16 and sa[0] == 16 and sa[1] == AF_INET and sa[4:8] == b"\x7f\0\0\1"
    port = struct.unpack(">H", sa[2:4])[0]
    assert port != 0 and sa[8:] == bytes(8)
    cli = sock(l, AF_INET, SOCK_STREAM | SOCK_NONBLOCK)
    e, _ = call(l, "connect", cli, put(l, buf, sin(port)), 16)
    assert e in (0, Errno.EINPROGRESS)
    new = ok(l, "paccept", srv, buf + 0x200, put(l, buf + 0x300, struct.pack("<I", 64)), 0,
             SOCK_NONBLOCK)[0]
    peer = get(l, buf + 0x200, 16)
    assert peer[:2] == bytes((16, AF_INET)) and peer[4:8] == b"\x7f\0\0\1"
    assert sockname(l, buf, cli)[:4] == peer[:4]                          # the client's port
    assert sockname(l, buf, new, peer=True)[:4] == peer[:4]
    assert sockname(l, buf, cli, room=6) == peer[:6]                      # truncated to *alen
    # SO_ERROR after the connect, SO_TYPE, TCP_NODELAY, an unknown option
    put(l, buf + 0x400, struct.pack("<I", 4))
    ok(l, "getsockopt", cli, SOL_SOCKET, SO_ERROR, buf + 0x410, buf + 0x400)
    assert get(l, buf + 0x410, 4) == bytes(4)
    ok(l, "getsockopt", cli, SOL_SOCKET, SO_TYPE, buf + 0x410, buf + 0x400)
    assert struct.unpack("<i", get(l, buf + 0x410, 4))[0] == SOCK_STREAM
    ok(l, "getsockopt", srv, SOL_SOCKET, SO_REUSEADDR, buf + 0x410, buf + 0x400)
    assert struct.unpack("<i", get(l, buf + 0x410, 4))[0] == SO_REUSEADDR   # the option bit
    ok(l, "setsockopt", cli, IPPROTO_TCP, TCP_NODELAY, buf + 0x100, 4)
    assert err(l, "setsockopt", cli, SOL_SOCKET, 0x7777, buf + 0x100, 4) == Errno.ENOPROTOOPT
    assert err(l, "setsockopt", cli, IPPROTO_TCP, TCP_NODELAY, buf + 0x100, 2) == Errno.EINVAL
    # data both ways: write/read and sendto/recvfrom
    assert ok(l, "write", cli, put(l, buf + 0x500, b"ping"), 4)[0] == 4
    _host_readable(l, new)
    put(l, buf + 0x600, struct.pack("<I", 64))
    assert ok(l, "recvfrom", new, buf + 0x700, 100, 0, buf + 0x780, buf + 0x600)[0] == 4
    assert get(l, buf + 0x700, 4) == b"ping"
    assert get(l, buf + 0x600, 4) == bytes(4)                             # stream: no address
    assert ok(l, "sendto", new, put(l, buf + 0x500, b"pong!"), 5, 0, 0, 0)[0] == 5
    _host_readable(l, cli)
    assert ok(l, "read", cli, buf + 0x700, 100)[0] == 5
    assert err(l, "read", cli, buf + 0x700, 100) == Errno.EAGAIN          # non-blocking, empty
    ok(l, "shutdown", cli, 1)
    assert err(l, "shutdown", cli, 7) == Errno.EINVAL
    _host_readable(l, new)
    assert ok(l, "read", new, buf + 0x700, 100)[0] == 0                   # EOF
    for fd in (cli, new, srv):
        ok(l, "close", fd)


def test_socketpair_and_blocking_read(env):
    k, l, buf, _ = env
    ok(l, "socketpair", AF_LOCAL, SOCK_STREAM, 0, buf)
    a, b = struct.unpack("<ii", get(l, buf, 8))
    assert a >= 3 and b == a + 1
    st = buf + 0x1000
    ok(l, "__fstat50", a, st)
    assert struct.unpack_from("<I", get(l, st, 12), 8)[0] & 0o170000 == 0o140000   # S_IFSOCK
    e, _ = call(l, "read", a, buf + 0x100, 10)
    assert hasattr(e, "send")                                             # blocks: nothing yet
    e.close()
    assert ok(l, "write", b, put(l, buf + 0x200, b"hi"), 2)[0] == 2
    assert ok(l, "read", a, buf + 0x100, 10)[0] == 2
    assert err(l, "socketpair", AF_LOCAL, SOCK_STREAM, 0, BAD) == Errno.EFAULT
    # SO_RCVTIMEO round trip (struct timeval of the port)
    put(l, buf + 0x300, struct.pack("<qi4x", 2, 500000))
    ok(l, "setsockopt", a, SOL_SOCKET, SO_RCVTIMEO, buf + 0x300, 16)
    put(l, buf + 0x400, struct.pack("<I", 16))
    ok(l, "getsockopt", a, SOL_SOCKET, SO_RCVTIMEO, buf + 0x410, buf + 0x400)
    assert struct.unpack("<qi", get(l, buf + 0x410, 12)) == (2, 500000)


def test_unix_paths_inside_the_root(env):
    k, l, buf, root = env
    path = b"/s.sock"
    sun = bytes((2 + len(path) + 1, AF_LOCAL)) + path + b"\0"
    srv = sock(l, AF_LOCAL)
    ok(l, "bind", srv, put(l, buf, sun), len(sun))
    assert os.path.exists(root / "s.sock")                                # created in the root
    assert sockname(l, buf, srv) == sun
    other = sock(l, AF_LOCAL)
    assert err(l, "bind", other, put(l, buf, sun), len(sun)) == Errno.EADDRINUSE
    ok(l, "listen", srv, 1)
    ok(l, "connect", other, put(l, buf, sun), len(sun))
    assert sockname(l, buf, other, peer=True) == sun
    nope = bytes((10, AF_LOCAL)) + b"/nope\0\0\0"
    assert err(l, "connect", sock(l, AF_LOCAL), put(l, buf, nope), 10) == Errno.ENOENT
    fresh = sock(l, AF_LOCAL)
    assert sockname(l, buf, fresh) == bytes((106, AF_LOCAL)) + bytes(104)   # sun_noname


def test_sockaddr_from_host_inet6():
    k, _ = make_kernel()
    sa = sockaddr_from_host(k, AF_INET6, ("::1", 0x1234, 0, 0))
    assert len(sa) == 28 and sa[:4] == bytes((28, 24, 0x12, 0x34)) and sa[8:24] == bytes(15) + b"\1"
    with pytest.raises(Exception):
        sockaddr_from_host(k, AF_INET, ("300.1.1.1", 1))
    assert SOCK_DGRAM == 2


def test_sendmsg_recvmsg_dgram(env):
    """msghdr (cstruct MSGHDR on amd64: 48 bytes) and iovecs both ways; a datagram
    larger than the buffer is cut with MSG_TRUNC; control data that is no SCM_RIGHTS
    message is EINVAL (unp_internalize)."""
    from nbemu.syscalls.uipc_syscalls import MSG_TRUNC
    k, l, buf, _ = env
    ok(l, "socketpair", AF_LOCAL, SOCK_DGRAM, 0, buf)
    a, b = struct.unpack("<ii", get(l, buf, 8))
    put(l, buf + 0x100, b"hello ")
    put(l, buf + 0x200, b"world")
    put(l, buf + 0x300, struct.pack("<QQQQ", buf + 0x100, 6, buf + 0x200, 5))     # iovec[2]
    msg = struct.pack("<QI4xQi4xQIi", 0, 0, buf + 0x300, 2, 0, 0, 0)
    assert ok(l, "sendmsg", a, put(l, buf + 0x400, msg), 0)[0] == 11
    ctl = struct.pack("<QI4xQi4xQIi", 0, 0, buf + 0x300, 2, buf + 0x900, 16, 0)
    assert err(l, "sendmsg", a, put(l, buf + 0x480, ctl), 0) == Errno.EINVAL
    put(l, buf + 0x500, struct.pack("<QQQQ", buf + 0x600, 4, buf + 0x700, 3))     # 7 bytes of room
    rmsg = struct.pack("<QI4xQi4xQIi", buf + 0x800, 106, buf + 0x500, 2, 0, 0, 0)
    assert ok(l, "recvmsg", b, put(l, buf + 0x880, rmsg), 0)[0] == 7
    assert get(l, buf + 0x600, 4) + get(l, buf + 0x700, 3) == b"hello w"
    fields = struct.unpack("<QI4xQi4xQIi", get(l, buf + 0x880, 48))
    assert fields[-1] & MSG_TRUNC and fields[5] == 0                  # msg_flags, msg_controllen
    assert err(l, "recvmsg", b, BAD, 0) == Errno.EFAULT
