"""Pure-Python unit tests of the LWP kernel's state machine (no Unicorn): sleep
queues, run queues, lwp_wait, park/unpark races, legal state transitions.

Each test names the branch of the NetBSD C function it covers.  Sources read (NetBSD
src mirrors, through the project's search tools):
  sys/kern/sys_lwp.c     rev. 1.84 (2023-07-17): lwp_unpark, lwp_park,
                         sys__lwp_wakeup, sys__lwp_detach, sys__lwp_unpark_all
  sys/kern/kern_lwp.c    rev. 1.250 (2022-05-22): lwp_wait, lwp_free, lwp_suspend,
                         the "State transitions" overview
  sys/kern/kern_sleepq.c rev. 1.50 (2014-09-05): sleepq_insert (SOBJ_SLEEPQ_LIFO /
                         FIFO), sleepq_remove, sleepq_wake, sleepq_timeout,
                         sleepq_unsleep (unchanged in substance in NetBSD 10)
  sys/kern/kern_runq.c   rev. 1.69 (2020-05-23): sched_takecpu, sched_catchlwp,
                         sched_idle, sched_preempted
  sys/kern/kern_synch.c  (NetBSD 9/10): setrunnable, preempt
Where nbemu deliberately differs from the C, the test says so.
"""
from __future__ import annotations

import struct

import pytest

from nbemu.syscalls.errno import Errno
from nbemu.syscalls.kern_lwp import lwp_create, lwp_exit, lwp_free, lwp_start
from nbemu.syscalls.kern_runq import CpuInfo
from nbemu.syscalls.kern_synch import nextlwp, preempt
from nbemu.syscalls.kern_sleepq import (BLOCK, lwp_park_syncobj, sleep_syncobj,
                                  sleepq_abort_interruptible, sleepq_block, sleepq_enqueue,
                                  sleepq_remove, sleepq_wake)
from nbemu.syscalls.kernel import RR_TICKS, Kernel
from nbemu.syscalls.lwp import (LPR_DETACHED, LSIDL, LSONPROC, LSRUN, LSSLEEP, LSSTOP,
                          LSSUSPENDED, LSZOMB, LWP_DETACHED, LWP_SUSPENDED, Lwp, LwpFlag)
from tests.khelp import call, make_kernel, scratch

LWP_UNPARK_MAX = 1024
LW_CANCELLED, LW_UNPARKED = LwpFlag.LW_CANCELLED, LwpFlag.LW_UNPARKED
LW_SINTR, LW_STIMO = LwpFlag.LW_SINTR, LwpFlag.LW_STIMO


# -- helpers -----------------------------------------------------------------------------
def spawn(k: Kernel, l: Lwp, flags: int = 0) -> Lwp:
    """What sys__lwp_create does around the ucontext: lwp_create + lwp_start."""
    l2 = lwp_create(k, l, l.l_proc, flags)
    assert isinstance(l2, Lwp), l2
    k.platform.context_fork(l, l2)
    lwp_start(k, l2, bool(flags & LWP_SUSPENDED))
    return l2


def oncpu(k: Kernel, l: Lwp, ci: CpuInfo | None = None) -> CpuInfo:
    """Run a runnable LWP on a free vCPU (or on ci), as switch_to_next would."""
    assert l.l_stat == LSRUN, l
    k.runq.sched_dequeue(l)
    if ci is None:
        ci = next(c for c in k.cpus if c.ci_curlwp is None)
    assert ci.ci_curlwp is None
    l.set_stat(LSONPROC)
    l.l_cpu = ci
    ci.ci_curlwp = l
    return ci


def running(k: Kernel, l: Lwp, flags: int = 0) -> Lwp:
    l2 = spawn(k, l, flags)
    oncpu(k, l2)
    return l2


def resume(k: Kernel, l: Lwp, gen):
    """l was woken: put it on a CPU and continue its system call; the handler's
    result, or the generator if it blocked again."""
    if l.l_stat == LSRUN:
        oncpu(k, l)
    try:
        gen.send(l.l_sleeperr)
    except StopIteration as stop:
        return stop.value or 0
    return gen


def wait_call(l: Lwp, lid: int, out: int = 0):
    return call(l, "_lwp_wait", lid, out)


def park_call(l: Lwp, hint: int = 0, ts: int = 0):
    # ___lwp_park60(clock_id, flags, ts, unpark, hint, unparkhint); CLOCK_MONOTONIC = 3
    return call(l, "___lwp_park60", 3, 0, ts, 0, hint, 0)


def is_blocked(res) -> bool:
    return not isinstance(res, int)


def parkwchan(l: Lwp) -> tuple:
    return ("parked", l.l_proc.p_pid, l.l_lid)


# -- sleep queues (kern_sleepq.c) ------------------------------------------------------------
def test_sleepq_fifo_for_ordinary_sync_objects() -> None:
    # sleepq_insert(): no SOBJ_SLEEPQ_LIFO -> TAILQ_INSERT_TAIL; sleepq_wake() walks
    # from the head, so the first sleeper is the first woken.
    k, l = make_kernel()
    a, b, c = (running(k, l) for _ in range(3))
    for x in (a, b, c):
        sleepq_enqueue(k, x, "chan", "test", sleep_syncobj, False)
    assert list(k.sleeptab.peek("chan")) == [a, b, c]
    assert sleepq_wake(k, "chan", 1) == 1
    assert a.l_stat == LSRUN and b.l_stat == c.l_stat == LSSLEEP
    assert list(k.sleeptab.peek("chan")) == [b, c]


def test_sleepq_lifo_for_the_park_sync_object() -> None:
    # sleepq_insert(): SOBJ_SLEEPQ_LIFO -> TAILQ_INSERT_HEAD.  nbemu's park sync object
    # is LIFO as lwp_park_sobj was before NetBSD 9 (10 uses SOBJ_SLEEPQ_NULL); each
    # parked LWP has its own wait channel, so the order shows only here.
    k, l = make_kernel()
    a, b, c = (running(k, l) for _ in range(3))
    for x in (a, b, c):
        sleepq_enqueue(k, x, "chan", "parked", lwp_park_syncobj, True)
    assert list(k.sleeptab.peek("chan")) == [c, b, a]
    assert sleepq_wake(k, "chan", 1) == 1
    assert c.l_stat == LSRUN and a.l_stat == b.l_stat == LSSLEEP


def test_sleepq_enqueue_records_the_sleep_and_leaves_the_cpu() -> None:
    # sleepq_enqueue(): l_syncobj, l_wchan, l_sleepq, l_wmesg set, l_sleeperr = 0,
    # LSSLEEP; sleepq_block(catch_p) sets LW_SINTR; the CPU has no curlwp any more.
    k, l = make_kernel()
    a = running(k, l)
    ci = a.l_cpu
    sleepq_enqueue(k, a, "chan", "wmsg", sleep_syncobj, True)
    assert a.l_stat == LSSLEEP and a.l_wchan == "chan" and a.l_wmesg == "wmsg"
    assert a.l_syncobj is sleep_syncobj and a.l_sleepq is k.sleeptab.peek("chan")
    assert a.l_flag & LW_SINTR and a.l_sleeperr == 0
    assert ci.ci_curlwp is None
    b = running(k, l)
    sleepq_enqueue(k, b, "chan", "wmsg", sleep_syncobj, False)
    assert not b.l_flag & LW_SINTR


def test_sleepq_remove_semantics() -> None:
    # sleepq_remove(): TAILQ_REMOVE, l_syncobj back to the scheduler's, l_wchan and
    # l_sleepq NULL, LW_SINTR cleared; then sched_takecpu + LSRUN + sched_enqueue.
    # The sleep returns the waker's l_sleeperr.  An emptied queue is dropped.
    k, l = make_kernel()
    a = running(k, l)
    sleepq_enqueue(k, a, "chan", "w", sleep_syncobj, True)
    gen = sleepq_block(k, a, None)
    assert next(gen) == BLOCK
    sleepq_remove(k, a, Errno.EINTR)
    assert a.l_stat == LSRUN and a.l_wchan is None and a.l_sleepq is None
    assert a.l_syncobj is None and not a.l_flag & LW_SINTR
    assert a in a.l_cpu.spc_queue[a.l_priority]
    assert k.sleeptab.peek("chan") is None and len(k.sleeptab) == 0
    oncpu(k, a)
    with pytest.raises(StopIteration) as stop:
        gen.send(a.l_sleeperr)
    assert stop.value.value == Errno.EINTR
    # Only a sleeping LWP can be removed (KASSERT(l->l_stat == LSSLEEP) in spirit).
    with pytest.raises(AssertionError):
        sleepq_remove(k, a, 0)


def test_sleepq_wake_all_with_error_and_count() -> None:
    # sleepq_wake(sq, wchan, expected = all): every LWP on the channel, and only it.
    k, l = make_kernel()
    a, b, c = (running(k, l) for _ in range(3))
    sleepq_enqueue(k, a, "one", "w", sleep_syncobj, False)
    sleepq_enqueue(k, b, "one", "w", sleep_syncobj, False)
    sleepq_enqueue(k, c, "two", "w", sleep_syncobj, False)
    assert sleepq_wake(k, "one", -1, Errno.EWOULDBLOCK) == 2
    assert a.l_sleeperr == b.l_sleeperr == Errno.EWOULDBLOCK
    assert c.l_stat == LSSLEEP and len(k.sleeptab) == 1
    assert sleepq_wake(k, "nobody") == 0


def test_sleepq_timeout_through_the_callout_and_virtual_clock() -> None:
    # sleepq_block(timo): callout_schedule(l_timeout_ch); sleepq_timeout() fires ->
    # lwp_unsleep; the sleep returns EWOULDBLOCK (nbemu also sets LW_STIMO).
    k, l = make_kernel()
    assert k.clock.virtual
    a = running(k, l)
    sleepq_enqueue(k, a, "chan", "w", sleep_syncobj, True)
    t0 = k.clock.monotonic_ns()
    gen = sleepq_block(k, a, 5_000_000)
    next(gen)
    assert k.callout.pending == 1 and k.callout.next_deadline() == t0 + 5_000_000
    k.clock.wait_until(t0 + 4_999_999)
    k.run_callouts()
    assert a.l_stat == LSSLEEP                 # not yet
    k.clock.wait_until(k.callout.next_deadline())
    k.run_callouts()
    assert a.l_stat == LSRUN and a.l_flag & LW_STIMO
    assert a.l_sleeperr == Errno.EWOULDBLOCK and a.l_timeout is None
    assert k.callout.pending == 0 and len(k.sleeptab) == 0
    assert resume(k, a, gen) == Errno.EWOULDBLOCK


def test_sleepq_wakeup_before_the_timeout_cancels_the_callout() -> None:
    # sleepq_remove() before the deadline: callout_stop (callout_halt in sleepq_block);
    # the late callout finds nothing to do (sleepq_timeout: "Somebody beat us to it").
    k, l = make_kernel()
    a = running(k, l)
    sleepq_enqueue(k, a, "chan", "w", sleep_syncobj, True)
    gen = sleepq_block(k, a, 1_000_000)
    next(gen)
    sleepq_wake(k, "chan")
    assert k.callout.pending == 0 and a.l_timeout is None
    k.clock.wait_until(k.clock.monotonic_ns() + 2_000_000)
    k.run_callouts()
    assert a.l_stat == LSRUN and a.l_sleeperr == 0 and not a.l_flag & LW_STIMO
    assert resume(k, a, gen) == 0


def test_interruptible_vs_uninterruptible_sleep() -> None:
    # Only an LW_SINTR sleep can be cut short by a signal or _lwp_wakeup
    # (sleepq_abort_interruptible; sys__lwp_wakeup's LW_SINTR test).
    k, l = make_kernel()
    a, b = running(k, l), running(k, l)
    sleepq_enqueue(k, a, "chan", "w", sleep_syncobj, True)
    sleepq_enqueue(k, b, "chan", "w", sleep_syncobj, False)
    assert sleepq_abort_interruptible(k, b, Errno.EINTR) is False
    assert b.l_stat == LSSLEEP
    assert sleepq_abort_interruptible(k, a, Errno.EINTR) is True
    assert a.l_stat == LSRUN and a.l_sleeperr == Errno.EINTR


# -- run queues (kern_runq.c) ------------------------------------------------------------------
def test_takecpu_keeps_an_lwp_on_its_idle_last_cpu() -> None:
    # sched_takecpu(): "Try to send the LWP back to the first CPU in the same core if
    # idle" -- stickiness: the last CPU, idle, wins over other idle CPUs.
    k, l = make_kernel(ncpu=4)
    a = running(k, l)
    last = a.l_cpu
    sleepq_enqueue(k, a, "c", "w", sleep_syncobj, False)
    assert not last.has_work()
    sleepq_wake(k, "c")
    assert a.l_cpu is last and a in last.spc_queue[0]


def test_takecpu_prefers_an_idle_cpu_over_a_busy_last_cpu() -> None:
    # sched_takecpu(): the last CPU is busy -> an idle CPU (sched_bestcpu: an idle
    # first-class CPU ends the search).  A new LWP inherits its creator's CPU as
    # "last" (lwp_create: l_cpu), which runs the creator.
    k, l = make_kernel(ncpu=2)
    a = spawn(k, l)
    assert a.l_cpu is k.cpus[1]
    k, l = make_kernel(ncpu=4)
    busy = {0}
    for _ in range(3):                         # each new LWP lands on an idle CPU
        b = spawn(k, l)
        assert b.l_cpu.ci_index not in busy
        busy.add(b.l_cpu.ci_index)
        oncpu(k, b, b.l_cpu)


def test_takecpu_least_loaded_when_every_cpu_is_busy() -> None:
    # sched_bestcpu(): with no idle CPU, the least busy (spc_count) one; ties keep
    # the LWP where it was (the weak preference for "pivot").
    k, l = make_kernel(ncpu=2)
    b = running(k, l)                          # cpu1
    assert b.l_cpu is k.cpus[1]
    q = spawn(k, l)                            # both busy: loads 1, 1 -> last (cpu0)
    assert q.l_cpu is k.cpus[0]
    r = spawn(k, l)                            # loads 2, 1 -> cpu1
    assert r.l_cpu is k.cpus[1]
    assert k.cpus[0].spc_count == 1 and k.cpus[1].spc_count == 1


def test_idle_cpu_steals_and_migrates() -> None:
    # sched_idle() -> sched_catchlwp(): an idle CPU takes an LWP from a busy CPU's run
    # queue and it moves there (l_cpu = curci).  nbemu steals the most recently
    # queued LWP (the C takes the first one that is not cache-hot).
    k, l = make_kernel(ncpu=2)
    a, b = spawn(k, l), spawn(k, l)
    for x in (a, b):                           # queued on cpu0 behind main: a, b
        k.runq.sched_dequeue(x)
    for x in (a, b):
        k.runq.sched_enqueue(x, k.cpus[0])
    assert list(k.cpus[0].spc_queue[0]) == [a, b]
    assert k.cpus[0].spc_count == 2 and not k.cpus[1].has_work()
    seen = []
    k.listeners.append(lambda kind, lw, data: seen.append((kind, lw.l_lid, data.get("src"))))
    got = nextlwp(k, k.cpus[1])
    assert got is b and b.l_stat == LSONPROC and b.l_cpu is k.cpus[1]
    assert k.cpus[1].ci_curlwp is b and k.cpus[0].spc_count == 1
    assert ("migrate", b.l_lid, 0) in seen


def test_own_run_queue_before_stealing() -> None:
    # sched_nextlwp/sched_idle: a CPU with work of its own does not steal.
    k, l = make_kernel(ncpu=2)
    a, b = spawn(k, l), spawn(k, l)
    k.runq.sched_dequeue(a)
    k.runq.sched_enqueue(a, k.cpus[0])
    k.runq.sched_dequeue(b)
    k.runq.sched_enqueue(b, k.cpus[1])
    assert nextlwp(k, k.cpus[1]) is b
    assert a.l_cpu is k.cpus[0] and k.cpus[0].spc_count == 1


def test_preempt_requeues_behind_its_peers() -> None:
    # preempt() -> mi_switch: the running LWP goes LSONPROC -> LSRUN at the tail of
    # its CPU's queue; the one that waited runs next.  Nothing queued: no preemption.
    k, l = make_kernel(ncpu=1)
    ci = k.cpus[0]
    assert preempt(k, ci) is False and l.l_stat == LSONPROC
    a = spawn(k, l)
    assert list(ci.spc_queue[0]) == [a]
    assert preempt(k, ci) is True
    assert l.l_stat == LSRUN and ci.ci_curlwp is None and list(ci.spc_queue[0]) == [a, l]
    assert l.l_pctr == 1
    assert nextlwp(k, ci) is a


def test_tick_preempts_after_the_quantum_only_when_others_wait() -> None:
    # hardclock -> sched_tick: a full quantum (RR_TICKS) with peers queued.
    k, l = make_kernel(ncpu=1)
    ci = k.cpus[0]
    for _ in range(RR_TICKS * 3):
        k.tick(ci)
    assert ci.ci_curlwp is l                   # alone: never preempted
    a = spawn(k, l)
    l.l_ticks = 0
    for i in range(RR_TICKS - 1):
        k.tick(ci)
        assert ci.ci_curlwp is l
    k.tick(ci)
    assert ci.ci_curlwp is None and list(ci.spc_queue[0]) == [a, l]


def test_lwpctl_curcpu_and_pctr() -> None:
    # _lwp_ctl(LWPCTL_FEATURE_CURCPU | LWPCTL_FEATURE_PCTR): lc_curcpu is the CPU while
    # on it, LWPCTL_CPU_NONE (-1) off it; lc_pctr counts preemptions (issue 3's
    # contract; NetBSD bumps it in mi_switch).
    k, l = make_kernel(ncpu=1)
    ci = k.cpus[0]
    buf = scratch(l)
    err, _ = call(l, "_lwp_ctl", 0x3, buf)
    assert err == 0
    vm = l.l_proc.p_vmspace
    lc = int.from_bytes(vm.copyin(buf, 8), "little")

    def lwpctl() -> tuple[int, int]:
        return struct.unpack("<ii", vm.copyin(lc, 8))

    assert lwpctl() == (0, 0)
    a = spawn(k, l)
    preempt(k, ci)
    assert lwpctl() == (-1, 1)
    assert nextlwp(k, ci) is a
    preempt(k, ci)                        # a preempted, main runs again
    assert nextlwp(k, ci) is l
    assert lwpctl() == (0, 1)
    assert call(l, "_lwp_ctl", 0x4, buf)[0] == Errno.ENODEV


# -- lwp_wait (kern_lwp.c) -------------------------------------------------------------------------
def test_wait_collects_a_zombie_and_frees_it() -> None:
    # lwp_wait(): l2->l_stat == LSZOMB -> *departed = lid, lwp_free(); departed is
    # copied out by sys__lwp_wait; the LWP's u-area goes back to the arena.
    k, l = make_kernel()
    p = l.l_proc
    a = running(k, l)
    lid = a.l_lid
    arena = k.uarea_arena
    used = arena.used
    lwp_exit(a)
    assert a.l_stat == LSZOMB and p.p_nzlwps == 1
    out = scratch(l)
    err, _ = wait_call(l, lid, out)
    assert err == 0
    assert struct.unpack("<i", p.p_vmspace.copyin(out, 4))[0] == lid
    assert lid not in p.p_lwps and p.p_nlwps == 1 and p.p_nzlwps == 0
    assert arena.used == used - arena.usize and p.p_nlwpwait == 0


def test_wait_for_any_skips_detached_and_reports_esrch_when_none_left() -> None:
    # lwp_wait(lid = 0): LIST_FOREACH over p_lwps; LPR_DETACHED ones are skipped
    # (nfound += exiting); nothing found -> ESRCH.
    k, l = make_kernel()
    d = running(k, l, LWP_DETACHED)
    a = running(k, l)
    lwp_exit(a)
    lwp_exit(d)                                # detached: freed by lwp_exit itself
    assert d.l_lid not in l.l_proc.p_lwps
    err, _ = wait_call(l, 0)
    assert err == 0 and a.l_lid not in l.l_proc.p_lwps
    assert wait_call(l, 0)[0] == Errno.ESRCH


def test_wait_esrch_einval_edeadlk_self() -> None:
    # lwp_wait(lid != 0): proc_find_lwp() == NULL -> ESRCH; LPR_DETACHED -> EINVAL;
    # l2->l_waitingfor == curlid with l2 == l (waiting for oneself) -> EDEADLK.
    k, l = make_kernel()
    d = running(k, l, LWP_DETACHED)
    assert wait_call(l, 9999)[0] == Errno.ESRCH
    assert wait_call(l, d.l_lid)[0] == Errno.EINVAL
    assert wait_call(l, l.l_lid)[0] == Errno.EDEADLK
    assert l.l_proc.p_nlwpwait == 0 and l.l_waitingfor == 0


def test_wait_sleeps_until_the_target_exits() -> None:
    # lwp_wait(): nfound > 0, no zombie -> cv_wait_sig(&p->p_lwpcv); lwp_exit's
    # cv_broadcast wakes it and the next pass collects the zombie.
    k, l = make_kernel()
    a = running(k, l)
    res, _ = wait_call(l, a.l_lid)
    assert is_blocked(res) and l.l_stat == LSSLEEP
    assert a.l_waiter == l.l_lid and l.l_waitingfor == a.l_lid
    assert l.l_proc.p_nlwpwait == 1
    lwp_exit(a)
    assert l.l_stat == LSRUN
    assert resume(k, l, res) == 0
    assert a.l_lid not in l.l_proc.p_lwps and l.l_proc.p_nlwpwait == 0


def test_wait_edeadlk_when_every_lwp_waits() -> None:
    # lwp_wait(): "Break out if all LWPs are in _lwp_wait()": p_nlwpwait == p_nlwps.
    k, l = make_kernel()
    a = running(k, l)
    res, _ = wait_call(l, 0)                   # main waits for anybody: a
    assert is_blocked(res)
    assert wait_call(a, 0)[0] == Errno.EDEADLK  # a waits for anybody: only main
    # On its way out a's lwp_wait kicks the other waiters (cv_broadcast) to
    # re-check; main finds a alive and not waiting any more, and sleeps again.
    assert l.l_stat == LSRUN
    assert is_blocked(resume(k, l, res))


def test_wait_edeadlk_when_the_target_waits_for_us() -> None:
    # lwp_wait(): "If a specific wait and the target is waiting on us, then avoid
    # deadlock" -- even while a third LWP runs (so not every LWP waits).
    k, l = make_kernel()
    a, b = running(k, l), running(k, l)
    res, _ = wait_call(l, a.l_lid)
    assert is_blocked(res)
    assert wait_call(a, l.l_lid)[0] == Errno.EDEADLK
    assert b.l_stat == LSONPROC


def test_wait_for_a_suspended_lwp_is_not_a_deadlock() -> None:
    # lwp_wait(): the deadlock test counts every LWP (p_nlwps), suspended ones too:
    # a suspended LWP may be continued and exit, so the waiter sleeps.
    k, l = make_kernel()
    s = spawn(k, l, LWP_SUSPENDED)
    assert s.l_stat == LSSUSPENDED
    res, _ = wait_call(l, s.l_lid)
    assert is_blocked(res) and l.l_stat == LSSLEEP


def test_two_waiters_for_one_lid_first_to_run_collects() -> None:
    # lwp_wait(lid != 0): only the first waiter is recorded (l_waiter); a second one
    # for the same lid sleeps as well; after the exit, whoever runs first collects
    # and the other finds it gone (ESRCH).
    k, l = make_kernel()
    a, b = running(k, l), running(k, l)
    res_l, _ = wait_call(l, b.l_lid)
    res_a, _ = wait_call(a, b.l_lid)
    assert is_blocked(res_l) and is_blocked(res_a)
    assert b.l_waiter == l.l_lid
    lwp_exit(b)
    assert resume(k, a, res_a) == 0           # a ran first: it collects
    assert resume(k, l, res_l) == Errno.ESRCH
    assert l.l_proc.p_nlwpwait == 0


def test_wait_for_any_leaves_an_lwp_with_a_specific_waiter_alone() -> None:
    # lwp_wait(lid = 0): "It already has a waiter - so don't collect it" (counted in
    # nfound): the specific waiter gets it, the wildcard waiter sleeps on.
    k, l = make_kernel()
    a, c = running(k, l), running(k, l)
    res_a, _ = wait_call(a, c.l_lid)           # a waits for c
    res_l, _ = wait_call(l, 0)                 # main waits for anybody
    assert is_blocked(res_a) and is_blocked(res_l)
    lwp_exit(c)
    res_l = resume(k, l, res_l)                # main runs first: c is a's
    assert is_blocked(res_l) and c.l_lid in l.l_proc.p_lwps
    assert resume(k, a, res_a) == 0            # a collects c; lwp_free wakes main
    assert c.l_lid not in l.l_proc.p_lwps
    assert l.l_stat == LSRUN
    res_l = resume(k, l, res_l)                # main: a is alive, not waiting
    assert is_blocked(res_l)


def test_detach_wakes_waiters_to_recheck() -> None:
    # sys__lwp_detach(): LPR_DETACHED set, cv_broadcast(&p->p_lwpcv) "Have any LWPs
    # sleeping in lwp_wait() recheck for deadlock": the waiter finds nothing (ESRCH).
    k, l = make_kernel()
    a = running(k, l)
    res, _ = wait_call(l, 0)
    assert is_blocked(res)
    assert call(a, "_lwp_detach", a.l_lid)[0] == 0
    assert a.l_prflag & LPR_DETACHED and l.l_stat == LSRUN
    assert resume(k, l, res) == Errno.ESRCH


def test_detach_zombie_einval_esrch() -> None:
    # sys__lwp_detach(): a zombie is freed at once (lwp_free); already detached ->
    # EINVAL; no such LWP -> ESRCH.
    k, l = make_kernel()
    a = running(k, l)
    lwp_exit(a)
    assert call(l, "_lwp_detach", a.l_lid)[0] == 0
    assert a.l_lid not in l.l_proc.p_lwps and l.l_proc.p_ndlwps == 0
    d = running(k, l, LWP_DETACHED)
    assert call(l, "_lwp_detach", d.l_lid)[0] == Errno.EINVAL
    assert call(l, "_lwp_detach", 9999)[0] == Errno.ESRCH


# -- park / unpark races (sys_lwp.c) ----------------------------------------------------------------
def test_unpark_before_park_is_ealready_once() -> None:
    # lwp_unpark(): the target is not parked -> LW_UNPARKED ("Set the operation
    # pending"); lwp_park(): LW_UNPARKED -> EALREADY, flag cleared.
    k, l = make_kernel()
    a = running(k, l)
    assert call(l, "_lwp_unpark", a.l_lid, 0)[0] == 0
    assert a.l_flag & LW_UNPARKED and a.l_stat == LSONPROC
    assert park_call(a)[0] == Errno.EALREADY
    assert not a.l_flag & LW_UNPARKED
    res, _ = park_call(a)
    assert is_blocked(res) and a.l_stat == LSSLEEP


def test_unpark_wakes_a_parked_lwp_whatever_the_hint() -> None:
    # lwp_unpark(): t->l_syncobj == &lwp_park_syncobj -> lwp_unsleep(): the park
    # returns 0.  The hint only names the wait channel in old kernels.
    k, l = make_kernel()
    a = running(k, l)
    res, _ = park_call(a, hint=0x1234)
    assert is_blocked(res) and a.l_syncobj is lwp_park_syncobj
    assert a.l_wchan == parkwchan(a)
    assert call(l, "_lwp_unpark", a.l_lid, 0x9999)[0] == 0
    assert a.l_stat == LSRUN and not a.l_flag & LW_UNPARKED
    assert resume(k, a, res) == 0


def test_unpark_of_a_zombie_or_missing_lwp_is_esrch() -> None:
    # lwp_unpark(): proc_find_lwp_unlocked() == NULL -> ESRCH; t->l_stat == LSZOMB ->
    # ESRCH ("__predict_false(t->l_stat == LSZOMB)").
    k, l = make_kernel()
    a = running(k, l)
    lwp_exit(a)
    assert call(l, "_lwp_unpark", a.l_lid, 0)[0] == Errno.ESRCH
    assert not a.l_flag & LW_UNPARKED
    assert call(l, "_lwp_unpark", 9999, 0)[0] == Errno.ESRCH


def test_unpark_of_an_lwp_asleep_elsewhere_stays_pending() -> None:
    # lwp_unpark(): asleep, but not on the park sync object (here in _lwp_wait) ->
    # LW_UNPARKED pending, the sleep goes on.
    k, l = make_kernel()
    a, b = running(k, l), running(k, l)
    res, _ = wait_call(a, b.l_lid)
    assert is_blocked(res)
    assert call(l, "_lwp_unpark", a.l_lid, 0)[0] == 0
    assert a.l_stat == LSSLEEP and a.l_flag & LW_UNPARKED


def test_unpark_all_limits_and_partial_esrch() -> None:
    # sys__lwp_unpark_all(): targets == NULL -> LWP_UNPARK_MAX; ntargets 0 or more
    # than LWP_UNPARK_MAX -> EINVAL; lwp_unpark() goes through every target and
    # returns ESRCH if one was missing, the others being unparked all the same.
    k, l = make_kernel()
    a, b = running(k, l), running(k, l)
    ra, _ = park_call(a)
    rb, _ = park_call(b)
    err, rv = call(l, "_lwp_unpark_all", 0, 0, 0)
    assert err == 0 and rv[0] == LWP_UNPARK_MAX
    buf = scratch(l)
    vm = l.l_proc.p_vmspace
    vm.copyout(struct.pack("<3i", a.l_lid, 9999, b.l_lid), buf)
    assert call(l, "_lwp_unpark_all", buf, 0, 0)[0] == Errno.EINVAL
    assert call(l, "_lwp_unpark_all", buf, LWP_UNPARK_MAX + 1, 0)[0] == Errno.EINVAL
    assert call(l, "_lwp_unpark_all", buf, 3, 0)[0] == Errno.ESRCH
    assert a.l_stat == LSRUN and b.l_stat == LSRUN
    assert resume(k, a, ra) == 0 and resume(k, b, rb) == 0


def test_wakeup_of_a_running_lwp_is_enodev_but_cancels_its_next_park() -> None:
    # sys__lwp_wakeup(): LW_CANCELLED | LW_UNPARKED set first; l_stat != LSSLEEP ->
    # ENODEV; the next lwp_park() returns EALREADY and clears both.
    k, l = make_kernel()
    a = running(k, l)
    assert call(l, "_lwp_wakeup", a.l_lid)[0] == Errno.ENODEV
    assert a.l_flag & LW_CANCELLED and a.l_flag & LW_UNPARKED
    assert park_call(a)[0] == Errno.EALREADY
    assert not a.l_flag & (LW_CANCELLED | LW_UNPARKED)


def test_wakeup_of_a_parked_lwp_interrupts_it() -> None:
    # sys__lwp_wakeup(): LSSLEEP with LW_SINTR -> lwp_unsleep(); sleepq_block() sees
    # LW_CANCELLED -> EINTR.  The flags stay set, so the next park is EALREADY.
    k, l = make_kernel()
    a = running(k, l)
    res, _ = park_call(a)
    assert call(l, "_lwp_wakeup", a.l_lid)[0] == 0
    assert resume(k, a, res) == Errno.EINTR
    assert a.l_flag & LW_CANCELLED
    assert park_call(a)[0] == Errno.EALREADY


def test_wakeup_of_an_uninterruptible_sleeper_is_ebusy_and_missing_is_esrch() -> None:
    # sys__lwp_wakeup(): (t->l_flag & LW_SINTR) == 0 -> EBUSY; lwp_find() NULL ->
    # ESRCH; a zombie is not found either (lwp_find excludes LSZOMB).
    k, l = make_kernel()
    a, z = running(k, l), running(k, l)
    sleepq_enqueue(k, a, "disk", "biowait", sleep_syncobj, False)
    assert call(l, "_lwp_wakeup", a.l_lid)[0] == Errno.EBUSY
    assert a.l_stat == LSSLEEP
    assert call(l, "_lwp_wakeup", 9999)[0] == Errno.ESRCH
    lwp_exit(z)
    assert call(l, "_lwp_wakeup", z.l_lid)[0] == Errno.ESRCH


def test_park_timeout_is_etimedout() -> None:
    # lwp_park(): sleepq_block(timo) returns EWOULDBLOCK -> ETIMEDOUT.
    k, l = make_kernel()
    a = running(k, l)
    buf = scratch(a)
    a.l_proc.p_vmspace.copyout(struct.pack("<qq", 0, 50_000_000), buf)   # 50 ms
    res, _ = park_call(a, ts=buf)
    assert is_blocked(res) and k.callout.pending == 1
    k.clock.wait_until(k.callout.next_deadline())
    k.run_callouts()
    assert a.l_stat == LSRUN
    assert resume(k, a, res) == Errno.ETIMEDOUT


def test_unpark_wins_over_a_later_timeout() -> None:
    # An unpark before the deadline: the park returns 0 and the callout is gone.
    k, l = make_kernel()
    a = running(k, l)
    buf = scratch(a)
    a.l_proc.p_vmspace.copyout(struct.pack("<qq", 0, 50_000_000), buf)
    res, _ = park_call(a, ts=buf)
    assert call(l, "_lwp_unpark", a.l_lid, 0)[0] == 0
    assert k.callout.pending == 0
    k.clock.wait_until(k.clock.monotonic_ns() + 100_000_000)
    k.run_callouts()
    assert resume(k, a, res) == 0


# -- state transitions (kern_lwp.c "State transitions") -------------------------------------------
LEGAL_IN_NETBSD = [
    (LSIDL, LSRUN), (LSIDL, LSSUSPENDED), (LSIDL, LSSTOP), (LSIDL, LSONPROC),
    (LSRUN, LSONPROC),
    (LSONPROC, LSRUN), (LSONPROC, LSSLEEP), (LSONPROC, LSSTOP), (LSONPROC, LSSUSPENDED),
    (LSONPROC, LSZOMB),
    (LSSLEEP, LSRUN), (LSSLEEP, LSSTOP),
    (LSSTOP, LSRUN), (LSSTOP, LSSLEEP),
    (LSSUSPENDED, LSRUN),
]
ILLEGAL = [
    (LSZOMB, LSRUN), (LSZOMB, LSONPROC), (LSZOMB, LSSLEEP), (LSZOMB, LSIDL),
    (LSIDL, LSSLEEP), (LSIDL, LSZOMB),
    (LSRUN, LSSLEEP), (LSRUN, LSZOMB), (LSRUN, LSIDL),
    (LSSLEEP, LSZOMB), (LSSLEEP, LSIDL),
    (LSSTOP, LSZOMB), (LSSTOP, LSONPROC),
    (LSSUSPENDED, LSSLEEP), (LSSUSPENDED, LSZOMB), (LSSUSPENDED, LSONPROC),
    (LSONPROC, LSIDL),
]


def _lwp_in(state) -> Lwp:
    k, l = make_kernel()
    a = lwp_create(k, l, l.l_proc, 0)
    assert isinstance(a, Lwp)
    a.l_stat = state
    return a


@pytest.mark.parametrize("old,new", LEGAL_IN_NETBSD)
def test_legal_transitions_are_accepted(old, new) -> None:
    a = _lwp_in(old)
    a.set_stat(new)
    assert a.l_stat == new


@pytest.mark.parametrize("old,new", ILLEGAL)
def test_illegal_transitions_raise(old, new) -> None:
    a = _lwp_in(old)
    with pytest.raises(AssertionError, match="illegal transition"):
        a.set_stat(new)
    assert a.l_stat == old


def test_queue_operations_assert_their_preconditions() -> None:
    # KASSERTs of the C: sleepq_enqueue (l_stat == LSONPROC), sleepq_remove
    # (sleeping), sched_enqueue (LSRUN), setrunnable (not running), lwp_free (a zombie).
    k, l = make_kernel()
    a = spawn(k, l)                            # LSRUN, queued
    with pytest.raises(AssertionError):
        sleepq_enqueue(k, a, "c", "w", sleep_syncobj, False)
    with pytest.raises(AssertionError):
        sleepq_remove(k, a)
    with pytest.raises(AssertionError):
        k.setrunnable(l)                       # l is on its CPU
    with pytest.raises(AssertionError):
        lwp_free(k, a)
    b = lwp_create(k, l, l.l_proc, 0)
    assert isinstance(b, Lwp) and b.l_stat == LSIDL
    with pytest.raises(AssertionError):
        k.runq.sched_enqueue(b)
