"""LWP life cycle (NetBSD's kern_lwp.c): lwp_create, lwp_start, lwp_exit,
lwp_free, lwp_wait, lwp_suspend / lwp_continue, lwp_unstop, and the lwpctl
block.

Overview
--------
An LWP (struct lwp, syscalls/lwp.py) is a thread of a process: its own
registers (the platform's context), signal mask and pending set, TLS pointer
and name; the address space, descriptors and credentials are the process's.
LWP ids come from the PID space (proc_alloc_lwpid): the first LWP takes the
process's PID, later ones the next id no process or LWP uses. Every LWP owns
a u-area from a bounded kernel arena; creating one beyond maxlwp or
RLIMIT_NTHR is EAGAIN, beyond the arena ENOMEM, as in lwp_create.

Execution states (l_stat, LwpStat)
----------------------------------
  LSIDL        being created (lwp_create); not yet runnable
  LSRUN        runnable, on a CPU's run queue (kern_runq.py)
  LSONPROC     running: ci_curlwp of a vCPU (kern_synch.nextlwp)
  LSSLEEP      on a sleep queue, with a wait channel (kern_sleepq.py)
  LSSTOP       stopped with its process (kern_sig.py: proc_stop)
  LSSUSPENDED  suspended by _lwp_suspend or created LWP_SUSPENDED
  LSZOMB       exited, waiting for _lwp_wait -- or freed at once if detached

State transitions (lwp.py _LEGAL checks each one in Lwp.set_stat)
------------------------------------------------------------------
  LSIDL    -> LSRUN (lwp_start), LSSUSPENDED (LWP_SUSPENDED), LSSTOP (process
              stopping)
  LSRUN    -> LSONPROC (nextlwp), LSSTOP, LSSUSPENDED (lwp_suspend of a
              runnable target)
  LSONPROC -> LSRUN (preempt, yield), LSSLEEP (sleepq_enqueue), LSSTOP and
              LSSUSPENDED (on the way to user mode: userret), LSZOMB (lwp_exit)
  LSSLEEP  -> LSRUN (sleepq_remove: wakeup, timeout, signal, unpark), LSSTOP,
              LSSUSPENDED
  LSSTOP   -> LSRUN (SIGCONT, a tracer's resume, of the process or of this
              LWP alone: lwp_unstop), LSSLEEP (a stopped sleeper continues
              asleep), LSSUSPENDED
  LSSUSPENDED -> LSRUN (lwp_continue), LSSTOP
  LSZOMB   -> (lwp_free removes it from p_lwps)
A request to another LWP (suspend, exit, a signal) is a flag (LW_WSUSPEND,
LW_WEXIT, LW_PENDSIG): the target acts on it itself in userret, on its way
back to user mode (Kernel.userret), as NetBSD's lwp_userret does.

Calling context (what replaces locking)
---------------------------------------
NetBSD guards these fields with p_lock, the LWP's lock and the sleep queue
locks. nbemu's kernel runs on one host thread and a system call is never
interrupted: every function here runs either for the LWP on a vCPU (curl,
LSONPROC, inside its system call or userret) or for the run loop between two
turns, and nothing else runs until it returns or yields. So:
- a function that acts on the calling LWP (lwp_exit, lwp_suspend_self)
  requires curl to be LSONPROC, and leaves its CPU through Kernel.cpu_release;
- a function that acts on another LWP (lwp_suspend, lwp_continue, lwp_free)
  reads the target's state once and acts on it at once: no other LWP can
  change it in between. Only a generator (lwp_wait, the waiting loop of
  sys__lwp_suspend) lets others run, at its `yield from sleepq_block(...)`,
  and looks at the world again after each wakeup, as NetBSD's code re-checks
  after cv_wait;
- lwp_free requires LSZOMB; lwp_start requires LSIDL (set_stat asserts both
  ways).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Generator

import struct

from . import upcall
from .errno import Errno
from .host_mem import HostChunk, host_view
from .kern_resource import RLIMIT_NTHR, proc_addrtime
from .kern_sig import proc_stopping, unstop_lwp
from .kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue, sleepq_remove, sleepq_wake
from .lwp import (LPR_DETACHED, LSIDL, LSONPROC, LSRUN, LSSLEEP, LSSTOP, LSSUSPENDED, LSZOMB,
                  LWP_DETACHED, PS_STOPPING, SACTIVE, Lwp, LwpFlag, Proc)
from .uvm_mmap import map_kernel_page

if TYPE_CHECKING:
    from .kernel import Kernel

PID_MAX = 30000
UAREA_CHUNK_SLOTS = 64     # u-areas per host mapping of the arena


class UareaArena:
    """The kernel memory u-areas come from (uvm_uarea_alloc / uvm_uarea_free):
    USPACE-sized slots (`usize`, the port's Abi.uspace) of host memory, in
    anonymous host mappings of UAREA_CHUNK_SLOTS slots made as they are needed,
    never more than `size` bytes in all (the kernel's share of the guest's RAM,
    `-m`). A freed slot is reused first. A slot's first bytes hold its LWP's
    saved user context while the LWP is off its CPU (the pcb: emu/ saves and
    loads it there, in the port's layout, Abi.uarea_regs); the rest is the
    kernel stack a real kernel would have, never touched, so it costs no host
    memory (MAP_NORESERVE)."""

    __slots__ = ("size", "usize", "used", "_chunks", "_free", "_next", "_end")

    def __init__(self, size: int, usize: int) -> None:
        self.size = size
        self.usize = usize
        self.used = 0
        self._chunks: list[HostChunk] = []
        self._free: list[int] = []      # host addresses of freed slots
        self._next = 0                  # the next never-used slot of the last chunk
        self._end = 0

    def alloc(self) -> int:
        """A u-area's host address; 0 when the arena is exhausted (ENOMEM)."""
        usize = self.usize
        if self.used + usize > self.size:
            return 0
        self.used += usize
        if self._free:
            return self._free.pop()
        if self._next == self._end:
            mapped = sum(c.size for c in self._chunks)
            n = min(UAREA_CHUNK_SLOTS, (self.size - mapped) // usize)
            c = HostChunk(n * usize)
            self._chunks.append(c)
            self._next, self._end = c.addr, c.addr + c.size
        addr = self._next
        self._next += usize
        return addr

    def free(self, addr: int) -> None:
        self._free.append(addr)
        self.used -= self.usize

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:       # interpreter shutdown: libc's binding may be gone already
            pass

    def release(self) -> None:
        """The kernel ends: give the host memory back."""
        for c in self._chunks:
            c.release()
        self._chunks.clear()
        self._free.clear()
        self._next = self._end = self.used = 0


def uarea_free(k: "Kernel", l: Lwp) -> None:
    """uvm_uarea_free(): l's u-area goes back to the arena (lwp_free, exit, exec)."""
    if l.l_uarea:
        k.uarea_arena.free(l.l_uarea)
        l.l_uarea = 0


def alloc_lid(k: "Kernel", p: Proc) -> int:
    """proc_alloc_lwpid(): the PID for the first LWP, then free ids after it
    that no process uses as its pid (LWP ids and pids share one space)."""
    if p.p_pid not in p.p_lwps and not p.p_lwps:
        return p.p_pid
    lid = p.p_nlwpid
    for _ in range(PID_MAX):
        lid += 1
        if lid >= PID_MAX:
            lid = 2
        if lid not in p.p_lwps and lid != p.p_pid and lid not in k.allproc:
            p.p_nlwpid = lid
            return lid
    return -1


def lwp_create(k: "Kernel", l1: Lwp | None, p: Proc, flags: int) -> Lwp | int:
    """Create an LWP in p (LSIDL). Returns the LWP or an errno.

    Limits as NetBSD 10's lwp_create/do_lwp_create: the first LWP is exempt;
    the others (zombies included, until freed) may number RLIMIT_NTHR's soft
    limit -> EAGAIN beyond it or beyond maxlwp; no u-area left -> ENOMEM.
    """
    if p.p_nlwps != 0:
        # dosetrlimit() keeps RLIMIT_NTHR within kern.maxlwp; a site limit
        # (k.config["rlimits"]) is held to it here.
        maxlwp = k.maxlwp
        nthr = min(p.p_limits.get(RLIMIT_NTHR, [maxlwp])[0], maxlwp)
        count = p.p_nlwps                      # the other LWPs, with the new one
        if count > nthr:
            return Errno.EAGAIN
    arena = k.uarea_arena
    uarea = arena.alloc()
    if not uarea:
        return Errno.ENOMEM
    lid = alloc_lid(k, p)
    if lid < 0:
        arena.free(uarea)
        return Errno.EAGAIN
    l2 = Lwp(p, lid)
    l2.l_uarea = uarea
    if flags & LWP_DETACHED:
        l2.l_prflag |= LPR_DETACHED
        p.p_ndlwps += 1
    if l1 is not None:
        l2.l_sigmask = l1.l_sigmask
        l2.l_cpu = l1.l_cpu
        l2.l_created_by = l1.l_lid
    p.p_lwps[lid] = l2
    p.p_nlwps += 1
    k.nlwps_created += 1
    k.nlwps_max = max(k.nlwps_max, p.p_nlwps - p.p_nzlwps)
    if k.listeners:                 # (events cost nothing when nobody listens)
        k.event("create", l2, parent=l1.l_lid if l1 else 0)
    return l2


def lwp_start(k: "Kernel", l2: Lwp, suspended: bool) -> None:
    """Make a new LWP runnable, as lwp_start() does: suspended with
    LWP_SUSPENDED, stopped when its process is stopping or stopped."""
    p = l2.l_proc
    if suspended:
        l2.set_stat(LSSUSPENDED)
        return
    if proc_stopping(p):
        l2.set_stat(LSSTOP)
        return
    p.p_nrlwps += 1
    k.setrunnable(l2)           # LSIDL -> LSRUN, and a vCPU notices the new work


def lwp_exit(l: Lwp) -> None:
    """The running LWP l exits. The last one ends the process (exit1)."""
    p = l.l_proc
    k = p.k
    # Count LWPs that will remain; if none (zombies aside), exit the process.
    live = p.p_nlwps - p.p_nzlwps
    if live <= 1 and not p.p_exiting:
        upcall.exit1(l, 0, 0)
        return
    if k.listeners:
        k.event("exit", l)
    lwpctl_exit(l)
    k.cpu_release(l)
    p.p_nrlwps -= 1
    l.l_flag &= ~LwpFlag.LW_WEXIT
    l.set_stat(LSZOMB)
    p.p_nzlwps += 1
    k.platform.context_free(l)
    if l.l_prflag & LPR_DETACHED:
        lwp_free(k, l)
    # Wake _lwp_wait()ers: they re-check for zombies and deadlock.
    sleepq_wake(k, p.p_lwpcv)


def lwp_free(k: "Kernel", l: Lwp) -> None:
    """Release a zombie LWP (lwp_free)."""
    p = l.l_proc
    assert l.l_stat == LSZOMB
    if p.p_lwps.get(l.l_lid) is l:
        proc_addrtime(l)
        del p.p_lwps[l.l_lid]
        p.p_nlwps -= 1
        p.p_nzlwps -= 1
        if l.l_prflag & LPR_DETACHED:
            p.p_ndlwps -= 1
        uarea_free(k, l)
        if k.listeners:
            k.event("free", l)
        # Have LWPs sleeping in lwp_wait() re-check for deadlock (lwp_free).
        sleepq_wake(k, p.p_lwpcv)


def lwp_wait(l: Lwp, lid: int, departed: list[int], exiting: bool = False
             ) -> Generator[str, int, int]:
    """lwp_wait(): collect zombie `lid` (0: any non-detached LWP), as NetBSD 10's
    kern_lwp.c lwp_wait (rev. 1.250) does, branch by branch:

    - lid != 0: ESRCH if no such LWP (zombies included), EINVAL if it is detached;
      the first waiter marks itself in the target's l_waiter, later waiters for
      the same lid sleep too, and whoever runs first collects it (the others then
      find it gone: ESRCH);
    - EDEADLK if the target is waiting for us (l_waitingfor), which also catches
      an LWP waiting for itself;
    - lid == 0: detached LWPs and LWPs that already have a waiter are not
      collected (the latter still count as found);
    - ESRCH if nothing was found; EDEADLK if every LWP of the process (zombies
      and suspended ones included: p_nlwps) is in lwp_wait;
    - otherwise sleep on p_lwpcv, interruptibly, and look again when woken (an
      LWP exited, was collected or detached).  On the way out without a zombie,
      drop our l_waiter mark and wake the other waiters so they re-check.
    """
    p = l.l_proc
    k = p.k
    curlid = l.l_lid
    p.p_nlwpwait += 1
    l.l_waitingfor = lid
    error = 0
    try:
        while True:
            nfound = 0
            error = 0
            if lid != 0:
                l2 = p.lwp_find(lid)
                if l2 is None:
                    error = Errno.ESRCH
                    break
                if l2.l_prflag & LPR_DETACHED:
                    error = Errno.EINVAL
                    break
                cands: list[Lwp] = [l2]
            else:
                cands = list(p.p_lwps.values())
            for l2 in cands:
                if l2.l_lid == lid and l2.l_waitingfor == curlid:
                    error = Errno.EDEADLK
                    break
                if l2 is l:
                    continue
                if l2.l_prflag & LPR_DETACHED:
                    nfound += exiting
                    continue
                if lid != 0:
                    if l2.l_waiter == 0:
                        l2.l_waiter = curlid
                elif l2.l_waiter != 0:
                    nfound += 1     # somebody else waits for it specifically
                    continue
                nfound += 1
                if l2.l_stat != LSZOMB:
                    continue
                l.l_waitingfor = 0
                l2.l_waiter = 0
                p.p_nlwpwait -= 1
                departed.append(l2.l_lid)
                lwp_free(k, l2)
                return 0
            if error:
                break
            if nfound == 0:
                error = Errno.ESRCH
                break
            if exiting:
                # exit1(): a short timed wait, then the caller looks again.
                sleepq_enqueue(k, l, p.p_lwpcv, "lwpwait", sleep_syncobj, False)
                error = yield from sleepq_block(k, l, 10_000_000)
                break
            if p.p_nlwpwait == p.p_nlwps:
                error = Errno.EDEADLK
                break
            sleepq_enqueue(k, l, p.p_lwpcv, "lwpwait", sleep_syncobj, True)
            error = yield from sleepq_block(k, l, None)
            if error:
                break
    except GeneratorExit:           # the process ended while we slept
        p.p_nlwpwait -= 1
        l.l_waitingfor = 0
        raise
    if lid != 0:
        l2 = p.lwp_find(lid)
        if l2 is not None and l2.l_waiter == curlid:
            l2.l_waiter = 0
    p.p_nlwpwait -= 1
    l.l_waitingfor = 0
    sleepq_wake(k, p.p_lwpcv)
    return error


def lwp_suspend(curl: Lwp, t: Lwp) -> int:
    """lwp_suspend(): ask t (of curl's process) to suspend. EDEADLK when curl
    is the process's last running LWP suspending itself, or is exiting. An
    LWP that is runnable is suspended at once; one sleeping interruptibly is
    kicked out of its sleep with no error (a spurious wakeup: _lwp_park
    returns 0 once continued, _lwp_wait sleeps again) and suspends on its way
    to user mode, as t itself or one running on another vCPU does (userret).
    The caller waits for a target not yet LSSUSPENDED (sys__lwp_suspend)."""
    p = curl.l_proc
    k = p.k
    if t is curl and p.p_nrlwps == 1:
        return Errno.EDEADLK
    if curl.l_flag & (LwpFlag.LW_WEXIT | LwpFlag.LW_WCORE):
        return Errno.EDEADLK
    if t.l_stat == LSSUSPENDED:
        return 0
    t.l_flag |= LwpFlag.LW_WSUSPEND
    t.npark_end()
    if t is curl:
        return 0               # takes effect in userret
    if t.l_stat == LSSLEEP and t.l_flag & LwpFlag.LW_SINTR:
        # setrunnable() -> lwp_unsleep(): out of its sleep with no error
        sleepq_remove(k, t, 0)
    elif t.l_stat == LSRUN:
        k.runq.sched_dequeue(t)
        t.l_flag &= ~LwpFlag.LW_WSUSPEND
        p.p_nrlwps -= 1
        t.set_stat(LSSUSPENDED)
        k.event("suspend", t)
    return 0


def lwp_suspend_self(l: Lwp) -> None:
    """Apply a pending LW_WSUSPEND on the way to user mode."""
    p = l.l_proc
    k = p.k
    l.l_flag &= ~LwpFlag.LW_WSUSPEND
    k.cpu_release(l)
    p.p_nrlwps -= 1
    l.set_stat(LSSUSPENDED)
    k.event("suspend", l)
    sleepq_wake(k, p.p_lwpcv)


def lwp_continue(l: Lwp) -> None:
    """lwp_continue(): resume a suspended LWP."""
    p = l.l_proc
    l.l_flag &= ~LwpFlag.LW_WSUSPEND
    if l.l_stat == LSSUSPENDED:
        p.p_nrlwps += 1
        p.k.setrunnable(l)
        p.k.event("continue", l)


# -- lwpctl (kern_lwp.c lwp_ctl_alloc, lwp_ctl_free; the updates of mi_switch) ----------
LWPCTL_FEATURE_CURCPU = 0x1
LWPCTL_FEATURE_PCTR = 0x2
LWPCTL_CPU_NONE = -1
LWPCTL_CPU_EXITED = -2
LWPCTL_SIZE = 8        # lwpctl_t: int lc_curcpu; int lc_pctr
_LWPCTL = struct.Struct("<ii")


def lwp_unstop(l: Lwp) -> None:
    """Restart the stopped LWP l alone (lwp_unstop): a tracer's resume of one
    LWP (sys_ptrace.py, data = -lid). Its process is active again and its stop
    no longer waits to be reported (p_waited); the other LWPs stay stopped
    until the process is continued, or a signal to one restarts it
    (kern_sig.sigpost). An LWP that is not stopped (suspended meanwhile) is
    left as it is, and so is its process, stopped: NetBSD returns early too.
    (NetBSD also restarts an interruptible sleeper when the tracer gave a
    signal; a resume of one LWP never gives one: ptrace_sendsig's p_xsig is 0.)"""
    p = l.l_proc
    assert not l.l_flag & LwpFlag.LW_DBGSUSPEND, l     # the caller's EDEADLK
    if l.l_stat != LSSTOP:
        return
    p.p_stat = SACTIVE
    p.p_sflag &= ~PS_STOPPING
    p.p_nstopchild = 0
    unstop_lwp(l)


def lwpctl_write(l: Lwp, cpu: int) -> None:
    """Update l's lwpctl_t through the kernel's view of its page: the process
    may have unmapped or replaced its own view (NetBSD keeps the page mapped
    in the kernel; the process then just stops seeing the updates)."""
    p = l.l_proc
    va = l.l_lwpctl
    page = va & ~(p.k.abi.page_size - 1)
    _LWPCTL.pack_into(p.p_lwpctl_pages[page], va - page, cpu, l.l_pctr & 0x7FFFFFFF)


def lwpctl_exit(l: Lwp) -> None:
    """lwp_exit(): lc_curcpu = LWPCTL_CPU_EXITED -- and it stays so: NetBSD's
    mi_switch() writes LWPCTL_CPU_EXITED, not LWPCTL_CPU_NONE, for a zombie
    switching away, so the block is detached here before the LWP leaves its CPU.
    (The slot is not reused: lwp_free() would free it, after the reap.)"""
    if l.l_lwpctl:
        lwpctl_write(l, LWPCTL_CPU_EXITED)
        l.l_lwpctl = 0


def lwp_ctl_alloc(l: Lwp) -> int:
    """lwp_ctl_alloc(): give l an lwpctl_t slot in a page shared with the
    process (mapped on the first call, one page holds page_size/8 slots);
    ENOMEM when no page can be mapped."""
    p = l.l_proc
    if not p.p_lwpctl_free:
        kp = map_kernel_page(p, "lwpctl")
        if kp is None:
            return Errno.ENOMEM
        va, host = kp
        p.p_lwpctl_pages[va] = host_view(host, p.k.abi.page_size)
        p.p_lwpctl_free.extend(range(va + p.k.abi.page_size - LWPCTL_SIZE, va - 1, -LWPCTL_SIZE))
    l.l_lwpctl = p.p_lwpctl_free.pop()
    l.npark_end()                       # (the native park path must learn its lwpctl)
    return 0


__all__ = ["lwp_create", "lwp_start", "lwp_exit", "lwp_free", "lwp_wait", "LSIDL", "LSONPROC"]
