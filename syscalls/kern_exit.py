"""Process exit (NetBSD's kern_exit.c), for the single emulated process."""
from __future__ import annotations

from .lwp import LSONPROC, LSRUN, LSSLEEP, Lwp
from .table import syscall


def exit1(l: Lwp, status: int, signo: int) -> None:
    """End the process: exit status `status`, or killed by `signo` if non-zero.

    Every LWP leaves its CPU, run queue or sleep queue; the run loop sees
    p_exiting and stops.
    """
    p = l.l_proc
    k = p.k
    if p.p_exiting:
        return
    p.p_exiting = True
    p.p_xstat = status & 0xFF
    p.p_xsig = signo
    k.event("proc_exit", l, status=status, signo=signo)
    for l2 in list(p.p_lwps.values()):
        if l2.l_stat == LSONPROC:
            k.cpu_release(l2)
        elif l2.l_stat == LSRUN and l2.l_cpu is not None:
            try:
                k.runq.sched_dequeue(l2)
            except ValueError:
                pass
        elif l2.l_stat == LSSLEEP and l2.l_sleepq is not None:
            l2.l_sleepq.remove(l2)
            k.callout.stop(l2.l_timeout)
    k.platform.request_stop()


@syscall(1, "exit")
def sys_exit(l: Lwp, a, retval: list[int]) -> int:
    exit1(l, a.rval, 0)
    return 0
