"""Signal and context system calls (NetBSD's sys_sig.c): sigaction with
trampolines, sigprocmask, sigpending, sigaltstack, kill, getcontext, setcontext."""
from __future__ import annotations

import struct

from .errno import Errno, KernErrno
from .kern_sig import SIG_DFL, kpsignal_proc, sigaction_of
from .lwp import Lwp
from .signals import NSIG, Sig
from .table import syscall

SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 1, 2, 3
SS_ONSTACK, SS_DISABLE = 1, 4
MINSIGSTKSZ = 8192
_CANTMASK = ((1 << (Sig.SIGKILL - 1)) | (1 << (Sig.SIGSTOP - 1)), 0, 0, 0)


def _sigset(data: bytes) -> tuple[int, int, int, int]:
    return struct.unpack("<4I", data)


@syscall(340, "__sigaction_sigtramp")
def sys___sigaction_sigtramp(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    vm = p.p_vmspace
    sig = a.signum
    if sig <= 0 or sig >= NSIG:
        return Errno.EINVAL
    old = sigaction_of(l, sig)
    new = None
    if a.nsa:
        data = vm.copyin(a.nsa, 32)
        if isinstance(data, int):
            return data
        handler, = struct.unpack_from("<Q", data, 0)
        mask = _sigset(data[8:24])
        flags, = struct.unpack_from("<i", data, 24)
        if sig in (Sig.SIGKILL, Sig.SIGSTOP) and handler != SIG_DFL:
            return Errno.EINVAL
        if a.vers == 0 and handler > 1:
            pass                    # sigcontext trampoline on the stack: legacy
        elif handler > 1 and (a.vers < 2 or not a.tramp):
            return Errno.EINVAL
        new = (handler, mask, flags, a.tramp, a.vers)
    if a.osa:
        h, m, f = old[0], old[1], old[2]
        error = vm.copyout(struct.pack("<Q4Ii4x", h, *m, f), a.osa)
        if error:
            return error
    if new is not None:
        p.p_sigacts[sig] = new
    return 0


@syscall(293, "__sigprocmask14")
def sys___sigprocmask14(l: Lwp, a, retval: list[int]) -> int:
    vm = l.l_proc.p_vmspace
    old = l.l_sigmask
    if a.set:
        data = vm.copyin(a.set, 16)
        if isinstance(data, int):
            return data
        s = _sigset(data)
        if a.how == SIG_BLOCK:
            new = tuple(o | x for o, x in zip(old, s))
        elif a.how == SIG_UNBLOCK:
            new = tuple(o & ~x for o, x in zip(old, s))
        elif a.how == SIG_SETMASK:
            new = s
        else:
            return Errno.EINVAL
        l.l_sigmask = tuple(x & ~c for x, c in zip(new, _CANTMASK))  # type: ignore[assignment]
    if a.oset:
        return vm.copyout(struct.pack("<4I", *old), a.oset)
    return 0


@syscall(292, "__sigpending14")
def sys___sigpending14(l: Lwp, a, retval: list[int]) -> int:
    pend = l.l_proc.k.config.get("sig_pending", {}).get(l.l_lid, set())
    words = [0, 0, 0, 0]
    for s in pend:
        words[(s - 1) // 32] |= 1 << ((s - 1) % 32)
    return l.l_proc.p_vmspace.copyout(struct.pack("<4I", *words), a.set)


@syscall(281, "__sigaltstack14")
def sys___sigaltstack14(l: Lwp, a, retval: list[int]) -> int:
    vm = l.l_proc.p_vmspace
    old = l.l_sigstk
    if a.nss:
        data = vm.copyin(a.nss, 24)
        if isinstance(data, int):
            return data
        sp, size, flags = struct.unpack("<QQi4x", data)
        if flags & ~SS_DISABLE:
            return Errno.EINVAL
        if old[2] & SS_ONSTACK:
            return Errno.EPERM
        if not flags & SS_DISABLE and size < MINSIGSTKSZ:
            return Errno.ENOMEM
        l.l_sigstk = (sp, size, flags)
    if a.oss:
        return vm.copyout(struct.pack("<QQi4x", *old), a.oss)
    return 0


@syscall(37, "kill")
def sys_kill(l: Lwp, a, retval: list[int]) -> int:
    p = l.l_proc
    if a.signum < 0 or a.signum >= NSIG:
        return Errno.EINVAL
    if a.pid not in (p.p_pid, 0, -1, -p.p_pid):
        return Errno.ESRCH if a.pid > 0 else Errno.EPERM
    if a.signum:
        kpsignal_proc(l, a.signum)
    return 0


@syscall(307, "getcontext")
def sys_getcontext(l: Lwp, a, retval: list[int]) -> int:
    k = l.l_proc.k
    abi = k.abi
    vals = k.platform.regs_get(l, abi.getmcontext_ids())
    abi.set_syscall_success_in_gregs(vals)
    uc = abi.build_ucontext(vals, l.l_sigmask, l.l_sigstk, None)
    return l.l_proc.p_vmspace.copyout(uc, a.ucp)


@syscall(308, "setcontext")
def sys_setcontext(l: Lwp, a, retval: list[int]) -> int:
    k = l.l_proc.k
    abi = k.abi
    uc = l.l_proc.p_vmspace.copyin(a.ucp, abi.ucontext_size)
    if isinstance(uc, int):
        return uc
    flags = abi.ucontext_flags(uc)
    if flags & 0x4 and not abi.cpu_mcontext_validate(abi.unpack_mcontext_gregs(uc)):
        return Errno.EINVAL
    ids, vals = abi.mcontext_regs(uc, flags)
    if ids:
        k.platform.regs_set(l, ids, vals)
    if flags & 0x1:
        l.l_sigmask = abi.ucontext_sigmask(uc)
    return KernErrno.EJUSTRETURN
