"""COMPAT_13 signal-mask calls (syscalls/compat_13.py): the 32-signal
sigset13_t of NetBSD 1.3, as libc's old-symbol sigprocmask / sigpending /
sigsuspend stubs use them, through the syscall table without an engine."""
from __future__ import annotations

import struct

from nbemu.syscalls import kern_sig as ks
from nbemu.syscalls.errno import Errno
from nbemu.syscalls.lwp import LSRUN, LSSLEEP
from nbemu.syscalls.signals import SIGRTMIN, Sig
from tests.khelp import call, catch, err, make_kernel, ok, resume, scratch

SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 1, 2, 3
B = ks.bit


def test_sigprocmask13_returns_the_old_mask() -> None:
    k, l = make_kernel()
    assert ok(l, "compat_13_sigprocmask13", SIG_BLOCK, B(Sig.SIGUSR1))[0] == 0
    assert ks.mask_of(l.l_sigmask) == B(Sig.SIGUSR1)
    assert ok(l, "compat_13_sigprocmask13", SIG_BLOCK, B(Sig.SIGUSR2))[0] == B(Sig.SIGUSR1)
    assert ok(l, "compat_13_sigprocmask13", SIG_UNBLOCK, B(Sig.SIGUSR1))[0] == (
        B(Sig.SIGUSR1) | B(Sig.SIGUSR2))
    # SIG_BLOCK of nothing: how the libc stub asks without changing (set == NULL)
    assert ok(l, "compat_13_sigprocmask13", SIG_BLOCK, 0)[0] == B(Sig.SIGUSR2)
    # SIGKILL / SIGSTOP stay unmaskable; the value is an unsigned int
    ok(l, "compat_13_sigprocmask13", SIG_SETMASK, 0xFFFFFFFF)
    assert ok(l, "compat_13_sigprocmask13", SIG_BLOCK, 0)[0] == 0xFFFFFFFF & ~ks.CANTMASK
    assert err(l, "compat_13_sigprocmask13", 0, 0) == Errno.EINVAL
    assert err(l, "compat_13_sigprocmask13", 4, 0) == Errno.EINVAL


def test_sigprocmask13_setmask_clears_signals_above_32() -> None:
    """native_sigset13_to_sigset: the upper words of the new mask are zero."""
    k, l = make_kernel()
    va = scratch(l, 0x1000)
    l.l_proc.p_vmspace.copyout(struct.pack("<4I", *ks.words_of(B(SIGRTMIN))), va)
    ok(l, "__sigprocmask14", SIG_BLOCK, va, 0)
    assert ks.mask_of(l.l_sigmask) & B(SIGRTMIN)
    ok(l, "compat_13_sigprocmask13", SIG_SETMASK, B(Sig.SIGINT))
    assert ks.mask_of(l.l_sigmask) == B(Sig.SIGINT)


def test_sigpending13() -> None:
    k, l = make_kernel()
    assert ok(l, "compat_13_sigpending13")[0] == 0
    ok(l, "compat_13_sigprocmask13", SIG_BLOCK, B(Sig.SIGUSR1))
    ks.kpsignal2(l.l_proc, ks.Ksiginfo(Sig.SIGUSR1))
    assert ok(l, "compat_13_sigpending13")[0] == B(Sig.SIGUSR1)


def test_sigsuspend13_waits_with_the_given_mask_and_gives_eintr() -> None:
    k, l = make_kernel()
    catch(l, Sig.SIGUSR1)
    ok(l, "compat_13_sigprocmask13", SIG_BLOCK, B(Sig.SIGUSR1))
    gen, _ = call(l, "compat_13_sigsuspend13", 0)
    assert hasattr(gen, "send") and l.l_stat == LSSLEEP
    assert ks.mask_of(l.l_sigmask) == 0                         # the suspend mask
    ks.kpsignal2(l.l_proc, ks.Ksiginfo(Sig.SIGUSR1))
    assert resume(k, l, gen) == Errno.EINTR


def test_sigsuspend13_with_the_signal_already_pending() -> None:
    k, l = make_kernel()
    catch(l, Sig.SIGUSR2)
    ok(l, "compat_13_sigprocmask13", SIG_BLOCK, B(Sig.SIGUSR2))
    ks.kpsignal2(l.l_proc, ks.Ksiginfo(Sig.SIGUSR2))
    gen, _ = call(l, "compat_13_sigsuspend13", 0)
    assert l.l_stat == LSRUN                 # the sleep ended as it began
    assert resume(k, l, gen) == Errno.EINTR
