"""--bind HOST[:GUEST] (nbemu/syscalls/vfs_mount.py) at kernel level (tests/khelp.py):
a bound host folder is a mount in the guest root, and every way out of it gets what
a chroot with a mount gives on NetBSD: ".." at the bind's top is the mount point's
parent (never the host folder's parent), absolute symbolic links inside the bind
restart at the guest root, relative ones climb through the mount, getcwd names the
guest path, the mount point is busy; missing mount points and their missing
ancestors are empty directories that leave nothing on the host."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbemu.syscalls.errno import Errno
from nbemu.syscalls.vfs_lookup import cwd_vnode, getcwd_path, namei, rootvnode, vnode_path
from nbemu.syscalls.vfs_mount import MountError, mount_binds, parse_bind
from tests.khelp import call, make_kernel, scratch


@pytest.fixture
def world(tmp_path: Path):
    """tmp/root (the guest root), tmp/host/data (bound), tmp/host/secret (beside it)."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "motd").write_bytes(b"guest motd")
    (root / "mnt").mkdir()
    (root / "mnt" / "hidden").write_bytes(b"covered by the mount")
    os.symlink("/etc", root / "etclink")
    host = tmp_path / "host"
    data = host / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    (data / "file").write_bytes(b"bound file")
    (host / "secret").write_bytes(b"TOPSECRET")
    (host / "etc").mkdir()
    (host / "etc" / "motd").write_bytes(b"host motd")
    os.symlink("/etc/motd", data / "abs")                 # absolute: the guest's /etc
    os.symlink("../../../../etc/motd", data / "sub" / "rel")   # climbs out of the bind
    os.symlink("../secret", data / "up")                  # host sibling of the bind
    os.symlink("/mnt/../mnt/sub/deeper", data / "loopy")
    return tmp_path, root, data


def _read(k, path: bytes) -> bytes | int:
    nd = namei(k, rootvnode(k), path, True)
    if isinstance(nd, int):
        return nd
    with nd:
        if not nd.ni_exists:
            return Errno.ENOENT
        fd = os.open(nd.ni_proc, os.O_RDONLY)
        try:
            return os.read(fd, 100)
        finally:
            os.close(fd)


def _ident(k, path: bytes) -> tuple[int, int] | int:
    nd = namei(k, rootvnode(k), path, True)
    if isinstance(nd, int):
        return nd
    with nd:
        st = nd.ni_st
        return (st.st_dev, st.st_ino) if st is not None else Errno.ENOENT


def _kernel(root: Path, binds: list[tuple[str, str]]):
    k, l = make_kernel(root=str(root))
    mount_binds(k, binds)
    return k, l


def test_bind_shows_the_host_folder_and_hides_the_covered_one(world) -> None:
    _, root, data = world
    k, _ = _kernel(root, [(str(data), "/mnt")])
    assert _read(k, b"/mnt/file") == b"bound file"
    assert _read(k, b"/mnt/hidden") == Errno.ENOENT
    assert _read(k, b"/mnt/sub/../file") == b"bound file"


def test_dotdot_at_the_top_of_a_bind_is_the_mount_points_parent(world) -> None:
    _, root, data = world
    k, _ = _kernel(root, [(str(data), "/mnt")])
    rid = _ident(k, b"/")
    for p in (b"/mnt/..", b"/mnt/../..", b"/mnt/sub/../..", b"/mnt/sub/deeper/../../../..",
              b"/mnt/./../mnt/.."):
        assert _ident(k, p) == rid, p
    assert _read(k, b"/mnt/../secret") == Errno.ENOENT     # not the host's sibling
    assert _read(k, b"/mnt/../etc/motd") == b"guest motd"


def test_symlinks_inside_a_bind_stay_in_the_guest(world) -> None:
    _, root, data = world
    k, _ = _kernel(root, [(str(data), "/mnt")])
    assert _read(k, b"/mnt/abs") == b"guest motd"           # / is the guest root
    assert _read(k, b"/mnt/sub/rel") == b"guest motd"       # .. stops at the guest root
    assert _read(k, b"/mnt/up") == Errno.ENOENT             # ../secret: the guest's /secret
    assert _ident(k, b"/mnt/loopy") == _ident(k, b"/mnt/sub/deeper")


def test_relative_lookups_and_getcwd_inside_a_bind(world) -> None:
    _, root, data = world
    k, l = _kernel(root, [(str(data), "/mnt")])
    p = l.l_proc
    p.p_cwd = "/mnt/sub"
    vp = cwd_vnode(p)
    assert os.path.samestat(os.fstat(vp.v_fd), os.stat(data / "sub"))
    assert getcwd_path(k, vp.v_fd) == b"/mnt/sub"
    assert vnode_path(k, vp) == b"/mnt/sub"
    nd = namei(k, vp, b"../../etc/motd", True)
    assert not isinstance(nd, int) and nd.ni_guest == b"/etc/motd"
    nd.close()
    nd = namei(k, vp, b"../../../../..", True)
    assert not isinstance(nd, int) and nd.is_root
    nd.close()
    # a held directory whose path was forgotten still climbs out through the mount
    vp.v_comps = [b"stale"]
    nd = namei(k, vp, b"../..", True)
    assert not isinstance(nd, int) and nd.ni_st is not None
    assert os.path.samestat(nd.ni_st, os.stat(root))
    nd.close()


def test_bind_at_a_missing_path_makes_empty_virtual_folders(world) -> None:
    tmp, root, data = world
    before = sorted(os.listdir(root))
    k, _ = _kernel(root, [(str(data), "/a/b/c")])
    assert _read(k, b"/a/b/c/file") == b"bound file"
    assert _ident(k, b"/a/b/c/../..") == _ident(k, b"/a")
    assert _ident(k, b"/a/b/c/../../..") == _ident(k, b"/")
    assert _ident(k, b"/a/b/c/../../../a/b/c") == _ident(k, b"/a/b/c")
    nd = namei(k, rootvnode(k), b"/a/b/c/sub", True)
    assert not isinstance(nd, int)
    assert getcwd_path(k, nd.ni_vp) == b"/a/b/c/sub"
    nd.close()
    nd = namei(k, rootvnode(k), b"/a/b", True)
    assert not isinstance(nd, int)
    assert getcwd_path(k, nd.ni_vp) == b"/a/b"
    assert os.listdir(nd.ni_proc) == []                    # empty, and nothing can be made
    with pytest.raises(FileNotFoundError):
        os.mkdir("new", dir_fd=nd.ni_vp)
    nd.close()
    assert sorted(os.listdir(root)) == before              # nothing made in the root


def test_mount_point_is_busy_and_writes_land_in_the_host_folder(world) -> None:
    _, root, data = world
    k, l = _kernel(root, [(str(data), "/mnt")])
    buf = scratch(l, 0x400000)
    vm = l.l_proc.p_vmspace
    vm.copyout(b"/mnt\0", buf)
    assert call(l, "rmdir", buf)[0] == Errno.EBUSY
    vm.copyout(b"/mnt/made\0", buf)
    assert call(l, "mkdir", buf, 0o755)[0] == 0
    assert (data / "made").is_dir() and not (root / "mnt" / "made").exists()


def test_nested_binds_and_same_path_binds(world) -> None:
    tmp, root, data = world
    other = tmp / "other"
    other.mkdir()
    (other / "x").write_bytes(b"other x")
    k, _ = _kernel(root, [(str(other), "/mnt/sub/deeper/o"), (str(data), "/mnt")])
    assert _read(k, b"/mnt/sub/deeper/o/x") == b"other x"
    assert _ident(k, b"/mnt/sub/deeper/o/..") == _ident(k, b"/mnt/sub/deeper")
    k2, _ = _kernel(root, [(str(other), str(other))])         # HOST at its own path
    assert _read(k2, os.fsencode(other / "x")) == b"other x"
    assert _ident(k2, os.fsencode(other) + b"/../../../../../..") == _ident(k2, b"/")


def test_bad_binds_are_refused(world) -> None:
    tmp, root, data = world
    with pytest.raises(MountError):
        _kernel(root, [(str(tmp / "nope"), "/mnt")])
    with pytest.raises(MountError):
        _kernel(root, [(str(data), "/")])
    with pytest.raises(MountError):
        _kernel(root, [(str(data), "/etc/motd/x")])             # not a directory
    with pytest.raises(MountError):
        parse_bind(":/x")
    assert parse_bind("/a") == ("/a", "/a") and parse_bind("/a:/b") == ("/a", "/b")


def test_nbemu_bind_option(tmp_path: Path) -> None:
    """`nbemu --bind`: the guest starts in a bound folder by its guest path (getcwd
    of a real guest, crossing the mount upwards); a bad bind is one line, exit 2."""
    import subprocess
    import sys

    from fixtures.build import build_c
    from tests.guest import REPO
    prog = str(build_c("pwd"))
    root, host = tmp_path / "root", tmp_path / "host"
    root.mkdir()
    (host / "sub").mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(REPO))

    def nbemu(*opts: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--root", str(root),
                               *opts, prog], cwd=cwd, capture_output=True, text=True,
                              timeout=120, env=env)

    r = nbemu("--bind", f"{host}:/work/here", cwd=host / "sub")
    assert r.returncode == 0 and r.stdout.strip() == "/work/here/sub", r.stderr
    r = nbemu("--bind", str(host), cwd=host / "sub")                  # GUEST = HOST
    assert r.returncode == 0 and r.stdout.strip() == f"{os.path.realpath(host)}/sub", r.stderr
    assert os.listdir(root) == []                                     # nothing made in the root
    for bad in (f"{tmp_path}/nope:/mnt", ":/mnt", f"{host}:/"):
        r = nbemu("--bind", bad)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, (bad, r.stderr)
        assert r.stderr.startswith("nbemu: --bind") and "Traceback" not in r.stderr
