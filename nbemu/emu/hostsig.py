"""Signals sent to nbemu are the guest's: Ctrl-C, `kill -TERM`, SIGWINCH of a
resized terminal, ... reach the guest process as NetBSD signals (its handlers
run, or it dies of them: exit 128+N), as they would reach a program run by a
shell. qemu-user does the same. Which guest processes get them:
Kernel.post_host_signals (the first process's group for a terminal's signals,
the first process for a kill(2) of nbemu's pid).

How, and its limits:
- A Python handler (main thread) queues the signal in the kernel
  (Kernel.host_signal), with who sent it: the terminal (Linux's si_code
  SI_KERNEL: the tty driver's Ctrl-C, Ctrl-\\, a resize, a hang-up) or a host
  process (SI_USER from kill(2), SI_QUEUE, SI_TKILL). Python's handlers get
  no siginfo: the native library's SA_SIGINFO handler, put in front of
  Python's, counts each arrival by sender (nbhook.c nb_sigorigin_wrap), and
  the Python handler takes the counts. Without the native library (no C
  compiler) nbemu cannot tell: every signal counts as the terminal's (what
  nbemu did before it could tell). The kernel posts it with psignal() at the next
  delivery point: the end of a system call or the top of the run loop (a
  vCPU turn). No turn is cut short for it, so record/replay stays exact: the
  recorder logs each signal where it was posted and a replay posts it there.
- Python runs its handlers only when the engine gives control back (a trap, a
  turn's end). So a watchdog thread (which sees every signal through
  signal.set_wakeup_fd) ends the running turn: at its next block boundary
  through the native block hook (nb_preempt, exact, as the ticker preempts),
  which is installed whenever the guest catches a forwarded signal
  (Machine.signal_caught) or has more than one LWP to run; on nbemu's
  patched engine (fast mode) with an asynchronous uc_emu_stop, exact there
  (Machine._async_stop); otherwise only when the signal will kill the
  process (default action, not blocked), with an asynchronous uc_emu_stop:
  on PyPI's engine it may stop inside a block, but no guest instruction runs
  after it. While a signal waits for its turn to end the
  watchdog repeats this every 10 ms.
- As a last resort, a second SIGINT/SIGTERM/SIGHUP/SIGQUIT while the first is
  still undelivered ends nbemu at once, with one line, exit 128 + the host
  signal.
- Idle waits (every LWP asleep until a timeout) sleep on an Event the
  watchdog sets, so a signal to an idle guest is not held until the timeout.
- A --replay takes its signals from the log: SIGINT & co. end the replay,
  the others are ignored.
- SIGTSTP (Ctrl-Z) keeps its default (the host stops nbemu and the guest with
  it); SIGCONT is handled by the machine (emu/machine.py _host_stop).
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from typing import Any

from unicorn.unicorn_py3.unicorn import uclib

from nbemu.syscalls.signals import Sig

# host signal -> NetBSD signal (Linux and NetBSD agree on 1, 2, 3, 15, 28; not on USR1/2)
FORWARDED: dict[int, int] = {
    signal.SIGHUP: Sig.SIGHUP, signal.SIGINT: Sig.SIGINT, signal.SIGQUIT: Sig.SIGQUIT,
    signal.SIGTERM: Sig.SIGTERM, signal.SIGUSR1: Sig.SIGUSR1, signal.SIGUSR2: Sig.SIGUSR2,
    signal.SIGWINCH: Sig.SIGWINCH,
}
_FATAL = {signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM}
FORCE_QUIT_AFTER_S = 0.25      # an undelivered fatal signal this old: the next one quits
_RETRY_S = 0.01                # how often the watchdog ends a turn again for a queued signal


class HostSignals:
    """Forwarding installed for one run (install() / uninstall())."""

    def __init__(self, kernel: Any, replay: bool = False) -> None:
        self.k = kernel
        self.replay = replay
        self.wake = threading.Event()
        # Fatal signals seen by the watchdog / handled by the main thread's Python
        # handler (which runs only when the engine gives control back).
        self.arrived = 0
        self.handled = 0
        self._first_unhandled_at = 0.0
        self._unposted: list[int] = []    # seen by the watchdog, not yet by the handler
        self._old: dict[int, Any] = {}
        self._old_wakeup = -1
        self._r = self._w = -1
        self._thread: threading.Thread | None = None
        self._closing = False
        self._counted: set[int] = set()   # host signals whose senders nbhook.c counts
        self._nat: Any = None              # the native library (emu/native), if any
        self._counts = (ctypes.c_uint32 * 2)()

    def install(self) -> bool:
        """Take the signals over; False when that is impossible here (not the
        main thread, e.g. an embedding program's worker)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        nat = getattr(self.k.platform, "native", None)
        for hs in FORWARDED:
            self._old[hs] = signal.signal(hs, self._on_signal)
            if nat is not None and nat.lib.nb_sigorigin_wrap(hs) == 0:
                self._counted.add(hs)
        self._nat = nat
        self._old_wakeup = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="nbemu-hostsig", daemon=True)
        self._thread.start()
        self.k.clock.host_sleep = self.sleep
        return True

    def uninstall(self) -> None:
        if self._r < 0:
            return
        signal.set_wakeup_fd(self._old_wakeup)
        for hs, old in self._old.items():
            signal.signal(hs, old)
        self._closing = True
        os.close(self._w)              # ends the watchdog's read
        if self._thread is not None:
            self._thread.join(timeout=1)
        os.close(self._r)
        self._r = self._w = -1

    # -- main thread ---------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.replay:
            # A replay's signals come from its log; one sent now would diverge
            # it. Fatal ones end the replay, the others are ignored.
            if signum in _FATAL:
                import sys
                sys.stdout.flush()
                os.write(2, f"nbemu: replay interrupted by {signal.Signals(signum).name}\n"
                         .encode())
                os._exit(128 + signum)
            return
        if signum in _FATAL:
            self.handled += 1
        sig = FORWARDED[signum]
        if sig in self._unposted:
            self._unposted.remove(sig)
        for by_process in self._senders(signum):
            self.k.host_signal(sig, by_process)

    def _senders(self, signum: int) -> tuple[bool, ...]:
        """Who sent the arrivals of signum this handler call stands for, as
        by_process flags: the terminal (False), a host process (True), both, or
        none when an earlier call took them (Python makes one call of arrivals
        close together). Uncounted (no native library): the terminal."""
        if signum not in self._counted:
            return (False,)
        c = self._counts
        self._nat.lib.nb_sigorigin_take(signum, c)
        return tuple(by for by, n in ((False, c[0]), (True, c[1])) if n)

    def sleep(self, seconds: float) -> None:
        """Clock.wait_until's host sleep, cut short by a signal."""
        if self.wake.wait(seconds):
            self.wake.clear()

    # -- watchdog thread -----------------------------------------------------------------
    def _watch(self) -> None:
        import select
        while True:
            try:
                # A signal the main thread has not posted yet: end the turn again
                # (it may have started just after the last try).
                # (A replay posts the logged signals itself: its turns are never cut.)
                wait = None if self.replay or not (self.k.hostsig_check or self._unposted) \
                    else _RETRY_S
                if not select.select([self._r], [], [], wait)[0]:
                    if not self._closing:
                        self._interrupt()
                    continue
                data = os.read(self._r, 64)
            except (OSError, ValueError):
                return
            if not data or self._closing:
                return
            self.wake.set()
            for signum in data:
                if signum in FORWARDED and not self.replay:
                    self._unposted.append(FORWARDED[signum])
                    self._interrupt()
                if signum not in _FATAL:
                    continue
                now = time.monotonic()
                self.arrived += 1
                unhandled = self.arrived - self.handled
                if unhandled <= 1:
                    self._first_unhandled_at = now
                elif now - self._first_unhandled_at >= FORCE_QUIT_AFTER_S:
                    self._force_quit(signum)

    def _interrupt(self) -> None:
        """Make the engine return (watchdog thread), so that the main thread's
        handler queues the signals and the run loop posts them."""
        if self.replay:
            return          # a replay ends its turns where the log says, nowhere else
        m = self.k.platform
        nat = getattr(m, "native", None)
        if nat is None or not getattr(m, "in_emu", False):
            return          # between turns: the handler runs before the next one
        nat.np_kick.value = 1                  # (nb_run: no native park switch after this stop)
        if m._hook_installed:
            nat.preempt.value = 1              # the block hook stops at the next block
            return
        if m.engine_counts:
            uclib.uc_emu_stop(m.uch)           # --deterministic, patched: as the hook would
            return
        if m._async_stop and (m.catches_host_signal or nat.armed.value):
            # where the block hook would be installed on PyPI's engine: a
            # handler may take it, or other LWPs wait; exact on this engine
            uclib.uc_emu_stop(m.uch)
            return
        sigs = self._unposted + [sig for sig, _ in self.k.host_sigs]
        if any(self._kills(m, s) for s in sigs):
            uclib.uc_emu_stop(m.uch)

    def _kills(self, m: Any, sig: int) -> bool:
        """Whether sig ends the process as soon as it is posted: its default
        action kills and the LWP on the engine does not block it."""
        from nbemu.syscalls.kern_sig import SIG_DFL, bit, mask_of
        from nbemu.syscalls.signals import SIGPROP, SigProp
        p = self.k.proc
        l = getattr(m, "curlwp", None)
        if p is None or l is None:
            return False
        act = p.p_sigacts.get(sig)
        return ((act is None or act[0] == SIG_DFL) and bool(SIGPROP[sig] & SigProp.SA_KILL)
                and not mask_of(l.l_sigmask) & bit(sig))

    @staticmethod
    def _force_quit(signum: int) -> None:
        msg = (f"nbemu: {signal.Signals(signum).name} again before the guest could take the "
               f"first one (it runs without system calls): quitting\n")
        try:
            os.write(2, msg.encode())
        finally:
            os._exit(128 + signum)
