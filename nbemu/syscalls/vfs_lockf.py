"""Advisory record locks (NetBSD's vfs_lockf.c): fcntl's POSIX locks, owned by
a process, and flock(2)'s whole-file locks, owned by an open file, in one list
per vnode (a host file's device and inode), so that they exclude each other
across the guest's processes as NetBSD's do.

- A lock is [start, end] (end -1: to the end of the file, however it grows)
  with F_RDLCK (shared) or F_WRLCK (exclusive); two locks conflict when their
  owners differ, their ranges overlap and one of them is exclusive.
- lf_setlock: the owner's own locks in the range are replaced (split where the
  range cuts them); a conflict is EAGAIN without waiting (F_SETLK, LOCK_NB),
  else the LWP sleeps interruptibly on the vnode until a lock goes, and
  EDEADLK when the owner it waits for waits, directly or through others, for
  this one (lf_deadlock's walk).
- A process's POSIX locks on a vnode go when it closes any descriptor of that
  vnode (and so at exit); an open file's flock lock goes with its last close.
"""
from __future__ import annotations

import os
from typing import Any, Generator

from .errno import Errno
from .kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue, sleepq_wake

F_RDLCK, F_UNLCK, F_WRLCK = 1, 2, 3          # fcntl.h
MAXDEPTH = 50                                # lf_deadlock's walk, as maxlockdepth


class Lockf:
    """struct lockf: one held range."""
    __slots__ = ("lf_type", "lf_start", "lf_end", "lf_owner", "lf_flock", "lf_pid")

    def __init__(self, ltype: int, start: int, end: int, owner: Any, flock: bool,
                 pid: int) -> None:
        self.lf_type, self.lf_start, self.lf_end = ltype, start, end
        self.lf_owner, self.lf_flock, self.lf_pid = owner, flock, pid


class LockfState:
    """Every vnode's lock list, and who waits for whom (for EDEADLK)."""

    def __init__(self) -> None:
        self.locks: dict[tuple[int, int], list[Lockf]] = {}
        self.waiting: dict[int, Any] = {}        # id(waiting owner) -> blocking owner


def lockf_state(k: Any) -> LockfState:
    if k.lockf_state is None:
        k.lockf_state = LockfState()
    return k.lockf_state


def vnode_key(fp: Any) -> tuple[int, int] | None:
    """The vnode a file stands for (device, inode), None when not a host file."""
    fd = fp.hostfd
    if fd is None or fd < 0:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _overlaps(a: Lockf, start: int, end: int) -> bool:
    return (a.lf_end == -1 or a.lf_end >= start) and (end == -1 or a.lf_start <= end)


def lf_getblock(locks: list[Lockf], owner: Any, ltype: int, start: int, end: int
                ) -> Lockf | None:
    """The first lock of another owner that conflicts with [start, end]."""
    for lf in locks:
        if lf.lf_owner is not owner and _overlaps(lf, start, end) \
                and (ltype == F_WRLCK or lf.lf_type == F_WRLCK):
            return lf
    return None


def _clear(locks: list[Lockf], owner: Any, start: int, end: int) -> bool:
    """Remove owner's locks from [start, end], splitting those it cuts; True if
    anything went (waiters may proceed)."""
    out: list[Lockf] = []
    changed = False
    for lf in locks:
        if lf.lf_owner is not owner or not _overlaps(lf, start, end):
            out.append(lf)
            continue
        changed = True
        if lf.lf_start < start:                 # the part before the range stays
            out.append(Lockf(lf.lf_type, lf.lf_start, start - 1, owner, lf.lf_flock, lf.lf_pid))
        if end != -1 and (lf.lf_end == -1 or lf.lf_end > end):   # and the part after
            out.append(Lockf(lf.lf_type, end + 1, lf.lf_end, owner, lf.lf_flock, lf.lf_pid))
    locks[:] = out
    return changed


def _deadlocks(st: LockfState, owner: Any, blocker: Any) -> bool:
    """Would waiting for `blocker` close a cycle back to `owner`?"""
    cur = blocker
    for _ in range(MAXDEPTH):
        if cur is owner:
            return True
        cur = st.waiting.get(id(cur))
        if cur is None:
            return False
    return False


def lf_setlock(l: Any, key: tuple[int, int], owner: Any, ltype: int, start: int, end: int,
               wait: bool, flock: bool) -> Generator[str, int, int]:
    k = l.l_proc.k
    st = lockf_state(k)
    locks = st.locks.setdefault(key, [])
    if ltype == F_UNLCK:
        if _clear(locks, owner, start, end):
            sleepq_wake(k, ("lockf", key))
        return 0
    while True:
        blk = lf_getblock(locks, owner, ltype, start, end)
        if blk is None:
            break
        if not wait:
            return Errno.EAGAIN
        if not flock and not blk.lf_flock and _deadlocks(st, owner, blk.lf_owner):
            return Errno.EDEADLK
        st.waiting[id(owner)] = blk.lf_owner
        sleepq_enqueue(k, l, ("lockf", key), "lockf", sleep_syncobj, True)
        try:
            error = yield from sleepq_block(k, l, None)
        finally:
            st.waiting.pop(id(owner), None)
        if error:
            return error
        locks = st.locks.setdefault(key, [])
    downgraded = _clear(locks, owner, start, end)
    locks.append(Lockf(ltype, start, end, owner, flock, l.l_proc.p_pid))
    if downgraded:
        sleepq_wake(k, ("lockf", key))           # (a write lock became a read lock)
    return 0


def lf_getlock(k: Any, key: tuple[int, int], owner: Any, ltype: int, start: int, end: int
               ) -> Lockf | None:
    return lf_getblock(lockf_state(k).locks.get(key, []), owner, ltype, start, end)


def lf_release(k: Any, key: tuple[int, int] | None, owner: Any) -> None:
    """Drop every lock of owner on the vnode (close: a process's POSIX locks;
    last close: an open file's flock lock)."""
    st = k.lockf_state
    if st is None or key is None:
        return
    locks = st.locks.get(key)
    if locks and _clear(locks, owner, 0, -1):
        if not locks:
            del st.locks[key]
        sleepq_wake(k, ("lockf", key))
