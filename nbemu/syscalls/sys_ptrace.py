"""ptrace(2) for a tracer and a debugger, as NetBSD's sys/kern/sys_ptrace_common.c
(do_ptrace, ptrace_allowed, ptrace_sendsig, ptrace_update_lwp, ptrace_lwpinfo,
ptrace_lwpstatus, ...), kern_sig.c (eventswitch, proc_stoptrace) and
kern_syscall.c (trace_enter / trace_exit) do it. Read at rev 1.53 (the NetBSD/src
mirror of the search tool) for the common code; the NetBSD 10 additions (PT_STOP,
PT_LWPSTATUS/LWPNEXT, PT_SET/GET_SIGPASS, PTRACE_POSIX_SPAWN, the ptrace_state
in the siginfo, LW_DBGSUSPEND, PT_KILL and PT_STOP of a running tracee) from
sys/sys/ptrace.h and sys/sys/siginfo.h as ziglang ships them (NetBSD 10) and
from memory of rev 1.9x; each port's requests and struct reg / struct fpreg
from its machine/ptrace.h and machine/reg.h (guest/arch: Abi.ptrace_*).

A traced process (PSL_TRACED in p_slflag) has its tracer as p_pptr; the
parent it had before PT_ATTACH is kept in p_opptr. Every signal but SIGKILL
(and those of PT_SET_SIGPASS) stops it for the tracer (kern_sig.issignal),
which sees the stop with wait4/wait6 and resumes it with PT_CONTINUE, PT_STEP
or PT_SYSCALL, choosing the signal it then takes. SIGTRAP stops: TRAP_EXEC at
exec, TRAP_SCE / TRAP_SCX around each system call under PT_SYSCALL (the
registers hold the call's results only after TRAP_SCX, as NetBSD's syscall()
writes them after trace_exit; PT_SYSCALLEMU at TRAP_SCE skips the call and its
TRAP_SCX), TRAP_TRACE after one instruction under PT_STEP (machine.py runs the
LWP for one instruction), TRAP_CHLD at fork / vfork / posix_spawn in the
parent and the child (traced by the same tracer; a spawned child's one event
implies its exec: no TRAP_EXEC) for PTRACE_FORK / PTRACE_VFORK /
PTRACE_POSIX_SPAWN, in the vfork parent once it runs again for
PTRACE_VFORK_DONE, TRAP_LWP at _lwp_create / LWP exit for PTRACE_LWP_CREATE /
PTRACE_LWP_EXIT (PT_GET_PROCESS_STATE and PT_GET_SIGINFO name the other
process or LWP).

Requests: PT_TRACE_ME, PT_READ/WRITE_I/D, PT_IO, PT_CONTINUE, PT_KILL,
PT_ATTACH, PT_DETACH, PT_SYSCALL, PT_SYSCALLEMU, PT_SET/GET_EVENT_MASK,
PT_GET_PROCESS_STATE, PT_LWPINFO, PT_LWPSTATUS, PT_LWPNEXT, PT_SET/GET_SIGINFO,
PT_SUSPEND, PT_RESUME, PT_STOP, PT_SET/GET_SIGPASS; per port PT_GETREGS /
PT_SETREGS (all four), PT_GETFPREGS / PT_SETFPREGS (all four), PT_STEP /
PT_SETSTEP / PT_CLEARSTEP (amd64, i386, aarch64: NetBSD/arm has none),
PT_GETDBREGS (x86: no debug register is ever set) and PT_SETDBREGS (EPERM
unless root, as security.models.extensions.user_set_dbregs = 0). A request the
port does not define is EINVAL, as in NetBSD. Not modelled (EINVAL after the
permission checks): PT_DUMPCORE, x86's PT_GETXSTATE/SETXSTATE and
PT_GETXMMREGS/SETXMMREGS, and PT_SETDBREGS by root.

A resume of one LWP (PT_CONTINUE, PT_SYSCALL or PT_STEP with data = -lid, and
PT_STEP with data = lid: NetBSD's code treats both alike, though its comment
says the other LWPs run on a positive one) takes no signal and restarts that
LWP alone (ptrace_sendsig with resume_all = 0: kern_lwp.lwp_unstop, read at
kern_lwp.c rev 1.250). The process is active again while its other LWPs stay
stopped; the next stop, of the resumed LWP or of one a signal restarts
(kern_sig.sigpost's LSSTOP case, read at kern_sig.c rev 1.320), stops the
process again and the tracer sees it with wait. A resume of every LWP
(proc_unstop) restarts those left stopped. Where nbemu may differ: a signal
to the process while one LWP runs goes to the running LWP here (the order of
kern_sig._post_order), where NetBSD's sigpost walks p_lwps newest first and
may restart a stopped LWP to take it; and these facts come from the revisions
above, not from NetBSD 10's sources, where ptrace_sendsig and sigpost were
not read.
PT_SET_SIGINFO for another LWP of a one-LWP process names that LWP (NetBSD
keeps the lid as given). A child traced by another process than its parent
is the tracer's child meanwhile; its parent's wait for it waits (kern_exit.py
_stolen_child, as find_stopped_child), and gets it back from the tracer.
"""
from __future__ import annotations

import struct
from types import GeneratorType
from typing import Any, Generator

from .errno import Errno, KernErrno
from .kern_lwp import lwp_unstop
from .kern_proc import pfind, proc_reparent
from .kern_prot import kauth_suser, proc_cred
from .kern_sig import (child_notify, eventswitch, kpsignal2, mask_of, proc_unstop,
                       words_of)
from .lwp import (LSIDL, LSONPROC, LSZOMB, LP_SINGLESTEP, LP_SSTEP, PSL_SYSCALL, PSL_SYSCALLEMU,
                  PSL_TRACED, PSL_TRACEFORK, PSL_TRACELWP_CREATE, PSL_TRACELWP_EXIT,
                  PSL_TRACEPOSIX_SPAWN, PSL_TRACEVFORK, PSL_TRACEVFORK_DONE, SSTOP, Lwp,
                  LwpFlag, Proc)
from .signals import (CLD_TRAPPED, NSIG, SIGPROP, TRAP_CHLD, TRAP_LWP, Ksiginfo, Sig,
                      SigProp, bit)
from .table import syscall

PT_TRACE_ME, PT_READ_I, PT_READ_D, PT_WRITE_I, PT_WRITE_D = 0, 1, 2, 4, 5
PT_CONTINUE, PT_KILL, PT_ATTACH, PT_DETACH, PT_IO = 7, 8, 9, 10, 11
PT_DUMPCORE, PT_LWPINFO, PT_SYSCALL, PT_SYSCALLEMU = 12, 13, 14, 15
PT_SET_EVENT_MASK, PT_GET_EVENT_MASK, PT_GET_PROCESS_STATE = 16, 17, 18
PT_SET_SIGINFO, PT_GET_SIGINFO, PT_RESUME, PT_SUSPEND, PT_STOP = 19, 20, 21, 22, 23
PT_LWPSTATUS, PT_LWPNEXT, PT_SET_SIGPASS, PT_GET_SIGPASS = 24, 25, 26, 27
PIOD_READ_D, PIOD_WRITE_D, PIOD_READ_I, PIOD_WRITE_I = 1, 2, 3, 4
PTRACE_FORK, PTRACE_VFORK, PTRACE_VFORK_DONE = 0x1, 0x2, 0x4
PTRACE_LWP_CREATE, PTRACE_LWP_EXIT, PTRACE_POSIX_SPAWN = 0x8, 0x10, 0x20
PL_EVENT_NONE, PL_EVENT_SIGNAL, PL_EVENT_SUSPENDED = 0, 1, 2
TRAP_SCE, TRAP_SCX, TRAP_TRACE = 7, 8, 2
PL_LNAMELEN = 20
_EVENTS = ((PTRACE_FORK, PSL_TRACEFORK), (PTRACE_VFORK, PSL_TRACEVFORK),
           (PTRACE_VFORK_DONE, PSL_TRACEVFORK_DONE), (PTRACE_LWP_CREATE, PSL_TRACELWP_CREATE),
           (PTRACE_LWP_EXIT, PSL_TRACELWP_EXIT), (PTRACE_POSIX_SPAWN, PSL_TRACEPOSIX_SPAWN))
_CANTMASK = bit(Sig.SIGKILL) | bit(Sig.SIGSTOP)

# Requests of a traced, stopped process (ptrace_allowed's "You can't do what you
# want to the process if ..." group), by name: the machine-dependent ones
# (Abi.ptrace_machdep) join them under their names.
_MEM = {PT_READ_I, PT_READ_D, PT_WRITE_I, PT_WRITE_D, PT_IO, PT_SET_SIGINFO, PT_GET_SIGINFO}
_STOPPED = _MEM | {PT_CONTINUE, PT_KILL, PT_DETACH, PT_LWPINFO, PT_SYSCALL, PT_SYSCALLEMU,
                   PT_DUMPCORE, PT_SET_EVENT_MASK, PT_GET_EVENT_MASK, PT_GET_PROCESS_STATE,
                   PT_RESUME, PT_SUSPEND, PT_STOP, PT_LWPSTATUS, PT_LWPNEXT, PT_SET_SIGPASS,
                   PT_GET_SIGPASS}
# kauth's ptrace listener: these need the same real uid (and no set-id image)
# unless the caller is root, the machine-dependent ones but the stepping ones too.
_SAME_USER = _MEM | {PT_TRACE_ME, PT_ATTACH, PT_SET_EVENT_MASK, PT_GET_EVENT_MASK,
                     PT_GET_PROCESS_STATE}
_STEPPING = {"STEP", "SETSTEP", "CLEARSTEP"}


def ptrace_allowed(req: int, t: Proc, p: Proc, md: str | None) -> int:
    """Whether p may make request req of t (ptrace_allowed). The guest's init
    is outside it: a parent outside the guest is init."""
    if req == PT_TRACE_ME:
        if p.p_pptr is None:
            return Errno.EPERM           # the parent is initproc
        if p.p_slflag & PSL_TRACED:
            return Errno.EBUSY
        return 0
    if req == PT_ATTACH:
        if t is p:
            return Errno.EINVAL
        if t.p_slflag & PSL_TRACED:
            return Errno.EBUSY
        if p.p_vforkwaiting and p.p_pptr is t:
            return Errno.EPERM           # t sleeps in vfork for p
        return 0
    if req in _STOPPED or md is not None:
        if not t.p_slflag & PSL_TRACED:
            return Errno.EPERM
        if t.p_pptr is not p:
            return Errno.EBUSY
        # PT_KILL and PT_STOP are allowed of a running tracee
        if req not in (PT_KILL, PT_STOP) and (t.p_stat != SSTOP or t.p_nstopchild):
            return Errno.EBUSY           # not stopped, or its stop not yet waited for
        return 0
    return Errno.EINVAL


def _kauth_ptrace(req: int, t: Proc, p: Proc, md: str | None) -> int:
    if req not in _SAME_USER and (md is None or md in _STEPPING):
        return 0
    if proc_cred(p).cr_uid == proc_cred(t).cr_uid and not t.p_sugid:
        return 0
    return 0 if kauth_suser(p) else Errno.EPERM


def _alive(l: Lwp) -> bool:
    return l.l_stat not in (LSZOMB, LSIDL)


def _lwps(t: Proc) -> list[Lwp]:
    """t's LWPs in the order of its p_lwps list: newest first (LIST_INSERT_HEAD)."""
    return list(reversed(t.p_lwps.values()))


def lwp_find(t: Proc, lid: int) -> Lwp | None:
    """lwp_find(): a live LWP of t (none for a zombie)."""
    l = t.p_lwps.get(lid)
    return l if l is not None and _alive(l) else None


def lwp_find_first(t: Proc) -> Lwp | None:
    return next((x for x in _lwps(t) if _alive(x)), None)


def ptrace_update_lwp(t: Proc, lt: Lwp, lid: int) -> Lwp | int:
    """The LWP a request names in `data` (0: lt, as does any lid when t has one LWP)."""
    if lid == 0 or lid == lt.l_lid or t.p_nlwps - t.p_nzlwps == 1:
        return lt
    l = lwp_find(t, lid)
    return Errno.ESRCH if l is None else l


def ptrace_sendsig(t: Proc, lt: Lwp, signo: int, resume_all: bool = True) -> None:
    """Resume stopped t to take signo (0: none): every LWP, or lt alone when
    not resume_all (lwp_unstop: the others stay stopped); or post signo to a
    running t (ptrace_sendsig). A stop signal keeps it stopped and is reported
    again."""
    if t.p_stat == SSTOP:
        t.p_ptrace_sig = signo
        if signo and SIGPROP[signo] & SigProp.SA_STOP:
            t.p_xstopsig = signo
            t.p_nstopchild = 1
            child_notify(t, CLD_TRAPPED)
        elif resume_all:
            proc_unstop(t, continued=False)
        else:
            lwp_unstop(lt)
        return
    if signo:
        kpsignal2(t, Ksiginfo.noinfo(signo))


def _detach(t: Proc) -> None:
    """Give t back to the parent it had before the attach (or init)."""
    t.p_slflag &= ~(PSL_TRACED | PSL_SYSCALL | PSL_SYSCALLEMU)
    for x in t.p_lwps.values():
        x.l_pflag &= ~(LP_SINGLESTEP | LP_SSTEP)
    opp = t.p_opptr
    if opp is not t.p_pptr:
        k = t.k
        if opp is None or opp.p_exiting:
            opp = k.proc if k.proc is not None and not k.proc.p_exiting else None
        proc_reparent(t, opp)
    t.p_opptr = None


def _continue(req: int, t: Proc, lt: Lwp, addr: int, data: int, md: str | None) -> int:
    """PT_CONTINUE, PT_SYSCALL, PT_DETACH, PT_STEP."""
    step = md == "STEP"
    if req == PT_SYSCALL:
        t.p_slflag |= PSL_SYSCALL
    else:
        t.p_slflag &= ~PSL_SYSCALL
    tmp = data
    signo = 0
    if tmp >= 0:
        if not step:
            signo, tmp = tmp, 0
    else:
        tmp = -tmp
    resume_all = True
    if tmp > 0:                           # one LWP (NetBSD's code: for PT_STEP with
        # data > 0 too, though its comment says the others run)
        if req == PT_DETACH:
            return Errno.EINVAL
        x = lwp_find(t, tmp)
        if x is None:
            return Errno.ESRCH
        lt = x
        resume_all = False
        signo = 0
    if not 0 <= signo < NSIG:
        return Errno.EINVAL
    dbg = LwpFlag.LW_DBGSUSPEND
    if resume_all and not step:
        if all(x.l_flag & dbg for x in t.p_lwps.values() if _alive(x)):
            return Errno.EDEADLK          # every LWP is suspended
    elif lt.l_flag & dbg:
        return Errno.EDEADLK
    k = t.k
    abi = k.abi
    if addr != 1:
        if addr == 0 or addr >= abi.vm_maxuser_address:
            return Errno.EINVAL           # process_set_pc (0: a common mistake)
        st = k.platform.regs_get(lt, (abi.insn_state_reg,))[0] \
            if abi.insn_state_reg is not None else 0
        k.platform.regs_set(lt, [abi.pc_reg], [abi.resume_address(addr, st)])
    if "STEP" in abi.ptrace_machdep.values():
        for x in t.p_lwps.values():       # process_sstep: the trace flag of each LWP
            on = bool(x.l_pflag & LP_SINGLESTEP) or (x is lt and step)
            x.l_pflag = (x.l_pflag | LP_SSTEP) if on else (x.l_pflag & ~LP_SSTEP)
    if req == PT_DETACH:
        _detach(t)
    ptrace_sendsig(t, lt, signo, resume_all)
    return 0


def _io(t: Proc, op: int, offs: int, data: bytes | int) -> bytes | int:
    """Read `data` bytes of t's memory at offs (PIOD_READ_*), or write data
    there (PIOD_WRITE_*): the bytes read, 0, or an errno."""
    vm = t.p_vmspace
    if op in (PIOD_READ_D, PIOD_READ_I):
        return vm.copyin(offs, data if isinstance(data, int) else len(data))
    if op in (PIOD_WRITE_D, PIOD_WRITE_I):
        assert isinstance(data, bytes)
        if any(s <= offs < e for s, e in t.p_raslist):
            return Errno.EACCES           # a restartable atomic sequence
        return vm.copyout(data, offs)
    return Errno.EINVAL


def _pt_io(l: Lwp, t: Proc, addr: int, data: int) -> int:
    """PT_IO: struct ptrace_io_desc {int op; void *offs, *addr; size_t len}."""
    k = l.l_proc.k
    vm = l.l_proc.p_vmspace
    lp64 = k.abi.word_size == 8
    fmt = "<i4xQQQ" if lp64 else "<iIII"
    size = struct.calcsize(fmt)
    if data != size:
        return Errno.EINVAL
    raw = vm.copyin(addr, size)
    if isinstance(raw, int):
        return raw
    op, offs, uaddr, n = struct.unpack(fmt, raw)
    if n < 1:
        return Errno.EINVAL
    if op in (PIOD_WRITE_D, PIOD_WRITE_I):
        buf = vm.copyin(uaddr, n)
        if isinstance(buf, int):
            return buf
        err = _io(t, op, offs, buf)
    elif op in (PIOD_READ_D, PIOD_READ_I):
        got = _io(t, op, offs, n)
        if isinstance(got, int):
            return got
        err = vm.copyout(got, uaddr)
    else:
        return Errno.EINVAL
    if err:
        return err
    return vm.copyout(struct.pack(fmt, op, offs, uaddr, n), addr)


def _regs(l: Lwp, t: Proc, lt: Lwp, md: str, addr: int, data: int) -> int:
    """PT_GET/SETREGS, PT_GET/SETFPREGS, PT_GETDBREGS of the LWP `data` names."""
    k = l.l_proc.k
    abi = k.abi
    plat = k.platform
    vm = l.l_proc.p_vmspace
    x = ptrace_update_lwp(t, lt, data)
    if isinstance(x, int):
        return x
    if md == "GETDBREGS":                 # struct dbreg: dr[16] (amd64) / dr[8] (i386)
        return vm.copyout(bytes(16 * 8 if abi.word_size == 8 else 8 * 4), addr)
    if md in ("GETREGS", "SETREGS"):
        ids = abi.getmcontext_ids()
        cur = plat.regs_get(x, ids)
        if md == "GETREGS":
            reg = abi.ptrace_reg(cur)
            return Errno.EINVAL if reg is None else vm.copyout(reg, addr)
        raw = vm.copyin(addr, len(abi.ptrace_reg_slots) * abi.word_size)
        if isinstance(raw, int):
            return raw
        got = abi.ptrace_setreg(cur, raw)
        if got is None:
            return Errno.EINVAL
        plat.regs_set(x, *got)
        return 0
    if md == "GETFPREGS":
        fp = abi.ptrace_fpreg(plat, x)
        return Errno.EINVAL if fp is None else vm.copyout(fp, addr)
    raw = vm.copyin(addr, abi.ptrace_fpreg_size)
    if isinstance(raw, int):
        return raw
    abi.ptrace_setfpreg(plat, x, raw)
    return 0


# -- siginfo and the event mask ------------------------------------------------------
def _siginfo(t: Proc) -> bytes:
    """The siginfo_t of t's last stop (p_sigctx.ps_info), with the _ptrace_state
    or _syscall member its TRAP_CHLD / TRAP_LWP / TRAP_SCE / TRAP_SCX stop has."""
    abi = t.k.abi
    ksi = t.p_ptrace_ksi
    if ksi is None:
        return bytes(128)
    buf = bytearray(abi.pack_siginfo(ksi)[:128].ljust(128, b"\0"))
    xi = t.p_ptrace_xinfo
    off = abi.si_reason_off
    if xi is not None and xi[0] == "state":
        buf[off:off + 8] = struct.pack("<ii", xi[1], xi[2])
    elif xi is not None and xi[0] == "syscall":
        _, code, rv0, rv1, error, args = xi
        buf[off:off + 16] = struct.pack("<iIIi", code, rv0 & 0xFFFFFFFF, rv1 & 0xFFFFFFFF,
                                        error)
        a = [v & 0xFFFFFFFFFFFFFFFF for v in list(args)[:8]]
        buf[off + 16:off + 80] = struct.pack("<8Q", *(a + [0] * (8 - len(a))))
    return bytes(buf)


def _psi_size(abi: Any) -> int:
    """sizeof(struct ptrace_siginfo): siginfo_t (128, 8-aligned but on i386) + lwpid_t."""
    return 132 if abi.int64_align == 4 else 136


def _get_siginfo(l: Lwp, t: Proc, addr: int, data: int) -> int:
    if data != _psi_size(t.k.abi):
        return Errno.EINVAL
    lid = t.p_ptrace_lid or (t.p_ptrace_ksi.lid if t.p_ptrace_ksi is not None else 0)
    out = _siginfo(t) + struct.pack("<i", lid)
    return l.l_proc.p_vmspace.copyout(out.ljust(data, b"\0"), addr)


def _set_siginfo(l: Lwp, t: Proc, lt: Lwp, addr: int, data: int) -> int:
    abi = t.k.abi
    if data != _psi_size(abi):
        return Errno.EINVAL
    raw = l.l_proc.p_vmspace.copyin(addr, data)
    if isinstance(raw, int):
        return raw
    signo, code, errno, pid, uid, value = abi.unpack_siginfo(raw[:128])
    lid = struct.unpack_from("<i", raw, 128)[0]
    if not 0 <= signo < NSIG:
        return Errno.EINVAL
    x = ptrace_update_lwp(t, lt, lid)
    if isinstance(x, int):
        return x
    ksi = Ksiginfo(signo, code, pid, uid, value, lid=lid)
    ksi.errno = errno
    t.p_ptrace_ksi = ksi                  # ps_faked: the signal the tracer gives takes it
    t.p_ptrace_xinfo = None
    if lid:
        t.p_ptrace_lid = x.l_lid          # (NetBSD keeps the lid as given: ps_lwp)
    return 0


def _getset(l: Lwp, fmt: str, addr: int, data: int, out: tuple | None) -> tuple | int:
    """A get or set request of one struct (fmt): EINVAL unless data is its size;
    out: the values a get copies out (0 or EFAULT); else the values copied in."""
    vm = l.l_proc.p_vmspace
    size = struct.calcsize(fmt)
    if data != size:
        return Errno.EINVAL
    if out is not None:
        return vm.copyout(struct.pack(fmt, *out), addr)
    raw = vm.copyin(addr, size)
    return raw if isinstance(raw, int) else struct.unpack(fmt, raw)


def _event_mask(l: Lwp, t: Proc, req: int, addr: int, data: int) -> int:
    """PT_SET/GET_EVENT_MASK: struct ptrace_event { int pe_set_event; }."""
    if req == PT_GET_EVENT_MASK:
        pe = sum(ev for ev, fl in _EVENTS if t.p_slflag & fl)
        return _getset(l, "<i", addr, data, (pe,))  # type: ignore[return-value]
    got = _getset(l, "<i", addr, data, None)
    if isinstance(got, int):
        return got
    pe = got[0]
    for ev, fl in _EVENTS:
        t.p_slflag = (t.p_slflag | fl) if pe & ev else (t.p_slflag & ~fl)
    return 0


def _process_state(l: Lwp, t: Proc, addr: int, data: int) -> int:
    """PT_GET_PROCESS_STATE: struct ptrace_state of the last TRAP_CHLD / TRAP_LWP stop."""
    ksi, xi = t.p_ptrace_ksi, t.p_ptrace_xinfo
    ev = other = 0
    if (ksi is not None and ksi.signo == Sig.SIGTRAP and ksi.code in (TRAP_CHLD, TRAP_LWP)
            and xi is not None and xi[0] == "state"):
        ev, other = xi[1], xi[2]
    return _getset(l, "<ii", addr, data, (ev, other))  # type: ignore[return-value]


# -- LWPs -------------------------------------------------------------------------------
def _next_alive(t: Proc, lid: int) -> Lwp | None | int:
    """The live LWP after `lid` in t's list (0: the first), None at the end; ESRCH."""
    lwps = _lwps(t)
    if lid:
        cur = lwp_find(t, lid)
        if cur is None:
            return Errno.ESRCH
        lwps = lwps[lwps.index(cur) + 1:]
    return next((x for x in lwps if _alive(x)), None)


def _lwpinfo(l: Lwp, t: Proc, addr: int, data: int) -> int:
    """PT_LWPINFO: struct ptrace_lwpinfo { lwpid_t pl_lwpid; int pl_event; }."""
    vm = l.l_proc.p_vmspace
    if data != 8:
        return Errno.EINVAL
    raw = vm.copyin(addr, 8)
    if isinstance(raw, int):
        return raw
    x = _next_alive(t, struct.unpack_from("<i", raw)[0])
    if isinstance(x, int):
        return x
    lid = ev = 0
    if x is not None:
        lid = x.l_lid
        ksi = t.p_ptrace_ksi
        pslwp = t.p_ptrace_lid
        if x.l_flag & LwpFlag.LW_DBGSUSPEND:
            ev = PL_EVENT_SUSPENDED
        elif lid == pslwp or (pslwp == 0 and ksi is not None and ksi.signo):
            ev = PL_EVENT_SIGNAL
    return vm.copyout(struct.pack("<ii", lid, ev), addr)


def _lwpstatus(l: Lwp, t: Proc, lt: Lwp, addr: int, data: int, nxt: bool) -> int:
    """PT_LWPSTATUS / PT_LWPNEXT: struct ptrace_lwpstatus { lwpid_t pl_lwpid;
    sigset_t pl_sigpend, pl_sigmask; char pl_name[20]; void *pl_private; },
    copied out up to `data` bytes."""
    abi = t.k.abi
    vm = l.l_proc.p_vmspace
    ws = abi.word_size
    size = (56 + ws - 1) // ws * ws + ws
    if data > size or data < 4:
        return Errno.EINVAL
    raw = vm.copyin(addr, 4)
    if isinstance(raw, int):
        return raw
    lid = struct.unpack("<i", raw)[0]
    if nxt:
        x = _next_alive(t, lid)
        if isinstance(x, int):
            return x
        if x is None:
            return vm.copyout(bytes(data), addr)
    else:
        x = ptrace_update_lwp(t, lt, lid)
        if isinstance(x, int):
            return x
    pend = (x.l_sigpend.set if x.l_sigpend is not None else 0) | t.p_sigpend.set
    name = (x.l_name or b"")
    name = (name.encode() if isinstance(name, str) else bytes(name))[:PL_LNAMELEN - 1]
    out = struct.pack("<i4I4I20s", x.l_lid, *words_of(pend), *words_of(mask_of(x.l_sigmask)),
                      name)
    out = out.ljust(size - ws, b"\0") + (x.l_private or 0).to_bytes(ws, "little")
    return vm.copyout(out[:data], addr)


def _startstop(t: Proc, lt: Lwp, req: int, data: int) -> int:
    """PT_SUSPEND / PT_RESUME: an LWP the process's next resume leaves stopped."""
    x = ptrace_update_lwp(t, lt, data)
    if isinstance(x, int):
        return x
    if req == PT_SUSPEND:
        x.l_flag |= LwpFlag.LW_DBGSUSPEND
        x.npark_end()
    else:
        x.l_flag &= ~LwpFlag.LW_DBGSUSPEND
    return 0


def _sigpass(l: Lwp, t: Proc, req: int, addr: int, data: int) -> int:
    """PT_SET/GET_SIGPASS: sigset_t of signals that reach t without a stop."""
    got = _getset(l, "<4I", addr, data, words_of(t.p_sigpass) if req == PT_GET_SIGPASS else None)
    if req == PT_GET_SIGPASS or isinstance(got, int):
        return got  # type: ignore[return-value]
    t.p_sigpass = mask_of(got) & ~_CANTMASK
    return 0


# -- the request ------------------------------------------------------------------------
def do_ptrace(l: Lwp, req: int, pid: int, addr: int, data: int, retval: list[int]) -> int:
    p = l.l_proc
    k = p.k
    md = k.abi.ptrace_machdep.get(req)
    t = p if req == PT_TRACE_ME else pfind(k, pid)
    if t is None:
        return Errno.ESRCH
    error = ptrace_allowed(req, t, p, md) or _kauth_ptrace(req, t, p, md)
    if error:
        return error
    lt = lwp_find_first(t)
    if lt is None:
        return Errno.ESRCH
    retval[0] = 0
    if req == PT_TRACE_ME:
        t.p_slflag |= PSL_TRACED
        t.p_opptr = t.p_pptr
        return 0
    if req in (PT_CONTINUE, PT_DETACH, PT_SYSCALL) or md == "STEP":
        return _continue(req, t, lt, addr, data, md)
    if req == PT_KILL:                    # (ptrace_sendsig of SIGKILL: it dies, stopped or not)
        kpsignal2(t, Ksiginfo.noinfo(Sig.SIGKILL))
        return 0
    if req == PT_STOP:
        ptrace_sendsig(t, lt, Sig.SIGSTOP)
        return 0
    if req == PT_ATTACH:
        t.p_slflag |= PSL_TRACED          # proc_changeparent
        t.p_opptr = t.p_pptr
        if t.p_pptr is not p:
            proc_reparent(t, p)
        ptrace_sendsig(t, lt, Sig.SIGSTOP)
        return 0
    if req in (PT_READ_I, PT_READ_D):
        got = _io(t, PIOD_READ_D, addr, 4)
        if isinstance(got, int):
            return got
        # the int, sign-extended to a register (register_t)
        retval[0] = int.from_bytes(got, "little", signed=True) & ((1 << 8 * k.abi.word_size) - 1)
        return 0
    if req in (PT_WRITE_I, PT_WRITE_D):
        return _io(t, PIOD_WRITE_D, addr, (data & 0xFFFFFFFF).to_bytes(4, "little"))  # type: ignore[return-value]
    if req == PT_IO:
        return _pt_io(l, t, addr, data)
    if req == PT_SYSCALLEMU:
        if not t.p_slflag & PSL_SYSCALL or t.p_stat != SSTOP:
            return Errno.EINVAL
        t.p_slflag |= PSL_SYSCALLEMU
        return 0
    if req in (PT_SET_EVENT_MASK, PT_GET_EVENT_MASK):
        return _event_mask(l, t, req, addr, data)
    if req == PT_GET_PROCESS_STATE:
        return _process_state(l, t, addr, data)
    if req == PT_LWPINFO:
        return _lwpinfo(l, t, addr, data)
    if req in (PT_LWPSTATUS, PT_LWPNEXT):
        return _lwpstatus(l, t, lt, addr, data, req == PT_LWPNEXT)
    if req == PT_GET_SIGINFO:
        return _get_siginfo(l, t, addr, data)
    if req == PT_SET_SIGINFO:
        return _set_siginfo(l, t, lt, addr, data)
    if req in (PT_SUSPEND, PT_RESUME):
        return _startstop(t, lt, req, data)
    if req in (PT_SET_SIGPASS, PT_GET_SIGPASS):
        return _sigpass(l, t, req, addr, data)
    if md in ("SETSTEP", "CLEARSTEP"):
        x = ptrace_update_lwp(t, lt, data)
        if isinstance(x, int):
            return x
        x.l_pflag = (x.l_pflag | LP_SINGLESTEP) if md == "SETSTEP" else (x.l_pflag & ~LP_SINGLESTEP)
        return 0
    if md == "SETDBREGS":
        return Errno.EINVAL if kauth_suser(p) else Errno.EPERM
    if md in ("GETREGS", "SETREGS", "GETFPREGS", "SETFPREGS", "GETDBREGS"):
        return _regs(l, t, lt, md, addr, data)
    return Errno.EINVAL


@syscall(26, "ptrace")
def sys_ptrace(l: Lwp, a, retval: list[int]) -> int:
    return do_ptrace(l, a.req, a.pid, a.addr, a.data, retval)


# -- stops the kernel makes for the tracer ------------------------------------------------
def trace_syscall(l: Lwp, code: int, args: Any, handler: Any,
                  retval: list[int]) -> Generator[str, int, int]:
    """A system call of a process under PT_SYSCALL (kern_syscall.c trace_enter /
    trace_exit): stop with TRAP_SCE, run it unless the tracer chose
    PT_SYSCALLEMU, stop with TRAP_SCX before its results reach the registers."""
    from .kern_sleepq import BLOCK
    p = l.l_proc
    argv = [a for a in args if isinstance(a, int)][:8] if isinstance(args, tuple) else []
    eventswitch(l, TRAP_SCE, ("syscall", code, 0, 0, 0, argv), now=True)
    if l.l_stat != LSONPROC:              # stopped: goes on from here when resumed
        yield BLOCK
        # the trap's registers, as fork1 and posix_spawn read them (others'
        # system calls have come and gone meanwhile)
        p.k.trapvals = l.l_sysvals
    if p.p_exiting:
        return 0
    if p.p_slflag & PSL_SYSCALLEMU:
        error = int(KernErrno.EJUSTRETURN)    # the tracer emulated it: registers as they are
    else:
        res = handler(l, args, retval)
        if isinstance(res, GeneratorType):
            error = yield from res
        else:
            error = res
    if p.p_exiting:
        return error or 0
    flags = p.p_slflag & (PSL_SYSCALL | PSL_TRACED | PSL_SYSCALLEMU)
    if flags == PSL_SYSCALL | PSL_TRACED:
        eventswitch(l, TRAP_SCX, ("syscall", code, retval[0], retval[1], error or 0, argv),
                    now=True)
        if l.l_stat != LSONPROC:
            yield BLOCK
    p.p_slflag &= ~PSL_SYSCALLEMU
    return error or 0


def ptrace_event(l: Lwp, flag: int, event: int, other: int, now: bool = False) -> None:
    """A fork / vfork / posix_spawn / LWP event of l's traced process: stop with
    SIGTRAP (TRAP_CHLD, TRAP_LWP for LWP events) if the tracer asked for it."""
    p = l.l_proc
    if p.p_slflag & PSL_TRACED and p.p_slflag & flag:
        code = TRAP_LWP if event in (PTRACE_LWP_CREATE, PTRACE_LWP_EXIT) else TRAP_CHLD
        eventswitch(l, code, ("state", event, other), now=now)


def ptrace_fork_child(p1: Proc, p2: Proc, event: int) -> bool:
    """fork1 of a traced p1 whose tracer wants `event`: p2 is traced by the same
    tracer (proc_changeparent) and stops at its first return (TRAP_CHLD)."""
    flag = {PTRACE_FORK: PSL_TRACEFORK, PTRACE_VFORK: PSL_TRACEVFORK,
            PTRACE_POSIX_SPAWN: PSL_TRACEPOSIX_SPAWN}[event]
    if not (p1.p_slflag & PSL_TRACED and p1.p_slflag & flag) or p1.p_pptr is None:
        return False
    p2.p_slflag |= PSL_TRACED
    p2.p_opptr = p1
    proc_reparent(p2, p1.p_pptr)
    l2 = next(iter(p2.p_lwps.values()), None)
    if l2 is not None:
        ksi = Ksiginfo(Sig.SIGTRAP, TRAP_CHLD, lid=l2.l_lid)
        p2.p_ptrace_sig, p2.p_ptrace_lid, p2.p_ptrace_ksi = 0, l2.l_lid, ksi
        p2.p_ptrace_xinfo = ("state", event, p1.p_pid)
        from .kern_sig import proc_stop
        proc_stop(p2, Sig.SIGTRAP)
    return True
