"""COMPAT_90: the calls NetBSD 10 kept for programs built on NetBSD 7, 8 and 9
(sys/compat/common/vfs_syscalls_90.c).

NetBSD 10 appended f_mntfromlabel to struct statvfs and renumbered the
statvfs family; libc of NetBSD 7 to 9 still calls the old numbers with NetBSD
9's struct statvfs90 (opendir() of NetBSD 9 calls fstatvfs1 to learn the file
system type). Each entry does what the NetBSD 10 call does and copies out the
statvfs90 layout: same members up to f_owner, 32-bit spares, no label.
"""
from __future__ import annotations

from .cstruct import STATVFS90
from .lwp import Lwp
from .table import syscall
from .vfs_statvfs import (copyout_statvfs, do_fhstatvfs, do_sys_fstatvfs,
                          do_sys_getvfsstat, do_sys_pstatvfs)


@syscall(356, "compat_90_getvfsstat")
def compat_90_sys_getvfsstat(l: Lwp, a, retval: list[int]) -> int:
    return do_sys_getvfsstat(l, a.buf, a.bufsize, a.flags, STATVFS90, retval)


@syscall(357, "compat_90_statvfs1")
def compat_90_sys_statvfs1(l: Lwp, a, retval: list[int]) -> int:
    return copyout_statvfs(l, do_sys_pstatvfs(l, a.path, a.flags), a.buf, STATVFS90)


@syscall(358, "compat_90_fstatvfs1")
def compat_90_sys_fstatvfs1(l: Lwp, a, retval: list[int]) -> int:
    return copyout_statvfs(l, do_sys_fstatvfs(l, a.fd, a.flags), a.buf, STATVFS90)


@syscall(397, "compat_90_fhstatvfs1")
def compat_90_sys_fhstatvfs1(l: Lwp, a, retval: list[int]) -> int:
    return copyout_statvfs(l, do_fhstatvfs(l, a.fhp, a.fh_size, a.flags), a.buf, STATVFS90)
