"""Signal posting (NetBSD's kern_sig.c), first cut.

Dispositions, masks and alternate stacks are recorded exactly (sys_sig.py);
delivery to a handler (frames, trampolines) is the signals issue's work. What
is decided here already: a signal whose action is to terminate (no handler,
not ignored) ends the process with that signal; an ignored one is dropped; one
with a handler is kept pending on the LWP (one warning line).
"""
from __future__ import annotations

from .kern_exit import exit1
from .lwp import Lwp
from .signals import Sig, default_action

SIG_DFL = 0
SIG_IGN = 1


def sigaction_of(l: Lwp, sig: int) -> tuple:
    return l.l_proc.p_sigacts.get(sig, (SIG_DFL, (0, 0, 0, 0), 0, 0, 0))


def kpsignal_lwp(t: Lwp, sig: int) -> None:
    """Post `sig` to LWP t (from _lwp_kill, kill, or a fault)."""
    p = t.l_proc
    k = p.k
    handler = sigaction_of(t, sig)[0]
    k.event("signal", t, sig=sig)
    if sig == Sig.SIGKILL:
        exit1(t, 0, sig)
        return
    if handler == SIG_IGN:
        return
    action = default_action(sig)
    if handler == SIG_DFL:
        if action in ("terminate", "core"):
            exit1(t, 0, sig)
        return                      # ignore / stop / continue: not modelled yet
    pend = k.config.setdefault("sig_pending", {})
    pend.setdefault(t.l_lid, set()).add(sig)
    warned = k.config.setdefault("sig_warned", set())
    # Signals whose default is to be ignored (Go's SIGURG preemption requests)
    # lose nothing the program relies on: say nothing about them.
    if sig not in warned and action != "ignore":
        warned.add(sig)
        k.warn(f"signal {sig} to a handler: delivery is not implemented yet; kept pending")


def kpsignal_proc(l: Lwp, sig: int) -> None:
    """Post to the process: to the first LWP that does not block it."""
    p = l.l_proc
    word, bit = divmod(sig - 1, 32)
    for t in p.p_lwps.values():
        if t.l_stat != 5 and not (t.l_sigmask[word] >> bit) & 1:
            kpsignal_lwp(t, sig)
            return
    kpsignal_lwp(l, sig)
