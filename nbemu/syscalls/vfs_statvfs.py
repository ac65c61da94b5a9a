"""File-system statistics: the statvfs family of NetBSD 10 (vfs_syscalls.c:
dostatvfs, do_sys_pstatvfs, do_sys_fstatvfs, do_sys_getvfsstat, do_fhstatvfs).

The guest sees one mount: its root "/", a loopback of the host directory
k.root, which is what NetBSD's null file system is (f_fstypename "null",
f_mntfromname the directory it shows). The figures (blocks, files, sizes, the
read-only / nosuid / nodev / noexec flags) are the host's os.statvfs of the
object asked about, so a guest sees the space it really has.

dostatvfs's `flags`: ST_WAIT (or 0) refreshes the mount's statistics, anything
else (ST_NOWAIT, ST_LAZY, any other value) returns the cached ones; NetBSD
never refuses a value. nbemu keeps no cache: every call reads the host, which
is what a cache just refreshed would say.

compat_90.py serves NetBSD 9's numbers with the same functions and the
statvfs90 layout (the `layout` arguments below).
"""
from __future__ import annotations

import os
from collections import namedtuple
from typing import Any

from .cstruct import STATVFS, CStruct
from .errno import Errno, from_host
from .kern_descrip import DTYPE_VNODE, fd_getfile, netbsd_makedev
from .lwp import Lwp
from .table import syscall
from .vfs_lookup import AT_FDCWD, namei_at, root_host

# sys/fstypes.h: dostatvfs's flags (ST_WAIT == MNT_WAIT, ...) and the mount flags
MNT_WAIT, MNT_NOWAIT, MNT_LAZY = 1, 2, 3
MNT_RDONLY, MNT_SYNCHRONOUS, MNT_NOEXEC, MNT_NOSUID, MNT_NODEV = 0x1, 0x2, 0x4, 0x8, 0x10
MNT_NOATIME = 0x04000000
MNT_LOCAL, MNT_ROOTFS = 0x1000, 0x4000
# sys/fstypes.h: file handles (do_fhstatvfs)
FHANDLE_SIZE_MIN, FHANDLE_SIZE_MAX = 28, 1024
NFSX_V2FH = 32
_FH_FID_OFF = 8                       # offsetof(fhandle_t, fh_fid): after fsid_t

MOUNT_NULL = b"null"
VFS_MNAMELEN = 1024

# host statvfs f_flag bits (Linux ST_*) -> NetBSD mount flags (MNT_VISFLAGMASK ones)
_HOST_FLAGS = [(getattr(os, name, 0), nb) for name, nb in (
    ("ST_RDONLY", MNT_RDONLY), ("ST_NOSUID", MNT_NOSUID), ("ST_NODEV", MNT_NODEV),
    ("ST_NOEXEC", MNT_NOEXEC), ("ST_SYNCHRONOUS", MNT_SYNCHRONOUS),
    ("ST_NOATIME", MNT_NOATIME))]


# (collections.namedtuple: see kern_descrip.NbStat)
class Statvfs(namedtuple("Statvfs", (
        "f_flag", "f_bsize", "f_frsize", "f_iosize", "f_blocks", "f_bfree", "f_bavail",
        "f_bresvd", "f_files", "f_ffree", "f_favail", "f_fresvd", "f_fsidx", "f_fsid",
        "f_namemax", "f_owner", "f_fstypename", "f_mntonname", "f_mntfromname"))):
    """struct statvfs, field for field (the spares are always zero): ints, but
    f_fsidx (a pair of ints) and the three names (bytes)."""
    __slots__ = ()

    def pack(self, abi: Any, layout: CStruct = STATVFS) -> bytes:
        """The structure on abi's data model; layout STATVFS90 for NetBSD 9's
        (no f_mntfromlabel, 32-bit spares)."""
        lay = layout.on(abi)
        ulong = (1 << (8 * lay.word_size)) - 1
        vals: list[Any] = [self.f_flag & ulong, self.f_bsize & ulong, self.f_frsize & ulong,
                           self.f_iosize & ulong, self.f_blocks, self.f_bfree, self.f_bavail,
                           self.f_bresvd, self.f_files, self.f_ffree, self.f_favail,
                           self.f_fresvd, 0, 0, 0, 0, *self.f_fsidx, self.f_fsid & ulong,
                           self.f_namemax & ulong, self.f_owner, 0, 0, 0, 0,
                           self.f_fstypename, self.f_mntonname, self.f_mntfromname]
        if layout.members[-1][1] == "f_mntfromlabel":
            vals.append(b"")                  # no disk label here
        return lay.pack(*vals)


def makefstype(name: bytes) -> int:
    """vfs_subr.c's makefstype: the file-system type number in f_fsidx[1]."""
    rv = 0
    for c in name:
        rv = ((rv << 2) ^ c) & 0xFFFFFFFF
    return rv - (1 << 32) if rv & 0x80000000 else rv


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def root_fsidx(k) -> tuple[int, int]:
    """f_fsidx of the guest's one mount: the host root's device, and the type."""
    st = os.stat(root_host(k) or b"/")
    return (_int32(netbsd_makedev(os.major(st.st_dev), os.minor(st.st_dev))),
            makefstype(MOUNT_NULL))


def statvfs_from_host(k, hv: os.statvfs_result) -> Statvfs:
    """VFS_STATVFS of the guest's root mount, with the host's figures for the
    object that was asked about."""
    flag = MNT_LOCAL | MNT_ROOTFS
    for host_bit, nb in _HOST_FLAGS:
        if host_bit and hv.f_flag & host_bit:
            flag |= nb
    fsidx = root_fsidx(k)
    return Statvfs(
        f_flag=flag, f_bsize=hv.f_bsize, f_frsize=hv.f_frsize or hv.f_bsize,
        f_iosize=hv.f_bsize, f_blocks=hv.f_blocks, f_bfree=hv.f_bfree,
        f_bavail=hv.f_bavail, f_bresvd=max(0, hv.f_bfree - hv.f_bavail),
        f_files=hv.f_files, f_ffree=hv.f_ffree, f_favail=hv.f_favail,
        f_fresvd=max(0, hv.f_ffree - hv.f_favail), f_fsidx=fsidx,
        f_fsid=fsidx[0] & 0xFFFFFFFF, f_namemax=hv.f_namemax, f_owner=0,
        f_fstypename=MOUNT_NULL, f_mntonname=b"/",
        f_mntfromname=(root_host(k) or b"/")[:VFS_MNAMELEN - 1])


def _host_statvfs(k, target: bytes | int) -> Statvfs | int:
    try:
        hv = os.statvfs(target) if isinstance(target, bytes) else os.fstatvfs(target)
    except OSError as e:
        return from_host(e.errno or Errno.EIO)
    return statvfs_from_host(k, hv)


def do_sys_pstatvfs(l: Lwp, path_va: int, flags: int) -> Statvfs | int:
    """The statistics of the mount holding the object at a guest path (followed)."""
    nd = namei_at(l, AT_FDCWD, path_va, True)
    if isinstance(nd, int):
        return nd
    with nd:
        if not nd.ni_exists:
            return Errno.ENOENT
        return _host_statvfs(l.l_proc.k, nd.ni_vp)      # fstatvfs of the held object


def do_sys_fstatvfs(l: Lwp, fd: int, flags: int) -> Statvfs | int:
    """The same by descriptor: EBADF if fd is not open, EINVAL if it is no
    vnode (a pipe, socket, kqueue: fd_getvnode)."""
    k = l.l_proc.k
    fp = fd_getfile(l.l_proc, fd)
    if fp is None:
        return Errno.EBADF
    if fp.f_type != DTYPE_VNODE:
        return Errno.EINVAL
    hostfd = fp.hostfd
    return _host_statvfs(k, hostfd if isinstance(hostfd, int) else (root_host(k) or b"/"))


def do_sys_getvfsstat(l: Lwp, buf: int, bufsize: int, flags: int, layout: CStruct,
                      retval: list[int]) -> int:
    """Every mount's statistics into buf (at most bufsize bytes of `layout`
    entries); buf NULL: just count them. The result is the number of entries
    written, or the number of mounts when buf is NULL."""
    k = l.l_proc.k
    size = layout.on(k.abi).size
    maxcount = bufsize // size
    count = 0
    sv = _host_statvfs(k, root_host(k) or b"/")     # the one mount: "/"
    if not isinstance(sv, int):                      # a mount that fails is left out
        if buf and count < maxcount:
            error = l.l_proc.p_vmspace.copyout(sv.pack(k.abi, layout), buf)
            if error:
                return error
        count += 1
    retval[0] = maxcount if buf and count > maxcount else count
    return 0


def do_fhstatvfs(l: Lwp, fhp: int, fh_size: int, flags: int) -> Statvfs | int:
    """By file handle: root only (kauth's KAUTH_SYSTEM_FILEHANDLE: EPERM), a
    handle of FHANDLE_SIZE_MIN..MAX bytes whose fid_len agrees with its size
    (EINVAL), copied in (EFAULT); a file-system id that is not the guest's
    mount is ESTALE, and the null mount cannot turn a handle into a vnode
    (EOPNOTSUPP, as vfs_fhtovp says of a file system without vfs_fhtovp)."""
    from .kern_prot import proc_cred
    if proc_cred(l.l_proc).cr_euid != 0:
        return Errno.EPERM
    if fh_size > FHANDLE_SIZE_MAX or fh_size < FHANDLE_SIZE_MIN:
        return Errno.EINVAL
    data = l.l_proc.p_vmspace.copyin(fhp, fh_size)
    if isinstance(data, int):
        return data
    fid_len = int.from_bytes(data[_FH_FID_OFF:_FH_FID_OFF + 2], "little")
    need = max(FHANDLE_SIZE_MIN, _FH_FID_OFF + fid_len)
    if need != fh_size and not (fh_size == NFSX_V2FH and need < fh_size):
        return Errno.EINVAL
    fsid = (int.from_bytes(data[0:4], "little", signed=True),
            int.from_bytes(data[4:8], "little", signed=True))
    if fsid != root_fsidx(l.l_proc.k):
        return Errno.ESTALE
    return Errno.EOPNOTSUPP


def copyout_statvfs(l: Lwp, sv: Statvfs | int, buf: int, layout: CStruct) -> int:
    if isinstance(sv, int):
        return sv
    return l.l_proc.p_vmspace.copyout(sv.pack(l.l_proc.k.abi, layout), buf)


# -- NetBSD 10's entry points ----------------------------------------------------------
@syscall(484, "__statvfs190")
def sys___statvfs190(l: Lwp, a, retval: list[int]) -> int:
    return copyout_statvfs(l, do_sys_pstatvfs(l, a.path, a.flags), a.buf, STATVFS)


@syscall(485, "__fstatvfs190")
def sys___fstatvfs190(l: Lwp, a, retval: list[int]) -> int:
    return copyout_statvfs(l, do_sys_fstatvfs(l, a.fd, a.flags), a.buf, STATVFS)


@syscall(483, "__getvfsstat90")
def sys___getvfsstat90(l: Lwp, a, retval: list[int]) -> int:
    return do_sys_getvfsstat(l, a.buf, a.bufsize, a.flags, STATVFS, retval)


@syscall(486, "__fhstatvfs190")
def sys___fhstatvfs190(l: Lwp, a, retval: list[int]) -> int:
    return copyout_statvfs(l, do_fhstatvfs(l, a.fhp, a.fh_size, a.flags), a.buf, STATVFS)
