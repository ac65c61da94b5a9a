"""NetBSD error numbers, and their translation from host (Linux) errnos.

Values are those of NetBSD's ``sys/sys/errno.h`` (rev. 1.42, as shipped for
NetBSD 10.1 in the ``ziglang`` package).  They agree with Linux only up to
ERANGE (34); from there on the BSD numbering applies: EAGAIN is 35,
EINPROGRESS 36, ETIMEDOUT 60, ENOSYS 78, ...

Guest-visible errnos (:class:`Errno`) are kept apart from the kernel-internal
pseudo-errors (:class:`KernErrno`, ``#ifdef _KERNEL`` in errno.h), which a
handler may return to steer the return to user mode but which never reach the
guest as such.

Host errnos cross into the guest at exactly one place: :func:`from_host`, for a
handler that forwards a host ``OSError``.
"""

from __future__ import annotations

import errno as _host_errno
from enum import IntEnum


class Errno(IntEnum):
    """NetBSD errno values (sys/errno.h)."""

    EPERM = 1  # Operation not permitted
    ENOENT = 2  # No such file or directory
    ESRCH = 3  # No such process
    EINTR = 4  # Interrupted system call
    EIO = 5  # Input/output error
    ENXIO = 6  # Device not configured
    E2BIG = 7  # Argument list too long
    ENOEXEC = 8  # Exec format error
    EBADF = 9  # Bad file descriptor
    ECHILD = 10  # No child processes
    EDEADLK = 11  # Resource deadlock avoided (11 was EAGAIN)
    ENOMEM = 12  # Cannot allocate memory
    EACCES = 13  # Permission denied
    EFAULT = 14  # Bad address
    ENOTBLK = 15  # Block device required
    EBUSY = 16  # Device busy
    EEXIST = 17  # File exists
    EXDEV = 18  # Cross-device link
    ENODEV = 19  # Operation not supported by device
    ENOTDIR = 20  # Not a directory
    EISDIR = 21  # Is a directory
    EINVAL = 22  # Invalid argument
    ENFILE = 23  # Too many open files in system
    EMFILE = 24  # Too many open files
    ENOTTY = 25  # Inappropriate ioctl for device
    ETXTBSY = 26  # Text file busy
    EFBIG = 27  # File too large
    ENOSPC = 28  # No space left on device
    ESPIPE = 29  # Illegal seek
    EROFS = 30  # Read-only file system
    EMLINK = 31  # Too many links
    EPIPE = 32  # Broken pipe

    # math software
    EDOM = 33  # Numerical argument out of domain
    ERANGE = 34  # Result too large or too small

    # non-blocking and interrupt i/o
    EAGAIN = 35  # Resource temporarily unavailable
    EWOULDBLOCK = 35  # Operation would block (alias of EAGAIN)
    EINPROGRESS = 36  # Operation now in progress
    EALREADY = 37  # Operation already in progress

    # ipc/network software -- argument errors
    ENOTSOCK = 38  # Socket operation on non-socket
    EDESTADDRREQ = 39  # Destination address required
    EMSGSIZE = 40  # Message too long
    EPROTOTYPE = 41  # Protocol wrong type for socket
    ENOPROTOOPT = 42  # Protocol option not available
    EPROTONOSUPPORT = 43  # Protocol not supported
    ESOCKTNOSUPPORT = 44  # Socket type not supported
    EOPNOTSUPP = 45  # Operation not supported
    EPFNOSUPPORT = 46  # Protocol family not supported
    EAFNOSUPPORT = 47  # Address family not supported by protocol family
    EADDRINUSE = 48  # Address already in use
    EADDRNOTAVAIL = 49  # Can't assign requested address

    # ipc/network software -- operational errors
    ENETDOWN = 50  # Network is down
    ENETUNREACH = 51  # Network is unreachable
    ENETRESET = 52  # Network dropped connection on reset
    ECONNABORTED = 53  # Software caused connection abort
    ECONNRESET = 54  # Connection reset by peer
    ENOBUFS = 55  # No buffer space available
    EISCONN = 56  # Socket is already connected
    ENOTCONN = 57  # Socket is not connected
    ESHUTDOWN = 58  # Can't send after socket shutdown
    ETOOMANYREFS = 59  # Too many references: can't splice
    ETIMEDOUT = 60  # Operation timed out
    ECONNREFUSED = 61  # Connection refused

    ELOOP = 62  # Too many levels of symbolic links
    ENAMETOOLONG = 63  # File name too long

    # should be rearranged
    EHOSTDOWN = 64  # Host is down
    EHOSTUNREACH = 65  # No route to host
    ENOTEMPTY = 66  # Directory not empty

    # quotas & mush
    EPROCLIM = 67  # Too many processes
    EUSERS = 68  # Too many users
    EDQUOT = 69  # Disc quota exceeded

    # Network File System
    ESTALE = 70  # Stale NFS file handle
    EREMOTE = 71  # Too many levels of remote in path
    EBADRPC = 72  # RPC struct is bad
    ERPCMISMATCH = 73  # RPC version wrong
    EPROGUNAVAIL = 74  # RPC prog. not avail
    EPROGMISMATCH = 75  # Program version wrong
    EPROCUNAVAIL = 76  # Bad procedure for program

    ENOLCK = 77  # No locks available
    ENOSYS = 78  # Function not implemented

    EFTYPE = 79  # Inappropriate file type or format
    EAUTH = 80  # Authentication error
    ENEEDAUTH = 81  # Need authenticator

    # SystemV IPC
    EIDRM = 82  # Identifier removed
    ENOMSG = 83  # No message of desired type
    EOVERFLOW = 84  # Value too large to be stored in data type

    # Wide/multibyte-character handling, ISO/IEC 9899/AMD1:1995
    EILSEQ = 85  # Illegal byte sequence

    # From IEEE Std 1003.1-2001
    ENOTSUP = 86  # Not supported
    ECANCELED = 87  # Operation canceled
    EBADMSG = 88  # Bad or Corrupt message

    # XSI STREAMS option errors
    ENODATA = 89  # No message available
    ENOSR = 90  # No STREAM resources
    ENOSTR = 91  # Not a STREAM
    ETIME = 92  # STREAM ioctl timeout

    # File system extended attribute errors
    ENOATTR = 93  # Attribute not found

    # Realtime, XSI STREAMS option errors
    EMULTIHOP = 94  # Multihop attempted
    ENOLINK = 95  # Link has been severed
    EPROTO = 96  # Protocol error

    # Robust mutexes
    EOWNERDEAD = 97  # Previous owner died
    ENOTRECOVERABLE = 98  # State not recoverable


#: Largest errno (``ELAST`` in errno.h).
ELAST = 98


class KernErrno(IntEnum):
    """Pseudo-errors returned inside the kernel (errno.h, ``#ifdef _KERNEL``).

    A handler returning one of these changes how the syscall returns to user
    mode; none of them is ever stored in the guest's errno.
    """

    EJUSTRETURN = -2  # don't modify regs, just return
    ERESTART = -3  # restart syscall
    EPASSTHROUGH = -4  # ioctl not handled by this layer
    EDUPFD = -5  # Dup given fd
    EMOVEFD = -6  # Move given fd


def errno_name(n: int) -> str:
    """NetBSD's name for errno *n* ("EFAULT", "ERESTART"), or ``str(n)`` if unknown."""
    for enum in (Errno, KernErrno):
        try:
            return enum(n).name
        except ValueError:
            pass
    return str(n)


# Host errnos whose NetBSD counterpart is not the errno of the same name.
_HOST_OVERRIDES: dict[str, Errno] = {
    # Linux's getxattr & co. report a missing attribute as ENODATA (glibc defines
    # ENOATTR as ENODATA); NetBSD's extattr calls report ENOATTR.
    "ENODATA": Errno.ENOATTR,
}


def _build_linux_to_netbsd() -> dict[int, int]:
    """Host errno value -> NetBSD errno value, matched by name.

    Linux gives some numbers two names (EAGAIN/EWOULDBLOCK, EOPNOTSUPP/ENOTSUP,
    EDEADLK/EDEADLOCK); the first NetBSD name in errno.h order wins, so Linux 95
    (EOPNOTSUPP and ENOTSUP) becomes NetBSD EOPNOTSUPP (45), not ENOTSUP (86).
    """
    table: dict[int, int] = {}
    for name, value in Errno.__members__.items():  # includes the EWOULDBLOCK alias
        host = getattr(_host_errno, name, None)
        if host is None or host in table:
            continue
        table[host] = _HOST_OVERRIDES.get(name, value)
    return table


#: Host (Linux) errno value -> NetBSD errno value.
LINUX_TO_NETBSD: dict[int, int] = _build_linux_to_netbsd()


def from_host(err: int) -> int:
    """Translate a host errno (``OSError.errno``) to NetBSD's; unknown ones become EIO."""
    return LINUX_TO_NETBSD.get(err, Errno.EIO)
