"""Process creation (NetBSD's kern_fork.c): fork, vfork.

fork1() makes the child a copy of the parent as NetBSD does: a new pid, the
calling LWP only (its registers, signal mask, TLS pointer and signal stack),
a copy of the address space (uvmspace_fork: shared mappings stay shared), a
copy of the descriptor table whose Files (and so offsets) are shared, the
signal dispositions, limits, cwd, umask, credentials, process group and
session. Interval timers, pending signals and lwpctl pages are not inherited.
The child returns from the trap with (0, 1) -- its return registers say
"child" (md_child_return) -- and the parent with (child pid, 0).

vfork (__vfork14) shares the parent's address space until the child execs or
exits; the parent sleeps uninterruptibly on the child until then.
"""
from __future__ import annotations

from typing import Generator

from .errno import Errno
from .kern_descrip import fd_copy
from .kern_lwp import lwp_create, lwp_start
from .kern_proc import MAXPROC, RLIMIT_NPROC, proc_alloc_pid, proc_enter
from .kern_prot import nprocs_of_uid, proc_cred, proc_pgid, proc_session
from .kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue
from .lwp import LSONPROC, PSL_TRACEFORK, PSL_TRACEVFORK, PSL_TRACEVFORK_DONE, SZOMB, Lwp, Proc
from .sys_ptrace import (PTRACE_FORK, PTRACE_VFORK, PTRACE_VFORK_DONE, ptrace_event,
                         ptrace_fork_child)
from .table import syscall
from .uvm_map import uvmspace_fork
from .vfs_lookup import cwdinit

FORK_PPWAIT = 0x01           # vfork: the parent waits for exec/exit
FORK_SHAREVM = 0x02


def vfork_chan(p: Proc) -> tuple:
    """The wait channel a vfork parent sleeps on (p_vforkcv of the child)."""
    return ("p_vforkcv", p.p_pid)


def fork1(l1: Lwp, flags: int, retval: list[int]) -> Lwp | int:
    """Create the child process; its one LWP is runnable. An errno, or the
    child's LWP (retval: the child's pid for the parent)."""
    p1 = l1.l_proc
    k = p1.k
    uid = proc_cred(p1).cr_uid
    nproc = p1.p_limits.get(RLIMIT_NPROC, [None])[0]
    # (kauth grants the guest no RLIMIT bypass, whatever its uid: kern_prot.py)
    if len(k.allproc) >= MAXPROC or (nproc is not None and nprocs_of_uid(k, uid) >= nproc):
        return Errno.EAGAIN
    pid = proc_alloc_pid(k)
    if pid < 0:
        return Errno.EAGAIN
    p2 = Proc(pid, p1.p_pid)
    proc_enter(k, p2, p1)
    k.nprocs_created += 1
    k.nprocs_max = max(k.nprocs_max, sum(1 for q in k.allproc.values() if q.p_stat != SZOMB))
    p2.p_start_ns = k.clock.monotonic_ns()
    p2.p_comm, p2.p_path, p2.p_psstrp, p2.p_emul = p1.p_comm, p1.p_path, p1.p_psstrp, p1.p_emul
    cwdinit(p1, p2)
    p2.p_limits = {r: list(v) for r, v in p1.p_limits.items()}
    p2.p_nice, p2.p_cmask = p1.p_nice, p1.p_cmask
    p2.p_raslist = list(p1.p_raslist)
    p2.p_cred, p2.p_pgid, p2.p_session = proc_cred(p1), proc_pgid(p1), proc_session(p1)
    p2.p_sugid = p1.p_sugid
    p2.p_sigacts = dict(p1.p_sigacts)
    p2.p_sigignore = p1.p_sigignore
    p2.p_fd = fd_copy(p1)
    vm1 = p1.p_vmspace
    if flags & FORK_SHAREVM:
        p2.p_vmspace = vm1
        vm1.pmap.users += 1
    else:
        p2.p_vmspace = uvmspace_fork(vm1, k.platform.vmspace_new())
    p2.p_textvp = p1.p_textvp
    l2 = lwp_create(k, l1, p2, 0)
    if isinstance(l2, int):               # (the first LWP is exempt from limits)
        return l2
    l2.l_private = l1.l_private
    l2.l_sigstk = l1.l_sigstk
    l2.l_name = l1.l_name
    k.platform.context_fork(l1, l2)
    k.platform.syscall_return(l2, k.abi.encode_return(k.trapvals, 0, 0, 1))
    k.event("fork", l1, child=pid)
    if flags & FORK_PPWAIT:
        p2.p_vforkwaiting = True
    lwp_start(k, l2, False)
    retval[0], retval[1] = pid, 0
    return l2


@syscall(2, "fork")
def sys_fork(l: Lwp, a, retval: list[int]) -> int:
    r = fork1(l, 0, retval)
    if isinstance(r, int):
        return r
    if ptrace_fork_child(l.l_proc, r.l_proc, PTRACE_FORK):
        # the parent's stop comes at its return (TRAP_CHLD), after the child's
        ptrace_event(l, PSL_TRACEFORK, PTRACE_FORK, r.l_proc.p_pid)
    return 0


def _vfork(l: Lwp, retval: list[int]) -> Generator[str, int, int]:
    r = fork1(l, FORK_PPWAIT | FORK_SHAREVM, retval)
    if isinstance(r, int):
        return r
    p2 = r.l_proc
    k = l.l_proc.k
    if ptrace_fork_child(l.l_proc, p2, PTRACE_VFORK):
        ptrace_event(l, PSL_TRACEVFORK, PTRACE_VFORK, p2.p_pid, now=True)
        if l.l_stat != LSONPROC:
            yield "block"             # stopped for the tracer: goes on from here
    while p2.p_vforkwaiting:
        sleepq_enqueue(k, l, vfork_chan(p2), "ppwait", sleep_syncobj, False)
        yield from sleepq_block(k, l, None)
    k.event("vfork_done", l, child=p2.p_pid)      # (a debugger's vforkdone stop)
    # the parent runs again (PTRACE_VFORK_DONE): it stops at its return
    ptrace_event(l, PSL_TRACEVFORK_DONE, PTRACE_VFORK_DONE, p2.p_pid)
    return 0


@syscall(282, "__vfork14")
def sys___vfork14(l: Lwp, a, retval: list[int]) -> Generator[str, int, int]:
    return _vfork(l, retval)


@syscall(66, "vfork")
def sys_vfork(l: Lwp, a, retval: list[int]) -> Generator[str, int, int]:
    return _vfork(l, retval)
