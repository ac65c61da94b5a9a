"""The kernel's clock (NetBSD's timecounter, kern_tc.c), in one of two modes.

- host: CLOCK_MONOTONIC and CLOCK_REALTIME read the host's clocks.
- virtual (--deterministic): time advances only with guest work (translated
  blocks executed, system calls served) and jumps forward when every LWP is
  asleep, so that timeouts fire at the same point of every run whatever the
  host's speed.
"""
from __future__ import annotations

import time
from typing import Callable

BLOCK_NS = 20           # virtual nanoseconds per executed translated block
SYSCALL_NS = 500        # virtual nanoseconds per system call
VIRTUAL_EPOCH_NS = 1_767_225_600 * 10**9   # 2026-01-01T00:00:00Z: realtime origin
# hz, NetBSD's clock interrupt rate on every port nbemu emulates: the granularity
# timers are rounded up to (itimerfix, itimespecfix, kevent timers, poll timeouts).
HZ = 100
TICK_NS = 10**9 // HZ
MONOTONIC_AT_BOOT_NS = 10**9     # CLOCK_MONOTONIC when the guest starts (its uptime origin)
TICK_US = TICK_NS // 1000


class Clock:
    # CPU time counts guest work where a run must repeat: record/replay's clocks
    # set this (their monotonic readings come from a log; the work does not).
    cpu_by_work = False

    def __init__(self, virtual: bool, work_blocks: Callable[[], int]) -> None:
        self.virtual = virtual
        self._blocks = work_blocks
        self.syscalls = 0
        self._skew = 0                      # idle time jumped over (virtual)
        self._mono0 = time.monotonic_ns()
        self._boot_real = time.time_ns() - 0
        self.boottime_ns = VIRTUAL_EPOCH_NS if virtual else time.time_ns()
        # How an idle wait sleeps on the host: emu/hostsig.py swaps in a sleep
        # that a signal to nbemu cuts short.
        self.host_sleep: Callable[[float], None] = time.sleep

    def monotonic_ns(self) -> int:
        if self.virtual:
            return (MONOTONIC_AT_BOOT_NS + self._blocks() * BLOCK_NS
                    + self.syscalls * SYSCALL_NS + self._skew)
        return time.monotonic_ns() - self._mono0 + MONOTONIC_AT_BOOT_NS

    def host_monotonic_offset_ns(self) -> int:
        """What monotonic_ns() adds to the host's CLOCK_MONOTONIC (host mode)."""
        return MONOTONIC_AT_BOOT_NS - self._mono0

    def cpu_ns(self) -> int:
        """The count LWPs' CPU time is charged from (kern_resource.lwp_startrun /
        updatertime): guest work -- translated blocks and system calls, as the
        virtual clock counts them -- under --deterministic and record/replay,
        so that the same run reads the same CPU times; host time otherwise.
        Never logged. Idle time is not work: the virtual clock's jumps are left
        out. Under record/replay the block hook is installed only while LWPs
        compete for a vCPU (installing it for good costs the recorded CPU loop
        ~2x): a turn run without it counts its system calls only."""
        if self.virtual or self.cpu_by_work:
            return self._blocks() * BLOCK_NS + self.syscalls * SYSCALL_NS
        return time.monotonic_ns()

    def realtime_ns(self) -> int:
        if self.virtual:
            return self.boottime_ns + self.monotonic_ns()
        return time.time_ns()

    def uptime_ns(self) -> int:
        return self.monotonic_ns()

    def stamp_ns(self) -> int:
        """CLOCK_MONOTONIC for traces and timelines: an observation of the run,
        not an input of the guest, so record/replay does not log it."""
        return self.monotonic_ns()

    def wait_until(self, deadline_ns: int) -> None:
        """Nothing to run before deadline_ns: sleep (host) or jump (virtual)."""
        now = self.monotonic_ns()
        if deadline_ns <= now:
            return
        if self.virtual:
            self._skew += deadline_ns - now
        else:
            self.host_sleep((deadline_ns - now) / 1e9)
