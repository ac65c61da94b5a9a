"""The statvfs family (syscalls/vfs_statvfs.py: NetBSD 10's __statvfs190,
__fstatvfs190, __getvfsstat90, __fhstatvfs190), its COMPAT_90 entry points of
NetBSD 7-9 binaries (syscalls/compat_90.py, struct statvfs90) and mincore
(syscalls/uvm_mincore.py), driven through the syscall table without an engine
(tests/khelp.py), with a temporary directory as guest root. Every errno path."""
from __future__ import annotations

import os

import pytest

from nbemu.guest.arch.i386 import ABI as I386
from nbemu.syscalls.cstruct import STATVFS, STATVFS90
from nbemu.syscalls.errno import Errno
from nbemu.syscalls.kern_prot import proc_cred
from nbemu.syscalls.vfs_statvfs import (MNT_LOCAL, MNT_ROOTFS, FHANDLE_SIZE_MAX, FHANDLE_SIZE_MIN,
                                  root_fsidx)
from tests.khelp import err, make_kernel, ok, scratch

BAD = 0x7000_0000_0000                 # never mapped
ST_WAIT, ST_NOWAIT = 1, 2
O_RDONLY = 0
PAGE = 4096


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(b"x")
    os.symlink("dir", root / "link")
    k, l = make_kernel(root=str(root))
    buf = scratch(l, 0x40000)
    return k, l, buf, root


def _str(l, va: int, s: str) -> int:
    assert l.l_proc.p_vmspace.copyout(s.encode() + b"\0", va) == 0
    return va


def _get(l, va: int, layout=STATVFS) -> dict:
    lay = layout.on(l.l_proc.k.abi)
    data = l.l_proc.p_vmspace.copyin(va, lay.size)
    assert isinstance(data, bytes)
    names = []
    for m in layout.members:
        count = m[2] if len(m) > 2 and m[0] != "char[]" else 1
        sub = 2 if m[1] == "f_fsidx" else count
        names += [m[1]] if sub == 1 else [f"{m[1]}{i}" for i in range(sub)]
    vals = dict(zip(names, lay.unpack(data)))
    for key in ("f_fstypename", "f_mntonname", "f_mntfromname", "f_mntfromlabel"):
        if key in vals:
            vals[key] = vals[key].rstrip(b"\0")
    return vals


def _check_root(sv: dict, root) -> None:
    hv = os.statvfs(root)
    assert sv["f_mntonname"] == b"/" and sv["f_fstypename"] == b"null"
    assert sv["f_mntfromname"] == os.fsencode(os.path.realpath(root))
    assert sv["f_flag"] & (MNT_LOCAL | MNT_ROOTFS) == MNT_LOCAL | MNT_ROOTFS
    assert sv["f_bsize"] == hv.f_bsize and sv["f_frsize"] == hv.f_frsize
    assert sv["f_blocks"] == hv.f_blocks and sv["f_files"] == hv.f_files
    assert sv["f_namemax"] == hv.f_namemax
    assert sv["f_bresvd"] == sv["f_bfree"] - sv["f_bavail"]
    assert sv["f_fsid"] == sv["f_fsidx0"] & 0xFFFFFFFF and sv["f_owner"] == 0


# -- __statvfs190 ------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/dir", "/dir/file", "/link", "dir/../dir/file"])
def test_statvfs_of_paths(env, path) -> None:
    k, l, buf, root = env
    ok(l, "__statvfs190", _str(l, buf, path), buf + 0x1000, ST_WAIT)
    sv = _get(l, buf + 0x1000)
    _check_root(sv, root)
    assert sv["f_mntfromlabel"] == b""


@pytest.mark.parametrize("flags", [0, ST_WAIT, ST_NOWAIT, 3, 0x12345, -1])
def test_statvfs_takes_any_flags_as_netbsd_does(env, flags) -> None:
    """dostatvfs: ST_WAIT / 0 refresh, every other value reads the cache; no EINVAL."""
    k, l, buf, root = env
    ok(l, "__statvfs190", _str(l, buf, "/"), buf + 0x1000, flags)
    _check_root(_get(l, buf + 0x1000), root)


def test_statvfs_errnos(env) -> None:
    k, l, buf, root = env
    out = buf + 0x1000
    assert err(l, "__statvfs190", _str(l, buf, "/nowhere"), out, ST_WAIT) == Errno.ENOENT
    assert err(l, "__statvfs190", _str(l, buf, "/dir/file/x"), out, ST_WAIT) == Errno.ENOTDIR
    assert err(l, "__statvfs190", _str(l, buf, ""), out, ST_WAIT) == Errno.ENOENT
    assert err(l, "__statvfs190", _str(l, buf, "/" + "a" * 1100), out, 1) == Errno.ENAMETOOLONG
    assert err(l, "__statvfs190", BAD, out, ST_WAIT) == Errno.EFAULT
    assert err(l, "__statvfs190", _str(l, buf, "/"), BAD, ST_WAIT) == Errno.EFAULT
    # a buffer that ends inside the structure: EFAULT, nothing written
    end = buf + 0x40000 - 100
    assert err(l, "__statvfs190", _str(l, buf, "/"), end, ST_WAIT) == Errno.EFAULT


def test_statvfs_layout_ilp32(tmp_path) -> None:
    """i386: unsigned long members of 4 bytes, 64-bit counts 4-aligned."""
    k, l = make_kernel(root=str(tmp_path), abi=I386)
    buf = scratch(l, 0x10000)
    ok(l, "__statvfs190", _str(l, buf, "/"), buf + 0x1000, ST_WAIT)
    assert STATVFS.on(I386).size == 3268
    _check_root(_get(l, buf + 0x1000), tmp_path)


# -- __fstatvfs190 -----------------------------------------------------------------------
def test_fstatvfs(env) -> None:
    k, l, buf, root = env
    for path in ("/dir", "/dir/file"):
        fd = ok(l, "open", _str(l, buf, path), O_RDONLY, 0)[0]
        ok(l, "__fstatvfs190", fd, buf + 0x1000, ST_NOWAIT)
        _check_root(_get(l, buf + 0x1000), root)


def test_fstatvfs_errnos(env) -> None:
    k, l, buf, root = env
    assert err(l, "__fstatvfs190", 99, buf, ST_WAIT) == Errno.EBADF
    assert err(l, "__fstatvfs190", -1, buf, ST_WAIT) == Errno.EBADF
    ok(l, "pipe2", buf, 0)
    rfd = int.from_bytes(l.l_proc.p_vmspace.copyin(buf, 4), "little")
    assert err(l, "__fstatvfs190", rfd, buf + 0x1000, ST_WAIT) == Errno.EINVAL   # not a vnode
    fd = ok(l, "open", _str(l, buf, "/dir"), O_RDONLY, 0)[0]
    assert err(l, "__fstatvfs190", fd, BAD, ST_WAIT) == Errno.EFAULT


# -- __getvfsstat90 -----------------------------------------------------------------------
def test_getvfsstat(env) -> None:
    k, l, buf, root = env
    size = STATVFS.on(k.abi).size
    assert ok(l, "__getvfsstat90", 0, 0, ST_WAIT)[0] == 1            # NULL: count mounts
    assert ok(l, "__getvfsstat90", 0, 12345, ST_NOWAIT)[0] == 1
    out = buf + 0x1000
    l.l_proc.p_vmspace.copyout(b"\xAA" * size, out)
    assert ok(l, "__getvfsstat90", out, size - 1, ST_WAIT)[0] == 0   # no room: none written
    assert l.l_proc.p_vmspace.copyin(out, size) == b"\xAA" * size
    assert ok(l, "__getvfsstat90", out, size, ST_WAIT)[0] == 1
    _check_root(_get(l, out), root)
    assert ok(l, "__getvfsstat90", out, 10 * size, 0x99)[0] == 1
    assert err(l, "__getvfsstat90", BAD, size, ST_WAIT) == Errno.EFAULT
    assert ok(l, "__getvfsstat90", BAD, size - 1, ST_WAIT)[0] == 0   # nothing to copy


# -- __fhstatvfs190 -----------------------------------------------------------------------
def _fh(fsid: tuple[int, int], fid_len: int, size: int) -> bytes:
    head = (fsid[0] & 0xFFFFFFFF).to_bytes(4, "little") + (fsid[1] & 0xFFFFFFFF).to_bytes(
        4, "little")
    return (head + fid_len.to_bytes(2, "little") + b"\0\0").ljust(size, b"\x01")


def test_fhstatvfs_errnos(env) -> None:
    k, l, buf, root = env
    fsid = root_fsidx(k)
    vm = l.l_proc.p_vmspace
    out = buf + 0x1000
    good = _fh(fsid, 20, 28)                     # 8 + 4 + 16 bytes of fid data < 28
    vm.copyout(good, buf)
    assert err(l, "__fhstatvfs190", buf, 28, out, ST_WAIT) == Errno.EOPNOTSUPP
    vm.copyout(_fh((fsid[0] ^ 1, fsid[1]), 20, 28), buf)
    assert err(l, "__fhstatvfs190", buf, 28, out, ST_WAIT) == Errno.ESTALE
    assert err(l, "__fhstatvfs190", buf, FHANDLE_SIZE_MIN - 1, out, 1) == Errno.EINVAL
    assert err(l, "__fhstatvfs190", buf, FHANDLE_SIZE_MAX + 1, out, 1) == Errno.EINVAL
    vm.copyout(_fh(fsid, 100, 40), buf)          # fid_len disagrees with the size
    assert err(l, "__fhstatvfs190", buf, 40, out, ST_WAIT) == Errno.EINVAL
    vm.copyout(_fh(fsid, 4, 32), buf)            # an NFSv2 handle padded to 32 bytes
    assert err(l, "__fhstatvfs190", buf, 32, out, ST_WAIT) == Errno.EOPNOTSUPP
    assert err(l, "__fhstatvfs190", BAD, 28, out, ST_WAIT) == Errno.EFAULT
    p = l.l_proc
    p.p_cred = proc_cred(p).replace(cr_euid=1000)
    vm.copyout(good, buf)
    assert err(l, "__fhstatvfs190", buf, 28, out, ST_WAIT) == Errno.EPERM      # root only
    assert err(l, "compat_90_fhstatvfs1", buf, 28, out, ST_WAIT) == Errno.EPERM


# -- COMPAT_90 ------------------------------------------------------------------------------
def test_compat_90_layout_is_netbsd9s(env) -> None:
    """statvfs90: NetBSD 10's members up to f_owner, 32-bit spares, no label."""
    k, l, buf, root = env
    assert STATVFS90.on(k.abi).size == 2256 and STATVFS90.on(I386).size == 2228
    path = _str(l, buf, "/dir")
    ok(l, "compat_90_statvfs1", path, buf + 0x1000, ST_WAIT)
    ok(l, "__statvfs190", path, buf + 0x2000, ST_WAIT)
    old, new = _get(l, buf + 0x1000, STATVFS90), _get(l, buf + 0x2000)
    _check_root(old, root)
    for key in ("f_flag", "f_bsize", "f_blocks", "f_files", "f_fsidx0", "f_fsidx1",
                "f_namemax", "f_fstypename", "f_mntonname", "f_mntfromname"):
        assert old[key] == new[key], key
    assert "f_mntfromlabel" not in old
    # nothing written past the end of the NetBSD 9 structure
    size = STATVFS90.on(k.abi).size
    vm = l.l_proc.p_vmspace
    vm.copyout(b"\xAA" * 0x1000, buf + 0x3000)
    ok(l, "compat_90_statvfs1", path, buf + 0x3000, ST_NOWAIT)
    assert vm.copyin(buf + 0x3000 + size, 16) == b"\xAA" * 16


def test_compat_90_fstatvfs1_and_getvfsstat(env) -> None:
    k, l, buf, root = env
    size = STATVFS90.on(k.abi).size
    fd = ok(l, "open", _str(l, buf, "/dir"), O_RDONLY, 0)[0]
    ok(l, "compat_90_fstatvfs1", fd, buf + 0x1000, ST_WAIT)
    _check_root(_get(l, buf + 0x1000, STATVFS90), root)
    assert ok(l, "compat_90_getvfsstat", 0, 0, ST_WAIT)[0] == 1
    assert ok(l, "compat_90_getvfsstat", buf + 0x2000, size, ST_WAIT)[0] == 1
    _check_root(_get(l, buf + 0x2000, STATVFS90), root)
    assert ok(l, "compat_90_getvfsstat", buf + 0x2000, size - 1, ST_WAIT)[0] == 0
    # NetBSD 10's structure is bigger: a buffer of one statvfs90 holds no statvfs
    assert ok(l, "__getvfsstat90", buf + 0x2000, size, ST_WAIT)[0] == 0


def test_compat_90_errnos(env) -> None:
    k, l, buf, root = env
    out = buf + 0x1000
    assert err(l, "compat_90_statvfs1", _str(l, buf, "/nope"), out, 1) == Errno.ENOENT
    assert err(l, "compat_90_statvfs1", BAD, out, ST_WAIT) == Errno.EFAULT
    assert err(l, "compat_90_statvfs1", _str(l, buf, "/"), BAD, ST_WAIT) == Errno.EFAULT
    assert err(l, "compat_90_fstatvfs1", 77, out, ST_WAIT) == Errno.EBADF
    ok(l, "pipe2", buf, 0)
    rfd = int.from_bytes(l.l_proc.p_vmspace.copyin(buf, 4), "little")
    assert err(l, "compat_90_fstatvfs1", rfd, out, ST_WAIT) == Errno.EINVAL
    assert err(l, "compat_90_getvfsstat", BAD, 4096, ST_WAIT) == Errno.EFAULT
    vm = l.l_proc.p_vmspace
    fsid = root_fsidx(k)
    vm.copyout(_fh(fsid, 20, 28), buf)
    assert err(l, "compat_90_fhstatvfs1", buf, 28, out, ST_WAIT) == Errno.EOPNOTSUPP
    assert err(l, "compat_90_fhstatvfs1", buf, 10, out, ST_WAIT) == Errno.EINVAL


# -- mincore ---------------------------------------------------------------------------------
def test_mincore_residency(env) -> None:
    """Untouched anonymous pages are not resident, touched ones are."""
    k, l, buf, root = env
    vm = l.l_proc.p_vmspace
    area = scratch(l, 8 * PAGE)
    vec = buf + 0x8000
    ok(l, "mincore", area, 8 * PAGE, vec)
    assert vm.copyin(vec, 8) == bytes(8)
    vm.copyout(b"x", area + 2 * PAGE + 17)
    vm.copyout(b"y", area + 7 * PAGE)
    ok(l, "mincore", area, 8 * PAGE, vec)
    assert vm.copyin(vec, 8) == bytes([0, 0, 1, 0, 0, 0, 0, 1])
    # a length that is no page multiple covers the last partial page
    vm.copyout(b"\xEE" * 4, vec)
    ok(l, "mincore", area + 2 * PAGE, PAGE + 1, vec)
    assert vm.copyin(vec, 4) == bytes([1, 0]) + b"\xEE\xEE"


def test_mincore_across_entries(env) -> None:
    """A range over two adjacent mappings with different protections is one range."""
    k, l, buf, root = env
    vm = l.l_proc.p_vmspace
    area = scratch(l, 4 * PAGE)
    assert vm.protect(area + 2 * PAGE, area + 4 * PAGE, 1) == 0
    vm.copyout(b"z", area + PAGE)
    ok(l, "mincore", area, 4 * PAGE, buf + 0x8000)
    assert vm.copyin(buf + 0x8000, 4) == bytes([0, 1, 0, 0])


def test_mincore_errnos(env) -> None:
    k, l, buf, root = env
    vm = l.l_proc.p_vmspace
    area = scratch(l, 4 * PAGE)
    vec = buf + 0x8000
    assert err(l, "mincore", area + 1, PAGE, vec) == Errno.EINVAL       # misaligned
    assert err(l, "mincore", area, 0, vec) == Errno.EINVAL              # empty range
    assert err(l, "mincore", area, -PAGE, vec) == Errno.EINVAL          # wraps
    assert err(l, "mincore", area, PAGE, BAD) == Errno.EFAULT           # vector unmapped
    ro = scratch(l, PAGE, prot=1)
    assert err(l, "mincore", area, PAGE, ro) == Errno.EFAULT            # vector read-only
    assert err(l, "mincore", BAD, PAGE, vec) == Errno.ENOMEM            # range unmapped
    assert err(l, "mincore", area, 8 * PAGE, vec) == Errno.ENOMEM       # runs past the end
    vm.unmap(area + PAGE, area + 2 * PAGE)
    assert err(l, "mincore", area, 3 * PAGE, vec) == Errno.ENOMEM       # a hole inside
    ok(l, "mincore", area + 2 * PAGE, 2 * PAGE, vec)


def test_mincore_ilp32(tmp_path) -> None:
    k, l = make_kernel(root=str(tmp_path), abi=I386)
    area = scratch(l, 4 * PAGE)
    vec = scratch(l, PAGE)
    l.l_proc.p_vmspace.copyout(b"q", area + 3 * PAGE)
    ok(l, "mincore", area, 4 * PAGE, vec)
    assert l.l_proc.p_vmspace.copyin(vec, 4) == bytes([0, 0, 0, 1])
    assert err(l, "mincore", area, 0xFFFFF000, vec) == Errno.EINVAL     # wraps at 4 GiB
