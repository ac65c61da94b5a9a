"""Sleep queues (NetBSD's kern_sleepq.c).

A sleeping LWP waits on a wait channel (any hashable: NetBSD uses an address)
in the sleep queue the sleeptab hashes that channel to. Each sleep has a sync
object: lwp_park_syncobj queues LIFO (NetBSD's SOBJ_SLEEPQ_LIFO), the others
FIFO. A sleep ends by sleepq_remove (wakeup, unpark, signal, _lwp_wakeup) or by
its timeout callout; the blocked system call then resumes in sleepq_block,
which returns the error the waker chose (0, EINTR, EWOULDBLOCK, ...).

Blocking is a generator: a handler writes `error = yield from sleepq_block(...)`;
the yield hands the CPU back to the scheduler and the LWP resumes right there
when it runs again, as a NetBSD kernel thread resumes after mi_switch().
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generator, Hashable

from .errno import Errno
from .lwp import LSONPROC, LSSLEEP, LSSTOP, LwpFlag, Lwp

if TYPE_CHECKING:
    from .kernel import Kernel


class SyncObj:
    def __init__(self, name: str, lifo: bool = False) -> None:
        self.name = name
        self.lifo = lifo

    def __repr__(self) -> str:
        return f"<syncobj {self.name}>"


sleep_syncobj = SyncObj("sleep")
lwp_park_syncobj = SyncObj("lwp_park", lifo=True)


class SleepQueue(deque):
    """LWPs sleeping on channels that hash here (one deque per channel)."""


class SleepTab:
    def __init__(self) -> None:
        self._tab: dict[Hashable, SleepQueue] = {}

    def lookup(self, wchan: Hashable) -> SleepQueue:
        sq = self._tab.get(wchan)
        if sq is None:
            sq = self._tab[wchan] = SleepQueue()
        return sq

    def peek(self, wchan: Hashable) -> SleepQueue | None:
        return self._tab.get(wchan)

    def drop_if_empty(self, wchan: Hashable) -> None:
        sq = self._tab.get(wchan)
        if sq is not None and not sq:
            del self._tab[wchan]

    def __len__(self) -> int:
        return sum(len(q) for q in self._tab.values())


BLOCK = "block"     # the value a blocked system call yields to the scheduler


def sleepq_enqueue(k: "Kernel", l: Lwp, wchan: Hashable, wmesg: str, sobj: SyncObj,
                   catch_intr: bool) -> None:
    """Put the running LWP l to sleep on wchan (it leaves its CPU)."""
    assert l.l_stat == LSONPROC, l
    sq = k.sleeptab.lookup(wchan)
    if sobj.lifo:
        sq.appendleft(l)
    else:
        sq.append(l)
    l.l_wchan = wchan
    l.l_wmesg = wmesg
    l.l_sleepq = sq
    l.l_syncobj = sobj
    l.l_sleeperr = 0
    if catch_intr:
        l.l_flag |= LwpFlag.LW_SINTR | LwpFlag.LW_CATCHINTR
    else:
        l.l_flag &= ~(LwpFlag.LW_SINTR | LwpFlag.LW_CATCHINTR)
    l.l_flag &= ~LwpFlag.LW_STIMO
    k.cpu_release(l)
    l.set_stat(LSSLEEP)
    if k.listeners:
        k.event("sleep", l, wchan=wchan, wmesg=wmesg)


def sleepq_block(k: "Kernel", l: Lwp, timo_ns: int | None,
                 deadline_ns: int | None = None) -> Generator[str, int, int]:
    """Block until woken; returns 0, EWOULDBLOCK (timeout) or the waker's error.

    timo_ns is relative, deadline_ns absolute on the kernel's monotonic clock.
    """
    if timo_ns is not None and deadline_ns is None:
        deadline_ns = k.clock.monotonic_ns() + max(timo_ns, 0)
    if deadline_ns is not None:
        l.l_timeout = k.callout.schedule(deadline_ns, _sleepq_timeout, l)
    if l.l_flag & LwpFlag.LW_SINTR:
        # An interruptible sleep ends at once (NetBSD's sleepq_block with
        # catch_p): EINTR when the LWP was cancelled (_lwp_wakeup while it was
        # not asleep: LW_CANCELLED, consumed here) or is exiting; EINTR or
        # ERESTART (SA_RESTART handlers) when a signal is already pending. A
        # stopping process stops the sleeper here instead.
        if l.l_flag & (LwpFlag.LW_CANCELLED | LwpFlag.LW_WEXIT | LwpFlag.LW_WCORE):
            l.l_flag &= ~LwpFlag.LW_CANCELLED
            error = Errno.EINTR
        else:
            error = k.sig_pending_for(l)
        if error and l.l_stat == LSSLEEP:
            sleepq_remove(k, l, error)
    error = yield BLOCK
    return error


def _sleepq_timeout(l: Lwp) -> None:
    """Callout: the sleep's time is up (sleepq_timeout). A sleeper stopped by a
    signal (LSSTOP) has its sleep ended too; it runs once continued."""
    if l.l_stat in (LSSLEEP, LSSTOP) and l.l_timeout is not None:
        l.l_timeout = None
        l.l_flag |= LwpFlag.LW_STIMO
        sleepq_remove(l.l_proc.k, l, Errno.EWOULDBLOCK)


def sleepq_remove(k: "Kernel", l: Lwp, error: int = 0) -> None:
    """End l's sleep (sleepq_remove + setrunnable); its sleep returns `error`.
    A sleeper that is stopped (LSSTOP) leaves the queue but stays stopped:
    SIGCONT makes it runnable (as NetBSD's sleepq_remove leaves it to whoever
    stopped it)."""
    sleepq_unsleep(k, l, error)
    if l.l_stat == LSSTOP:
        return
    k.setrunnable(l)


def sleepq_unsleep(k: "Kernel", l: Lwp, error: int = 0) -> None:
    """sleepq_remove's first half: l leaves its sleep queue and timeout, its
    sleep returns `error`; its state is the caller's to change."""
    assert l.l_stat in (LSSLEEP, LSSTOP), l
    sq = l.l_sleepq
    if sq is not None:
        sq.remove(l)
        k.sleeptab.drop_if_empty(l.l_wchan)
    if l.l_timeout is not None:
        k.callout.stop(l.l_timeout)
        l.l_timeout = None
    if k.listeners:
        k.event("wakeup", l, wchan=l.l_wchan, error=error)
    l.l_sleeperr = error
    l.l_wchan = None
    l.l_sleepq = None
    l.l_syncobj = None
    l.l_flag &= ~(LwpFlag.LW_SINTR | LwpFlag.LW_CATCHINTR)


def sleepq_wake(k: "Kernel", wchan: Hashable, expected: int = -1, error: int = 0) -> int:
    """Wake up to `expected` LWPs (-1: all) sleeping on wchan; how many woke."""
    sq = k.sleeptab.peek(wchan)
    if not sq:
        return 0
    n = 0
    for l in list(sq):
        if expected >= 0 and n >= expected:
            break
        sleepq_remove(k, l, error)
        n += 1
    return n


def sleepq_abort_interruptible(k: "Kernel", l: Lwp, error: int) -> bool:
    """Interrupt l's sleep if it is interruptible (signal, _lwp_wakeup)."""
    if l.l_stat == LSSLEEP and l.l_flag & LwpFlag.LW_SINTR:
        sleepq_remove(k, l, error)
        return True
    return False


def kpause(k: "Kernel", l: Lwp, wmesg: str, intr: bool, timo_ns: int | None,
           deadline_ns: int | None = None, wchan: Any = None) -> Generator[str, int, int]:
    """Sleep on a private channel for a while (kpause(9)); EWOULDBLOCK at the end."""
    sleepq_enqueue(k, l, wchan if wchan is not None else ("kpause", id(l)), wmesg,
                   sleep_syncobj, intr)
    return (yield from sleepq_block(k, l, timo_ns, deadline_ns))
