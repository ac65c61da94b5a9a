"""Voluntary switches (NetBSD's kern_synch.c): sched_yield.

On nbemu a yield also ends the host's turn on this vCPU, so an LWP spinning on
sched_yield() lets the LWPs of the other vCPUs run at once instead of after a
whole time slice.
"""
from __future__ import annotations

from .lwp import LSRUN, Lwp
from .table import syscall


@syscall(350, "sched_yield")
def sys_sched_yield(l: Lwp, a, retval: list[int]) -> int:
    k = l.l_proc.k
    ci = l.l_cpu
    if ci is not None and ci.ci_curlwp is l and ci.spc_count:
        ci.ci_curlwp = None
        l.set_stat(LSRUN)
        k.lwpctl_update(l, -1)
        k.event("yield", l, cpu=ci.ci_index)
        k.runq.sched_enqueue(l, ci)
    k.platform.request_stop()
    return 0
