"""Process exit (NetBSD's kern_exit.c), for the single emulated process."""
from __future__ import annotations

from .errno import Errno
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


# -- wait4 (kern_exit.c do_sys_wait / do_sys_waitid) -------------------------------
WNOHANG, WSTOPPED, WALTSIG, WALLSIG = 0x1, 0x2, 0x4, 0x8
WCONTINUED, WEXITED, WTRAPPED = 0x10, 0x20, 0x40
WNOWAIT, WNOZOMBIE = 0x10000, 0x20000
WSELECTOPTS = WEXITED | WSTOPPED | WCONTINUED | WTRAPPED
WALLOPTS = WNOHANG | WALTSIG | WALLSIG | WNOWAIT | WNOZOMBIE | WSELECTOPTS


def do_sys_wait(l: Lwp, pid: int, options: int) -> int:
    """do_sys_wait() -> do_sys_waitid(): unknown options are EINVAL; then
    find_stopped_child() finds no child at all -- nbemu's process never
    forks -- which is ECHILD whatever the pid and WNOHANG say."""
    options |= WEXITED | WTRAPPED
    if options & ~WALLOPTS:
        return Errno.EINVAL
    return Errno.ECHILD


@syscall(449, "__wait450")
def sys___wait450(l: Lwp, a, retval: list[int]) -> int:
    retval[0] = 0                       # the pid found: none (status untouched)
    return do_sys_wait(l, a.pid, a.options)


@syscall(7, "compat_50_wait4")
def compat_50_sys_wait4(l: Lwp, a, retval: list[int]) -> int:
    retval[0] = 0
    return do_sys_wait(l, a.pid, a.options)
