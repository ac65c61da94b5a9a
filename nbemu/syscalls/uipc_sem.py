"""POSIX semaphores in the kernel (NetBSD's sys/kern/uipc_sem.c): the _ksem_*
calls behind sem_init / sem_open / sem_wait / sem_timedwait / sem_trywait /
sem_post / sem_getvalue / sem_close / sem_unlink / sem_destroy of libpthread
and librt.

Model (NetBSD 10)
-----------------
- A semaphore (Ksem, ksem_t) has a value (0..SEM_VALUE_MAX = 2^32 - 1), a
  count of waiters, and, when named, a name ("/x", at most SEM_MAX_NAMELEN
  bytes, no other '/') in the global list of named semaphores (at most
  KSEM_MAX = 128 of them: ENFILE).
- A process reaches a semaphore through a file descriptor of type DTYPE_SEM:
  the semid_t (intptr_t) that _ksem_init / _ksem_open copy out IS that
  descriptor number. Each such descriptor holds a reference (ks_ref); closing
  the last one frees an unnamed or unlinked semaphore. A named one stays in
  the list until _ksem_unlink (then KS_UNLINKED until its last close).
- Process-shared unnamed semaphores: when *idp holds KSEM_PSHARED on entry to
  _ksem_init, the id returned is a global one (KSEM_PSHARED_MARKER in the
  marker bits) instead of the descriptor number; the descriptor still exists
  and _ksem_destroy (only by the creating process) closes it.
- Waiting (do_ksem_wait): while the value is 0, the LWP sleeps interruptibly
  on the semaphore (cv_timedwait_sig: a signal ends the wait with EINTR, or
  ERESTART for an SA_RESTART handler, which restarts the call); _ksem_post
  wakes every waiter (cv_broadcast) and each re-checks the value. A timed
  wait's deadline is an absolute CLOCK_REALTIME time converted with ts2timo
  on the kernel clock (virtual under --deterministic), recomputed on each
  pass; a deadline already past is ETIMEDOUT.
"""
from __future__ import annotations

from typing import Generator

from .cstruct import LONG
from .errno import Errno
from .kern_descrip import FREAD, FWRITE, O_CREAT, O_EXCL, File, fd_affix, fd_alloc, fd_close, fd_getfile
from .kern_prot import kauth_suser, proc_cred
from .kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue, sleepq_wake
from .kern_time import CLOCK_REALTIME, TIMER_ABSTIME, copyin_timespec
from .lwp import Lwp, Proc
from .table import syscall

DTYPE_SEM = 8                       # sys/file.h
SEM_VALUE_MAX = 0xFFFFFFFF          # sys/semaphore.h: ~0U
SEM_MAX_NAMELEN = 511               # NAME_MAX
KSEM_MAX = 128                      # sys/ksem.h (kern.posix.semmax)
KS_UNLINKED = 0x01
KSEM_PSHARED = 0x50535244           # 'PSRD' (sys/ksem.h)
KSEM_MARKER_MASK = 0xFF000001
KSEM_MARKER_MIN = 0x01000001
KSEM_PSHARED_MARKER = 0x70000001
S_IWUSR, S_IWGRP, S_IWOTH = 0o200, 0o020, 0o002


class Ksem:
    """ksem_t."""
    __slots__ = ("ks_name", "ks_value", "ks_waiters", "ks_ref", "ks_flags", "ks_mode",
                 "ks_uid", "ks_gid", "ks_pshared_proc", "ks_pshared_id", "ks_pshared_fd")

    def __init__(self, name: bytes | None, mode: int, value: int, uid: int, gid: int) -> None:
        self.ks_name = name
        self.ks_value = value
        self.ks_waiters = 0
        self.ks_ref = 1
        self.ks_flags = 0
        self.ks_mode = mode
        self.ks_uid = uid
        self.ks_gid = gid
        self.ks_pshared_proc: Proc | None = None
        self.ks_pshared_id = 0
        self.ks_pshared_fd = -1

    def __repr__(self) -> str:
        return f"<ksem {self.ks_name!r} value={self.ks_value} waiters={self.ks_waiters}>"


class KsemState:
    """The module's globals (ksem_head, nsems, the pshared table), per kernel."""

    def __init__(self) -> None:
        self.ksem_head: dict[bytes, Ksem] = {}
        self.pshared: dict[int, Ksem] = {}
        self.pshared_next = 0


def _state(k) -> KsemState:
    if k.ksem_state is None:
        k.ksem_state = KsemState()
    return k.ksem_state


class KsemFile(File):
    """A DTYPE_SEM descriptor (semops): only close does anything."""
    f_type = DTYPE_SEM

    def __init__(self, k, ks: Ksem) -> None:
        super().__init__(FREAD | FWRITE, "sem")
        self.k = k
        self.f_ksem = ks

    def fo_ioctl(self, l: Lwp, com: int, data: bytearray) -> int:
        return Errno.EOPNOTSUPP             # fbadop_ioctl

    def fo_close(self) -> int:
        """ksem_close_fop: drop the reference; the last one frees an unnamed
        or unlinked semaphore (a named one stays findable by name)."""
        ks = self.f_ksem
        ks.ks_ref -= 1
        if ks.ks_ref == 0 and ks.ks_pshared_proc is not None:
            _state(self.k).pshared.pop(ks.ks_pshared_id, None)
        return 0


def ksem_perm(l: Lwp, ks: Ksem) -> int:
    """Write permission for the owner, its group or others; EACCES otherwise."""
    cred = proc_cred(l.l_proc)
    m = ks.ks_mode
    if (cred.cr_euid == ks.ks_uid and m & S_IWUSR) or (cred.cr_egid == ks.ks_gid and m & S_IWGRP) \
            or m & S_IWOTH or kauth_suser(l.l_proc):
        return 0
    return Errno.EACCES


def ksem_create(l: Lwp, name: bytes | None, mode: int, value: int) -> Ksem | int:
    st = _state(l.l_proc.k)
    if len(st.ksem_head) >= KSEM_MAX:
        return Errno.ENFILE
    if value > SEM_VALUE_MAX:
        return Errno.EINVAL
    if name is not None:
        if len(name) > SEM_MAX_NAMELEN:
            return Errno.ENAMETOOLONG
        if not name.startswith(b"/") or len(name) < 2 or b"/" in name[1:]:
            return Errno.EINVAL
    cred = proc_cred(l.l_proc)
    return Ksem(name, mode, value, cred.cr_euid, cred.cr_egid)


def _copyout_id(l: Lwp, ident: int, idp: int) -> int:
    lay = LONG.on(l.l_proc.k.abi)                   # intptr_t: the word
    return l.l_proc.p_vmspace.copyout(lay.pack(ident), idp)


def _alloc_fd(l: Lwp) -> tuple[int, int]:
    error, fd = fd_alloc(l.l_proc, 0)
    if not error and fd >= KSEM_MARKER_MIN:
        return Errno.EMFILE, -1
    return error, fd


def ksem_get(l: Lwp, ident: int) -> tuple[int, Ksem | None, int]:
    """(errno, semaphore, descriptor or -1 for a pshared id); EINVAL for an id
    that names no semaphore of this process."""
    if ident & KSEM_MARKER_MASK == KSEM_PSHARED_MARKER:
        ks = _state(l.l_proc.k).pshared.get(ident)
        return (0, ks, -1) if ks is not None else (Errno.EINVAL, None, -1)
    if not -0x80000000 <= ident <= 0x7FFFFFFF:
        return Errno.EINVAL, None, -1
    fp = fd_getfile(l.l_proc, ident)
    if fp is None or fp.f_type != DTYPE_SEM:
        return Errno.EINVAL, None, -1
    return 0, fp.f_ksem, ident  # type: ignore[attr-defined]


# -- creation ------------------------------------------------------------------------
@syscall(247, "_ksem_init")
def sys__ksem_init(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    k = p.k
    lay = LONG.on(k.abi)
    data = p.p_vmspace.copyin(a.idp, lay.size)
    if isinstance(data, int):
        return data
    arg = lay.unpack(data)[0] & ((1 << 8 * lay.size) - 1)
    error, fd = _alloc_fd(l)
    if error:
        return error
    ks = ksem_create(l, None, 0, a.value)
    if isinstance(ks, int):
        return ks
    ident = fd
    if arg == KSEM_PSHARED:
        st = _state(k)
        while True:
            st.pshared_next = (st.pshared_next + 1) & 0x7FFFFF
            ident = KSEM_PSHARED_MARKER | (st.pshared_next << 1)
            if ident not in st.pshared:
                break
        ks.ks_pshared_proc = p
        ks.ks_pshared_id = ident
        ks.ks_pshared_fd = fd
    error = _copyout_id(l, ident, a.idp)
    if error:
        return error
    if ks.ks_pshared_proc is not None:
        _state(k).pshared[ident] = ks
    fd_affix(p, KsemFile(k, ks), fd)
    return 0


@syscall(248, "_ksem_open")
def sys__ksem_open(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    k = p.k
    name = p.p_vmspace.copyinstr(a.name, SEM_MAX_NAMELEN + 1)
    if isinstance(name, int):
        return name
    name = bytes(name)
    error, fd = _alloc_fd(l)
    if error:
        return error
    # The id (descriptor number) is stored early, as NetBSD does.
    error = _copyout_id(l, fd, a.idp)
    if error:
        return error
    ksnew = None
    if a.oflag & O_CREAT:
        ksnew = ksem_create(l, name, a.mode, a.value)
        if isinstance(ksnew, int):
            return ksnew
    st = _state(k)
    ks = st.ksem_head.get(name)
    if ks is not None:
        if a.oflag & O_EXCL:
            return Errno.EEXIST
        error = ksem_perm(l, ks)
        if error:
            return error
        ks.ks_ref += 1
    else:
        if ksnew is None:
            return Errno.ENOENT
        if len(st.ksem_head) >= KSEM_MAX:
            return Errno.ENFILE
        ks = ksnew
        st.ksem_head[name] = ks
    fd_affix(p, KsemFile(k, ks), fd)
    return 0


# -- unlink, close, destroy ---------------------------------------------------------------
@syscall(249, "_ksem_unlink")
def sys__ksem_unlink(l: Lwp, a, retval: list[int]) -> int:
    name = l.l_proc.p_vmspace.copyinstr(a.name, SEM_MAX_NAMELEN + 1)
    if isinstance(name, int):
        return name
    st = _state(l.l_proc.k)
    ks = st.ksem_head.get(bytes(name))
    if ks is None:
        return Errno.ENOENT
    error = ksem_perm(l, ks)
    if error:
        return error
    del st.ksem_head[bytes(name)]
    if ks.ks_ref:
        ks.ks_flags |= KS_UNLINKED
    return 0


@syscall(250, "_ksem_close")
def sys__ksem_close(l: Lwp, a, retval: list[int]) -> int:
    error, ks, fd = ksem_get(l, a.id)
    if error:
        return error
    assert ks is not None
    if ks.ks_name is None:
        return Errno.EINVAL                 # only for named semaphores
    return fd_close(l.l_proc, fd)


@syscall(255, "_ksem_destroy")
def sys__ksem_destroy(l: Lwp, a, retval: list[int]) -> int:
    error, ks, fd = ksem_get(l, a.id)
    if error:
        return error
    assert ks is not None
    if ks.ks_name is not None:
        return Errno.EINVAL                 # only for unnamed semaphores
    if ks.ks_waiters:
        return Errno.EBUSY
    if fd == -1:                            # a pshared id
        if ks.ks_pshared_proc is not l.l_proc:
            return Errno.EINVAL
        fd = ks.ks_pshared_fd
        _state(l.l_proc.k).pshared.pop(ks.ks_pshared_id, None)
        if fd_getfile(l.l_proc, fd) is None:
            return 0
    return fd_close(l.l_proc, fd)


# -- post, wait, getvalue ------------------------------------------------------------------
@syscall(251, "_ksem_post")
def sys__ksem_post(l: Lwp, a, retval: list[int]) -> int:
    error, ks, _ = ksem_get(l, a.id)
    if error:
        return error
    assert ks is not None
    if ks.ks_value == SEM_VALUE_MAX:
        return Errno.EOVERFLOW
    ks.ks_value += 1
    if ks.ks_waiters:
        sleepq_wake(l.l_proc.k, ("ksem", id(ks)))       # cv_broadcast
    return 0


def do_ksem_wait(l: Lwp, ident: int, try_p: bool, abstime: tuple[int, int] | None
                 ) -> Generator[str, int, int]:
    from .kern_time import MAXTIMO_NS, ts2timo
    k = l.l_proc.k
    error, ks, _ = ksem_get(l, ident)
    if error:
        return error
    assert ks is not None
    while ks.ks_value == 0:
        if try_p:
            return Errno.EAGAIN
        deadline = None
        if abstime is not None:
            error, rel, _ = ts2timo(l, CLOCK_REALTIME, TIMER_ABSTIME, abstime, False)
            if error:
                return error
            deadline = k.clock.monotonic_ns() + min(rel[0] * 10**9 + rel[1], MAXTIMO_NS)
        ks.ks_waiters += 1
        sleepq_enqueue(k, l, ("ksem", id(ks)), "psem", sleep_syncobj, True)
        error = yield from sleepq_block(k, l, None, deadline)
        ks.ks_waiters -= 1
        if error:
            return error
    ks.ks_value -= 1
    return 0


@syscall(252, "_ksem_wait")
def sys__ksem_wait(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from do_ksem_wait(l, a.id, False, None))


@syscall(253, "_ksem_trywait")
def sys__ksem_trywait(l: Lwp, a, retval: list[int]) -> Generator:
    return (yield from do_ksem_wait(l, a.id, True, None))


@syscall(256, "_ksem_timedwait")
def sys__ksem_timedwait(l: Lwp, a, retval: list[int]) -> Generator:
    ts = copyin_timespec(l, a.abstime)
    if isinstance(ts, int):
        return ts
    sec, nsec = ts
    if sec < 0 or nsec < 0 or nsec >= 10**9:
        return Errno.EINVAL
    error = yield from do_ksem_wait(l, a.id, False, ts)
    return Errno.ETIMEDOUT if error == Errno.EWOULDBLOCK else error


@syscall(254, "_ksem_getvalue")
def sys__ksem_getvalue(l: Lwp, a, retval: list[int]) -> int:
    error, ks, _ = ksem_get(l, a.id)
    if error:
        return error
    assert ks is not None
    return l.l_proc.p_vmspace.copyout(ks.ks_value.to_bytes(4, "little"), a.value)
