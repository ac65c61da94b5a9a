"""Restartable atomic sequences (NetBSD's sys/kern/kern_ras.c): rasctl(2)
with RAS_INSTALL, RAS_PURGE and RAS_PURGE_ALL, and the restart itself.

A process registers address ranges [start, start + len) of its code. When an
LWP of the process is switched onto a CPU while its user PC lies strictly
inside a registered range, its PC is moved back to the range's start
(ras_lookup, called from NetBSD's cpu_switchto on every port nbemu emulates:
all four define __HAVE_RAS), so the sequence re-runs from the beginning as if
it had never been interrupted.

nbemu does the same in Kernel.switch_in (ras_switch_in below): an LWP that
comes off a run queue onto a vCPU has its saved PC checked. Preemption in
nbemu happens only between translated blocks, and a sequence of a few
instructions can span two blocks (a compare-and-branch ends one), so an LWP
can be preempted inside one: the restart is what makes that safe, exactly as
on NetBSD. As on NetBSD the guarantee is a uniprocessor one: an LWP that keeps
its vCPU across a turn boundary is not restarted, and LWPs on other vCPUs are
not excluded (libc and libpthread use RAS only when hw.ncpu is 1).
"""
from __future__ import annotations

from .errno import Errno
from .lwp import Lwp, Proc
from .table import syscall

RAS_INSTALL, RAS_PURGE, RAS_PURGE_ALL = 0, 1, 2
RAS_PER_PROC = 16                   # kern_ras.c ras_per_proc
VM_MIN_ADDRESS = 0


def _raslist(p: Proc) -> list[tuple[int, int]]:
    return p.p_raslist


def ras_lookup(p: Proc, addr: int) -> int:
    """The start of the sequence addr is strictly inside, or -1."""
    for start, end in p.p_raslist:
        if start < addr < end:
            return start
    return -1


def ras_switch_in(k, l: Lwp) -> None:
    """cpu_switchto's RAS check for l, about to run (its context is saved)."""
    pc_reg = k.abi.pc_reg
    pc = k.platform.regs_get(l, (pc_reg,))[0]
    start = ras_lookup(l.l_proc, pc)
    if start != -1:
        k.platform.regs_set(l, (pc_reg,), (start,))
        k.event("ras_restart", l, pc=pc, start=start)


def ras_install(p: Proc, addr: int, length: int) -> int:
    maxuser = p.k.abi.vm_maxuser_address
    if length == 0:
        return Errno.EINVAL
    if addr < VM_MIN_ADDRESS or addr > maxuser:
        return Errno.EINVAL
    if length > maxuser - addr:
        return Errno.EINVAL
    end = addr + length
    lst = _raslist(p)
    nras = 0
    for start, e in lst:
        nras += 1
        if nras >= RAS_PER_PROC:
            return Errno.EINVAL
        if addr < e and end > start:
            return Errno.EEXIST
    lst.insert(0, (addr, end))
    return 0


def ras_purge(p: Proc, addr: int, length: int) -> int:
    lst = _raslist(p)
    try:
        lst.remove((addr, addr + length))
    except ValueError:
        return Errno.ESRCH
    return 0


@syscall(343, "rasctl")
def sys_rasctl(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    if a.op == RAS_INSTALL:
        return ras_install(p, a.addr, a.len)
    if a.op == RAS_PURGE:
        return ras_purge(p, a.addr, a.len)
    if a.op == RAS_PURGE_ALL:
        _raslist(p).clear()
        return 0
    return Errno.EINVAL
