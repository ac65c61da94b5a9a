"""The process table (NetBSD's kern_proc.c): pid allocation, pfind, the
parent/child links, and the limits fork checks.

Every guest process lives in this one kernel (k.allproc). The first process
(k.proc, booted by emu/) is the guest's "init" as far as nbemu is concerned:
its parent is outside the guest (pid 1, no Proc), orphans are reparented to
it... unless it is gone (then to pid 1 outside), and nbemu's status is its
status (the processes that outlive it: emu/survivors.py). Process ids and LWP ids
come from one space, as in NetBSD: a new pid is never an LWP id in use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .lwp import SZOMB, Proc

if TYPE_CHECKING:
    from .kernel import Kernel

PID_MAX = 30000
MAXPROC = 1044               # kern.maxproc: NPROC = 20 + 16 * MAXUSERS (64)
RLIMIT_NPROC = 7


def proc_alloc_pid(k: "Kernel") -> int:
    """The next free pid after the last one given (wrapping at PID_MAX), or -1."""
    pid = k.lastpid
    for _ in range(PID_MAX):
        pid += 1
        if pid >= PID_MAX:
            pid = 2
        if pid in k.allproc or any(pid in p.p_lwps for p in k.allproc.values()):
            continue
        k.lastpid = pid
        return pid
    return -1


def proc_enter(k: "Kernel", p: Proc, parent: Proc | None) -> None:
    """Link a new process into the table and under its parent."""
    p.k = k
    k.allproc[p.p_pid] = p
    k.lastpid = max(k.lastpid, p.p_pid)
    p.p_pptr = parent
    if parent is not None:
        parent.p_children.append(p)
        p.p_ppid = parent.p_pid


def pfind(k: "Kernel", pid: int) -> Proc | None:
    """A live (not zombie) process by pid."""
    p = k.allproc.get(pid)
    if p is None or p.p_stat == SZOMB:
        return None
    return p


def proc_reparent(child: Proc, parent: Proc | None) -> None:
    old = child.p_pptr
    if old is not None and child in old.p_children:
        old.p_children.remove(child)
    child.p_pptr = parent
    child.p_ppid = parent.p_pid if parent is not None else 1
    if parent is not None:
        parent.p_children.append(child)


def proc_free(k: "Kernel", p: Proc) -> None:
    """A reaped zombie leaves the table (proc_free)."""
    k.allproc.pop(p.p_pid, None)
    if p.p_pptr is not None and p in p.p_pptr.p_children:
        p.p_pptr.p_children.remove(p)
    p.p_pptr = None


def wait_chan(p: Proc) -> tuple:
    """The channel a parent's wait sleeps on (p_waitcv of the parent)."""
    return ("p_waitcv", p.p_pid)
