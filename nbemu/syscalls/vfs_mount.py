"""Bind mounts (`--bind HOST[:GUEST]`, as proot and bubblewrap name them): a host
directory seen at GUEST inside the guest root, as NetBSD sees a file system mounted
on a directory (a null mount, mount_null(8)).

A Mount holds the host directory open (O_PATH) and knows it by (st_dev, st_ino),
as the guest root is known. vfs_lookup's namei crosses mounts the way NetBSD's
lookup does:
- going down: a component whose canonical guest path is a mount point continues in
  the mounted directory (v_mountedhere), whatever the root holds under that name;
- going up: ".." from the top of a mount (VV_ROOT) leaves from the covered
  directory, i.e. it is the parent of the mount point in the guest, never the host
  directory's own parent (that would be an escape);
- symbolic links inside a mount are walked by the same loop: an absolute target
  restarts at the guest root, a relative one climbs through ".." as above.

The mount point need not exist in the root (proot's way): a missing GUEST, and
any missing ancestor of it, is a directory of its own. Missing ancestors are
"virtual" mounts of an empty directory made and removed at once on the host
(held open, so its inode stays unique while nbemu runs and nothing can be made in
it, ENOENT; nothing is left on the host).

Not modelled: renames and links across mounts succeed when the host allows them
(NetBSD says EXDEV); the guest can only name what the root and its mounts hold,
so this moves data between places the user granted, never out of them.
"""
from __future__ import annotations

import os
import posixpath
import stat as host_stat
from typing import Any

_DIR = getattr(os, "O_PATH", 0o10000000) | os.O_DIRECTORY | os.O_CLOEXEC


class MountError(Exception):
    """A --bind that cannot be set up (one line for the user)."""


class Mount:
    """A host directory mounted at a guest path (canonical components)."""
    __slots__ = ("mnt_comps", "mnt_fd", "mnt_id", "mnt_host", "mnt_virtual")

    def __init__(self, comps: tuple[bytes, ...], fd: int, host: bytes, virtual: bool) -> None:
        self.mnt_comps = comps
        self.mnt_fd = fd
        st = os.fstat(fd)
        self.mnt_id = (st.st_dev, st.st_ino)
        self.mnt_host = host
        self.mnt_virtual = virtual

    def __repr__(self) -> str:
        what = "(virtual)" if self.mnt_virtual else self.mnt_host.decode(errors="replace")
        return f"<Mount {what} on /{b'/'.join(self.mnt_comps).decode(errors='replace')}>"


class MountTable:
    """The kernel's mounts, by guest path (going down) and by host inode (going up)."""

    def __init__(self) -> None:
        self.by_path: dict[tuple[bytes, ...], Mount] = {}
        self.by_id: dict[tuple[int, int], list[Mount]] = {}

    def __bool__(self) -> bool:
        return bool(self.by_path)

    def add(self, m: Mount) -> None:
        self.by_path[m.mnt_comps] = m
        self.by_id.setdefault(m.mnt_id, []).append(m)

    def covering(self, ident: tuple[int, int], comps: list[bytes]) -> Mount | None:
        """The mount whose top is the directory `ident` (the one at `comps` when the
        same host directory is mounted twice), None when it is no mount's top."""
        ms = self.by_id.get(ident)
        if not ms:
            return None
        for m in ms:
            if list(m.mnt_comps) == comps:
                return m
        return ms[0]


def parse_bind(spec: str) -> tuple[str, str]:
    """`HOST[:GUEST]` -> (host, guest); GUEST defaults to HOST (proot's syntax)."""
    host, sep, guest = spec.partition(":")
    if not host:
        raise MountError(f"--bind {spec}: HOST is empty")
    return host, (guest if sep else host)


def mount_binds(k: Any, binds: list[tuple[str, str]]) -> None:
    """Set up k.vfs_mounts from (host, guest) pairs, shallowest guest path first so
    a bind may sit inside another one. MountError when one cannot be made."""
    from .vfs_lookup import guest_path, namei, rootvnode
    table: MountTable = k.vfs_mounts
    root = rootvnode(k)
    order = sorted(binds, key=lambda b: len(_guest_comps(b[1])))
    for host, guest in order:
        comps = _guest_comps(guest)
        if not comps:
            raise MountError(f"--bind {host}:{guest}: GUEST must not be / (use --root)")
        try:
            fd = os.open(os.path.realpath(host), _DIR)
        except OSError as e:
            raise MountError(f"--bind {host}: {e.strerror}") from None
        # The mount point's parent, resolved (symlinks included) to its canonical
        # guest path as NetBSD's mount resolves it to a vnode; missing ancestors
        # become virtual directories.
        parent: list[bytes] = []
        for c in comps[:-1]:
            nd = namei(k, root, guest_path(parent + [c]), True)
            if isinstance(nd, int):
                os.close(fd)
                raise MountError(f"--bind {host}:{guest}: {os.strerror(nd)} in the guest root")
            with nd:
                if nd.ni_exists:
                    if not host_stat.S_ISDIR(nd.ni_st.st_mode):  # type: ignore[union-attr]
                        os.close(fd)
                        raise MountError(f"--bind {host}:{guest}: "
                                         f"{os.fsdecode(nd.ni_guest)} is not a directory")
                    parent = list(nd.ni_comps)
                    continue
            parent = parent + [c]
            table.add(Mount(tuple(parent), _empty_dir(), b"", True))
        full = tuple(parent + [comps[-1]])
        if full in table.by_path and not table.by_path[full].mnt_virtual:
            os.close(fd)
            raise MountError(f"--bind {host}:{guest}: {guest} is bound twice")
        table.add(Mount(full, fd, os.fsencode(host), False))


def _guest_comps(guest: str) -> list[bytes]:
    g = posixpath.normpath("/" + guest)
    return [os.fsencode(c) for c in g.split("/") if c and c != "."]


def _empty_dir() -> int:
    """An empty directory held open and already removed from the host."""
    import tempfile                 # (here: start-up imports less; a --bind needs it)
    d = tempfile.mkdtemp(prefix="nbemu-mnt.")
    try:
        return os.open(d, _DIR)
    finally:
        os.rmdir(d)
