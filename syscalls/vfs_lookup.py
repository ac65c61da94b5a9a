"""Path name lookup (NetBSD's vfs_lookup.c, namei) inside the guest root.

The guest's file system is a host directory, k.root. A guest path is walked
here one component at a time with os.lstat / os.readlink, never handed whole
to the host, so that nothing resolves outside the root:

- ".." at the guest root stays at the root;
- a symbolic link's target is resolved by the same walk: an absolute target
  starts again at the guest root, a relative one at the link's directory;
- at most MAXSYMLINKS links per lookup (ELOOP), paths of at most MAXPATHLEN
  bytes including the NUL (ENAMETOOLONG), components of at most NAME_MAX bytes.

The result names the object by its canonical guest components (symlinks
resolved, no "." or "..") and by the host path built from them; the host path
contains no symbolic link except, when not following, the final component.

A lookup may end at a name that does not exist (its parent does): `ni_exists`
is then False, for the callers that create (open O_CREAT, mkdir, rename, ...).
"""
from __future__ import annotations

import os
import stat as host_stat
from collections import deque
from dataclasses import dataclass

from .errno import Errno, from_host

MAXPATHLEN = 1024          # sys/param.h, NUL included
MAXSYMLINKS = 32           # sys/param.h
NAME_MAX = 511             # sys/syslimits.h
AT_FDCWD = -100            # fcntl.h


@dataclass
class Nameidata:
    """The outcome of a lookup (the parts of struct nameidata nbemu needs)."""
    ni_comps: list[bytes]            # canonical guest components from the root
    ni_host: bytes                   # host path of the object (or of the name to create)
    ni_exists: bool
    ni_st: os.stat_result | None     # lstat() of the object, when it exists
    ni_trailing_slash: bool          # the path ended in "/" (a directory is required)
    ni_lastname: bytes               # the path's last component as written ("." / ".." too)

    @property
    def ni_guest(self) -> bytes:
        return guest_path(self.ni_comps)

    @property
    def is_root(self) -> bool:
        return not self.ni_comps


def root_host(k) -> bytes:
    """The host directory that is the guest's "/" (resolved once per kernel)."""
    cached = getattr(k, "_vfs_root", None)
    if cached is None or cached[0] != k.root:
        real = os.fsencode(os.path.realpath(k.root))
        cached = (k.root, real.rstrip(b"/"))
        k._vfs_root = cached
    return cached[1]


def host_path(k, comps: list[bytes]) -> bytes:
    """Host path of canonical guest components (no host lookup)."""
    base = root_host(k)
    if not comps:
        return base or b"/"
    return base + b"/" + b"/".join(comps)


def guest_path(comps: list[bytes]) -> bytes:
    return b"/" + b"/".join(comps)


def split_guest(path: str | bytes) -> list[bytes]:
    """Components of an absolute, canonical guest path (p_cwd)."""
    if isinstance(path, str):
        path = os.fsencode(path)
    return [c for c in path.split(b"/") if c and c != b"."]


def namei(k, start: list[bytes], path: bytes, follow: bool) -> Nameidata | int:
    """Resolve `path` (relative paths from the directory `start`) in the guest
    root. `follow`: whether a symbolic link as last component is followed (a
    trailing slash always follows). Returns a Nameidata or an errno."""
    if not path:
        return Errno.ENOENT
    if len(path) >= MAXPATHLEN:
        return Errno.ENAMETOOLONG
    comps = [] if path.startswith(b"/") else list(start)
    trailing = path.endswith(b"/")
    parts = [c for c in path.split(b"/") if c]
    lastname = parts[-1] if parts else (b"/" if path.startswith(b"/") else b".")
    pending: deque[bytes] = deque(parts)
    links = 0
    cur_is_dir = True                # start directories and the root are directories
    st: os.stat_result | None = None
    while pending:
        c = pending.popleft()
        if not cur_is_dir:
            return Errno.ENOTDIR
        if c == b".":
            continue
        if c == b"..":
            if comps:
                comps.pop()
            st = None
            continue
        if len(c) > NAME_MAX:
            return Errno.ENAMETOOLONG
        last = not pending
        hp = host_path(k, comps + [c])
        try:
            cst = os.lstat(hp)
        except OSError as e:
            if e.errno == 2 and last:            # ENOENT: a name to create
                return Nameidata(comps + [c], hp, False, None, trailing, lastname)
            return from_host(e.errno)
        if host_stat.S_ISLNK(cst.st_mode) and (follow or not last or trailing):
            links += 1
            if links > MAXSYMLINKS:
                return Errno.ELOOP
            try:
                target = os.readlink(hp)
            except OSError as e:
                return from_host(e.errno)
            if not target:
                return Errno.ENOENT
            rest = sum(len(x) + 1 for x in pending)
            if len(target) + rest >= MAXPATHLEN:
                return Errno.ENAMETOOLONG
            if target.startswith(b"/"):
                comps = []
            if target.endswith(b"/") and last:
                trailing = True
            pending.extendleft(reversed([x for x in target.split(b"/") if x]))
            cur_is_dir = True                    # comps still names a directory
            st = None
            continue
        comps.append(c)
        st = cst
        cur_is_dir = host_stat.S_ISDIR(cst.st_mode)
    hp = host_path(k, comps)
    if st is None:
        try:
            st = os.lstat(hp)
        except OSError as e:
            return from_host(e.errno)
    if trailing and not host_stat.S_ISDIR(st.st_mode):
        return Errno.ENOTDIR
    return Nameidata(comps, hp, True, st, trailing, lastname)


def start_dir(l, dirfd: int, path: bytes) -> list[bytes] | int:
    """Where a relative lookup starts: the cwd (AT_FDCWD) or the directory open
    on dirfd (EBADF if not open, ENOTDIR if not a directory)."""
    p = l.l_proc
    if path.startswith(b"/") or dirfd == AT_FDCWD:
        return split_guest(p.p_cwd)
    from .kern_descrip import DTYPE_VNODE, fd_getfile
    fp = fd_getfile(p, dirfd)
    if fp is None:
        return Errno.EBADF
    if fp.f_type != DTYPE_VNODE:
        return Errno.EINVAL
    comps = getattr(fp, "f_guest", None)
    if comps is None or not getattr(fp, "is_dir", False):
        return Errno.ENOTDIR
    return list(comps)


def namei_at(l, dirfd: int, path_va: int, follow: bool) -> Nameidata | int:
    """copyinstr the guest path at path_va and look it up (from dirfd)."""
    path = l.l_proc.p_vmspace.copyinstr(path_va, MAXPATHLEN)
    if isinstance(path, int):
        return path
    start = start_dir(l, dirfd, path)
    if isinstance(start, int):
        return start
    return namei(l.l_proc.k, start, path, follow)
