"""vfs_lookup's held directories, at kernel level (tests/khelp.py): the Vnode
dup/close contract fork/exit will use (cwdinit, cwdfree), a p_cwd string set
from outside being resolved safely, getcwd answered from the held directory
after a rename, and no host descriptor leaked by lookups, failed ones included."""
from __future__ import annotations

import gc
import os

from nbemu.syscalls.errno import Errno
from nbemu.syscalls.lwp import Proc
from nbemu.syscalls.vfs_lookup import (cwd_vnode, cwdfree, cwdinit, getcwd_path, namei, rootvnode,
                                 vnode_path)
from tests.khelp import call, make_kernel, scratch


def _nfds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _root(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "f").write_bytes(b"x")
    os.symlink("/a/b", root / "ln")
    os.symlink("lp", root / "lp")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "onlyhost").write_bytes(b"secret")
    return root


def test_vnode_dup_close_and_fork_contract(tmp_path):
    root = _root(tmp_path)
    k, l = make_kernel(root=str(root))
    p = l.l_proc
    p.p_cwd = "/a/b"                               # as boot / the ATF launcher set it
    vp = cwd_vnode(p)
    assert vp.v_comps == [b"a", b"b"]
    assert cwd_vnode(p) is vp                      # resolved once
    child = Proc(101, p.p_pid)
    child.k = k
    before = _nfds()
    cwdinit(p, child)
    assert _nfds() == before + 1                   # the child holds its own descriptor
    cvp = cwd_vnode(child)
    assert cvp is not vp and cvp.v_fd != vp.v_fd and child.p_cwd == "/a/b"
    assert os.path.samestat(os.fstat(cvp.v_fd), os.fstat(vp.v_fd))
    cwdfree(child)
    assert _nfds() == before and cvp.v_fd == -1
    cvp.close()                                    # idempotent
    p.p_cwd = "/nowhere"                           # a string naming nothing: the root
    assert cwd_vnode(p).v_comps == []


def test_getcwd_follows_the_held_directory(tmp_path):
    root = _root(tmp_path)
    k, l = make_kernel(root=str(root))
    p = l.l_proc
    p.p_cwd = "/a/b"
    vp = cwd_vnode(p)
    os.rename(root / "a", root / "moved")
    os.symlink(str(tmp_path / "outside"), root / "a")
    assert vnode_path(k, vp) == b"/moved/b"        # not the stale /a/b (now a symlink)
    assert getcwd_path(k, rootvnode(k).v_fd) == b"/"
    os.rmdir(root / "moved" / "b")
    assert getcwd_path(k, vp.v_fd) == Errno.ENOENT


def test_lookups_leak_no_host_descriptor(tmp_path):
    root = _root(tmp_path)
    k, l = make_kernel(root=str(root))
    buf = scratch(l, 0x400000)
    vm = l.l_proc.p_vmspace
    rootvnode(k), cwd_vnode(l.l_proc)              # held for the kernel's / process's life
    gc.collect()          # earlier tests' unreachable sockets/files close their fds now, not below
    before = _nfds()
    for path in (b"/a/f", b"/ln/../f", b"/a/f/x", b"/lp", b"/nope/x", b"/a/new", b"/",
                 b"../../..", b"/ln/"):
        nd = namei(k, rootvnode(k), path, True)
        if not isinstance(nd, int):
            nd.close()
        assert vm.copyout(path + b"\0", buf) == 0
        call(l, "__stat50", buf, buf + 0x1000)
        call(l, "open", buf, 0, 0)                 # may open: closed below
    from nbemu.syscalls.kern_descrip import fd_free
    fd_free(l.l_proc)
    assert _nfds() == before
