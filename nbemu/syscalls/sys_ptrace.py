"""ptrace(2): a parent tracing a child it starts, as NetBSD's
sys/kern/sys_ptrace_common.c (do_ptrace, ptrace_allowed, ptrace_sendsig;
read at rev 1.53, whose requests below are those of NetBSD 10) does it.

A traced process (PSL_TRACED in p_slflag) has its tracer as p_pptr; the
parent it had before PT_ATTACH is kept in p_opptr (PT_TRACE_ME: the same
process). Every signal but SIGKILL sent to it stops it for the tracer
(kern_sig.issignal), which sees the stop with wait4/wait6 (WIFSTOPPED, without
WUNTRACED) and resumes it with PT_CONTINUE, choosing the signal it then takes.
A traced process that execs stops with SIGTRAP (TRAP_EXEC) before the new
image's first instruction (kern_exec.execve1).

Served: PT_TRACE_ME, PT_CONTINUE, PT_KILL, PT_ATTACH, PT_DETACH, PT_READ_I/D,
PT_WRITE_I/D, PT_IO and (amd64) PT_GETREGS. The other requests NetBSD knows
answer EINVAL after the same permission checks (nbemu does not model them).
PT_CONTINUE with an LWP (data < 0) checks the LWP but resumes the process.
Writes go through the target's protections (EFAULT on read-only text).
"""
from __future__ import annotations

import struct

from .errno import Errno
from .kern_proc import pfind, proc_reparent
from .kern_prot import kauth_suser, proc_cred
from .kern_sig import child_notify, kpsignal2, proc_unstop
from .lwp import LSZOMB, PSL_TRACED, SSTOP, Lwp, Proc
from .signals import CLD_TRAPPED, NSIG, SIGPROP, Ksiginfo, Sig, SigProp
from .table import syscall

PT_TRACE_ME, PT_READ_I, PT_READ_D, PT_WRITE_I, PT_WRITE_D = 0, 1, 2, 4, 5
PT_CONTINUE, PT_KILL, PT_ATTACH, PT_DETACH, PT_IO = 7, 8, 9, 10, 11
PT_DUMPCORE, PT_LWPINFO, PT_SYSCALL, PT_SYSCALLEMU = 12, 13, 14, 15
PT_SET_EVENT_MASK, PT_GET_EVENT_MASK, PT_GET_PROCESS_STATE = 16, 17, 18
PT_SET_SIGINFO, PT_GET_SIGINFO, PT_RESUME, PT_SUSPEND, PT_STOP = 19, 20, 21, 22, 23
PT_LWPSTATUS, PT_LWPNEXT, PT_SET_SIGPASS, PT_GET_SIGPASS = 24, 25, 26, 27
PT_FIRSTMACH = 32
PT_GETREGS = PT_FIRSTMACH + 1                 # amd64 (machine/ptrace.h); i386 too
PIOD_READ_D, PIOD_WRITE_D, PIOD_READ_I, PIOD_WRITE_I = 1, 2, 3, 4

# Requests that act on a stopped process the caller traces (ptrace_allowed's
# "You can't do what you want to the process if ..." group).
_MEM = {PT_READ_I, PT_READ_D, PT_WRITE_I, PT_WRITE_D, PT_IO, PT_SET_SIGINFO,
        PT_GET_SIGINFO}
_MACHDEP = set(range(PT_FIRSTMACH, PT_FIRSTMACH + 10))
_STOPPED = (_MEM | _MACHDEP | {PT_CONTINUE, PT_KILL, PT_DETACH, PT_LWPINFO, PT_SYSCALL,
                               PT_SYSCALLEMU, PT_DUMPCORE, PT_SET_EVENT_MASK,
                               PT_GET_EVENT_MASK, PT_GET_PROCESS_STATE, PT_RESUME,
                               PT_SUSPEND, PT_STOP, PT_LWPSTATUS, PT_LWPNEXT,
                               PT_SET_SIGPASS, PT_GET_SIGPASS})
# kauth's ptrace listener: these need the same real uid (and no set-id image)
# unless the caller is root; the others are allowed once ptrace_allowed agrees.
_SAME_USER = _MEM | _MACHDEP | {PT_TRACE_ME, PT_ATTACH, PT_SET_EVENT_MASK,
                                PT_GET_EVENT_MASK, PT_GET_PROCESS_STATE}


def ptrace_allowed(req: int, t: Proc, p: Proc) -> int:
    """Whether p may make request req of t (sys_ptrace_common.c ptrace_allowed).
    The guest's init is outside it: a parent outside the guest is init."""
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
    if req in _STOPPED:
        if not t.p_slflag & PSL_TRACED:
            return Errno.EPERM
        if t.p_pptr is not p:
            return Errno.EBUSY
        if t.p_stat != SSTOP or t.p_nstopchild:
            return Errno.EBUSY           # not stopped, or its stop not yet waited for
        return 0
    return Errno.EINVAL


def _kauth_ptrace(req: int, t: Proc, p: Proc) -> int:
    if req not in _SAME_USER:
        return 0
    if proc_cred(p).cr_uid == proc_cred(t).cr_uid and not t.p_sugid:
        return 0
    return 0 if kauth_suser(p) else Errno.EPERM


def ptrace_sendsig(t: Proc, signo: int) -> None:
    """Resume stopped t to take signo (0: none), or post signo to a running t
    (ptrace_sendsig). A stop signal keeps it stopped and is reported again."""
    if t.p_stat == SSTOP:
        t.p_ptrace_sig = signo
        if signo and SIGPROP[signo] & SigProp.SA_STOP:
            t.p_xstopsig = signo
            t.p_nstopchild = 1
            child_notify(t, CLD_TRAPPED)
        else:
            proc_unstop(t, continued=False)
        return
    if signo:
        kpsignal2(t, Ksiginfo.noinfo(signo))


def _first_lwp(t: Proc) -> Lwp | None:
    """The LWP a request reads or moves: the one that took the trace stop, else
    the first live one (lwp_find_first)."""
    lt = t.lwp_find(t.p_ptrace_lid) if t.p_ptrace_lid else None
    if lt is not None:
        return lt
    return next((x for x in t.p_lwps.values() if x.l_stat != LSZOMB), None)


def _detach(t: Proc) -> None:
    """Give t back to the parent it had before the attach (or init)."""
    t.p_slflag &= ~PSL_TRACED
    opp = t.p_opptr
    if opp is not t.p_pptr:
        k = t.k
        if opp is None or opp.p_exiting:
            opp = k.proc if k.proc is not None and not k.proc.p_exiting else None
        proc_reparent(t, opp)
    t.p_opptr = None


def _continue(l: Lwp, req: int, t: Proc, addr: int, data: int) -> int:
    lt = _first_lwp(t)
    signo = data
    if data < 0:                          # one LWP: -data
        if req == PT_DETACH:
            return Errno.EINVAL
        lt = t.lwp_find(-data)
        if lt is None or lt.l_stat == LSZOMB:
            return Errno.ESRCH
        signo = 0
    if signo >= NSIG:
        return Errno.EINVAL
    if addr == 0:
        return Errno.EINVAL               # a PC of 0 is refused (a common mistake)
    if addr != 1 and lt is not None:
        k = t.k
        abi = k.abi
        k.platform.regs_set(lt, [abi.pc_reg], [abi.resume_address(addr, 0)])
    if req == PT_DETACH:
        _detach(t)
    ptrace_sendsig(t, signo)
    return 0


def _io(t: Proc, op: int, offs: int, data: bytes | int) -> bytes | int:
    """Read len(data) or `data` bytes of t's memory at offs (PIOD_READ_*), or
    write data there (PIOD_WRITE_*): the bytes read, 0, or an errno."""
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


def _getregs(l: Lwp, t: Proc, addr: int, data: int) -> int:
    """PT_GETREGS: struct reg (the port's mcontext general registers, in
    their _REG_* order); data picks the LWP (0: the first)."""
    k = l.l_proc.k
    abi = k.abi
    lt = _first_lwp(t) if data == 0 else t.lwp_find(data)
    if lt is None or lt.l_stat == LSZOMB:
        return Errno.ESRCH
    reg = abi.ptrace_reg(k.platform.regs_get(lt, abi.getmcontext_ids()))
    if reg is None:
        return Errno.EINVAL               # no struct reg for this port in nbemu
    return l.l_proc.p_vmspace.copyout(reg, addr)


def do_ptrace(l: Lwp, req: int, pid: int, addr: int, data: int, retval: list[int]) -> int:
    p = l.l_proc
    k = p.k
    t = p if req == PT_TRACE_ME else pfind(k, pid)
    if t is None:
        return Errno.ESRCH
    error = ptrace_allowed(req, t, p) or _kauth_ptrace(req, t, p)
    if error:
        return error
    retval[0] = 0
    if req == PT_TRACE_ME:
        t.p_slflag |= PSL_TRACED
        t.p_opptr = t.p_pptr
        return 0
    if req in (PT_CONTINUE, PT_DETACH):
        return _continue(l, req, t, addr, data)
    if req == PT_KILL:
        kpsignal2(t, Ksiginfo.noinfo(Sig.SIGKILL))
        return 0
    if req == PT_ATTACH:
        t.p_slflag |= PSL_TRACED          # proc_changeparent
        t.p_opptr = t.p_pptr
        if t.p_pptr is not p:
            proc_reparent(t, p)
        ptrace_sendsig(t, Sig.SIGSTOP)
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
    if req == PT_GETREGS:
        return _getregs(l, t, addr, data)
    return Errno.EINVAL


@syscall(26, "ptrace")
def sys_ptrace(l: Lwp, a, retval: list[int]) -> int:
    return do_ptrace(l, a.req, a.pid, a.addr, a.data, retval)
