"""Signals (NetBSD's kern_sig.c): posting, choosing the LWP, delivery on the
way back to user mode, default actions, stop and continue, traps.

Overview, as in kern_sig.c (NetBSD 10):

- A signal is posted with a ksiginfo (kpsignal2): to one LWP (ksi.lid: from
  _lwp_kill or a trap) or to the process (kill, sigqueueinfo, timers, SIGPIPE).
  Signals ignored by the process (SIG_IGN, or SIG_DFL whose default is to
  ignore: ps_sigignore) are dropped at once. A process signal first goes to an
  LWP waiting for it in sigtimedwait (sigunwait); otherwise it becomes pending
  on the process (p_sigpend), an LWP one on the LWP (l_sigpend). Standard
  signals are pending once (a newer ksiginfo replaces the older one),
  real-time signals queue.
- sigpost() tells an LWP to look (LW_PENDSIG, "signotify"). One that masks the
  signal is told nothing more. One running on another vCPU gets the IPI of
  nbemu: the host's turn on the current vCPU ends so that the target's vCPU
  runs soon. One sleeping interruptibly (LW_SINTR) is woken: its sleep returns
  ERESTART when the handler has SA_RESTART, else EINTR (sleepq_sigtoerror).
  A SIG_DFL signal whose default is to terminate ends the process right there
  (NetBSD lets the LWP do it at userret; nothing else can be observed).
- Delivery happens on the way to user mode (Kernel.userret -> sig_userret ->
  issignal/postsig): the first pending unmasked signal of the LWP, then of the
  process. A caught one gets a signal frame (sendsig: the ABI lays out
  struct sigframe_siginfo on the user stack, or on the alternate stack with
  SA_ONSTACK) and the LWP resumes in the handler; its trampoline returns
  through setcontext. Stop signals stop the whole process (proc_stop: every
  LWP stops in userret, or in place when it sleeps interruptibly; the process
  is SSTOP once none is left running); SIGCONT (or SIGKILL) resumes it.
- Registers are rewritten only while the engine is stopped, never inside the
  system-call hook (the platform's in_hook): a signal found pending at the end
  of a system call stops the engine, and the run loop calls userret again
  before the LWP resumes.
- Traps (trapsignal): a fault goes straight to a handler if the signal is
  caught and not masked; otherwise it is unmasked, reset to SIG_DFL and
  posted, which kills the process (128+N, with nbemu's crash report).

Per-LWP state lives in fields of struct lwp (syscalls/lwp.py: l_sigpend,
l_sigwaited, l_sigwaitset, l_sigrestore, l_sigoldmask) and per-process state in
p_sigpend, p_sigwaiters, p_stat (SSTOP) and p_sflag (PS_STOPPING).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import upcall
from .errno import Errno, KernErrno
from .kern_proc import proc_free, wait_chan
from .kern_prot import proc_cred, ttystop_discarded
from .kern_sleepq import lwp_park_syncobj, sleepq_remove, sleepq_wake
from .lwp import (LSONPROC, LSRUN, LSSLEEP, LSSTOP, LSSUSPENDED, LSZOMB, PS_CONTINUED,
                  PS_STOPPING, PSL_TRACED, SACTIVE, SSTOP, Lwp, LwpFlag, Proc)
from .signals import (CLD_CONTINUED, CLD_DUMPED, CLD_EXITED, CLD_KILLED, CLD_STOPPED,  # noqa: F401
                      CLD_TRAPPED, NSIG, SI_ASYNCIO, SI_LWP, SI_MESGQ, SI_NOINFO, SI_QUEUE, SI_TIMER,  # noqa: F401
                      SI_USER, SIGPROP, SIGRTMIN, Ksiginfo, Sig, SigProp, Sigpend, bit, signame)

if TYPE_CHECKING:
    from .kernel import Kernel

SIG_DFL = 0
SIG_IGN = 1
SIG_CATCH = 2            # kern_sig.c's action value for a caught signal

# sigaction sa_flags (sys/signal.h)
SA_ONSTACK = 0x0001
SA_RESTART = 0x0002
SA_RESETHAND = 0x0004
SA_NOCLDSTOP = 0x0008
SA_NODEFER = 0x0010
SA_NOCLDWAIT = 0x0020
SA_SIGINFO = 0x0040
SA_NOKERNINFO = 0x0080
SA_ALLBITS = 0x00FF

# stack_t ss_flags
SS_ONSTACK = 0x0001
SS_DISABLE = 0x0004

# __SIGTRAMP_SIGINFO_VERSION (sys/signal.h): trampolines that take a siginfo frame
SIGTRAMP_SIGINFO_VERSION_MIN = 2
SIGTRAMP_SIGINFO_VERSION_MAX = 2

LW_PENDSIG = LwpFlag.LW_PENDSIG
LW_SINTR = LwpFlag.LW_SINTR
ERESTART = int(KernErrno.ERESTART)

_ALL = (1 << (NSIG - 1)) - 1                          # signals 1..63 as bits 0..62
CANTMASK = (1 << (Sig.SIGKILL - 1)) | (1 << (Sig.SIGSTOP - 1))
STOPSIGMASK = 0
CONTSIGMASK = 0
for _s, _p in SIGPROP.items():
    if _p & SigProp.SA_STOP:
        STOPSIGMASK |= 1 << (_s - 1)
    if _p & SigProp.SA_CONT:
        CONTSIGMASK |= 1 << (_s - 1)


# -- sigset_t <-> bit masks -------------------------------------------------------
def mask_of(words) -> int:
    """A sigset_t (four 32-bit words) as a bit mask (signal n = bit n-1)."""
    return (words[0] | (words[1] << 32)) & _ALL


def words_of(mask: int) -> tuple[int, int, int, int]:
    return (mask & 0xFFFFFFFF, (mask >> 32) & 0xFFFFFFFF, 0, 0)


def firstsig(mask: int) -> int:
    """The lowest-numbered signal in mask, or 0."""
    return (mask & -mask).bit_length() if mask else 0


def lsigpend(l: Lwp) -> Sigpend:
    return l.l_sigpend


def psigpend(p: Proc) -> Sigpend:
    return p.p_sigpend


def sigwaiters(p: Proc) -> list[Lwp]:
    return p.p_sigwaiters


# -- dispositions ---------------------------------------------------------------------
def sigaction_of(l: Lwp, sig: int) -> tuple:
    """(handler, sa_mask words, sa_flags, trampoline, trampoline version)."""
    return l.l_proc.p_sigacts.get(sig, (SIG_DFL, (0, 0, 0, 0), SA_RESTART, 0, 0))


def sig_ignored(p: Proc, sig: int) -> bool:
    """sigismember(&ps_sigignore, sig): SIG_IGN, or SIG_DFL with a default of
    ignoring (SIGCONT never: it must still continue the process)."""
    handler = p.p_sigacts.get(sig, (SIG_DFL,))[0]
    if handler == SIG_IGN:
        return sig != Sig.SIGCONT
    return (handler == SIG_DFL and sig != Sig.SIGCONT
            and bool(SIGPROP[sig] & SigProp.SA_IGNORE))


def sig_action(p: Proc, sig: int) -> int:
    handler = p.p_sigacts.get(sig, (SIG_DFL,))[0]
    if handler == SIG_DFL or handler == SIG_IGN:
        return SIG_DFL
    return SIG_CATCH


def sig_clear_everywhere(p: Proc, mask: int) -> None:
    """Forget pending signals of mask on the process and every LWP."""
    psigpend(p).clear(mask)
    for t in p.p_lwps.values():
        t.l_sigpend.clear(mask)


def masked(l: Lwp, sig: int) -> bool:
    m = l.l_sigmask
    w, b = divmod(sig - 1, 32)
    return bool((m[w] >> b) & 1)


def sigispending(l: Lwp) -> int:
    """The first signal l could take now (pending on it or its process, not
    masked, not ignored), or 0."""
    p = l.l_proc
    pend = lsigpend(l).set | psigpend(p).set
    if not pend:
        return 0
    pend &= ~mask_of(l.l_sigmask)
    while pend:
        sig = firstsig(pend)
        if not sig_ignored(p, sig):
            return sig
        pend &= ~bit(sig)
    return 0


def sigsuspendsetup(l: Lwp, mask: tuple[int, int, int, int]) -> None:
    """Wait with signal mask `mask` (sigsuspend, pselect, pollts): a handler's
    frame restores the mask from before (postsig uses l_sigoldmask while
    l_sigrestore is set)."""
    l.l_sigoldmask = l.l_sigmask
    l.l_sigrestore = True
    l.l_sigmask = words_of(mask_of(mask) & ~CANTMASK)
    if sigispending(l):
        l.l_flag |= LW_PENDSIG
        l.npark_end()


def sigsuspendteardown(l: Lwp) -> None:
    """After the wait: the old mask back, unless a signal is pending (its
    handler's frame restores it then)."""
    if l.l_sigrestore:
        if sigispending(l):
            l.l_flag |= LW_PENDSIG
            l.npark_end()
        else:
            l.l_sigrestore = False
            l.l_sigmask = l.l_sigoldmask


def sleepq_sigtoerror(l: Lwp, sig: int) -> int:
    """ERESTART when the handler asks for restarts (SA_RESTART), else EINTR."""
    if sigaction_of(l, sig)[2] & SA_RESTART:
        return ERESTART
    return Errno.EINTR


def proc_stopping(p: Proc) -> bool:
    return p.p_stat == SSTOP or bool(p.p_sflag & PS_STOPPING)


def proc_is_stopped(p: Proc) -> bool:
    return p.p_stat == SSTOP


# -- posting ----------------------------------------------------------------------
def signotify(k: "Kernel", t: Lwp) -> None:
    """Make t look for signals at its next userret. If it is running on another
    vCPU, end the current host turn (nbemu's IPI) so that its vCPU runs soon."""
    t.l_flag |= LW_PENDSIG
    t.npark_end()
    if t.l_stat == LSONPROC and t is not k.platform.curlwp:
        k.platform.request_stop()


def sigpost(t: Lwp, action: int, prop: int, sig: int) -> bool:
    """Tell LWP t about sig; True if t will take it (kern_sig.c sigpost)."""
    if t.l_stat == LSZOMB:
        return False
    p = t.l_proc
    k = p.k
    signotify(k, t)
    if masked(t, sig):
        return False
    if action == SIG_DFL and prop & SigProp.SA_KILL:
        sigexit(t, sig)
        return True
    if (t.l_stat == LSSTOP and not proc_stopping(p) and not prop & SigProp.SA_STOP
            and not t.l_flag & LwpFlag.LW_DBGSUSPEND
            and (t.l_wchan is None or t.l_flag & LW_SINTR or prop & SigProp.SA_CONT)):
        # sigpost's LSSTOP case: the LWP runs to take the signal. Only an LWP
        # that a tracer left stopped when it resumed another (kern_lwp's
        # lwp_unstop) is stopped in a running process; it stops the process
        # again at its userret (issignal). In a stopped process NetBSD lets it
        # run too, but only to its userret, where it stops at once: nothing
        # anyone sees, so nbemu leaves it stopped there.
        unstop_lwp(t)
    st = t.l_stat
    if st == LSRUN or st == LSONPROC:
        return True
    if st == LSSLEEP and t.l_flag & LW_SINTR:
        if action == SIG_DFL:
            return False          # a default stop / continue does not interrupt sleeps
        k.event("sigwake", t, sig=sig)
        sleepq_remove(k, t, sleepq_sigtoerror(t, sig))
        return True
    return False


def sigunwait(p: Proc, ksi: Ksiginfo) -> bool:
    """Hand ksi to an LWP waiting for it in sigtimedwait (sigunwait)."""
    sig = ksi.signo
    waiters = sigwaiters(p)
    if not waiters:
        return False
    found = None
    for t in waiters:
        if ksi.lid and t.l_lid != ksi.lid:
            continue
        if t.l_sigwaitset & bit(sig):
            found = t
            break
    if found is None:
        return False
    found.l_sigwaited[0] = ksi
    found.l_sigwaited = None
    waiters.remove(found)
    if found.l_stat == LSSLEEP and found.l_wchan == sigwait_chan(found):
        sleepq_remove(p.k, found, 0)
    return True


def sigwait_chan(l: Lwp) -> tuple:
    return ("l_sigcv", l.l_proc.p_pid, l.l_lid)


def kpsignal2(p: Proc, ksi: Ksiginfo) -> None:
    """Post ksi to process p, or to LWP ksi.lid of p (kern_sig.c kpsignal2)."""
    if p.p_exiting:
        return
    k = p.k
    sig = ksi.signo
    prop = SIGPROP[sig]
    toall = bool(prop & SigProp.SA_TOALL)
    lid = 0 if toall else ksi.lid
    anyl = p.lwp_find(lid) if lid else next(iter(p.p_lwps.values()), None)
    if anyl is not None:
        k.event("signal", anyl, sig=sig, code=ksi.code, lid=lid)
    if sig == Sig.SIGKILL:
        t = anyl if anyl is not None and anyl.l_stat != LSZOMB else _any_live(p)
        if t is not None:
            sigexit(t, sig)
        return
    if p.p_slflag & PSL_TRACED:
        _post_traced(p, ksi, lid, prop)
        return
    if sig_ignored(p, sig):
        return
    action = sig_action(p, sig)
    if prop & SigProp.SA_CONT:
        sig_clear_everywhere(p, STOPSIGMASK)
    if prop & SigProp.SA_STOP:
        sig_clear_everywhere(p, CONTSIGMASK)
    stopping = proc_stopping(p)
    if not prop & SigProp.SA_CANTMASK and not stopping and sigunwait(p, ksi):
        return
    if lid:
        _post_lwp(p, lid, ksi, action, prop)
        return
    if not stopping:
        if prop & SigProp.SA_CONT and action == SIG_DFL:
            return                    # SIGCONT to a running process: nothing to do
        if prop & SigProp.SA_STOP and action == SIG_DFL:
            if ttystop_discarded(p, bool(prop & SigProp.SA_TTYSTOP)):
                return                # orphaned group: no tty stops
            t = _taker(p, sig)
            if t is not None:         # someone can take it: the process stops now
                proc_stop(p, sig)
                return
    else:
        if prop & SigProp.SA_CONT:
            proc_unstop(p)
            if action == SIG_DFL:
                return                # not made pending
        elif prop & SigProp.SA_STOP:
            return                    # already stopped or stopping
    psigpend(p).put(ksi)
    lwps = _post_order(p)
    for t in lwps:
        if sigpost(t, action, prop, sig) and not toall:
            break
        if p.p_exiting:
            break


def _post_lwp(p: Proc, lid: int, ksi: Ksiginfo, action: int, prop: int) -> None:
    """An LWP-directed signal: pending on LWP lid of p (dropped if it is gone)."""
    t = p.lwp_find(lid)
    if t is None or t.l_stat == LSZOMB:
        return
    lsigpend(t).put(ksi)
    sigpost(t, action, prop, ksi.signo)


def _post_traced(p: Proc, ksi: Ksiginfo, lid: int, prop: int) -> None:
    """A traced process takes every signal (SIGKILL aside) through its tracer,
    ignored ones included: it is made pending, and the LWP that finds it stops
    in issignal. Nothing stops or continues here; a stopped process stays so."""
    sig = ksi.signo
    if lid:
        _post_lwp(p, lid, ksi, SIG_CATCH, prop)
        return
    psigpend(p).put(ksi)
    for t in _post_order(p):
        if sigpost(t, SIG_CATCH, prop, sig):
            break


def _any_live(p: Proc) -> Lwp | None:
    for t in p.p_lwps.values():
        if t.l_stat != LSZOMB:
            return t
    return None


def _taker(p: Proc, sig: int) -> Lwp | None:
    for t in p.p_lwps.values():
        if t.l_stat != LSZOMB and not masked(t, sig):
            return t
    return None


def _post_order(p: Proc) -> list[Lwp]:
    """LWPs in the order sigpost tries them for a process signal: running or
    runnable first (they take it at once), then the others."""
    lwps = list(p.p_lwps.values())
    return ([t for t in lwps if t.l_stat in (LSONPROC, LSRUN)]
            + [t for t in lwps if t.l_stat not in (LSONPROC, LSRUN)])


def _sender_ids(l: Lwp | None, p: Proc) -> tuple[int, int]:
    try:
        uid = proc_cred(p).cr_euid
    except Exception:          # a process without credentials (unit tests)
        uid = 0
    return p.p_pid, uid


def kpsignal_lwp(t: Lwp, sig: int) -> None:
    """_lwp_kill(t, sig) from t's own process: an LWP-directed signal."""
    p = t.l_proc
    pid, uid = _sender_ids(None, p)
    kpsignal2(p, Ksiginfo(sig, SI_LWP, pid, uid, lid=t.l_lid))


def kpsignal_proc(l: Lwp, sig: int, code: int = SI_USER) -> None:
    """kill(getpid(), sig) from LWP l: a process-directed signal."""
    p = l.l_proc
    pid, uid = _sender_ids(l, p)
    kpsignal2(p, Ksiginfo(sig, code, pid, uid))


def psignal(p: Proc, sig: int) -> None:
    """psignal(): a process signal without information (si_code SI_NOINFO)."""
    kpsignal2(p, Ksiginfo.noinfo(sig))


# -- exit -----------------------------------------------------------------------------
def sigexit(l: Lwp, sig: int) -> None:
    """The process dies of sig (with a crash report when the default action
    dumps core)."""
    p = l.l_proc
    if p.p_exiting:
        return
    if SIGPROP[sig] & SigProp.SA_CORE:
        p.k.platform.note_core(l, sig)
    upcall.exit1(l, 0, sig)


# -- stop / continue ----------------------------------------------------------------
def proc_stop(p: Proc, sig: int) -> None:
    """Begin stopping p: interruptible sleepers stop in place, the others at
    their next userret (proc_stop)."""
    k = p.k
    p.p_sflag = (p.p_sflag | PS_STOPPING) & ~PS_CONTINUED
    p.p_xstopsig = sig
    for t in list(p.p_lwps.values()):
        if t.l_stat == LSSLEEP and t.l_flag & LW_SINTR:
            t.set_stat(LSSTOP)
            p.p_nrlwps -= 1
            k.event("stop", t, sig=sig)
        elif t.l_stat in (LSRUN, LSONPROC):
            signotify(k, t)
    proc_stop_check(p)


def proc_stop_check(p: Proc) -> None:
    """The process is stopped once no LWP is left running, runnable or asleep."""
    if not p.p_sflag & PS_STOPPING:
        return
    for t in p.p_lwps.values():
        if t.l_stat in (LSRUN, LSONPROC, LSSLEEP):
            return
    p.p_sflag &= ~PS_STOPPING
    p.p_stat = SSTOP
    t = _any_live(p)
    if t is not None:
        p.k.event("proc_stop", t, sig=p.p_xstopsig)
    p.p_nstopchild = 1                 # (wait: reported once, as p_waited)
    child_notify(p, CLD_TRAPPED if p.p_slflag & PSL_TRACED else CLD_STOPPED)


def eventswitch(l: Lwp, code: int, xinfo: Any = None, now: bool = False) -> None:
    """Stop l's traced process for its tracer with SIGTRAP `code` (TRAP_CHLD,
    TRAP_LWP, TRAP_SCE/SCX, TRAP_TRACE: kern_sig.c eventswitch and
    proc_stoptrace, whatever l's signal mask). xinfo: the rest of the siginfo
    (Proc.p_ptrace_xinfo). l stops at its userret, or at once (now: l is in a
    system call that then yields BLOCK, to go on when the tracer resumes it)."""
    p = l.l_proc
    if p.p_exiting or not p.p_slflag & PSL_TRACED:
        return
    ksi = Ksiginfo(Sig.SIGTRAP, code, lid=l.l_lid)
    p.p_ptrace_sig, p.p_ptrace_lid, p.p_ptrace_ksi = 0, l.l_lid, ksi
    p.p_ptrace_xinfo = xinfo
    proc_stop(p, Sig.SIGTRAP)
    if now and l.l_stat == LSONPROC:
        sigswitch(l)


def sigswitch(l: Lwp) -> None:
    """The running LWP l stops (in userret) because its process is stopping."""
    p = l.l_proc
    k = p.k
    k.cpu_release(l)
    p.p_nrlwps -= 1
    l.set_stat(LSSTOP)
    k.event("stop", l, sig=p.p_xstopsig)
    proc_stop_check(p)


def sleep_stop(l: Lwp) -> None:
    """l just went to sleep interruptibly while its process stops: stop in place."""
    p = l.l_proc
    l.set_stat(LSSTOP)
    p.p_nrlwps -= 1
    p.k.event("stop", l, sig=p.p_xstopsig)
    proc_stop_check(p)


def proc_unstop(p: Proc, continued: bool = True) -> None:
    """SIGCONT: every stopped LWP runs again, or goes back to sleep if its sleep
    has not ended meanwhile. A tracer's resume (continued=False) is no
    SIGCONT: the parent hears of no CLD_CONTINUED."""
    was_stopped = p.p_stat == SSTOP
    p.p_stat = SACTIVE
    p.p_sflag = p.p_sflag & ~PS_STOPPING
    p.p_nstopchild = 0
    if continued:
        p.p_sflag |= PS_CONTINUED
    if was_stopped and continued:
        child_notify(p, CLD_CONTINUED)
    for t in list(p.p_lwps.values()):
        if t.l_stat == LSSTOP and not t.l_flag & LwpFlag.LW_DBGSUSPEND:   # PT_SUSPEND
            unstop_lwp(t)


def unstop_lwp(t: Lwp) -> None:
    """The stopped LWP t runs again, or goes back to sleep if its sleep has not
    ended meanwhile: proc_unstop's step for each LWP, which kern_lwp.lwp_unstop
    and sigpost share (NetBSD writes it out in each). The caller has checked
    that t is LSSTOP and did what its process needs."""
    p = t.l_proc
    k = p.k
    assert t.l_stat == LSSTOP, t
    p.p_nrlwps += 1
    k.event("continue", t)
    if t.l_wchan is not None:
        t.set_stat(LSSLEEP)
        # An unpark that came while it was stopped (lwp_unpark only
        # wakes LSSLEEP parkers) must not be lost.
        if t.l_flag & LwpFlag.LW_UNPARKED and t.l_syncobj is lwp_park_syncobj:
            t.l_flag &= ~LwpFlag.LW_UNPARKED
            sleepq_remove(k, t, 0)
    else:
        t.l_flag |= LW_PENDSIG
        t.npark_end()
        k.setrunnable(t)


# -- delivery -------------------------------------------------------------------------
def issignal(l: Lwp) -> Ksiginfo | None:
    """The next signal l must take in user mode (its handler runs), after
    applying default actions and stops on the way (kern_sig.c issignal). None:
    nothing to deliver, or l stopped / the process exited."""
    p = l.l_proc
    lsp = lsigpend(l)
    psp = psigpend(p)
    while True:
        if p.p_exiting or l.l_stat != LSONPROC:
            return None
        if proc_stopping(p):
            sigswitch(l)
            return None
        traced = bool(p.p_slflag & PSL_TRACED)
        if p.p_ptrace_lid and p.p_ptrace_lid == l.l_lid:
            # l resumes from its trace stop with the signal the tracer chose
            sig, ksi = p.p_ptrace_sig, p.p_ptrace_ksi
            p.p_ptrace_lid, p.p_ptrace_sig, p.p_ptrace_ksi = 0, 0, None
            if not sig:
                continue
            if ksi is None or ksi.signo != sig:
                ksi = Ksiginfo.noinfo(sig)
            if masked(l, sig):
                psp.put(ksi)              # a masked one waits, pending again
                continue
        else:
            mask = mask_of(l.l_sigmask)
            pend = lsp.set & ~mask
            sp = lsp
            if not pend:
                pend = psp.set & ~mask
                sp = psp
                if not pend:
                    l.l_flag &= ~LW_PENDSIG
                    _renotify(p, l)
                    return None
            sig = firstsig(pend)
            ksi = sp.get(sig)
            if traced and sig != Sig.SIGKILL and not p.p_sigpass & bit(sig):
                # stop for the tracer, which decides what l takes (p_xsig)
                p.p_ptrace_sig, p.p_ptrace_lid, p.p_ptrace_ksi = sig, l.l_lid, ksi
                p.p_ptrace_xinfo = None
                proc_stop(p, sig)
                continue
        if sig_ignored(p, sig):
            continue
        prop = SIGPROP[sig]
        if sig_action(p, sig) == SIG_DFL:
            if prop & SigProp.SA_STOP:
                if not traced:            # the tracer saw the stop signal already
                    proc_stop(p, sig)
                continue
            if prop & SigProp.SA_IGNORE:
                continue              # SIGCONT by default: it already continued us
            sigexit(l, sig)
            return None
        return ksi


def _renotify(p: Proc, l: Lwp) -> None:
    """Process signals l masks: let an LWP that does not mask them know."""
    psp = p.p_sigpend
    if psp is None or not psp.set:
        return
    pend = psp.set
    for t in p.p_lwps.values():
        if t is l or t.l_stat == LSZOMB or t.l_flag & LW_PENDSIG:
            continue
        if pend & ~mask_of(t.l_sigmask):
            sig = firstsig(pend & ~mask_of(t.l_sigmask))
            sigpost(t, sig_action(p, sig), SIGPROP[sig], sig)
            return


def postsig(l: Lwp, ksi: Ksiginfo) -> None:
    """Take a caught signal: build its frame (postsig + sendsig)."""
    if l.l_sigrestore:
        returnmask = l.l_sigoldmask
        l.l_sigrestore = False
    else:
        returnmask = l.l_sigmask
    l.l_proc.k.event("sigdeliver", l, sig=ksi.signo, code=ksi.code)
    sendsig(l, ksi, returnmask)


def sendsig_reset(l: Lwp, sig: int) -> None:
    """The handler runs with sa_mask (which holds sig itself unless
    SA_NODEFER) added to the LWP's mask; SA_RESETHAND resets the action."""
    p = l.l_proc
    handler, smask, flags, tramp, vers = sigaction_of(l, sig)
    l.l_sigmask = words_of((mask_of(l.l_sigmask) | mask_of(smask)) & ~CANTMASK)
    if flags & SA_RESETHAND:
        p.p_sigacts[sig] = (SIG_DFL, smask, flags & ~SA_RESETHAND, tramp, vers)


def sendsig(l: Lwp, ksi: Ksiginfo, returnmask) -> None:
    """Build the signal frame of ksi for l and point l at its handler
    (sendsig_siginfo). l's registers must be rewritable (not in the hook)."""
    p = l.l_proc
    k = p.k
    abi = k.abi
    plat = k.platform
    sig = ksi.signo
    handler, _smask, flags, tramp, vers = sigaction_of(l, sig)
    if vers < SIGTRAMP_SIGINFO_VERSION_MIN or not tramp:
        # amd64 has no sigcontext frames (machdep.c sendsig_sigcontext: illegal)
        k.warn(f"signal {signame(sig)}: handler without a siginfo trampoline "
               f"(version {vers}): killed with SIGILL")
        sigexit(l, Sig.SIGILL)
        return
    vals = plat.regs_get(l, abi.getmcontext_ids())
    vids = abi.sendsig_vregs()
    xmm = plat.vregs_raw(l, vids)
    ss_sp, ss_size, ss_flags = l.l_sigstk
    onstack = not ss_flags & (SS_DISABLE | SS_ONSTACK) and bool(flags & SA_ONSTACK)
    alt_top = ss_sp + ss_size if onstack else None
    err = ksi.err
    fp, frame, ids, nvals, nvids, nvvals = abi.sendsig_frame(
        vals, xmm, abi.pack_siginfo(ksi), tuple(returnmask), bool(ss_flags & SS_ONSTACK),
        alt_top, handler, tramp, sig, ksi.trap if ksi.fault else 0, err)
    sendsig_reset(l, sig)
    error = p.p_vmspace.copyout(frame, fp)
    if error:
        # The process trashed its stack: an illegal instruction stops it.
        k.warn(f"signal {signame(sig)}: cannot write the signal frame at {fp:#x}: "
               "killed with SIGILL")
        sigexit(l, Sig.SIGILL)
        return
    plat.regs_set(l, ids, nvals)
    plat.vregs_set(l, nvids, nvvals)
    if onstack:
        l.l_sigstk = (ss_sp, ss_size, ss_flags | SS_ONSTACK)
    if handler >= abi.vm_maxuser_address:
        sigexit(l, Sig.SIGILL)


def sig_userret(l: Lwp) -> None:
    """Take l's pending signals on its way back to user mode (lwp_userret)."""
    p = l.l_proc
    k = p.k
    if k.platform.in_hook:
        # Inside the system-call hook registers must not be rewritten: stop the
        # engine; the run loop calls userret again before l runs.
        if proc_stopping(p) or sigispending(l):
            k.platform.request_stop()
        else:
            l.l_flag &= ~LW_PENDSIG
            _renotify(p, l)
        return
    while l.l_flag & LW_PENDSIG:
        ksi = issignal(l)
        if ksi is None:
            return
        postsig(l, ksi)
        if l.l_stat != LSONPROC or p.p_exiting:
            return


def sig_sleep_check(l: Lwp) -> int:
    """At the start of an interruptible sleep: the error that ends it at once
    (EINTR / ERESTART) when a signal is already pending; a process that is
    stopping stops the sleeper in place instead (0)."""
    if not l.l_flag & LW_PENDSIG:
        return 0
    p = l.l_proc
    if proc_stopping(p):
        if l.l_stat == LSSLEEP:
            sleep_stop(l)
        return 0
    sig = sigispending(l)
    if sig:
        return sleepq_sigtoerror(l, sig)
    return 0


# -- traps ------------------------------------------------------------------------------
def trapsignal(l: Lwp, ksi: Ksiginfo) -> bool:
    """A fault of l (kern_sig.c trapsignal): True if its handler will run."""
    p = l.l_proc
    sig = ksi.signo
    ksi.lid = l.l_lid
    ksi.fault = True
    handler, smask, flags, tramp, vers = sigaction_of(l, sig)
    is_masked = masked(l, sig)
    if handler not in (SIG_DFL, SIG_IGN) and not is_masked and not p.p_exiting:
        p.k.event("signal", l, sig=sig, code=ksi.code, lid=l.l_lid, trap=True)
        postsig(l, ksi)
        return not p.p_exiting
    if is_masked or handler == SIG_IGN:
        # Unmask and reset to the default so that the process dies of it.
        l.l_sigmask = words_of(mask_of(l.l_sigmask) & ~bit(sig))
        p.p_sigacts[sig] = (SIG_DFL, words_of(mask_of(smask) & ~bit(sig)), flags, tramp,
                            vers)
    kpsignal2(p, ksi)
    return False


def fault_ksiginfo(sig: int, code: int, addr: int, trapno: int, err: int) -> Ksiginfo:
    ksi = Ksiginfo(sig, code)
    ksi.fault = True
    ksi.addr = addr
    ksi.trap = trapno
    ksi.err = err
    return ksi


__all__ = ["kpsignal2", "kpsignal_lwp", "kpsignal_proc", "psignal", "trapsignal",
           "sig_userret", "sig_sleep_check", "Ksiginfo", "sigaction_of", "SIG_DFL", "SIG_IGN"]


def child_notify(p: Proc, code: int) -> None:
    """child_psignal(): tell p's parent that p exited, stopped or continued: SIGCHLD (unless
    SA_NOCLDSTOP for stops and continues) and a wakeup of its waiters. A zombie
    whose parent does not want zombies (SIG_IGN or SA_NOCLDWAIT) is freed."""
    parent = p.p_pptr
    k = p.k
    if parent is None or parent.p_exiting:
        if code in (CLD_EXITED, CLD_KILLED):
            proc_free(k, p)
        return
    act = parent.p_sigacts.get(Sig.SIGCHLD)
    handler, flags = (act[0], act[2]) if act else (0, 0)
    exited = code in (CLD_EXITED, CLD_KILLED, CLD_DUMPED)
    if exited and (handler == SIG_IGN or flags & SA_NOCLDWAIT):
        proc_free(k, p)
    elif exited or not flags & SA_NOCLDSTOP:
        ksi = Ksiginfo(Sig.SIGCHLD, code, p.p_pid, proc_cred(p).cr_uid)
        ksi.value = p.p_xsig if code in (CLD_KILLED, CLD_DUMPED) else (
            p.p_xstat or 0) if exited else p.p_xstopsig
        kpsignal2(parent, ksi)
    sleepq_wake(k, wait_chan(parent))
