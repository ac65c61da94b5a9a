"""Context switches (NetBSD's kern_synch.c): mi_switch, nextlwp, preempt, yield.

On nbemu a vCPU runs one LWP at a time (ci_curlwp) and the run loop
(emu/machine.py) asks the kernel which LWP runs next. mi_switch() is in
two halves here because the host thread, not the LWP, does the switch:

- mi_switch(k, l): l gives up its CPU because it is about to sleep, stop,
  suspend or exit (its caller has set, or is about to set, its new state).
  The CPU is free, the LWP's lwpctl says LWPCTL_CPU_NONE, and the engine
  stops after the current trap.
- nextlwp(k, ci): the run loop finds ci free and puts the next runnable LWP
  on it (LSONPROC), from ci's run queue or stolen from another CPU.
- preempt(k, ci): the time slice of ci's LWP ended while others queue on ci;
  it goes back behind them (LSRUN) and counts a preemption in lc_pctr.
- yield_(l): sched_yield()'s yield(): l goes behind the LWPs queued on its
  CPU, and the host's turn on this vCPU ends, so an LWP spinning on
  sched_yield() lets the other vCPUs' LWPs run at once instead of after a
  whole time slice.

Calling context: the caller runs in the kernel on behalf of the LWP on ci
(or of the run loop, for nextlwp and preempt); nothing else runs meanwhile.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .kern_lwp import LWPCTL_CPU_NONE, lwpctl_write
from .kern_runq import CpuInfo
from .lwp import LSONPROC, LSRUN, Lwp

if TYPE_CHECKING:
    from .kernel import Kernel


def mi_switch(k: "Kernel", l: Lwp) -> None:
    """l leaves its CPU (it is about to sleep, stop, suspend or exit)."""
    ci = l.l_cpu
    if ci is not None and ci.ci_curlwp is l:
        ci.ci_curlwp = None
        if l.l_lwpctl:
            lwpctl_write(l, LWPCTL_CPU_NONE)
        k.platform.request_stop()


def nextlwp(k: "Kernel", ci: CpuInfo) -> Lwp | None:
    """Put the next runnable LWP on the free CPU ci (LSONPROC)."""
    assert ci.ci_curlwp is None
    l = k.runq.sched_nextlwp(ci)
    if l is None:
        return None
    cpu_switchto(k, ci, l)
    return l


def cpu_switchto(k: "Kernel", ci: CpuInfo, l: Lwp) -> None:
    """Runnable l goes on the free CPU ci (LSONPROC): nextlwp's, and the
    machine's native park path's (sys_lwp.lwp_park_native_ran)."""
    l.set_stat(LSONPROC)
    l.l_cpu = ci
    l.l_ticks = 0
    ci.ci_curlwp = l
    ci.ci_nswitch += 1
    if l.l_lwpctl:
        lwpctl_write(l, ci.ci_index)
    if k.listeners:
        k.event("run", l, cpu=ci.ci_index)


def preempt(k: "Kernel", ci: CpuInfo) -> bool:
    """Time-slice expiry of ci's LWP: requeue it behind its peers (preempt())."""
    l = ci.ci_curlwp
    if l is None or ci.spc_count == 0:
        return False
    l.set_stat(LSRUN)
    ci.ci_curlwp = None
    l.l_pctr += 1
    if l.l_lwpctl:
        lwpctl_write(l, LWPCTL_CPU_NONE)
    k.event("preempt", l, cpu=ci.ci_index)
    k.runq.sched_enqueue(l, ci)
    return True


def yield_(l: Lwp) -> None:
    """yield() (a Python keyword): l goes behind the LWPs queued on its CPU, if
    any; the engine stops either way."""
    k = l.l_proc.k
    ci = l.l_cpu
    if ci is not None and ci.ci_curlwp is l and ci.spc_count:
        ci.ci_curlwp = None
        l.set_stat(LSRUN)
        if l.l_lwpctl:
            lwpctl_write(l, LWPCTL_CPU_NONE)
        k.event("yield", l, cpu=ci.ci_index)
        k.runq.sched_enqueue(l, ci)
    k.platform.request_stop()
