"""Signal and context system calls (NetBSD's sys_sig.c and kern_context.c):
sigaction with trampolines, sigprocmask, sigpending, sigsuspend, sigtimedwait,
sigaltstack, kill, sigqueueinfo, getcontext, setcontext.

Posting and delivery are kern_sig.py's; these handlers validate, copy in,
change the LWP's or the process's signal state, and copy out, as sys_sig.c
does.
"""
from __future__ import annotations

import struct
from typing import Generator

from .cstruct import SIGACTION, STACK_T
from .errno import Errno, KernErrno
from .kern_sig import (CANTMASK, LW_PENDSIG, SA_ALLBITS, SA_NODEFER, SI_QUEUE, SI_USER,
                       SIG_DFL, SIG_IGN, SIGTRAMP_SIGINFO_VERSION_MAX,
                       SIGTRAMP_SIGINFO_VERSION_MIN, SS_DISABLE, SS_ONSTACK, Ksiginfo, bit,
                       kpsignal2, lsigpend, mask_of, psigpend, sig_clear_everywhere,
                       sigsuspendsetup, sigsuspendteardown,
                       sig_ignored, sigaction_of, sigispending, sigpost, sigwait_chan,
                       sigwaiters, words_of, SIGPROP, firstsig, sig_action)
from .kern_sleepq import kpause, sleep_syncobj, sleepq_block, sleepq_enqueue
from .kern_time import copyin_timespec
from .lwp import LSZOMB, Lwp
from .signals import NSIG, Sig, SigProp
from .table import syscall

SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 1, 2, 3
SS_ALLBITS = SS_ONSTACK | SS_DISABLE
MINSIGSTKSZ = 8192
_UC_SIGMASK, _UC_STACK, _UC_CPU = 0x1, 0x2, 0x4
EJUSTRETURN = int(KernErrno.EJUSTRETURN)
ERESTART = int(KernErrno.ERESTART)


_SIGSET = struct.Struct("<4I")      # sigset_t: four 32-bit words


def _sigset(data: bytes) -> tuple[int, int, int, int]:
    return _SIGSET.unpack(data)


# -- sigaction -------------------------------------------------------------------------
def sigaction1(l: Lwp, sig: int, new: tuple | None, tramp: int, vers: int) -> int:
    """kern_sig.c sigaction1 (the new action part): validate and install."""
    p = l.l_proc
    if sig <= 0 or sig >= NSIG:
        return Errno.EINVAL
    if new is None:
        return 0
    handler, smask, flags = new
    if flags & ~SA_ALLBITS:
        return Errno.EINVAL
    # The trampoline ABI: version 0 is the legacy in-kernel sigcode (which
    # amd64 never had for siginfo frames), versions 2.. need a trampoline.
    if handler not in (SIG_DFL, SIG_IGN):
        if vers < SIGTRAMP_SIGINFO_VERSION_MIN and vers != 0:
            return Errno.EINVAL
        if vers > SIGTRAMP_SIGINFO_VERSION_MAX:
            return Errno.EINVAL
        if vers >= SIGTRAMP_SIGINFO_VERSION_MIN and not tramp:
            return Errno.EINVAL
    prop = SIGPROP[sig]
    if prop & SigProp.SA_CANTMASK:
        return Errno.EINVAL
    if prop & SigProp.SA_NORESET:
        flags &= ~0x4                                     # SA_RESETHAND
    m = mask_of(smask) & ~CANTMASK
    if flags & SA_NODEFER:
        m &= ~bit(sig)
    else:
        m |= bit(sig)
    p.p_sigacts[sig] = (handler, words_of(m), flags, tramp, vers)
    if handler not in (SIG_DFL, SIG_IGN):
        p.k.platform.signal_caught(sig)                   # emu/machine.py: host signals
    if handler == SIG_IGN or (handler == SIG_DFL and prop & SigProp.SA_IGNORE):
        sig_clear_everywhere(p, bit(sig))                 # never to be seen again
    return 0


@syscall(340, "__sigaction_sigtramp")
def sys___sigaction_sigtramp(l: Lwp, a, retval: list[int]) -> int:
    vm = l.l_proc.p_vmspace
    sig = a.signum
    new = None
    lay = SIGACTION.on(l.l_proc.k.abi)
    if a.nsa:
        data = vm.copyin(a.nsa, lay.size)
        if isinstance(data, int):
            return data
        handler, *mask, flags = lay.unpack(data)
        new = (handler, tuple(mask), flags)
    if sig <= 0 or sig >= NSIG:
        return Errno.EINVAL
    old = sigaction_of(l, sig)
    error = sigaction1(l, sig, new, a.tramp, a.vers)
    if error:
        return error
    if a.osa:
        h, m, f = old[0], old[1], old[2]
        error = vm.copyout(lay.pack(h, *m, f), a.osa)
        if error:
            return error
    return 0


# -- masks -----------------------------------------------------------------------------
def sigprocmask1(l: Lwp, how: int, nss: tuple | None) -> int:
    """Change l's mask; newly unblocked pending signals make l look (LW_PENDSIG)."""
    if nss is None:
        return 0
    old = mask_of(l.l_sigmask)
    s = mask_of(nss)
    if how == SIG_BLOCK:
        new = old | s
    elif how == SIG_UNBLOCK:
        new = old & ~s
    elif how == SIG_SETMASK:
        new = s
    else:
        return Errno.EINVAL
    new &= ~CANTMASK
    l.l_sigmask = words_of(new)
    # (the pending sets are looked at here first: nothing pending is the rule,
    # and pthread_create / pthread_join change the mask four times)
    if old & ~new and (l.l_sigpend.set or l.l_proc.p_sigpend.set) and sigispending(l):
        l.l_flag |= LW_PENDSIG
        l.npark_end()
    if new & ~old:
        _hand_over(l, new & ~old)
    return 0


def _hand_over(l: Lwp, newly_blocked: int) -> None:
    """Process signals l was told about but now blocks go to another LWP."""
    p = l.l_proc
    psp = p.p_sigpend
    if psp is None or not psp.set & newly_blocked:
        return
    pend = psp.set & newly_blocked
    while pend:
        sig = firstsig(pend)
        pend &= ~bit(sig)
        for t in p.p_lwps.values():
            if t is not l and t.l_stat != LSZOMB and sigpost(t, sig_action(p, sig),
                                                            SIGPROP[sig], sig):
                break


@syscall(293, "__sigprocmask14")
def sys___sigprocmask14(l: Lwp, a, retval: list[int]) -> int:
    vm = l.l_proc.p_vmspace
    old = l.l_sigmask
    if a.set:
        data = vm.copyin(a.set, 16)
        if data.__class__ is not bytes:     # an errno (isinstance costs a call)
            return data
        error = sigprocmask1(l, a.how, _SIGSET.unpack(data))
        if error:
            return error
    if a.oset:
        return vm.copyout(_SIGSET.pack(*old), a.oset)
    return 0


@syscall(292, "__sigpending14")
def sys___sigpending14(l: Lwp, a, retval: list[int]) -> int:
    pend = lsigpend(l).set | psigpend(l.l_proc).set
    return l.l_proc.p_vmspace.copyout(struct.pack("<4I", *words_of(pend)), a.set)


# -- waiting for signals ---------------------------------------------------------------
def sigsuspend1(l: Lwp, mask: tuple[int, int, int, int] | None) -> Generator:
    """Wait for a signal with the signal mask `mask` (None: the current one):
    always EINTR, never a restart. __sigsuspend14 and compat_13's sigsuspend13."""
    p = l.l_proc
    if mask is not None:
        sigsuspendsetup(l, mask)
    while True:
        error = yield from kpause(p.k, l, "pause", True, None,
                                  wchan=("pause", p.p_pid, l.l_lid))
        if error:
            break
    sigsuspendteardown(l)
    return Errno.EINTR


@syscall(294, "__sigsuspend14")
def sys___sigsuspend14(l: Lwp, a, retval: list[int]) -> Generator:
    mask = None
    if a.set:
        data = l.l_proc.p_vmspace.copyin(a.set, 16)
        if isinstance(data, int):
            return data
        mask = _sigset(data)
    return (yield from sigsuspend1(l, mask))


def sigtimedwait1(l: Lwp, setp: int, infop: int, tsp: int, layout: str
                  ) -> Generator[str, int, int | tuple]:
    p = l.l_proc
    k = p.k
    vm = p.p_vmspace
    data = vm.copyin(setp, 16)
    if isinstance(data, int):
        return data
    waitset = mask_of(_sigset(data)) & ~CANTMASK
    timo_ns = None
    poll = False
    if tsp:
        ts = copyin_timespec(l, tsp, layout)
        if isinstance(ts, int):
            return ts
        sec, nsec = ts
        if sec < 0 or nsec < 0 or nsec >= 1_000_000_000:
            return Errno.EINVAL
        timo_ns = sec * 1_000_000_000 + nsec
        poll = timo_ns == 0
    # A signal of the set already pending: the process's first, then the LWP's.
    ksi = None
    for sp in (psigpend(p), lsigpend(l)):
        pend = sp.set & waitset
        if pend:
            ksi = sp.get(firstsig(pend))
            break
    if ksi is None:
        if poll:
            return Errno.EAGAIN
        holder: list = [None]
        l.l_sigwaited = holder
        l.l_sigwaitset = waitset
        waiters = sigwaiters(p)
        waiters.append(l)
        sleepq_enqueue(k, l, sigwait_chan(l), "sigwait", sleep_syncobj, True)
        error = yield from sleepq_block(k, l, timo_ns)
        if holder[0] is not None:
            ksi = holder[0]
        else:
            l.l_sigwaited = None
            if l in waiters:
                waiters.remove(l)
            if error == Errno.EWOULDBLOCK:
                return Errno.EAGAIN
            if error == ERESTART or error == 0:
                return Errno.EINTR
            return error
    if infop:
        info = k.abi.pack_siginfo(ksi)[:k.abi.ksiginfo_size]
        error = vm.copyout(info, infop)
        if error:
            return error
    return 0, ksi.signo


@syscall(431, "____sigtimedwait50")
def sys____sigtimedwait50(l: Lwp, a, retval: list[int]) -> Generator:
    res = yield from sigtimedwait1(l, a.set, a.info, a.timeout, "ts")
    if isinstance(res, tuple):
        retval[0] = res[1]
        return 0
    return res


@syscall(244, "compat_50___sigtimedwait")
def compat_50_sys___sigtimedwait(l: Lwp, a, retval: list[int]) -> Generator:
    res = yield from sigtimedwait1(l, a.set, a.info, a.timeout, "ts50")
    if isinstance(res, tuple):
        retval[0] = res[1]
        return 0
    return res


# -- alternate stack -----------------------------------------------------------------
@syscall(281, "__sigaltstack14")
def sys___sigaltstack14(l: Lwp, a, retval: list[int]) -> int:
    vm = l.l_proc.p_vmspace
    old = l.l_sigstk
    lay = STACK_T.on(l.l_proc.k.abi)
    if a.nss:
        data = vm.copyin(a.nss, lay.size)
        if isinstance(data, int):
            return data
        sp, size, flags = lay.unpack(data)
        if flags & ~SS_ALLBITS:
            return Errno.EINVAL
        if flags & SS_DISABLE:
            if old[2] & SS_ONSTACK:
                return Errno.EINVAL
        elif size < MINSIGSTKSZ:
            return Errno.ENOMEM
        l.l_sigstk = (sp, size, flags)
    if a.oss:
        return vm.copyout(lay.pack(*old), a.oss)
    return 0


# -- sending ----------------------------------------------------------------------------
def _kill_targets(l: Lwp, pid: int) -> list | int:
    """kill1()'s choice of processes (zombies take no signal but are found):
    pid > 0 that process; 0 the caller's process group; -1 every process but
    the caller; < -1 process group -pid. ESRCH when none is found."""
    from .kern_prot import proc_pgid
    from .lwp import SZOMB
    p = l.l_proc
    k = p.k
    if pid > 0:
        t = k.allproc.get(pid)
        if t is None:
            return Errno.ESRCH
        return [t] if t.p_stat != SZOMB else []
    if pid == -1:
        found = [t for t in k.allproc.values() if t is not p]
    else:
        pgid = proc_pgid(p) if pid == 0 else -pid
        found = [t for t in k.allproc.values() if proc_pgid(t) == pgid]
    if not found:
        return Errno.ESRCH
    return [t for t in found if t.p_stat != SZOMB]


def kill1(l: Lwp, pid: int, ksi: Ksiginfo) -> int:
    """Every process of the guest belongs to one user, so kauth's signal rule
    (same real or effective uid) always allows it."""
    if ksi.signo < 0 or ksi.signo >= NSIG:
        return Errno.EINVAL
    pid = pid - (1 << 32) if pid >= 1 << 31 else pid
    targets = _kill_targets(l, pid)
    if isinstance(targets, int):
        return targets
    if ksi.signo:
        for t in targets:
            kpsignal2(t, ksi)
    return 0


@syscall(37, "kill")
def sys_kill(l: Lwp, a, retval: list[int]) -> int:
    from .kern_sig import _sender_ids
    pid, uid = _sender_ids(l, l.l_proc)
    return kill1(l, a.pid, Ksiginfo(a.signum, SI_USER, pid, uid))


@syscall(245, "sigqueueinfo")
def sys_sigqueueinfo(l: Lwp, a, retval: list[int]) -> int:
    k = l.l_proc.k
    data = l.l_proc.p_vmspace.copyin(a.info, k.abi.ksiginfo_size)
    if isinstance(data, int):
        return data
    signo, code, errno, pid, uid, value = k.abi.unpack_siginfo(data)
    ksi = Ksiginfo(signo, code, pid, uid, value)
    ksi.errno = errno
    if a.pid != l.l_proc.p_pid:
        from .kern_sig import _sender_ids
        mypid, myuid = _sender_ids(l, l.l_proc)
        if pid != mypid or uid != myuid or code not in (SI_USER, SI_QUEUE):
            return Errno.EPERM
    return kill1(l, a.pid, ksi)


# -- contexts -----------------------------------------------------------------------------
@syscall(307, "getcontext")
def sys_getcontext(l: Lwp, a, retval: list[int]) -> int:
    k = l.l_proc.k
    abi = k.abi
    plat = k.platform
    vals = plat.regs_get(l, abi.getmcontext_ids())
    abi.set_syscall_success_in_gregs(vals)
    xmm = plat.vregs_raw(l, abi.sendsig_vregs())
    uc = abi.build_ucontext(vals, l.l_sigmask, l.l_sigstk, xmm)
    return l.l_proc.p_vmspace.copyout(uc, a.ucp)


@syscall(308, "setcontext")
def sys_setcontext(l: Lwp, a, retval: list[int]) -> int:
    k = l.l_proc.k
    abi = k.abi
    plat = k.platform
    uc = l.l_proc.p_vmspace.copyin(a.ucp, abi.ucontext_size)
    if isinstance(uc, int):
        return uc
    flags = abi.ucontext_flags(uc)
    if not flags & _UC_CPU:
        return Errno.EINVAL
    # kern_sig.c setucontext(): the signal mask first, then cpu_setmcontext,
    # whose EINVAL (flags, cpu_mcontext_validate) leaves that mask in place.
    if flags & _UC_SIGMASK:
        sigprocmask1(l, SIG_SETMASK, abi.ucontext_sigmask(uc))
    if not abi.mcontext_flags_valid(flags):
        return Errno.EINVAL
    if not abi.cpu_mcontext_validate(abi.unpack_mcontext_gregs(uc)):
        return Errno.EINVAL
    ids, vals = abi.mcontext_regs(uc, flags)
    if ids:
        plat.regs_set(l, ids, vals)
    if flags & abi.uc_fpu:
        pairs = abi.fpu_xmm_from_mcontext(uc)
        plat.vregs_set(l, [r for r, _ in pairs], [v for _, v in pairs])
    tls = abi.ucontext_tlsbase(uc)
    if tls is not None:
        l.l_private = tls                      # lwp_setprivate()
        abi.set_tls(plat, l, tls)
    ss_sp, ss_size, ss_flags = l.l_sigstk
    onstack = abi.ucontext_onstack(flags)
    if onstack is not None:
        ss_flags = (ss_flags | SS_ONSTACK) if onstack else (ss_flags & ~SS_ONSTACK)
    if flags & _UC_STACK:
        uss_flags = abi.ucontext_ss_flags(uc)
        ss_flags = (ss_flags | SS_ONSTACK) if uss_flags & SS_ONSTACK else ss_flags & ~SS_ONSTACK
    l.l_sigstk = (ss_sp, ss_size, ss_flags)
    return EJUSTRETURN


__all__ = ["sigaction1", "sigprocmask1", "kill1", "sig_ignored", "Sig"]
