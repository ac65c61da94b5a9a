"""Process exit and wait (NetBSD's kern_exit.c): exit1, the zombie, SIGCHLD
to the parent, and wait4/__wait450/wait6 collecting it.

exit1() ends every LWP of the process, closes its descriptors (a pipe's last
writer gone is EOF for the reader), frees its address space (the engine goes
back to emu/'s pool) and leaves a zombie holding the exit status and the
rusage, until the parent collects it. Children of the exiting process are
reparented to the guest's init (k.proc, the first process; nbemu's run ends
with it, so its own exit frees nothing at first: the crash report may still
read its memory; exit1_finish follows when other processes outlive it).
The parent gets SIGCHLD (CLD_EXITED / CLD_KILLED) and its waiters are woken;
a parent that ignores SIGCHLD or set SA_NOCLDWAIT never sees the zombie.
"""
from __future__ import annotations

from typing import Generator

from . import upcall
from .cstruct import RUSAGE
from .errno import Errno
from .kern_descrip import fd_free
from .kern_fork import vfork_chan
from .kern_lwp import uarea_free
from .kern_proc import proc_free, proc_reparent, wait_chan
from .kern_prot import orphan_candidates, orphaned_now, proc_cred, proc_pgid, proc_session
from .kern_resource import ruadd, rusage_self
from .kern_sig import Ksiginfo, child_notify, kpsignal2
from .kern_tty import orphanpg_check, sess_leader_exit
from .kern_sleepq import sleep_syncobj, sleepq_block, sleepq_enqueue, sleepq_wake
from .lwp import LSONPROC, LSRUN, LSSLEEP, PS_CONTINUED, PSL_TRACED, SSTOP, SZOMB, Lwp, Proc
from .signals import (CLD_CONTINUED, CLD_DUMPED, CLD_EXITED, CLD_KILLED, CLD_STOPPED,  # noqa: F401
                      CLD_TRAPPED, Sig)
from .table import syscall
from .vfs_lookup import cwdfree

_WCONTINUED = 0xFFFF
_WSTOPPED = 0o177


def lwp_off_queues(l: Lwp) -> None:
    """An LWP that will never run again leaves its CPU, run queue or sleep
    queue (and its sleep's timeout), whatever its state (exit1, exit_lwps)."""
    k = l.l_proc.k
    if l.l_stat == LSONPROC:
        k.cpu_release(l)
    elif l.l_stat == LSRUN and l.l_cpu is not None:
        try:
            k.runq.sched_dequeue(l)
        except ValueError:
            pass
    elif l.l_stat == LSSLEEP and l.l_sleepq is not None:
        l.l_sleepq.remove(l)
        k.callout.stop(l.l_timeout)


def exit1(l: Lwp, status: int, signo: int) -> None:
    """End the process: exit status `status`, or killed by `signo` if non-zero."""
    p = l.l_proc
    k = p.k
    if p.p_exiting:
        return
    p.p_exiting = True
    p.p_xstat = status & 0xFF
    p.p_xsig = signo
    k.event("proc_exit", l, status=status, signo=signo)
    for l2 in list(p.p_lwps.values()):
        lwp_off_queues(l2)
    for t in p.p_itimers.values():
        if t.callout is not None:
            k.callout.stop(t.callout)
    k.platform.request_stop()
    if p is k.proc:
        # nbemu's run loop ends here; the rest (exit1_finish) follows only if
        # other processes run on without it (emu/survivors.py). Until then the
        # crash report may still read its memory.
        return
    exit1_finish(p, signo)


def exit1_finish(p: Proc, signo: int) -> None:
    """The rest of exit1 once p's LWPs are off their queues: rusage, descriptors,
    address space, reparenting of its children, the zombie, SIGCHLD."""
    k = p.k
    p.p_ru = ruadd(k.abi, rusage_self(p), p.p_cru)       # its children's times are its own
    fd_free(p)
    cwdfree(p)
    for l2 in list(p.p_lwps.values()):
        k.platform.context_free(l2)
        uarea_free(k, l2)
    vm = p.p_vmspace
    if vm is not None:
        pmap = vm.pmap
        if pmap.users <= 1:
            vm.release_all()
        k.platform.vmspace_free(pmap)
    vfork_done(p)
    cands = orphan_candidates(p)
    before = orphaned_now(k, cands, also=p)
    init = k.proc
    for c in list(p.p_children):
        traced = bool(c.p_slflag & PSL_TRACED)
        opp, c.p_opptr = c.p_opptr, None
        c.p_slflag &= ~PSL_TRACED
        if traced and opp is not None and opp is not p and not opp.p_exiting:
            proc_reparent(c, opp)             # back to the parent it had
        else:
            proc_reparent(c, init if init is not None and not init.p_exiting else None)
        if traced:
            # its tracer is gone: it is killed ("their existence means
            # someone is screwing up")
            kpsignal2(c, Ksiginfo.noinfo(Sig.SIGKILL))
        if c.p_stat == SZOMB and c.p_pptr is not None:
            sleepq_wake(k, wait_chan(c.p_pptr))
    p.p_stat = SZOMB
    # after the reparenting: a child the SIGHUP kills at once is init's zombie
    sess_leader_exit(p)
    orphanpg_check(k, cands, before)           # fixjobc(p, p_pgrp, 0)
    child_notify(p, CLD_KILLED if signo else CLD_EXITED)


def vfork_done(p: Proc) -> None:
    """A vfork child execs or exits: its parent runs again."""
    if p.p_vforkwaiting:
        p.p_vforkwaiting = False
        sleepq_wake(p.k, vfork_chan(p))


@syscall(1, "exit")
def sys_exit(l: Lwp, a, retval: list[int]) -> int:
    exit1(l, a.rval, 0)
    return 0


# -- wait (kern_exit.c do_sys_wait / do_sys_waitid) -----------------------------------
WNOHANG, WSTOPPED, WALTSIG, WALLSIG = 0x1, 0x2, 0x4, 0x8
WUNTRACED = WSTOPPED
WCONTINUED, WEXITED, WTRAPPED = 0x10, 0x20, 0x40
WNOWAIT, WNOZOMBIE = 0x10000, 0x20000
WSELECTOPTS = WEXITED | WSTOPPED | WCONTINUED | WTRAPPED
WALLOPTS = WNOHANG | WALTSIG | WALLSIG | WNOWAIT | WNOZOMBIE | WSELECTOPTS

# idtype_t (sys/idtype.h)
P_MYID, P_ALL, P_PID, P_PPID, P_PGID, P_SID = -1, 0, 1, 2, 3, 4


def _matches(c: Proc, idtype: int, id_: int) -> bool:
    if idtype == P_ALL:
        return True
    if idtype == P_PID:
        return c.p_pid == id_
    if idtype == P_PGID:
        return proc_pgid(c) == id_
    if idtype == P_SID:
        return proc_session(c).s_sid == id_
    if idtype == P_PPID:
        return c.p_ppid == id_
    return False


def _stolen_child(p: Proc, idtype: int, id_: int) -> bool:
    """A child of p that another process traces (find_stopped_child's
    debugged_child_exists): p waits for it, not ECHILD; the tracer gives it
    back when it reaps it (below) or detaches."""
    return any(c.p_opptr is p and c.p_pptr is not p and _matches(c, idtype, id_)
               for c in p.k.allproc.values())


def wait_status(c: Proc) -> int:
    """The status word wait() reports for zombie c (W_EXITCODE)."""
    return ((c.p_xstat or 0) & 0xFF) << 8 if not c.p_xsig else c.p_xsig & 0x7F


def do_sys_waitid(l: Lwp, idtype: int, id_: int, options: int, out: dict
                  ) -> Generator[str, int, int]:
    """Find a child whose state matches options, sleeping (interruptibly)
    until one changes unless WNOHANG. out gets pid, status, the child and the
    code; pid 0 with WNOHANG when nothing is ready."""
    p = l.l_proc
    k = p.k
    out["pid"] = 0
    if options & ~WALLOPTS or not options & WSELECTOPTS:
        return Errno.EINVAL
    while True:
        kids = [c for c in p.p_children if _matches(c, idtype, id_)]
        if not kids and not _stolen_child(p, idtype, id_):
            return Errno.ECHILD
        for c in kids:
            if c.p_stat == SZOMB and options & WEXITED:
                code = CLD_KILLED if c.p_xsig else CLD_EXITED
                out.update(pid=c.p_pid, status=wait_status(c), child=c, code=code)
                opp = c.p_opptr
                if (not options & WNOWAIT and opp is not None and opp is not p
                        and not opp.p_exiting):
                    # a tracer reaps what it attached to: the zombie goes back
                    # to its parent, which collects it in turn
                    c.p_opptr = None
                    c.p_slflag &= ~PSL_TRACED
                    proc_reparent(c, opp)
                    child_notify(c, code)
                    return 0
                if not options & WNOWAIT:
                    p.p_cru = ruadd(k.abi, p.p_cru, c.p_ru)
                    proc_free(k, c)
                return 0
            traced = bool(c.p_slflag & PSL_TRACED)
            if (c.p_stat == SSTOP and c.p_nstopchild
                    and (options & WSTOPPED or traced and options & WTRAPPED)):
                out.update(pid=c.p_pid, status=(c.p_xstopsig << 8) | _WSTOPPED, child=c,
                           code=CLD_TRAPPED if traced else CLD_STOPPED)
                if not options & WNOWAIT:
                    c.p_nstopchild = 0
                return 0
            if c.p_sflag & PS_CONTINUED and options & WCONTINUED:
                out.update(pid=c.p_pid, status=_WCONTINUED, child=c, code=CLD_CONTINUED)
                if not options & WNOWAIT:
                    c.p_sflag &= ~PS_CONTINUED
                return 0
        if options & WNOHANG:
            return 0
        sleepq_enqueue(k, l, wait_chan(p), "wait", sleep_syncobj, True)
        error = yield from sleepq_block(k, l, None)
        if error:
            return error


def _wait4_args(pid: int) -> tuple[int, int]:
    """wait4's pid argument as (idtype, id), as do_sys_wait converts it."""
    if pid == -1:
        return P_ALL, 0
    if pid < -1:
        return P_PGID, -pid
    if pid == 0:
        return P_PGID, -1          # the caller's own group (resolved below)
    return P_PID, pid


def do_sys_wait(l: Lwp, pid: int, status_va: int, options: int, ru_va: int,
                retval: list[int], with_rusage: bool = True) -> Generator[str, int, int]:
    pid = pid - (1 << 32) if pid >= 1 << 31 else pid
    idtype, id_ = _wait4_args(pid)
    if idtype == P_PGID and id_ == -1:
        id_ = proc_pgid(l.l_proc)
    out: dict = {}
    error = yield from do_sys_waitid(l, idtype, id_, options | WEXITED | WTRAPPED, out)
    retval[0] = out.get("pid", 0)
    if error or not retval[0]:
        return error
    vm = l.l_proc.p_vmspace
    if status_va:
        error = vm.copyout((out["status"] & 0xFFFFFFFF).to_bytes(4, "little"), status_va)
        if error:
            return error
    if ru_va and with_rusage:
        c = out["child"]
        ru = c.p_ru if c.p_ru is not None else bytes(RUSAGE.on(l.l_proc.k.abi).size)
        error = vm.copyout(ru, ru_va)
    return error


@syscall(449, "__wait450")
def sys___wait450(l: Lwp, a, retval: list[int]) -> Generator[str, int, int]:
    return do_sys_wait(l, a.pid, a.status, a.options, a.rusage, retval)


@syscall(7, "compat_50_wait4")
def compat_50_sys_wait4(l: Lwp, a, retval: list[int]) -> Generator[str, int, int]:
    # struct rusage50 (timeval50) is not written: compat callers get the status.
    return do_sys_wait(l, a.pid, a.status, a.options, a.rusage, retval, with_rusage=False)


@syscall(481, "wait6")
def sys_wait6(l: Lwp, a, retval: list[int]) -> Generator[str, int, int]:
    """wait6(idtype, id, status, options, wru, info): waitid's selection, with
    the child's rusage (wru: its own with its children's, then its children's) and a
    SIGCHLD siginfo (si_status: the exit status or the signal)."""
    idtype = a.idtype - (1 << 32) if a.idtype >= 1 << 31 else a.idtype
    if idtype == P_MYID:
        idtype, id_ = P_PID, l.l_proc.p_pid
    else:
        id_ = a.id
    out: dict = {}
    error = yield from do_sys_waitid(l, idtype, id_, a.options, out)
    retval[0] = out.get("pid", 0)
    if error or not retval[0]:
        return error
    p = l.l_proc
    k = p.k
    vm = p.p_vmspace
    c = out["child"]
    if a.status:
        error = vm.copyout((out["status"] & 0xFFFFFFFF).to_bytes(4, "little"), a.status)
        if error:
            return error
    if a.wru:
        size = RUSAGE.on(k.abi).size
        ru = c.p_ru if c.p_ru is not None else bytes(size)
        error = vm.copyout(ru + (c.p_cru or bytes(size)), a.wru)
        if error:
            return error
    if a.info:
        code = out["code"]
        value = (c.p_xsig if code == CLD_KILLED else (c.p_xstat or 0)
                 if code == CLD_EXITED else c.p_xstopsig if code in (CLD_STOPPED, CLD_TRAPPED)
                 else Sig.SIGCONT)
        ksi = Ksiginfo(Sig.SIGCHLD, code, c.p_pid, proc_cred(c).cr_uid, value)
        error = vm.copyout(k.abi.pack_siginfo(ksi)[:k.abi.ksiginfo_size], a.info)
    return error



upcall.exit1 = exit1          # for kern_sig (sigexit) and kern_lwp (lwp_exit)
