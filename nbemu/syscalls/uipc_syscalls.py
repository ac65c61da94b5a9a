"""BSD sockets (NetBSD's uipc_syscalls.c, with the socket fileops of
sys_socket.c), backed by host sockets.

A guest socket is a SocketFile (DTYPE_SOCKET) that owns one host socket,
always non-blocking on the host. Guest blocking is done here: an operation
that would block (accept, connect, recv, send) sleeps interruptibly for
HOSTPOLL_NS (kpause), asks the host again whether the socket is ready, and
retries, so the other LWPs keep running and a signal ends the wait (EINTR),
as HostFile._read_when_ready does for ttys and pipes. read/write/close/fcntl/
poll/select/kevent reach it as any file: readiness comes from the host
(HostFile._ready, logged as "ready").

Everything NetBSD and Linux lay out or number differently is translated at
one boundary: struct sockaddr (NetBSD's has sa_len and a one-byte family;
AF_INET6 is 24), AF_LOCAL paths (resolved inside the guest root through
vfs_lookup, shown to the guest as guest paths), SOCK_* flags, socket options
(SOL_SOCKET is 0xffff on NetBSD; IP_*, IPV6_* and TCP_* names), MSG_* flags,
and errno (from_host).

Record/replay: every result the host decides goes through host_input("sock")
(socket creation, bind/listen/connect/accept outcomes, addresses, option
values, bytes sent, data received) or host_input("ready"); a replay does not
touch host sockets. Not logged: fstat of a socket (answered from the kernel's
own state, no host call), FIONREAD (a host ioctl, as for other host files).
Ancillary data: SCM_RIGHTS, and SCM_CREDS for a socket with LOCAL_CREDS, on AF_LOCAL
sockets (uipc_usrreq.py). Not modelled: control data on inet sockets (sendmsg: EOPNOTSUPP; recvmsg
returns none), paccept's signal mask, socket
options beyond the table below (ENOPROTOOPT), SO_LINGER's effect on close.
"""
from __future__ import annotations

import errno as host_errno
import os
import _socket       # the constants and inet_*; the socket module: _sockets()
import struct
from typing import TYPE_CHECKING, Any, Callable, Generator

from . import hostinput
from .cstruct import TIMEVAL, CStruct, ssize_max
from .errno import Errno, from_host
from .hostinput import HOSTPOLL_NS, host_input
from .kern_descrip import (DTYPE_SOCKET, FNONBLOCK, FNOSIGPIPE, FREAD, FWRITE, S_IFSOCK,
                           NbStat, fd_alloc, fd_affix, fd_getfile)
from .kern_sleepq import kpause
from .lwp import Lwp
from .sys_generic import ERESTART, Uio, copyin_iovec, sigpipe_hook
from .table import syscall
from .vfs_lookup import AT_FDCWD, namei_path, proc_fd, root_host
from .uipc_usrreq import (HOST_ANCBUF, LOCAL_CREDS, MCLBYTES, MSG_CMSG_CLOEXEC, SOL_LOCAL,
                          UnpState, cmsg_align, copyout_msg_control, free_rights, sockcred_msg,
                          token_ids, token_send_anc, unp_addsockcred, unp_externalize,
                          unp_internalize, unp_state)
from .vfs_syscalls import VSOCK, HostFile

# -- sys/socket.h, netinet/in.h, netinet/tcp.h, netinet6/in6.h (NetBSD values) -----------
AF_UNSPEC, AF_LOCAL, AF_INET, AF_INET6 = 0, 1, 2, 24
AF_UNIX = AF_LOCAL
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET = 1, 2, 3, 4, 5
SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_NOSIGPIPE, SOCK_CLOFORK = (0x10000000, 0x20000000,
                                                             0x40000000, 0x80000000)
SOCK_FLAGS_MASK = 0xF0000000
SOL_SOCKET = 0xFFFF
SO_DEBUG, SO_ACCEPTCONN, SO_REUSEADDR, SO_KEEPALIVE = 0x1, 0x2, 0x4, 0x8
SO_DONTROUTE, SO_BROADCAST, SO_LINGER, SO_OOBINLINE = 0x10, 0x20, 0x80, 0x100
SO_REUSEPORT, SO_NOSIGPIPE = 0x200, 0x800
SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT = 0x1001, 0x1002, 0x1003, 0x1004
SO_ERROR, SO_TYPE, SO_SNDTIMEO, SO_RCVTIMEO = 0x1007, 0x1008, 0x100B, 0x100C
IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IPV6 = 0, 6, 17, 41
IP_TOS, IP_TTL = 3, 4
IPV6_UNICAST_HOPS, IPV6_V6ONLY = 4, 27
TCP_NODELAY, TCP_MAXSEG, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT = 1, 2, 3, 5, 6
MSG_OOB, MSG_PEEK, MSG_DONTROUTE, MSG_EOR, MSG_TRUNC, MSG_CTRUNC = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
MSG_WAITALL, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_NBIO = 0x40, 0x80, 0x400, 0x1000
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2
SOMAXCONN = 128
UCHAR_MAX = 255

SOCKADDR_IN_LEN, SOCKADDR_IN6_LEN, SOCKADDR_UN_LEN = 16, 28, 106
SUN_PATH = 104

_HOST_AF = {AF_LOCAL: _socket.AF_UNIX, AF_INET: _socket.AF_INET, AF_INET6: _socket.AF_INET6}
_HOST_TYPE = {SOCK_STREAM: _socket.SOCK_STREAM, SOCK_DGRAM: _socket.SOCK_DGRAM,
              SOCK_RAW: _socket.SOCK_RAW, SOCK_SEQPACKET: _socket.SOCK_SEQPACKET}

# (NetBSD level, name) -> (host level, host name, value kind)
_OPTS: dict[tuple[int, int], tuple[int, int, str]] = {
    (SOL_SOCKET, SO_DEBUG): (_socket.SOL_SOCKET, _socket.SO_DEBUG, "bool"),
    (SOL_SOCKET, SO_ACCEPTCONN): (_socket.SOL_SOCKET, _socket.SO_ACCEPTCONN, "bool"),
    (SOL_SOCKET, SO_REUSEADDR): (_socket.SOL_SOCKET, _socket.SO_REUSEADDR, "bool"),
    (SOL_SOCKET, SO_KEEPALIVE): (_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, "bool"),
    (SOL_SOCKET, SO_DONTROUTE): (_socket.SOL_SOCKET, _socket.SO_DONTROUTE, "bool"),
    (SOL_SOCKET, SO_BROADCAST): (_socket.SOL_SOCKET, _socket.SO_BROADCAST, "bool"),
    (SOL_SOCKET, SO_OOBINLINE): (_socket.SOL_SOCKET, _socket.SO_OOBINLINE, "bool"),
    (SOL_SOCKET, SO_REUSEPORT): (_socket.SOL_SOCKET, _socket.SO_REUSEPORT, "bool"),
    (SOL_SOCKET, SO_LINGER): (_socket.SOL_SOCKET, _socket.SO_LINGER, "linger"),
    (SOL_SOCKET, SO_SNDBUF): (_socket.SOL_SOCKET, _socket.SO_SNDBUF, "int"),
    (SOL_SOCKET, SO_RCVBUF): (_socket.SOL_SOCKET, _socket.SO_RCVBUF, "int"),
    (SOL_SOCKET, SO_SNDLOWAT): (_socket.SOL_SOCKET, _socket.SO_SNDLOWAT, "int"),
    (SOL_SOCKET, SO_RCVLOWAT): (_socket.SOL_SOCKET, _socket.SO_RCVLOWAT, "int"),
    (SOL_SOCKET, SO_ERROR): (_socket.SOL_SOCKET, _socket.SO_ERROR, "errno"),
    (IPPROTO_TCP, TCP_NODELAY): (_socket.IPPROTO_TCP, _socket.TCP_NODELAY, "bool"),
    (IPPROTO_TCP, TCP_MAXSEG): (_socket.IPPROTO_TCP, _socket.TCP_MAXSEG, "int"),
    (IPPROTO_TCP, TCP_KEEPIDLE): (_socket.IPPROTO_TCP, _socket.TCP_KEEPIDLE, "int"),
    (IPPROTO_TCP, TCP_KEEPINTVL): (_socket.IPPROTO_TCP, _socket.TCP_KEEPINTVL, "int"),
    (IPPROTO_TCP, TCP_KEEPCNT): (_socket.IPPROTO_TCP, _socket.TCP_KEEPCNT, "int"),
    (IPPROTO_IP, IP_TOS): (_socket.IPPROTO_IP, _socket.IP_TOS, "int"),
    (IPPROTO_IP, IP_TTL): (_socket.IPPROTO_IP, _socket.IP_TTL, "int"),
    (IPPROTO_IPV6, IPV6_V6ONLY): (_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, "bool"),
    (IPPROTO_IPV6, IPV6_UNICAST_HOPS): (_socket.IPPROTO_IPV6, _socket.IPV6_UNICAST_HOPS, "int"),
}
# NetBSD MSG_* -> Linux MSG_* (what the host is asked with)
_MSG_OUT = ((MSG_OOB, _socket.MSG_OOB), (MSG_PEEK, _socket.MSG_PEEK),
            (MSG_DONTROUTE, _socket.MSG_DONTROUTE), (MSG_EOR, _socket.MSG_EOR))
_MSG_IN = ((MSG_OOB, _socket.MSG_OOB), (MSG_EOR, _socket.MSG_EOR), (MSG_TRUNC, _socket.MSG_TRUNC),
           (MSG_CTRUNC, _socket.MSG_CTRUNC))

# struct msghdr (sys/socket.h)
MSGHDR = CStruct("msghdr", [("ptr", "msg_name"), ("uint32", "msg_namelen"), ("ptr", "msg_iov"),
                            ("int", "msg_iovlen"), ("ptr", "msg_control"),
                            ("uint32", "msg_controllen"), ("int", "msg_flags")])
LINGER = struct.Struct("<ii")
INT = struct.Struct("<i")
CHUNK = 1 << 20


if TYPE_CHECKING:
    import socket


def _sockets() -> Any:
    """Python's socket module, whose class the host sockets are: imported with the
    first socket, not at start-up (its enums and selectors are ~12M instructions
    of every start, callgrind); _socket has the constants."""
    import socket
    return socket


def _replaying() -> bool:
    r = hostinput.recorder
    return r is not None and r.replaying


def _hostcall(fn: Callable, *args: Any) -> tuple[int, Any]:
    """A host socket call: (0, result) or (NetBSD errno, None)."""
    try:
        return 0, fn(*args)
    except OSError as e:
        return from_host(e.errno or host_errno.EIO), None
    except (OverflowError, ValueError, TypeError):
        return Errno.EINVAL, None


def _sock_input(fn: Callable[[], Any]) -> Any:
    return host_input("sock", fn)


def _msgflags(flags: int, table) -> int:
    return sum(h for nb, h in table if flags & nb)


def _msgflags_nb(hflags: int) -> int:
    return sum(nb for nb, h in _MSG_IN if hflags & h)


# -- struct sockaddr: NetBSD <-> host -------------------------------------------------------
def sockaddr_to_host(l: Lwp, family: int, sa: bytes, bind: bool) -> Any:
    """A guest sockaddr (sa_len already set to the length given, as sockargs
    does) -> the Python address of a host socket of `family`, or an errno."""
    if len(sa) < 2:
        return Errno.EINVAL
    fam = sa[1]
    if family == AF_INET:
        if len(sa) < SOCKADDR_IN_LEN:
            return Errno.EINVAL
        if fam != AF_INET:
            return Errno.EAFNOSUPPORT
        port = struct.unpack_from(">H", sa, 2)[0]
        return _socket.inet_ntop(_socket.AF_INET, sa[4:8]), port
    if family == AF_INET6:
        if len(sa) < SOCKADDR_IN6_LEN:
            return Errno.EINVAL
        if fam != AF_INET6:
            return Errno.EAFNOSUPPORT
        port, flow = struct.unpack_from(">HI", sa, 2)
        scope = struct.unpack_from("<I", sa, 24)[0]
        return _socket.inet_ntop(_socket.AF_INET6, sa[8:24]), port, flow, scope
    if family == AF_LOCAL:
        if fam != AF_LOCAL:
            return Errno.EAFNOSUPPORT      # NetBSD's unp_bind/unp_connect check sun_family
        path = sa[2:].split(b"\0", 1)[0]
        if not path:
            return Errno.ENOENT if not bind else Errno.EINVAL
        return _local_addr(l, path, bind)
    return Errno.EAFNOSUPPORT


class LocalAddr(str):
    """An AF_LOCAL host address that names what namei holds open, so that the
    host cannot be redirected by a symlink or a renamed directory: bind makes
    /proc/self/fd/<held directory>/<name>; connect/sendto reach
    /proc/self/fd/<held socket file> (Linux socket calls take no dirfd). The
    descriptors stay open until release()."""
    nd: Any
    guest: bytes

    def release(self) -> None:
        self.nd.close()


def release_addr(addr: Any) -> None:
    if isinstance(addr, LocalAddr):
        addr.release()


def _unp_names(k: Any) -> dict[str, bytes]:
    """Host names of sockets this kernel bound -> their guest paths."""
    return k.unp_names


def _local_addr(l: Lwp, path: bytes, bind: bool) -> LocalAddr | int:
    nd = namei_path(l, AT_FDCWD, path, follow=not bind)
    if isinstance(nd, int):
        return nd
    if bind:
        if nd.ni_exists or nd.ni_dvp is None:
            nd.close()
            return Errno.EADDRINUSE
        host = f"{proc_fd(nd.ni_dvp)}/{os.fsdecode(nd.ni_name)}"
    else:
        if not nd.ni_exists:
            nd.close()
            return Errno.ENOENT
        if nd.ni_st is None or (nd.ni_st.st_mode & 0o170000) != S_IFSOCK:
            nd.close()
            return Errno.ENOTSOCK             # unp_connect: not a VSOCK
        host = proc_fd(nd.ni_vp)             # type: ignore[arg-type]
    if len(os.fsencode(host)) >= 108:        # Linux's sun_path
        nd.close()
        return Errno.ENAMETOOLONG
    addr = LocalAddr(host)
    addr.nd = nd
    addr.guest = nd.ni_guest
    if bind:
        _unp_names(l.l_proc.k)[host] = nd.ni_guest
    return addr


def sockaddr_from_host(k: Any, family: int, addr: Any) -> bytes:
    """A host socket's address (as Python gives it) -> NetBSD struct sockaddr bytes."""
    if family == AF_INET:
        host, port = addr
        return (bytes((SOCKADDR_IN_LEN, AF_INET)) + struct.pack(">H", port)
                + _socket.inet_pton(_socket.AF_INET, host) + bytes(8))
    if family == AF_INET6:
        host, port, flow, scope = addr
        return (bytes((SOCKADDR_IN6_LEN, AF_INET6)) + struct.pack(">HI", port, flow)
                + _socket.inet_pton(_socket.AF_INET6, host.split("%")[0]) + struct.pack("<I", scope))
    # AF_LOCAL: the host path seen from the guest root; unnamed: NetBSD's sun_noname
    path = os.fsencode(addr) if addr else b""
    if path:
        guest = _unp_names(k).get(os.fsdecode(path))    # bound here, through a held dir
        root = root_host(k)
        if guest is not None:
            path = guest
        elif root and path.startswith(root + b"/"):
            path = path[len(root):]
        path = path[:SUN_PATH - 1]
        return bytes((min(2 + len(path) + 1, SOCKADDR_UN_LEN), AF_LOCAL)) + path + b"\0"
    return bytes((SOCKADDR_UN_LEN, AF_LOCAL)) + bytes(SUN_PATH)


# -- the socket file -------------------------------------------------------------------------
class SocketFile(HostFile):
    """file_t of DTYPE_SOCKET over a non-blocking host socket (None under replay)."""
    f_type = DTYPE_SOCKET

    def __init__(self, sock: socket.socket | None, family: int, type_: int, flag: int,
                 unp: UnpState | None = None) -> None:
        super().__init__(sock.fileno() if sock is not None else -1, flag, "socket", True, None,
                         v_type=VSOCK)
        self.so_unp = unp if family == AF_LOCAL else None   # files in flight (AF_LOCAL)
        self.sock = sock
        if sock is not None:
            sock.setblocking(False)
        self.so_family = family
        self.so_type = type_
        self.so_listening = False
        self.so_rcvtimeo = 0        # ns, 0: none
        self.so_sndtimeo = 0
        self.so_wantcred = False    # unp_flags & UNP_WANTCRED (LOCAL_CREDS)

    def __repr__(self) -> str:
        return f"<SocketFile af={self.so_family} type={self.so_type} fd={self.hostfd}>"

    # host calls, logged
    def call(self, name: str | Callable, *args: Any) -> tuple[int, Any]:
        """sock.<name>(*args) -- or name(sock, *args) -- through host_input:
        (errno, result)."""
        sock = self.sock

        def fn() -> tuple[int, Any]:
            if sock is None:
                return Errno.EBADF, None
            return _hostcall(name if callable(name) else getattr(sock, name),
                             *((sock,) if callable(name) else ()), *args)
        return _sock_input(fn)

    def wait(self, l: Lwp, write: bool, wmesg: str) -> Generator[str, int, int]:
        """Sleep until the host socket is ready (0), a signal (EINTR/ERESTART) or
        SO_RCVTIMEO / SO_SNDTIMEO passes (EWOULDBLOCK)."""
        k = l.l_proc.k
        timeo = self.so_sndtimeo if write else self.so_rcvtimeo
        deadline = k.clock.monotonic_ns() + timeo if timeo else None
        while not self._ready(write):
            step = HOSTPOLL_NS
            if deadline is not None:
                left = deadline - k.clock.monotonic_ns()
                if left <= 0:
                    return Errno.EWOULDBLOCK
                step = min(step, left)
            error = yield from kpause(k, l, "sbwait", True, step)
            if error != Errno.EWOULDBLOCK:
                return error
        return 0

    def blocking_call(self, l: Lwp, write: bool, nonblock: bool, wmesg: str,
                      name: str | Callable, *args: Any) -> Generator[str, int, tuple[int, Any]]:
        """A call that may find nothing to do: retried after waiting unless nonblock."""
        while True:
            error, res = self.call(name, *args)
            if error != Errno.EAGAIN or nonblock:
                return error, res
            error = yield from self.wait(l, write, wmesg)
            if error:
                return error, None

    # fileops
    def receive(self, l: Lwp, uio: Uio, flags: int, want_addr: bool,
                rights: list[int] | None = None
                ) -> Generator[str, int, tuple[int, bytes | None, int]]:
        """soreceive: (error, source address or None, NetBSD msg_flags). The
        in-flight numbers of received SCM_RIGHTS messages go to rights; without
        a list (read, recv, recvfrom) their files are discarded."""
        nonblock = bool(self.f_flag & FNONBLOCK or flags & (MSG_DONTWAIT | MSG_NBIO))
        hflags = _msgflags(flags, _MSG_OUT)
        addr = None
        outflags = 0
        stream = self.so_type == SOCK_STREAM
        atomic_rcv = self.so_type == SOCK_DGRAM
        while True:
            n = uio.writable(min(uio.resid, CHUNK)) if uio.resid else 0
            if uio.resid and n == 0:
                return Errno.EFAULT, addr, outflags
            if self.so_unp is not None:
                # AF_LOCAL: always with room for tokens, so none is lost
                error, res = yield from self.blocking_call(l, False, nonblock, "netio",
                                                           _recvmsg_tokens, max(n, 0), hflags)
                if error:
                    return error, addr, outflags
                data, ids, mflags, raddr = res
                outflags |= _msgflags_nb(mflags & ~_socket.MSG_CTRUNC)
                if want_addr and raddr:
                    addr = sockaddr_from_host(l.l_proc.k, self.so_family, raddr)
                if ids and not flags & MSG_PEEK:
                    if rights is None:
                        if self.so_wantcred and not atomic_rcv and \
                                any(i in self.so_unp.creds for i in ids):
                            self.so_wantcred = False    # the one message was read
                        self.so_unp.dispose(ids)
                    else:
                        rights.extend(ids)
            elif want_addr or not stream:
                error, res = yield from self.blocking_call(l, False, nonblock, "netio",
                                                           "recvmsg", max(n, 0), 0, hflags)
                if error:
                    return error, addr, outflags
                data, _anc, mflags, raddr = res
                outflags |= _msgflags_nb(mflags)
                if want_addr and raddr:
                    addr = sockaddr_from_host(l.l_proc.k, self.so_family, raddr)
            else:
                error, data = yield from self.blocking_call(l, False, nonblock, "netio",
                                                            "recv", n, hflags)
                if error:
                    return error, addr, outflags
            error = uio.copyout(data)
            if error:
                return error, addr, outflags
            # MSG_WAITALL on a stream: go on until full, EOF, or a signal
            if not (flags & MSG_WAITALL and stream and data and uio.resid
                    and not flags & MSG_PEEK):
                return 0, addr, outflags
            nonblock = bool(self.f_flag & FNONBLOCK)

    def send(self, l: Lwp, uio: Uio, flags: int, to: Any,
             rights: int = 0) -> Generator[str, int, int]:
        """sosend: a stream sends everything (waiting for room); a datagram at once.
        rights: an in-flight SCM_RIGHTS message, sent with the first bytes (its
        files are discarded if nothing is sent)."""
        nonblock = bool(self.f_flag & FNONBLOCK or flags & (MSG_DONTWAIT | MSG_NBIO))
        hflags = _msgflags(flags, _MSG_OUT) | _socket.MSG_NOSIGNAL
        atomic = self.so_type != SOCK_STREAM
        unp = self.so_unp
        if unp is not None and unp.creds_wanted:
            # unp_addsockcred: the sender's credentials go with the first bytes
            if rights:
                unp.creds[rights] = unp_addsockcred(l)
            else:
                rights = unp.add([], unp_addsockcred(l))
        sent_any = False
        while uio.resid or not sent_any:
            data, error = uio.copyin(uio.resid if atomic else min(uio.resid, CHUNK))
            if error and (atomic or not data):
                if rights and self.so_unp is not None:
                    self.so_unp.dispose([rights])
                return error
            if rights:
                error, n = yield from self.blocking_call(l, True, nonblock, "sbwait",
                                                         _sendmsg_token, data, hflags, to,
                                                         rights)
                if error and self.so_unp is not None:
                    self.so_unp.dispose([rights])
                rights = 0
            else:
                args = (data, hflags) if to is None else (data, hflags, to)
                error, n = yield from self.blocking_call(
                    l, True, nonblock, "sbwait", "send" if to is None else "sendto", *args)
            if error:
                return error
            uio.advance(n)
            sent_any = True
            if atomic:
                return 0
            if n < len(data) and nonblock:
                return 0
        return 0

    def fo_read(self, l: Lwp, uio) -> Generator:
        error, _, _ = yield from self.receive(l, uio, 0, False)
        return error

    def fo_write(self, l: Lwp, uio) -> Generator:
        return (yield from self.send(l, uio, 0, None))

    def fo_stat(self, l: Lwp) -> NbStat:
        # soo_stat: from the kernel's own state, not the host's (nothing to log)
        return NbStat(st_mode=S_IFSOCK | 0o666, st_uid=os.geteuid(),
                      st_gid=os.getegid(), st_nlink=1, st_blksize=0x8000)

    def fo_fcntl(self, cmd: int, arg: Any) -> Any:
        return 0 if cmd == 4 else Errno.EOPNOTSUPP          # F_SETFL

    def fo_close(self) -> int:
        if self.so_unp is not None and self.so_unp.inflight:
            self._sorflush()
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        return 0


    def _sorflush(self) -> None:
        """sorflush at the last close: the files in this socket's queue go."""
        unp = self.so_unp
        assert unp is not None
        while True:
            error, res = self.call(_recvmsg_tokens, CHUNK, _socket.MSG_DONTWAIT)
            if error or not res[0] and not res[1]:
                return
            unp.dispose(res[1])


def _recvmsg_tokens(sock: socket.socket, n: int, hflags: int) -> tuple:
    """Host recvmsg with room for SCM_RIGHTS tokens: (data, in-flight numbers,
    host msg_flags, address)."""
    data, anc, mflags, addr = sock.recvmsg(n, HOST_ANCBUF, hflags | _socket.MSG_CMSG_CLOEXEC)
    return data, token_ids(anc) if anc else [], mflags, addr


def _sendmsg_token(sock: socket.socket, data: bytes, hflags: int, to: Any, mid: int) -> int:
    """Host sendmsg of data with the token of in-flight message mid."""
    fd, anc = token_send_anc(mid)
    try:
        if to is None:
            return sock.sendmsg([data], anc, hflags)
        return sock.sendmsg([data], anc, hflags, to)
    finally:
        os.close(fd)


def _newsocket(family: int, type_: int, proto: int) -> Any:
    """(errno, host socket or None) -- the socket itself is kept out of the log."""
    holder: list[socket.socket] = []

    def fn() -> int:
        error, s = _hostcall(_sockets().socket, _HOST_AF[family], _HOST_TYPE[type_], proto)
        if not error:
            holder.append(s)
        return error
    error = _sock_input(fn)
    return error, (holder[0] if holder else None)


def _flags_of(p, flags: int) -> int:
    f = FREAD | FWRITE
    if flags & SOCK_NONBLOCK:
        f |= FNONBLOCK
    if flags & SOCK_NOSIGPIPE:
        f |= FNOSIGPIPE
    return f


def _install(l: Lwp, fp: SocketFile, flags: int) -> tuple[int, int]:
    p = l.l_proc
    error, fd = fd_alloc(p, 0)
    if error:
        fp.fo_close()
        return error, -1
    fd_affix(p, fp, fd, bool(flags & SOCK_CLOEXEC))
    return 0, fd


def _check_socket(domain: int, type_: int, proto: int) -> int:
    """socreate's answers for what the kernel does not know (pffindproto / pffindtype)."""
    if domain not in _HOST_AF:
        return Errno.EAFNOSUPPORT
    if type_ not in _HOST_TYPE or (domain == AF_LOCAL and type_ == SOCK_RAW):
        return Errno.EPROTOTYPE if proto == 0 else Errno.EPROTONOSUPPORT
    return 0


def fsocreate(l: Lwp, domain: int, type_: int, proto: int) -> tuple[int, SocketFile | None]:
    flags = type_ & SOCK_FLAGS_MASK
    type_ &= ~SOCK_FLAGS_MASK & 0xFFFFFFFF
    error = _check_socket(domain, type_, proto)
    if error:
        return error, None
    error, s = _newsocket(domain, type_, proto)
    if error:
        return error, None
    return 0, SocketFile(s, domain, type_, _flags_of(l.l_proc, flags), unp_state(l.l_proc.k))


def fd_getsock(l: Lwp, fd: int) -> SocketFile | int:
    fp = fd_getfile(l.l_proc, fd)
    if fp is None:
        return Errno.EBADF
    if not isinstance(fp, SocketFile):
        return Errno.ENOTSOCK
    return fp


def sockargs(l: Lwp, va: int, buflen: int) -> bytes | int:
    """Copy in a struct sockaddr of buflen bytes; sa_len becomes buflen."""
    if buflen > UCHAR_MAX:
        return Errno.EINVAL
    if buflen < 2:
        return Errno.EINVAL
    data = l.l_proc.p_vmspace.copyin(va, buflen)
    if isinstance(data, int):
        return data
    return bytes((buflen,)) + data[1:]


def copyout_sockname(l: Lwp, sa: bytes | None, asa: int, alen: int) -> int:
    """Copy out as much of sa as *alen allows; *alen becomes what was copied."""
    if asa == 0 or alen == 0:
        return 0
    vm = l.l_proc.p_vmspace
    d = vm.copyin(alen, 4)
    if isinstance(d, int):
        return d
    (len_,) = struct.unpack("<I", d)
    if len_ > 0x7FFFFFFF:
        return Errno.EINVAL
    sa = sa or b""
    len_ = min(len_, len(sa))
    if len_:
        error = vm.copyout(sa[:len_], asa)
        if error:
            return error
    return vm.copyout(struct.pack("<I", len_), alen)


# -- system calls --------------------------------------------------------------------------
@syscall(394, "__socket30")
def sys___socket30(l: Lwp, a, retval: list[int]) -> int:
    error, fp = fsocreate(l, a.domain, a.type & 0xFFFFFFFF, a.protocol)
    if error:
        return error
    error, fd = _install(l, fp, a.type)
    if error:
        return error
    retval[0] = fd
    return 0


@syscall(135, "socketpair")
def sys_socketpair(l: Lwp, a, retval: list[int]) -> int:
    domain, type_, proto = a.domain, a.type & 0xFFFFFFFF, a.protocol
    flags = type_ & SOCK_FLAGS_MASK
    type_ &= ~SOCK_FLAGS_MASK
    error = _check_socket(domain, type_, proto)
    if error:
        return error
    if domain != AF_LOCAL:
        return Errno.EOPNOTSUPP                # soconnect2: only unix sockets pair up
    holder: list[tuple[socket.socket, socket.socket]] = []

    def fn() -> int:
        error, pair = _hostcall(_sockets().socketpair, _socket.AF_UNIX, _HOST_TYPE[type_], proto)
        if not error:
            holder.append(pair)
        return error
    error = _sock_input(fn)
    if error:
        return error
    pair = holder[0] if holder else (None, None)
    p = l.l_proc
    fps = [SocketFile(s, domain, type_, _flags_of(p, flags), unp_state(p.k)) for s in pair]
    error, fd1 = _install(l, fps[0], flags)
    if error:
        fps[1].fo_close()
        return error
    error, fd2 = _install(l, fps[1], flags)
    if error:
        from .kern_descrip import fd_close
        fd_close(p, fd1)
        return error
    error = p.p_vmspace.copyout(struct.pack("<ii", fd1, fd2), a.rsv)
    if error:
        from .kern_descrip import fd_close
        fd_close(p, fd1)
        fd_close(p, fd2)
        return error
    retval[0] = 0
    return 0


def _sockaddr_arg(l: Lwp, so: SocketFile, va: int, namelen: int, bind: bool) -> Any:
    sa = sockargs(l, va, namelen)
    if isinstance(sa, int):
        return sa
    return sockaddr_to_host(l, so.so_family, sa, bind)


@syscall(104, "bind")
def sys_bind(l: Lwp, a, retval: list[int]) -> int:
    so = fd_getsock(l, a.s)
    if isinstance(so, int):
        return so
    addr = _sockaddr_arg(l, so, a.name, a.namelen, True)
    if isinstance(addr, int):
        return addr
    try:
        error = so.call("bind", addr)[0]
        if not error and so.so_family == AF_LOCAL and _replaying():
            # The recorded bind made a socket file; a replay makes the same one (with
            # a throwaway host socket) so that later lookups, connect and unlink see
            # the file tree the recorded run saw.
            try:
                with _sockets().socket(_socket.AF_UNIX) as s:
                    s.bind(addr)
            except OSError:
                pass
    finally:
        release_addr(addr)
    return error


@syscall(106, "listen")
def sys_listen(l: Lwp, a, retval: list[int]) -> int:
    so = fd_getsock(l, a.s)
    if isinstance(so, int):
        return so
    if so.so_type not in (SOCK_STREAM, SOCK_SEQPACKET):
        return Errno.EOPNOTSUPP
    backlog = a.backlog
    if backlog < 0 or backlog > SOMAXCONN:
        backlog = SOMAXCONN
    error = so.call("listen", backlog)[0]
    if not error:
        so.so_listening = True
    return error


@syscall(98, "connect")
def sys_connect(l: Lwp, a, retval: list[int]) -> Generator:
    so = fd_getsock(l, a.s)
    if isinstance(so, int):
        return so
    addr = _sockaddr_arg(l, so, a.name, a.namelen, False)
    if isinstance(addr, int):
        return addr
    if so.so_listening:
        release_addr(addr)
        return Errno.EOPNOTSUPP
    error, res = so.call("connect_ex", addr)
    release_addr(addr)
    if error:
        return error
    error = from_host(res) if res else 0
    if error != Errno.EINPROGRESS or so.f_flag & FNONBLOCK:
        return error
    # a blocking connect: wait until the host socket is writable, then its SO_ERROR
    error = yield from so.wait(l, True, "connect")
    if error:
        return Errno.EINTR if error == Errno.EWOULDBLOCK else error
    error, res = so.call("getsockopt", _socket.SOL_SOCKET, _socket.SO_ERROR)
    return error or (from_host(res) if res else 0)


def _do_accept(l: Lwp, s: int, name: int, anamelen: int, flags: int, clrflags: int,
               retval: list[int]) -> Generator:
    so = fd_getsock(l, s)
    if isinstance(so, int):
        return so
    if not so.so_listening:
        return Errno.EINVAL
    holder: list[socket.socket] = []
    sock = so.sock

    def fn() -> tuple[int, Any]:
        if sock is None:
            return Errno.EBADF, None
        error, res = _hostcall(sock.accept)
        if error:
            return error, None
        ns, raddr = res
        holder.append(ns)
        return 0, sockaddr_from_host(l.l_proc.k, so.so_family, raddr)

    nonblock = bool(so.f_flag & FNONBLOCK)
    while True:
        error, sa = _sock_input(fn)
        if error != Errno.EAGAIN or nonblock:
            break
        error = yield from so.wait(l, False, "accept")
        if error:
            return error
    if error:
        return error
    if _replaying():
        ns = None
    else:
        ns = holder[0]
    nflag = (so.f_flag & ~clrflags) | (FNONBLOCK if flags & SOCK_NONBLOCK else 0) | (
        FNOSIGPIPE if flags & SOCK_NOSIGPIPE else 0)
    nfp = SocketFile(ns, so.so_family, so.so_type, nflag, so.so_unp)
    nfp.so_wantcred = so.so_wantcred            # unp3->unp_flags = unp2->unp_flags
    error, fd = _install(l, nfp, flags)
    if error:
        return error
    error = copyout_sockname(l, sa, name, anamelen)
    if error:
        from .kern_descrip import fd_close
        fd_close(l.l_proc, fd)
        return error
    retval[0] = fd
    return 0


@syscall(30, "accept")
def sys_accept(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from _do_accept(l, a.s, a.name, a.anamelen, 0, 0, retval))


@syscall(456, "paccept")
def sys_paccept(l: Lwp, a, retval: list[int]) -> Generator:
    flags = a.flags & 0xFFFFFFFF
    if flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK | SOCK_NOSIGPIPE | SOCK_CLOFORK):
        return Errno.EINVAL
    return (yield from _do_accept(l, a.s, a.name, a.anamelen, flags,
                                  FNONBLOCK | FNOSIGPIPE, retval))


def _getname(l: Lwp, a, peer: bool) -> int:
    so = fd_getsock(l, a.fdes)
    if isinstance(so, int):
        return so
    k = l.l_proc.k
    fam = so.so_family
    error, sa = _sock_input(lambda: _name_of(k, so, fam, peer))
    if error:
        return error
    return copyout_sockname(l, sa, a.asa, a.alen)


def _name_of(k, so: SocketFile, fam: int, peer: bool) -> tuple[int, Any]:
    if so.sock is None:
        return Errno.EBADF, None
    error, addr = _hostcall(so.sock.getpeername if peer else so.sock.getsockname)
    if error:
        return error, None
    if fam != AF_LOCAL and not addr:
        return 0, None
    return 0, sockaddr_from_host(k, fam, addr)


@syscall(32, "getsockname")
def sys_getsockname(l: Lwp, a, retval: list[int]) -> int:
    return _getname(l, a, False)


@syscall(31, "getpeername")
def sys_getpeername(l: Lwp, a, retval: list[int]) -> int:
    return _getname(l, a, True)


def _timeo_in(l: Lwp, data: bytes) -> int:
    lay = TIMEVAL.on(l.l_proc.k.abi)
    if len(data) < lay.size:
        return -Errno.EINVAL
    sec, usec = lay.unpack(data[:lay.size])
    if sec < 0 or not 0 <= usec < 1_000_000:
        return -Errno.EDOM
    return sec * 1_000_000_000 + usec * 1000


@syscall(105, "setsockopt")
def sys_setsockopt(l: Lwp, a, retval: list[int]) -> int:
    so = fd_getsock(l, a.s)
    if isinstance(so, int):
        return so
    level, name, size = a.level & 0xFFFFFFFF, a.name, a.valsize
    if level == 0xFFFFFFFF:
        level = SOL_SOCKET
    if size > 0x7FFFFFFF or size > 4096:
        return Errno.EINVAL
    data = b""
    if a.val and size:
        d = l.l_proc.p_vmspace.copyin(a.val, size)
        if isinstance(d, int):
            return d
        data = d
    if level == SOL_LOCAL and so.so_unp is not None:
        # uipc_ctloutput PRCO_SETOPT: LOCAL_CREDS takes an int (sockopt_getint)
        if name != LOCAL_CREDS:
            return Errno.ENOPROTOOPT
        if len(data) != 4:
            return Errno.EINVAL
        so.so_wantcred = INT.unpack_from(data)[0] != 0
        if so.so_wantcred:
            so.so_unp.creds_wanted = True
        return 0
    if level == SOL_SOCKET and name in (SO_RCVTIMEO, SO_SNDTIMEO):
        ns = _timeo_in(l, data)
        if ns < 0:
            return -ns
        if name == SO_RCVTIMEO:
            so.so_rcvtimeo = ns
        else:
            so.so_sndtimeo = ns
        return 0
    if level == SOL_SOCKET and name == SO_NOSIGPIPE:
        if len(data) < 4:
            return Errno.EINVAL
        if INT.unpack_from(data)[0]:
            so.f_flag |= FNOSIGPIPE
        else:
            so.f_flag &= ~FNOSIGPIPE
        return 0
    opt = _OPTS.get((level, name))
    if opt is None or name in (SO_ERROR, SO_ACCEPTCONN) and level == SOL_SOCKET:
        return Errno.ENOPROTOOPT
    hlevel, hname, kind = opt
    if kind == "linger":
        if len(data) < LINGER.size:
            return Errno.EINVAL
        value: Any = LINGER.pack(*LINGER.unpack_from(data))
    else:
        if len(data) < 4:
            # IP_TOS/IP_TTL take an int; a byte is EINVAL on NetBSD too for these
            return Errno.EINVAL
        value = INT.unpack_from(data)[0]
        if kind == "bool":
            value = 1 if value else 0
    return so.call("setsockopt", hlevel, hname, value)[0]


@syscall(118, "getsockopt")
def sys_getsockopt(l: Lwp, a, retval: list[int]) -> int:
    so = fd_getsock(l, a.s)
    if isinstance(so, int):
        return so
    vm = l.l_proc.p_vmspace
    level, name = a.level & 0xFFFFFFFF, a.name
    if level == 0xFFFFFFFF:
        level = SOL_SOCKET
    valsize = 0
    if a.val:
        d = vm.copyin(a.avalsize, 4)
        if isinstance(d, int):
            return d
        (valsize,) = struct.unpack("<I", d)
        if valsize > 0x7FFFFFFF:
            return Errno.EINVAL
    if level == SOL_LOCAL and so.so_unp is not None:
        if name != LOCAL_CREDS:
            return Errno.ENOPROTOOPT
        out = INT.pack(1 if so.so_wantcred else 0)
    elif level == SOL_SOCKET and name in (SO_RCVTIMEO, SO_SNDTIMEO):
        ns = so.so_rcvtimeo if name == SO_RCVTIMEO else so.so_sndtimeo
        sec, nsec = divmod(ns, 1_000_000_000)
        out = TIMEVAL.on(l.l_proc.k.abi).pack(sec, nsec // 1000)
    elif level == SOL_SOCKET and name == SO_NOSIGPIPE:
        out = INT.pack(1 if so.f_flag & FNOSIGPIPE else 0)
    elif level == SOL_SOCKET and name == SO_TYPE:
        out = INT.pack(so.so_type)
    elif level == SOL_SOCKET and name == SO_ACCEPTCONN:
        out = INT.pack(1 if so.so_listening else 0)
    else:
        opt = _OPTS.get((level, name))
        if opt is None:
            return Errno.ENOPROTOOPT
        hlevel, hname, kind = opt
        if kind == "linger":
            error, v = so.call("getsockopt", hlevel, hname, LINGER.size)
            if error:
                return error
            out = bytes(v)
        else:
            error, v = so.call("getsockopt", hlevel, hname)
            if error:
                return error
            if kind == "errno":
                v = from_host(v) if v else 0
            elif kind == "bool" and v:
                v = name if level == SOL_SOCKET else 1     # NetBSD returns the option bit
            out = INT.pack(v)
    if not a.val:
        return 0
    n = min(valsize, len(out))
    if n:
        error = vm.copyout(out[:n], a.val)
        if error:
            return error
    return vm.copyout(struct.pack("<I", n), a.avalsize)


@syscall(134, "shutdown")
def sys_shutdown(l: Lwp, a, retval: list[int]) -> int:
    so = fd_getsock(l, a.s)
    if isinstance(so, int):
        return so
    if a.how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
        return Errno.EINVAL
    return so.call("shutdown", a.how)[0]


def _send(l: Lwp, so: SocketFile, iov: list[tuple[int, int]], flags: int, to_va: int,
          tolen: int, retval: list[int], rights: int = 0) -> Generator:
    to = None
    if to_va:
        to = _sockaddr_arg(l, so, to_va, tolen, False)
        if isinstance(to, int):
            if rights and so.so_unp is not None:
                so.so_unp.dispose([rights])
            return to
    uio = Uio(l.l_proc.p_vmspace, iov)
    cnt = uio.resid
    try:
        error = yield from so.send(l, uio, flags, to, rights)
    finally:
        release_addr(to)
    if error:
        if uio.resid != cnt and error in (Errno.EINTR, Errno.EWOULDBLOCK, ERESTART):
            error = 0
        elif error == Errno.EPIPE and not flags & MSG_NOSIGNAL:
            sigpipe_hook(l, so)
    retval[0] = cnt - uio.resid
    return error


@syscall(133, "sendto")
def sys_sendto(l: Lwp, a, retval: list[int]) -> Generator:
    so = fd_getsock(l, a.s)
    if isinstance(so, int):
        return so
    if a.len > ssize_max(l.l_proc.k.abi):
        return Errno.EINVAL
    return (yield from _send(l, so, [(a.buf, a.len)], a.flags, a.to, a.tolen, retval))


def _recv(l: Lwp, so: SocketFile, iov: list[tuple[int, int]], flags: int,
          retval: list[int], rights: list[int] | None = None) -> Generator:
    uio = Uio(l.l_proc.p_vmspace, iov)
    cnt = uio.resid
    error, sa, mflags = yield from so.receive(l, uio, flags, True, rights)
    if error and uio.resid != cnt and error in (Errno.EINTR, Errno.EWOULDBLOCK, ERESTART):
        error = 0
    retval[0] = cnt - uio.resid
    return error, sa, mflags


@syscall(29, "recvfrom")
def sys_recvfrom(l: Lwp, a, retval: list[int]) -> Generator:
    so = fd_getsock(l, a.s)
    if isinstance(so, int):
        return so
    if a.len > ssize_max(l.l_proc.k.abi):
        return Errno.EINVAL
    error, sa, _ = yield from _recv(l, so, [(a.buf, a.len)], a.flags, retval)
    if error:
        return error
    return copyout_sockname(l, sa, a[4], a.fromlenaddr)       # a.from is a Python keyword


def _msghdr_in(l: Lwp, va: int) -> tuple | int:
    lay = MSGHDR.on(l.l_proc.k.abi)
    d = l.l_proc.p_vmspace.copyin(va, lay.size)
    if isinstance(d, int):
        return d
    return lay.unpack(d)


def _getmsg(l: Lwp, a) -> tuple[Any, tuple, list[tuple[int, int]]] | int:
    """sendmsg/recvmsg's first steps: the socket, the guest's struct msghdr
    and its iovecs (none when msg_iovlen is 0), or an errno."""
    so = fd_getsock(l, a.s)
    if isinstance(so, int):
        return so
    m = _msghdr_in(l, a.msg)
    if isinstance(m, int):
        return m
    iov = copyin_iovec(l, m[2], m[3]) if m[3] else []
    if isinstance(iov, int):
        return iov
    return so, m, iov


@syscall(28, "sendmsg")
def sys_sendmsg(l: Lwp, a, retval: list[int]) -> Generator:
    g = _getmsg(l, a)
    if isinstance(g, int):
        return g
    so, (name, namelen, _, _, control, controllen, _), iov = g
    rights = 0
    if control:
        k = l.l_proc.k
        if controllen < cmsg_align(k.abi, 12) or controllen > MCLBYTES:
            return Errno.EINVAL
        if so.so_unp is None:
            return Errno.EOPNOTSUPP          # ancillary data of inet sockets: not modelled
        data = l.l_proc.p_vmspace.copyin(control, controllen)
        if isinstance(data, int):
            return data
        error, files = unp_internalize(l, data)
        if error:
            return error
        rights = so.so_unp.add(files)
    return (yield from _send(l, so, iov, a.flags, name, namelen, retval, rights))


@syscall(27, "recvmsg")
def sys_recvmsg(l: Lwp, a, retval: list[int]) -> Generator:
    g = _getmsg(l, a)
    if isinstance(g, int):
        return g
    so, (name, namelen, iovp, iovlen, control, controllen, _), iov = g
    rights: list[int] | None = [] if control else None
    error, sa, mflags = yield from _recv(l, so, iov, a.flags, retval, rights)
    if error:
        if rights and so.so_unp is not None:
            so.so_unp.dispose(rights)
        return error
    if control:
        # unp_externalize (soreceive), then copyout_msg_control
        msgs = []
        for i, mid in enumerate(rights or ()):
            assert so.so_unp is not None
            files = so.so_unp.take(mid)
            cred = so.so_unp.take_cred(mid)
            if files:
                error, msg = unp_externalize(l, files, bool(a.flags & MSG_CMSG_CLOEXEC))
                if error:
                    for m_ in msgs:
                        free_rights(l, m_)
                    so.so_unp.dispose((rights or [])[i + 1:])
                    return error
                msgs.append(msg)
            if cred is not None and so.so_wantcred:
                msgs.append(sockcred_msg(l.l_proc.k.abi, cred))
                if so.so_type != SOCK_DGRAM:
                    so.so_wantcred = False      # once on SOCK_STREAM / SOCK_SEQPACKET
        error, controllen, trunc = copyout_msg_control(l, control, controllen, msgs)
        if error:
            return error
        if trunc:
            mflags |= MSG_CTRUNC
    else:
        controllen = 0
    sa = sa or b""
    if name:
        n = min(namelen, len(sa))
        if n:
            error = l.l_proc.p_vmspace.copyout(sa[:n], name)
            if error:
                return error
        namelen = n
    else:
        namelen = 0
    lay = MSGHDR.on(l.l_proc.k.abi)
    return l.l_proc.p_vmspace.copyout(
        lay.pack(name, namelen, iovp, iovlen, control, controllen, mflags), a.msg)
