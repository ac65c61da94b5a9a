"""Descriptor passing on AF_LOCAL sockets (NetBSD's uipc_usrreq.c: unp_internalize,
unp_externalize, unp_dispose; uipc_syscalls.c: copyout_msg_control).

A guest socket is a host socket (uipc_syscalls.py), so the data of a message and
the files it carries must stay together in the host's queue: sendmsg with
SCM_RIGHTS turns the descriptors into the Files they name (unp_internalize: each
File gains a reference, as f_count++ / f_msgcount++), files them in the kernel's
in-flight table under a number, and sends the host a token with the data: a
memfd holding that number, passed as the host's own SCM_RIGHTS. The host keeps
the token with its message (ordering, datagram boundaries, MSG_PEEK, the queue
of a closed socket); the receiver reads the number back from the token, closes
it, and gets new descriptors to the same Files (unp_externalize).

Record/replay: the host calls go through host_input and log the in-flight
numbers, which the kernel assigns in guest order, so a replay (no host sockets)
finds the same entries.

Credentials (LOCAL_CREDS, SCM_CREDS; unp_addsockcred): a socket with LOCAL_CREDS
set (UNP_WANTCRED) receives a struct sockcred of the sender with a message.
NetBSD's sender looks at its peer's flag; here the peer of a host socket is not
known to the kernel, so once any socket of the kernel has asked for credentials
every AF_LOCAL send takes its sender's (pid, uid, euid, gid, egid, groups) along
in the in-flight table, under the same token as its rights, and the receiver
delivers them if it wants them when the message arrives (once on a stream, as
NetBSD clears UNP_WANTCRED after the first message; every datagram).  So a
socket that sets LOCAL_CREDS after a message was sent may see that message's
credentials, which NetBSD would not attach.  A program that never sets
LOCAL_CREDS pays nothing.

Not modelled: LOCAL_CONNWAIT and LOCAL_PEEREID (ENOPROTOOPT), the garbage
collector for a socket that holds a right to itself in its own queue (unp_gc):
such files stay open until nbemu ends.
"""
from __future__ import annotations

import os
import _socket
import struct
from array import array
from typing import TYPE_CHECKING, Any

from .errno import Errno
from .kern_descrip import DTYPE_KQUEUE, MAXFILES, File, closef, fd_affix, fd_alloc, fd_close, \
    fd_getfile

if TYPE_CHECKING:
    from .lwp import Lwp

SCM_RIGHTS = 0x01
SCM_CREDS = 0x10                      # struct sockcred
SOL_LOCAL = 0                         # the level of AF_LOCAL socket options
LOCAL_CREDS = 0x0004                  # sys/un.h: pass credentials to receiver
SOCKCRED_HEAD = struct.Struct("<iIIIIi")  # sc_pid sc_uid sc_euid sc_gid sc_egid sc_ngroups
MSG_CMSG_CLOEXEC = 0x800
MCLBYTES = 2048                       # sockargs: control data larger than this is EINVAL
UNP_RIGHTS_RATIO = 2                  # files in flight: at most maxfiles / 2
CMSGHDR = struct.Struct("<Iii")       # cmsg_len (socklen_t), cmsg_level, cmsg_type
_TOKEN = struct.Struct("<Q")
# host ancillary room: one token per message, a few if the host merged some
HOST_ANCBUF = _socket.CMSG_SPACE(16 * 4)


def cmsg_alignbytes(abi: Any) -> int:
    """__ALIGNBYTES of <machine/cdefs.h>, which CMSG_ALIGN uses: sizeof(long) - 1 on
    amd64, sizeof(int) - 1 on i386, sizeof(long long) - 1 on earm, and
    sizeof(__int128_t) - 1 on aarch64 (wider than its ALIGNBYTES)."""
    if abi.name == "aarch64":
        return 15
    return abi.alignbytes


def cmsg_align(abi: Any, n: int) -> int:
    a = cmsg_alignbytes(abi)
    return (n + a) & ~a


def cmsg_len(abi: Any, n: int) -> int:
    return cmsg_align(abi, CMSGHDR.size) + n


def cmsg_space(abi: Any, n: int) -> int:
    return cmsg_align(abi, CMSGHDR.size) + cmsg_align(abi, n)


class UnpState:
    """The kernel's files in flight (unp_rights): message number -> Files."""

    def __init__(self) -> None:
        self.inflight: dict[int, list[File]] = {}
        self.creds: dict[int, bytes] = {}     # message number -> struct sockcred
        self.creds_wanted = False             # some socket has set LOCAL_CREDS
        self.nextid = 1
        self.nrights = 0

    def add(self, files: list[File], cred: bytes | None = None) -> int:
        mid = self.nextid
        self.nextid += 1
        self.inflight[mid] = files
        if cred is not None:
            self.creds[mid] = cred
        return mid

    def take(self, mid: int) -> list[File]:
        files = self.inflight.pop(mid, [])
        self.nrights -= len(files)
        return files

    def take_cred(self, mid: int) -> bytes | None:
        return self.creds.pop(mid, None)

    def dispose(self, mids: list[int]) -> None:
        """unp_dispose / unp_discard_now: the files of messages nobody receives."""
        for mid in mids:
            self.creds.pop(mid, None)
            for fp in self.take(mid):
                closef(fp)


def unp_state(k: Any) -> UnpState:
    if k.unp_state is None:
        k.unp_state = UnpState()
    return k.unp_state


def unp_internalize(l: Lwp, control: bytes) -> tuple[int, list[File]]:
    """The Files named by one SCM_RIGHTS message (each gains a reference), or an
    errno: EINVAL for anything else (which also refuses forged SCM_CREDS), EBADF
    for a closed descriptor or a kqueue, EAGAIN past the in-flight limit."""
    p = l.l_proc
    abi = p.k.abi
    clen, level, type_ = CMSGHDR.unpack_from(control)
    if (type_ != SCM_RIGHTS or level != 0xFFFF or clen > len(control)
            or clen < cmsg_align(abi, CMSGHDR.size)):
        return Errno.EINVAL, []
    nfds = (clen - cmsg_align(abi, CMSGHDR.size)) // 4
    base = cmsg_align(abi, CMSGHDR.size)
    fds = struct.unpack_from(f"<{nfds}i", control, base)
    st = unp_state(p.k)
    files: list[File] = []
    for fd in fds:
        if st.nrights + len(files) + 1 > MAXFILES // UNP_RIGHTS_RATIO:
            return Errno.EAGAIN, []
        fp = fd_getfile(p, fd)
        if fp is None or fp.f_type == DTYPE_KQUEUE:
            return Errno.EBADF, []
        files.append(fp)
    for fp in files:
        fp.f_count += 1
    st.nrights += len(files)
    return 0, files


def unp_externalize(l: Lwp, files: list[File], cloexec: bool) -> tuple[int, bytes]:
    """New descriptors in the receiver for files (their in-flight references move
    to the slots): the SCM_RIGHTS message as the receiver sees it, its room being
    CMSG_SPACE. EMSGSIZE when the table is full (the files are discarded)."""
    p = l.l_proc
    abi = p.k.abi
    fds: list[int] = []
    for fp in files:
        error, fd = fd_alloc(p, 0)
        if error:
            for f in fds:
                fd_close(p, f)
            for fp2 in files[len(fds):]:
                closef(fp2)
            return Errno.EMSGSIZE, b""
        fd_affix(p, fp, fd, cloexec)
        fp.f_count -= 1               # the in-flight reference became the slot's
        fds.append(fd)
    payload = struct.pack(f"<{len(fds)}i", *fds)
    hdr = CMSGHDR.pack(cmsg_len(abi, len(payload)), 0xFFFF, SCM_RIGHTS)
    msg = hdr.ljust(cmsg_align(abi, CMSGHDR.size), b"\0") + payload
    return 0, msg.ljust(cmsg_space(abi, len(payload)), b"\0")


def unp_addsockcred(l: Lwp) -> bytes:
    """The sender's struct sockcred (SOCKCREDSIZE(ngroups) bytes)."""
    from .kern_prot import proc_cred
    p = l.l_proc
    c = proc_cred(p)
    groups = c.cr_groups
    return SOCKCRED_HEAD.pack(p.p_pid, c.cr_uid, c.cr_euid, c.cr_gid, c.cr_egid,
                              len(groups)) + struct.pack(f"<{len(groups)}I", *groups)


def sockcred_msg(abi: Any, cred: bytes) -> bytes:
    """An SCM_CREDS control message as sbcreatecontrol1 builds it (CMSG_SPACE long)."""
    hdr = CMSGHDR.pack(cmsg_len(abi, len(cred)), 0xFFFF, SCM_CREDS)
    msg = hdr.ljust(cmsg_align(abi, CMSGHDR.size), b"\0") + cred
    return msg.ljust(cmsg_space(abi, len(cred)), b"\0")


def free_rights(l: Lwp, msg: bytes) -> None:
    """Close the descriptors of an externalized message that was not copied out."""
    p = l.l_proc
    abi = p.k.abi
    clen, _, type_ = CMSGHDR.unpack_from(msg)
    if type_ != SCM_RIGHTS:
        return
    base = cmsg_align(abi, CMSGHDR.size)
    for (fd,) in struct.iter_unpack("<i", msg[base:clen]):
        if fd_getfile(p, fd) is not None:
            fd_close(p, fd)


def copyout_msg_control(l: Lwp, control_va: int, controllen: int,
                        msgs: list[bytes]) -> tuple[int, int, bool]:
    """copyout_msg_control: as many whole messages as fit (an SCM_RIGHTS message
    is never cut, another one is cut to the room left; the descriptors of the
    ones left out are closed). Returns (errno, bytes copied, truncated)."""
    vm = l.l_proc.p_vmspace
    if controllen <= 0 or not msgs:
        for m in msgs:
            free_rights(l, m)
        return 0, 0, False
    q, left, trunc, error = 0, controllen, False, 0
    align = l.l_proc.k.abi.alignbytes
    i = 0
    while i < len(msgs):
        m = msgs[i]
        if left < len(m):
            trunc = True
            if CMSGHDR.unpack_from(m)[2] == SCM_RIGHTS:
                break                 # SCM_RIGHTS: do not truncate
            m = m[:left]
        error = vm.copyout(m, control_va + q)
        if error:
            i = 0
            q = 0
            break
        i += 1
        n = len(m)
        if i < len(msgs):
            n = (n + align) & ~align
        q += n
        left -= n
        if left <= 0:
            break
    for m in msgs[i:]:
        free_rights(l, m)
    return error, q, trunc


# -- host tokens -------------------------------------------------------------------------------
def token_send_anc(mid: int) -> tuple[int, list[tuple[int, int, bytes]]]:
    """A host fd holding mid, and the host ancillary data that passes it."""
    fd = os.memfd_create("nbemu-scm-rights", os.MFD_CLOEXEC)
    os.pwrite(fd, _TOKEN.pack(mid), 0)
    return fd, [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array("i", [fd]).tobytes())]


def token_ids(anc: list[tuple[int, int, bytes]]) -> list[int]:
    """The in-flight numbers of the tokens in host ancillary data (closing them)."""
    ids = []
    for level, type_, data in anc:
        if level != _socket.SOL_SOCKET or type_ != _socket.SCM_RIGHTS:
            continue
        fds = array("i")
        fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        for fd in fds:
            try:
                raw = os.pread(fd, _TOKEN.size, 0)
                if len(raw) == _TOKEN.size:
                    ids.append(_TOKEN.unpack(raw)[0])
            except OSError:
                pass
            finally:
                os.close(fd)
    return ids
