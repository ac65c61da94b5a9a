"""Scheduler system calls (NetBSD's sys/kern/sys_sched.c): _sched_setparam,
_sched_getparam, _sched_setaffinity, _sched_getaffinity, sched_yield and
_sched_protect (the priority-ceiling call of PTHREAD_PRIO_PROTECT mutexes).

Model
-----
Each LWP has a scheduling class (l_class: SCHED_OTHER, SCHED_FIFO, SCHED_RR)
and NetBSD's kernel priority in that class (l_schedprio): SCHED_OTHER threads
live in PRI_USER..MAXPRI_USER (0..63) and start where NetBSD 10's SCHED_4BSD
resetpriority() puts a fresh thread of nice 0 (PRI_KERNEL - 1 - NZERO = 43);
real-time threads live in PRI_USER_RT + 0..63. The user sees priorities
relative to their class (do_sched_getparam subtracts PRI_USER or PRI_USER_RT).

nbemu's run queues run every user LWP at one level (kern_runq.NPRI), so the
class and priority are bookkeeping that the calls report and kauth checks; they
do not reorder the run queues. l_priority (the run-queue index) is untouched.

Affinity is a per-LWP CPU set (l_affinity: a bitmask of CPU indices, LW_AFFINITY
when set), stored and reported; sched_takecpu does not consult it (nbemu's vCPUs
are interchangeable host turns). The size rules are kcpuset_copyin/copyout's: a
user buffer larger than the kernel's set (kc_bitsize: MAXCPUS rounded up to 32
bits, in bytes: 32 on amd64/aarch64, 4 on i386/earm) is EINVAL; a smaller one
is copied partially.

Credentials (kauth): nbemu's guest is an unprivileged user (kern_prot.py), so
what secmodel_suser grants only to root is refused: real-time classes unless
the LWP already has one, raising a priority (EPERM, from sys_sched.c's
sched_listener_cb), and setting affinity (EPERM) -- unless the kernel config
enables secmodel_extensions' user_set_cpu_affinity. Tests may set
k.config["suser"] to take root's paths.
"""
from __future__ import annotations

import struct

from .errno import Errno
from .kern_prot import kauth_suser
from .kern_synch import yield_
from .lwp import LSIDL, LSZOMB, Lwp, Proc
from .table import syscall

# <sys/sched.h>
SCHED_NONE, SCHED_OTHER, SCHED_FIFO, SCHED_RR = -1, 0, 1, 2
# <sys/param.h>
SCHED_PRI_MIN, SCHED_PRI_MAX = 0, 63
PRI_NONE = -1
PRI_USER = 0
MAXPRI_USER = 63
PRI_KERNEL = 64
PRI_USER_RT = 128
NZERO = 20
PRI_DEFAULT_OTHER = PRI_KERNEL - 1 - NZERO     # SCHED_4BSD resetpriority(), estcpu 0

SCHED_PARAM = struct.Struct("<i")              # struct sched_param { int sched_priority; }


# -- per-LWP state, with NetBSD's defaults -----------------------------------------
def l_class(l: Lwp) -> int:
    return l.l_class


def l_schedprio(l: Lwp) -> int:
    return l.l_schedprio if l.l_schedprio >= 0 else PRI_DEFAULT_OTHER


def kc_bitsize(abi) -> int:
    """Bytes of a kernel CPU set: KC_MAXCPUS (MAXCPUS rounded up to 32) / 8."""
    maxcpus = abi.maxcpus
    return ((maxcpus + 31) // 32) * 4


def _find_proc(l: Lwp, pid: int) -> Proc | None:
    """proc_find(pid), pid 0 meaning the caller's: any live process of the guest."""
    p = l.l_proc
    if pid in (0, p.p_pid):
        return p
    from .kern_proc import pfind
    return pfind(p.k, pid)


def lwp_find2(l: Lwp, pid: int, lid: int) -> Lwp | None:
    """kern_lwp.c lwp_find2(): the LWP lid of process pid (0: ours); lid 0 is
    LIST_FIRST(&p->p_lwps), the most recently created LWP. lwp_find() hides
    LWPs being created and zombies."""
    p = _find_proc(l, pid)
    if p is None:
        return None
    if lid != 0:
        t = p.lwp_find(lid)
        if t is None or t.l_stat in (LSIDL, LSZOMB):
            return None
        return t
    return next(reversed(p.p_lwps.values()), None)


def convert_pri(t: Lwp, policy: int, pri: int) -> int:
    """sys_sched.c convert_pri(): the kernel priority for class `policy`."""
    if pri != PRI_NONE:
        return PRI_USER_RT + pri
    cls = l_class(t)
    if cls == policy:
        return l_schedprio(t)
    if cls == SCHED_OTHER:
        return PRI_USER_RT                 # time-sharing -> real-time
    if policy == SCHED_OTHER:
        return l_schedprio(t) - PRI_USER_RT  # real-time -> time-sharing
    return l_schedprio(t)                  # real-time -> real-time


def _may_setparam(p: Proc, t: Lwp, policy: int, kpri: int) -> bool:
    """kauth KAUTH_PROCESS_SCHEDULER_SETPARAM: root, or (sched_listener_cb)
    the owner keeping its class or going to SCHED_OTHER, never raising."""
    if kauth_suser(p):
        return True
    return ((policy == l_class(t) or policy not in (SCHED_FIFO, SCHED_RR))
            and kpri <= l_schedprio(t))


def do_sched_setparam(l: Lwp, pid: int, lid: int, policy: int, pri: int) -> int:
    if pri == PRI_NONE and policy == SCHED_NONE:
        return 0
    if policy != SCHED_NONE and not SCHED_OTHER <= policy <= SCHED_RR:
        return Errno.EINVAL
    if pri != PRI_NONE and not SCHED_PRI_MIN <= pri <= SCHED_PRI_MAX:
        return Errno.EINVAL
    p = _find_proc(l, pid)
    if p is None:
        return Errno.ESRCH
    lcnt = 0
    error = 0
    # LIST_FOREACH over p_lwps: newest first, zombies included.
    for t in reversed(list(p.p_lwps.values())):
        if lid and lid != t.l_lid:
            continue
        lcnt += 1
        lpolicy = l_class(t) if policy == SCHED_NONE else policy
        if lpolicy == SCHED_OTHER and pri != PRI_NONE:
            error = Errno.EINVAL
            break
        kpri = convert_pri(t, lpolicy, pri)
        if not _may_setparam(p, t, lpolicy, kpri):
            error = Errno.EPERM
            break
        t.l_class = lpolicy
        t.l_schedprio = kpri
    return Errno.ESRCH if lcnt == 0 else error


@syscall(346, "_sched_setparam")
def sys__sched_setparam(l: Lwp, a, retval: list[int]) -> int:
    data = l.l_proc.p_vmspace.copyin(a.params, SCHED_PARAM.size)
    if isinstance(data, int):
        return data
    return do_sched_setparam(l, a.pid, a.lid, a.policy, SCHED_PARAM.unpack(data)[0])


def do_sched_getparam(l: Lwp, pid: int, lid: int) -> tuple[int, int, int]:
    """(errno, policy, user priority)."""
    t = lwp_find2(l, pid, lid)
    if t is None:
        return Errno.ESRCH, 0, 0
    policy = l_class(t)
    pri = l_schedprio(t)
    pri -= PRI_USER if policy == SCHED_OTHER else PRI_USER_RT
    return 0, policy, pri


@syscall(347, "_sched_getparam")
def sys__sched_getparam(l: Lwp, a, retval: list[int]) -> int:
    error, policy, pri = do_sched_getparam(l, a.pid, a.lid)
    if error:
        return error
    vm = l.l_proc.p_vmspace
    error = vm.copyout(SCHED_PARAM.pack(pri), a.params)
    if not error and a.policy:
        error = vm.copyout(struct.pack("<i", policy), a.policy)
    return error


# -- affinity ---------------------------------------------------------------------
def _genkcpuset(l: Lwp, uva: int, size: int) -> int:
    """genkcpuset() + kcpuset_copyin(): the set as an int, or an errno (< 0)."""
    if size > kc_bitsize(l.l_proc.k.abi):
        return -Errno.EINVAL
    data = l.l_proc.p_vmspace.copyin(uva, size) if size else b""
    if isinstance(data, int):
        return -data
    return int.from_bytes(data, "little")


@syscall(348, "_sched_setaffinity")
def sys__sched_setaffinity(l: Lwp, a, retval: list[int]) -> int:
    kset = _genkcpuset(l, a.cpuset, a.size)
    if kset < 0:
        return -kset
    k = l.l_proc.k
    # The CPU walk of sys__sched_setaffinity: no processor sets and no offline
    # CPUs on nbemu (no EPERM from there); a set naming no existing CPU is
    # the empty set (the affinity is cleared). Bits of absent CPUs are kept.
    if not kset & ((1 << k.ncpu) - 1):
        kset = 0
    p = _find_proc(l, a.pid)
    if p is None:
        return Errno.ESRCH
    # KAUTH_PROCESS_SCHEDULER_SETAFFINITY: secmodel_suser (root), or
    # secmodel_extensions' security.models.extensions.user_set_cpu_affinity.
    if not (kauth_suser(p) or k.config.get("user_set_cpu_affinity")):
        return Errno.EPERM
    lcnt = 0
    for t in reversed(list(p.p_lwps.values())):
        if a.lid and a.lid != t.l_lid:
            continue
        if t.l_stat == LSZOMB:
            continue
        t.l_affinity = kset or None
        lcnt += 1
    return Errno.ESRCH if lcnt == 0 else 0


@syscall(349, "_sched_getaffinity")
def sys__sched_getaffinity(l: Lwp, a, retval: list[int]) -> int:
    kset = _genkcpuset(l, a.cpuset, a.size)
    if kset < 0:
        return -kset
    t = lwp_find2(l, a.pid, a.lid)
    if t is None:
        return Errno.ESRCH
    aff = t.l_affinity or 0
    if not a.size:
        return 0
    return l.l_proc.p_vmspace.copyout(aff.to_bytes(kc_bitsize(l.l_proc.k.abi), "little")
                                      [:a.size], a.cpuset)


# -- PTHREAD_PRIO_PROTECT -----------------------------------------------------------
@syscall(350, "sched_yield")
def sys_sched_yield(l: Lwp, a, retval: list[int]) -> int:
    yield_(l)
    return 0


@syscall(351, "_sched_protect")
def sys__sched_protect(l: Lwp, a, retval: list[int]) -> int:
    """A simplified priority-ceiling protocol, as NetBSD's: a priority in
    SCHED_PRI_MIN..MAX takes a protect level (the LWP's protect priority
    becomes the highest ceiling it holds); -1 drops one level (the priority
    falls back when the last is dropped); -2 asks for the current ceiling
    (ENOENT when none is held). The ceiling does not change the run queues
    (see the module comment), so no permission is needed to take it."""
    pri = a.priority
    depth = l.l_protectdepth
    cur = l.l_protectprio
    if pri == -2:
        if cur == -1:
            return Errno.ENOENT
        retval[0] = cur - PRI_USER_RT
        return 0
    if pri == -1:
        if depth == 0:
            return Errno.EINVAL
        depth -= 1
        l.l_protectdepth = depth
        if depth == 0:
            l.l_protectprio = -1
        return 0
    if not SCHED_PRI_MIN <= pri <= SCHED_PRI_MAX:
        return Errno.EINVAL
    l.l_protectprio = max(cur, PRI_USER_RT + pri)
    l.l_protectdepth = depth + 1
    return 0
