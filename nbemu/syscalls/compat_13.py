"""COMPAT_13: the signal-mask calls of NetBSD 1.3's 32-signal sigset
(sys/compat/common/kern_sig_13.c). libc of NetBSD 7 to 9 still makes them:
its old-symbol sigprocmask, sigpending and sigsuspend (lib/libc/compat/arch/
{x86_64,i386,arm}/sys/compat_sig*.S) trap with these numbers for programs
linked against those symbols.

A sigset13_t is one int: signals 1..32. Going in, it becomes a sigset_t
whose other words are zero (native_sigset13_to_sigset); coming out, only the
first word is kept, and it is the call's value, not a copyout.

sigaction13 and the sigreturn13 / __sigreturn14 calls are not here: they
need the kernel-supplied signal trampoline of version 0 (sigcode), which
nbemu's sendsig does not provide.
"""
from __future__ import annotations

from typing import Generator

from .kern_sig import lsigpend, psigpend, words_of
from .lwp import Lwp
from .table import syscall


def _sigset13_to_sigset(mask13: int) -> tuple[int, int, int, int]:
    return (mask13 & 0xFFFFFFFF, 0, 0, 0)


def _retval13(words) -> int:
    """native_sigset_to_sigset13 (an unsigned int), the call's value."""
    return words[0] & 0xFFFFFFFF


@syscall(48, "compat_13_sigprocmask13")
def compat_13_sys_sigprocmask13(l: Lwp, a, retval: list[int]) -> int:
    from .sys_sig import sigprocmask1
    old = l.l_sigmask
    error = sigprocmask1(l, a.how, _sigset13_to_sigset(a.mask))
    if error:
        return error
    retval[0] = _retval13(old)
    return 0


@syscall(52, "compat_13_sigpending13")
def compat_13_sys_sigpending13(l: Lwp, a, retval: list[int]) -> int:
    retval[0] = _retval13(words_of(lsigpend(l).set | psigpend(l.l_proc).set))
    return 0


@syscall(111, "compat_13_sigsuspend13")
def compat_13_sys_sigsuspend13(l: Lwp, a, retval: list[int]) -> Generator:
    """sigsuspend1 with the 32-signal mask: always EINTR, after a signal."""
    from .sys_sig import sigsuspend1
    return (yield from sigsuspend1(l, _sigset13_to_sigset(a.mask)))
