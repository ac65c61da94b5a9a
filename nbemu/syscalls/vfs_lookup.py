"""Path name lookup (NetBSD's vfs_lookup.c, namei) inside the guest root.

The guest's file system is a host directory, k.root. Nothing here hands the host
a path string that it would walk again: every lookup starts from a directory HELD
OPEN on the host (an O_PATH descriptor) and each component is opened from the
previous one with openat(dirfd, name, O_PATH|O_NOFOLLOW). So a directory renamed
away and replaced by a symlink after the guest entered it (issue 16) cannot
redirect a lookup: the held descriptor is the directory that was entered.

- ".." at the guest root stays at the root (the root is recognised by its
  device and inode); elsewhere ".." is the host's, from the held directory;
- a symbolic link is read with readlink(dirfd, name) and its target walked by
  the same loop: an absolute target restarts at the root descriptor, a relative
  one continues from the link's directory; the host never follows a link;
- at most MAXSYMLINKS links per lookup (ELOOP), paths of at most MAXPATHLEN
  bytes including the NUL (ENAMETOOLONG), components of at most NAME_MAX bytes.

The result (Nameidata) OWNS host descriptors, released by close() (or `with nd:`):
  ni_dvp + ni_name  the directory holding the last name, and that name: for the
                    calls that create, remove or rename (mkdirat(ni_dvp, ni_name)...)
                    and for the ones that must not follow a final symlink;
  ni_vp             the object itself when it exists (an O_PATH descriptor, of the
                    symlink when not following). `nd.ni_proc` (/proc/self/fd/N) names
                    exactly that object for host calls that take only a path (chmod,
                    re-opening it for I/O): the kernel resolves the magic link to the
                    descriptor's inode, not to a path.
ni_comps (the canonical guest components as walked) is informational: after a
rename it may be stale; getcwd is answered from the held descriptor instead.

Working directory and root: the contract for fork/exec
------------------------------------------------------
A Vnode is one held host descriptor (v_fd, O_PATH, close-on-exec) plus its guest
path as last known (v_comps). It is owned by exactly one holder: `dup()` makes an
independent copy (its own descriptor), `close()` releases it (idempotent).
Each process has a Cwdinfo (NetBSD's struct cwdinfo) in p.p_cwdi:
  cwdi_cdir: Vnode   the working directory; p.p_cwd mirrors its guest path (string).
The root is per kernel: rootvnode(k), opened once from k.root.
- fork: cwdinit(parent, child) gives the child a dup() of the parent's cwd;
- exit: cwdfree(p) closes it;
- chdir/fchdir: cwd_set(p, vnode) (the old one is closed).
Code that sets p.p_cwd to a string (boot, the ATF launcher) keeps working: when
p.p_cwd differs from the path the held cwd was made for, the string is resolved
once, safely, from the root (cwd_vnode).
"""
from __future__ import annotations

import os
import stat as host_stat
from collections import deque
from typing import Any

from .errno import Errno, from_host

MAXPATHLEN = 1024          # sys/param.h, NUL included
MAXSYMLINKS = 32           # sys/param.h
NAME_MAX = 511             # sys/syslimits.h
AT_FDCWD = -100            # fcntl.h
# vnode types (sys/vnode.h, enum vtype)
VNON, VREG, VDIR, VBLK, VCHR, VLNK, VSOCK, VFIFO, VBAD = range(9)

O_PATH = getattr(os, "O_PATH", 0o10000000)
_DIR = O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OBJ = O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def proc_fd(fd: int) -> str:
    """A host path that names the object open on fd itself (a magic link)."""
    return f"/proc/self/fd/{fd}"


# -- held directories ---------------------------------------------------------------
class Vnode:
    """A host object held open (O_PATH) and the guest path it was reached by."""
    __slots__ = ("v_fd", "v_comps")

    def __init__(self, fd: int, comps: list[bytes]) -> None:
        self.v_fd = fd
        self.v_comps = comps

    def dup(self) -> "Vnode":
        return Vnode(os.dup(self.v_fd), list(self.v_comps))

    def close(self) -> None:
        fd, self.v_fd = self.v_fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass

    def __del__(self) -> None:          # a backstop: holders close explicitly
        self.close()

    def __repr__(self) -> str:
        return f"<Vnode fd={self.v_fd} {guest_path(self.v_comps)!r}>"


class RootVnode(Vnode):
    """The guest's "/": held for the kernel's life, known by (st_dev, st_ino)."""
    __slots__ = ("v_id", "v_host")

    def __init__(self, fd: int, host: bytes) -> None:
        super().__init__(fd, [])
        st = os.fstat(fd)
        self.v_id = (st.st_dev, st.st_ino)
        self.v_host = host


def rootvnode(k: Any) -> RootVnode:
    """The root directory held open (opened once per kernel from k.root, the
    user's --root: the one host path string nbemu trusts)."""
    rv = k.vfs_rootvp
    if rv is None or rv[0] != k.root:
        real = os.fsencode(os.path.realpath(k.root))
        vp = RootVnode(os.open(real, _DIR), real.rstrip(b"/"))
        rv = k.vfs_rootvp = (k.root, vp)
    return rv[1]


def root_host(k: Any) -> bytes:
    """The host path of the guest root ("" for "/"), for display only."""
    return rootvnode(k).v_host


def is_root(k: Any, fd: int) -> bool:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino) == rootvnode(k).v_id


def guest_path(comps: list[bytes]) -> bytes:
    return b"/" + b"/".join(comps)


def split_guest(path: str | bytes) -> list[bytes]:
    """Components of an absolute, canonical guest path (p_cwd)."""
    if isinstance(path, str):
        path = os.fsencode(path)
    return [c for c in path.split(b"/") if c and c != b"."]


# -- the working directory ---------------------------------------------------------------
class Cwdinfo:
    """struct cwdinfo: the held working directory and the p_cwd it stands for."""
    __slots__ = ("cwdi_cdir", "cwdi_path")

    def __init__(self, cdir: Vnode, path: str) -> None:
        self.cwdi_cdir = cdir
        self.cwdi_path = path


def cwd_vnode(p: Any) -> Vnode:
    """The process's working directory, held. A p_cwd string set from outside
    (boot, the ATF launcher) is resolved from the root once (the root when it
    does not name a directory)."""
    ci: Cwdinfo | None = p.p_cwdi
    if ci is not None and ci.cwdi_path == p.p_cwd:
        return ci.cwdi_cdir
    k = p.k
    root = rootvnode(k)
    nd = namei(k, root, os.fsencode(p.p_cwd or "/"), True)
    vp = None
    if not isinstance(nd, int):
        if nd.ni_exists and host_stat.S_ISDIR(nd.ni_st.st_mode):  # type: ignore[union-attr]
            vp = Vnode(nd.take_vp(), nd.ni_comps)
        nd.close()
    if vp is None:
        vp = root.dup()
    if ci is not None:
        ci.cwdi_cdir.close()
    p.p_cwdi = Cwdinfo(vp, p.p_cwd)
    return vp


def cwd_set(p: Any, vp: Vnode) -> None:
    """chdir/fchdir: vp (owned by the caller until now) becomes the cwd."""
    path = os.fsdecode(guest_path(vp.v_comps))
    ci: Cwdinfo | None = p.p_cwdi
    if ci is not None:
        ci.cwdi_cdir.close()
    p.p_cwdi = Cwdinfo(vp, path)
    p.p_cwd = path


def cwdinit(parent: Any, child: Any) -> None:
    """fork: the child starts in the parent's working directory (its own hold)."""
    vp = cwd_vnode(parent).dup()
    child.p_cwd = parent.p_cwd
    child.p_cwdi = Cwdinfo(vp, child.p_cwd)


def cwdfree(p: Any) -> None:
    """exit: release the working directory."""
    ci: Cwdinfo | None = p.p_cwdi
    if ci is not None:
        ci.cwdi_cdir.close()
        p.p_cwdi = None


def vnode_path(k: Any, vp: Vnode) -> bytes | int:
    """The guest path of a held directory: its last known path when that still
    names it (the usual case, one lookup), else found by getcwd_path."""
    known = guest_path(vp.v_comps)
    nd = namei(k, rootvnode(k), known, False)
    if not isinstance(nd, int):
        with nd:
            if nd.ni_st is not None:
                try:
                    st = os.fstat(vp.v_fd)
                except OSError as e:
                    return from_host(e.errno or Errno.EIO)
                if (nd.ni_st.st_dev, nd.ni_st.st_ino) == (st.st_dev, st.st_ino):
                    return known
    return getcwd_path(k, vp.v_fd)


def getcwd_path(k: Any, fd: int) -> bytes | int:
    """The guest path of the directory held on fd, found as NetBSD's getcwd_common
    does without a name cache: go up by "..", find each directory's name in its
    parent by inode, until the root. ENOENT when the directory was removed or is
    not under the root (never a host path)."""
    names: list[bytes] = []
    root = rootvnode(k)
    root_id = root.v_id
    mounts = k.vfs_mounts
    cur = os.dup(fd)
    try:
        for _ in range(MAXPATHLEN // 2):
            st = os.fstat(cur)
            if (st.st_dev, st.st_ino) == root_id:
                return b"/" + b"/".join(reversed(names))
            m = mounts.covering((st.st_dev, st.st_ino), []) if mounts else None
            if m is not None:               # the top of a mount: its guest path
                return guest_path(list(m.mnt_comps) + names[::-1])
            if st.st_nlink == 0:
                return Errno.ENOENT
            up = os.open("..", _DIR, dir_fd=cur)
            ust = os.fstat(up)
            os.close(cur)
            cur = up
            if (ust.st_dev, ust.st_ino) == (st.st_dev, st.st_ino):
                return Errno.ENOENT           # the host's "/": not under the root
            name = None
            rd = os.open(proc_fd(up), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                with os.scandir(rd) as it:
                    for e in it:
                        if e.inode() == st.st_ino and e.is_dir(follow_symlinks=False):
                            try:
                                est = os.stat(e.name, dir_fd=up, follow_symlinks=False)
                            except OSError:
                                continue
                            if (est.st_dev, est.st_ino) == (st.st_dev, st.st_ino):
                                name = os.fsencode(e.name)
                                break
            finally:
                os.close(rd)
            if name is None:
                return Errno.ENOENT
            names.append(name)
        return Errno.ENAMETOOLONG
    except OSError as e:
        return from_host(e.errno or Errno.EIO)
    finally:
        os.close(cur)


# -- lookup --------------------------------------------------------------------------------
class Nameidata:
    """The outcome of a lookup (the parts of struct nameidata nbemu needs). Owns
    ni_dvp and ni_vp: close() them (or use `with nd:`)."""
    __slots__ = ("ni_dvp", "ni_name", "ni_vp", "ni_comps", "ni_exists", "ni_st",
                 "ni_trailing_slash", "ni_lastname", "is_root")

    def __init__(self, dvp: int | None, name: bytes, vp: int | None, comps: list[bytes],
                 st: os.stat_result | None, trailing: bool, lastname: bytes) -> None:
        self.ni_dvp = dvp                  # directory of the last name (None: "/", ".", "..")
        self.ni_name = name                # the last name in ni_dvp (host bytes)
        self.ni_vp = vp                    # the object (None: does not exist)
        self.ni_comps = comps              # canonical guest components, as walked
        self.ni_exists = vp is not None
        self.ni_st = st                    # fstat of ni_vp (lstat: a link not followed)
        self.ni_trailing_slash = trailing  # the path ended in "/" (a directory is required)
        self.ni_lastname = lastname        # the path's last component as written
        self.is_root = False               # the object is the guest's "/"

    @property
    def ni_guest(self) -> bytes:
        return guest_path(self.ni_comps)

    @property
    def ni_proc(self) -> str:
        """A host path naming exactly the object (see the module doc)."""
        assert self.ni_vp is not None
        return proc_fd(self.ni_vp)

    @property
    def is_link(self) -> bool:
        return self.ni_st is not None and host_stat.S_ISLNK(self.ni_st.st_mode)

    def take_vp(self) -> int:
        """Hand ni_vp to the caller (who will close it)."""
        vp = self.ni_vp
        assert vp is not None
        self.ni_vp = None
        return vp

    def close(self) -> None:
        for attr in ("ni_vp", "ni_dvp"):
            fd = getattr(self, attr)
            if fd is not None:
                setattr(self, attr, None)
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __enter__(self) -> "Nameidata":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def namei(k: Any, start: Vnode | tuple[int, list[bytes]], path: bytes, follow: bool
          ) -> Nameidata | int:
    """Resolve `path` (relative paths from the held directory `start`: a Vnode or
    a borrowed (fd, comps)) in the guest root. `follow`: whether a symbolic link
    as last component is followed (a trailing slash always follows). Returns a
    Nameidata (owning its descriptors) or an errno."""
    if not path:
        return Errno.ENOENT
    if len(path) >= MAXPATHLEN:
        return Errno.ENAMETOOLONG
    root = rootvnode(k)
    if path.startswith(b"/"):
        sfd, comps = root.v_fd, []
    elif isinstance(start, Vnode):
        sfd, comps = start.v_fd, list(start.v_comps)
    else:
        sfd, comps = start[0], list(start[1])
    trailing = path.endswith(b"/")
    parts = [c for c in path.split(b"/") if c]
    lastname = parts[-1] if parts else (b"/" if path.startswith(b"/") else b".")
    try:
        cur = os.dup(sfd)                    # Python's dup is close-on-exec
    except OSError as e:
        return from_host(e.errno or Errno.EBADF)
    try:
        return _walk(k, root, cur, comps, deque(parts), follow, trailing, lastname)
    except OSError as e:
        return from_host(e.errno or Errno.EIO)


def _walk(k: Any, root: RootVnode, cur: int, comps: list[bytes], pending: deque[bytes],
          follow: bool, trailing: bool, lastname: bytes) -> Nameidata | int:
    """The loop of namei. `cur` is an owned O_PATH descriptor of a directory;
    every exit closes it or hands it to the result."""
    links = 0
    done = False
    mounts = k.vfs_mounts
    try:
        while pending:
            c = pending.popleft()
            if c == b".":
                continue
            if c == b"..":
                st = os.fstat(cur)
                ident = (st.st_dev, st.st_ino)
                if ident == root.v_id:
                    continue                    # ".." at the root is the root
                m = mounts.covering(ident, comps) if mounts else None
                if m is not None:
                    # the top of a mount: ".." of the covered directory (NetBSD's
                    # lookup crosses back to the mount point first), found from the root
                    up = _mount_parent(k, m)
                    if up < 0:
                        return -up
                    os.close(cur)
                    cur, comps = up, list(m.mnt_comps[:-1])
                    continue
                up = os.open(b"..", _DIR, dir_fd=cur)
                os.close(cur)
                cur = up
                if comps:
                    comps.pop()
                continue
            if len(c) > NAME_MAX:
                return Errno.ENAMETOOLONG
            last = not pending
            m = mounts.by_path.get(tuple(comps) + (c,)) if mounts else None
            if m is not None:
                # a mount point: continue in the mounted directory (v_mountedhere)
                if not last:
                    os.close(cur)
                    cur = -1
                    cur = os.dup(m.mnt_fd)
                    comps.append(c)
                    continue
                vp = os.dup(m.mnt_fd)
                done = True
                nd = Nameidata(cur, c, vp, comps + [c], os.fstat(vp), trailing, lastname)
                nd.is_root = True               # VV_ROOT: not removed nor renamed (EBUSY)
                return nd
            if not last:
                try:
                    nxt = os.open(c, _DIR, dir_fd=cur)
                except OSError as e:
                    if e.errno not in (20, 40):         # ENOTDIR, ELOOP: a link?
                        return from_host(e.errno or Errno.EIO)
                    lst = os.stat(c, dir_fd=cur, follow_symlinks=False)
                    if not host_stat.S_ISLNK(lst.st_mode):
                        return Errno.ENOTDIR
                else:
                    os.close(cur)
                    cur = nxt
                    comps.append(c)
                    continue
            else:
                try:
                    vp = os.open(c, _OBJ, dir_fd=cur)
                except OSError as e:
                    if e.errno == 2:                    # ENOENT: a name to create
                        done = True
                        return Nameidata(cur, c, None, comps + [c], None, trailing, lastname)
                    return from_host(e.errno or Errno.EIO)
                st = os.fstat(vp)
                if not host_stat.S_ISLNK(st.st_mode) or not (follow or trailing):
                    if trailing and not host_stat.S_ISDIR(st.st_mode):
                        os.close(vp)
                        return Errno.ENOTDIR
                    done = True
                    return Nameidata(cur, c, vp, comps + [c], st, trailing, lastname)
                os.close(vp)
            # c is a symbolic link to follow
            links += 1
            if links > MAXSYMLINKS:
                return Errno.ELOOP
            target = os.readlink(c, dir_fd=cur)
            if not target:
                return Errno.ENOENT
            rest = sum(len(x) + 1 for x in pending)
            if len(target) + rest >= MAXPATHLEN:
                return Errno.ENAMETOOLONG
            if target.startswith(b"/"):
                os.close(cur)
                cur = -1
                cur = os.dup(root.v_fd)
                comps = []
            if target.endswith(b"/") and last:
                trailing = True
            pending.extendleft(reversed([x for x in target.split(b"/") if x]))
        # the path ended at a directory reached by "/", "." or "..": the object is cur
        st = os.fstat(cur)
        done = True
        nd = Nameidata(None, b"", cur, comps, st, trailing, lastname)
        nd.is_root = (st.st_dev, st.st_ino) == root.v_id or \
            bool(mounts and mounts.covering((st.st_dev, st.st_ino), comps))
        return nd
    finally:
        if not done and cur >= 0:
            os.close(cur)


def _mount_parent(k: Any, m: Any) -> int:
    """A held descriptor of the directory that holds mount m's mount point (minus
    an errno if it is gone). Looked up from the root by its guest path, so it is
    the guest's, crossing the mounts it lies in."""
    nd = namei(k, rootvnode(k), guest_path(list(m.mnt_comps[:-1])), True)
    if isinstance(nd, int):
        return -nd
    with nd:
        if nd.ni_st is None or not host_stat.S_ISDIR(nd.ni_st.st_mode):
            return -Errno.ENOTDIR
        return nd.take_vp()


def start_dir(l: Any, dirfd: int, path: bytes) -> Vnode | tuple[int, list[bytes]] | int:
    """Where a relative lookup starts: the cwd (AT_FDCWD) or the directory open
    on dirfd (EBADF if not open, ENOTDIR if not a directory). Borrowed: namei
    takes its own hold."""
    p = l.l_proc
    if path.startswith(b"/"):
        return rootvnode(p.k)
    if dirfd == AT_FDCWD:
        return cwd_vnode(p)
    from .kern_descrip import DTYPE_VNODE, fd_getfile
    fp = fd_getfile(p, dirfd)
    if fp is None:
        return Errno.EBADF
    if fp.f_type != DTYPE_VNODE:
        return Errno.EINVAL
    comps = fp.f_guest
    if comps is None or not fp.is_dir or fp.hostfd is None or fp.hostfd < 0:
        return Errno.ENOTDIR     # (None: a host directory given as stdin: not the guest's)
    return fp.hostfd, list(comps)


def namei_at(l: Any, dirfd: int, path_va: int, follow: bool) -> Nameidata | int:
    """copyinstr the guest path at path_va and look it up (from dirfd)."""
    path = l.l_proc.p_vmspace.copyinstr(path_va, MAXPATHLEN)
    if isinstance(path, int):
        return path
    return namei_path(l, dirfd, path, follow)


def namei_path(l: Any, dirfd: int, path: bytes, follow: bool) -> Nameidata | int:
    start = start_dir(l, dirfd, path)
    if isinstance(start, int):
        return start
    return namei(l.l_proc.k, start, path, follow)
