"""Pure-Python unit tests of the signal state machine (kern_sig.py, sys_sig.py;
no Unicorn): pending sets and queues, the choice of LWP, interrupted sleeps,
stop / continue, the amd64 signal frame.

NetBSD 10 sources the tests follow: sys/kern/kern_sig.c (kpsignal2, sigpost,
sigput, sigunwait, issignal, postsig, sendsig_reset, proc_stop, proc_unstop),
sys/kern/kern_sleepq.c (sleepq_block catch_p, sleepq_sigtoerror), and
sys/arch/amd64/amd64/machdep.c rev. 1.290 sendsig_siginfo.
"""
from __future__ import annotations

import struct

from nbemu.guest.arch.amd64 import ABI
from nbemu.syscalls import kern_sig as ks
from nbemu.syscalls.errno import Errno, KernErrno
from nbemu.syscalls.kern_lwp import lwp_create, lwp_start
from nbemu.syscalls.kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue
from nbemu.syscalls.lwp import LSONPROC, LSRUN, LSSLEEP, LSSTOP, Lwp, LwpFlag
from nbemu.syscalls.signals import SIGRTMIN, Sig
from tests.khelp import HANDLER, TRAMP, call, catch, make_kernel, scratch
from unicorn import x86_const as X

SIGUSR1, SIGUSR2 = Sig.SIGUSR1, Sig.SIGUSR2


def spawn(k, l) -> Lwp:
    l2 = lwp_create(k, l, l.l_proc, 0)
    assert isinstance(l2, Lwp)
    k.platform.context_fork(l, l2)
    lwp_start(k, l2, False)
    return l2


def block(l: Lwp, *sigs: int) -> None:
    m = 0
    for s in sigs:
        m |= ks.bit(s)
    l.l_sigmask = ks.words_of(ks.mask_of(l.l_sigmask) | m)


def test_standard_signals_coalesce_realtime_queue() -> None:
    k, l = make_kernel()
    block(l, SIGUSR1, SIGRTMIN)
    for _ in range(3):
        ks.kpsignal2(l.l_proc, ks.Ksiginfo(SIGUSR1, ks.SI_QUEUE, value=7))
        ks.kpsignal2(l.l_proc, ks.Ksiginfo(SIGRTMIN, ks.SI_QUEUE, value=7))
    sp = ks.psigpend(l.l_proc)
    assert len(sp.q[SIGUSR1]) == 1 and len(sp.q[SIGRTMIN]) == 3
    sp.get(SIGRTMIN)
    assert sp.set & ks.bit(SIGRTMIN)              # two left: still pending
    sp.get(SIGUSR1)
    assert not sp.set & ks.bit(SIGUSR1)


def test_process_signal_goes_to_an_lwp_not_blocking_it() -> None:
    k, l = make_kernel()
    l2 = spawn(k, l)
    catch(l, SIGUSR1)
    block(l, SIGUSR1)
    ks.kpsignal2(l.l_proc, ks.Ksiginfo(SIGUSR1))
    assert l2.l_flag & LwpFlag.LW_PENDSIG
    assert ks.sigispending(l2) == SIGUSR1 and ks.sigispending(l) == 0


def test_all_blocking_leaves_it_on_the_process_until_unblocked() -> None:
    k, l = make_kernel()
    catch(l, SIGUSR1)
    block(l, SIGUSR1)
    ks.kpsignal2(l.l_proc, ks.Ksiginfo(SIGUSR1))
    assert ks.psigpend(l.l_proc).set == ks.bit(SIGUSR1)
    l.l_flag &= ~LwpFlag.LW_PENDSIG
    va = scratch(l, 0x1000)
    l.l_proc.p_vmspace.copyout(struct.pack("<4I", *ks.words_of(ks.bit(SIGUSR1))), va)
    assert call(l, "__sigprocmask14", 2, va, 0)[0] == 0          # SIG_UNBLOCK
    assert l.l_flag & LwpFlag.LW_PENDSIG


def test_lwp_kill_to_a_blocking_lwp_stays_there() -> None:
    k, l = make_kernel()
    l2 = spawn(k, l)
    catch(l, SIGUSR1)
    block(l2, SIGUSR1)
    ks.kpsignal_lwp(l2, SIGUSR1)
    assert ks.lsigpend(l2).set == ks.bit(SIGUSR1)
    assert ks.sigispending(l) == 0 and not ks.psigpend(l.l_proc).set


def test_ignored_signals_are_dropped_at_once() -> None:
    k, l = make_kernel()
    block(l, Sig.SIGURG, Sig.SIGCHLD)
    ks.kpsignal2(l.l_proc, ks.Ksiginfo(Sig.SIGURG))
    ks.kpsignal2(l.l_proc, ks.Ksiginfo(Sig.SIGCHLD))
    assert not ks.psigpend(l.l_proc).set


def _sleep(k, l, intr=True):
    sleepq_enqueue(k, l, ("test", l.l_lid), "test", sleep_syncobj, intr)
    g = sleepq_block(k, l, None)
    g.send(None)
    return g


def _result(g) -> int:
    try:
        g.send(0)
    except StopIteration as s:
        return s.value
    raise AssertionError("still blocked")


def test_interrupted_sleep_restarts_with_sa_restart_else_eintr() -> None:
    k, l = make_kernel()
    l2 = spawn(k, l)
    catch(l, SIGUSR1, ks.SA_RESTART)
    catch(l, SIGUSR2, 0)
    block(l, SIGUSR1, SIGUSR2)                     # main blocks: l2 takes them
    for sig, want in ((SIGUSR1, KernErrno.ERESTART), (SIGUSR2, Errno.EINTR)):
        k.runq.sched_dequeue(l2) if l2.l_stat == LSRUN else None
        l2.set_stat(LSONPROC)
        g = _sleep(k, l2)
        assert l2.l_stat == LSSLEEP
        ks.kpsignal2(l.l_proc, ks.Ksiginfo(sig))
        assert l2.l_stat == LSRUN
        assert l2.l_sleeperr == want
        ks.lsigpend(l2).clear(-1)
        ks.psigpend(l.l_proc).clear(-1)
        l2.l_flag &= ~LwpFlag.LW_PENDSIG


def test_pending_signal_ends_an_interruptible_sleep_at_once() -> None:
    k, l = make_kernel()
    catch(l, SIGUSR2, 0)
    ks.kpsignal_lwp(l, SIGUSR2)                    # l is running: only LW_PENDSIG
    assert l.l_stat == LSONPROC and l.l_flag & LwpFlag.LW_PENDSIG
    _sleep(k, l)
    assert l.l_stat == LSRUN and l.l_sleeperr == Errno.EINTR


def test_sigwait_handoff() -> None:
    k, l = make_kernel()
    p = l.l_proc
    block(l, Sig.SIGHUP)
    va = scratch(l, 0x1000)
    p.p_vmspace.copyout(struct.pack("<4I", *ks.words_of(ks.bit(Sig.SIGHUP))), va)
    g, rv = call(l, "____sigtimedwait50", va, va + 64, 0)
    assert l.l_stat == LSSLEEP and l in ks.sigwaiters(p)
    ks.kpsignal2(p, ks.Ksiginfo(Sig.SIGHUP, ks.SI_USER, pid=p.p_pid))
    assert l.l_stat == LSRUN and not ks.psigpend(p).set   # handed over, not pending
    assert _result(g) == 0 and rv[0] == Sig.SIGHUP
    signo, code = struct.unpack("<ii", p.p_vmspace.copyin(va + 64, 8))
    assert (signo, code) == (Sig.SIGHUP, ks.SI_USER)


def test_stop_and_continue_sleepers_and_runners() -> None:
    k, l = make_kernel()
    p = l.l_proc
    l2 = spawn(k, l)                 # LSRUN
    l3 = spawn(k, l)
    k.runq.sched_dequeue(l3)
    l3.set_stat(LSONPROC)
    _sleep(k, l3)                    # interruptible sleeper
    ks.kpsignal2(p, ks.Ksiginfo(Sig.SIGSTOP))
    assert p.p_sflag & ks.PS_STOPPING
    assert l3.l_stat == LSSTOP and l3.l_wchan is not None        # stopped in place
    assert l2.l_flag & LwpFlag.LW_PENDSIG and l.l_flag & LwpFlag.LW_PENDSIG
    for t in (l, l2):                # the others stop at userret
        if t.l_stat == LSRUN:
            k.runq.sched_dequeue(t)
            t.set_stat(LSONPROC)
            t.l_cpu = k.cpus[1]
            k.cpus[1].ci_curlwp = t
        ks.sig_userret(t)
        assert t.l_stat == LSSTOP
    assert p.p_stat == ks.SSTOP and not p.p_sflag & ks.PS_STOPPING
    ks.kpsignal2(p, ks.Ksiginfo(Sig.SIGCONT))
    assert p.p_stat == ks.SACTIVE
    assert l.l_stat == LSRUN and l2.l_stat == LSRUN and l3.l_stat == LSSLEEP


def test_sendsig_frame_amd64() -> None:
    k, l = make_kernel()
    catch(l, SIGUSR1, ks.SA_RESTART, mask=ks.bit(SIGUSR2))
    stack = scratch(l, 0x10000)
    rsp = stack + 0x8000 + 8
    k.platform.regs_set(l, (X.UC_X86_REG_RSP, X.UC_X86_REG_RIP, X.UC_X86_REG_RFLAGS),
                        (rsp, 0x400123, 0x202 | 0x400))
    ks.kpsignal_lwp(l, SIGUSR1)
    ks.sig_userret(l)
    r = dict(zip(ABI.getmcontext_ids(), k.platform.regs_get(l, ABI.getmcontext_ids())))
    fp = r[X.UC_X86_REG_RSP]
    assert fp == ((rsp - 128 - 920) & ~15) - 8       # below the red zone, rsp+8 aligned
    assert r[X.UC_X86_REG_RIP] == HANDLER
    assert r[X.UC_X86_REG_RDI] == SIGUSR1
    assert r[X.UC_X86_REG_RSI] == fp + 8
    assert r[X.UC_X86_REG_RDX] == r[X.UC_X86_REG_R15] == fp + 8 + 128
    assert not r[X.UC_X86_REG_RFLAGS] & 0x400                   # PSL_D cleared
    vm = l.l_proc.p_vmspace
    frame = vm.copyin(fp, 920)
    ra, signo, code = struct.unpack_from("<Qii", frame, 0)
    assert (ra, signo, code) == (TRAMP, SIGUSR1, ks.SI_LWP)
    uc = frame[8 + 128:]
    assert ABI.ucontext_flags(uc) & 0x7000F == 0x2000D     # SIGMASK|CPU|FPU|TLSBASE|CLRSTACK
    assert ABI.unpack_mcontext_gregs(uc)[21] == 0x400123   # _REG_RIP: the interrupted pc
    assert ks.mask_of(ABI.ucontext_sigmask(uc)) == 0       # the mask before delivery
    assert ks.mask_of(l.l_sigmask) == ks.bit(SIGUSR1) | ks.bit(SIGUSR2)
