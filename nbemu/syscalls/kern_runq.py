"""Per-CPU run queues (NetBSD's kern_runq.c): schedstate, sched_enqueue,
sched_dequeue, sched_takecpu (placement), sched_nextlwp with work stealing. (Switching itself is kern_synch.py's.)

Each vCPU has its own queues by priority. An LWP made runnable goes to the
CPU sched_takecpu picks: its last CPU if that one is idle, else an idle CPU,
else the least loaded. An idle CPU steals from the most loaded one, as
sched_idle()/sched_catchlwp() do, which migrates the LWP.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable

from .lwp import LSRUN, Lwp

if TYPE_CHECKING:
    from .kernel import Kernel

PRI_USER = 0          # nbemu runs every user LWP at one priority for now
NPRI = 1


class CpuInfo:
    """struct cpu_info + struct schedstate_percpu, reduced."""

    def __init__(self, index: int) -> None:
        self.ci_index = index
        self.ci_curlwp: Lwp | None = None
        self.spc_queue: list[deque[Lwp]] = [deque() for _ in range(NPRI)]
        self.spc_count = 0
        self.ci_nswitch = 0
        self.ci_idle_ns = 0

    def has_work(self) -> bool:
        return self.ci_curlwp is not None or self.spc_count > 0

    def load(self) -> int:
        return self.spc_count + (self.ci_curlwp is not None)

    def __repr__(self) -> str:
        return f"<cpu{self.ci_index} cur={self.ci_curlwp} q={self.spc_count}>"


class RunQueues:
    def __init__(self, k: "Kernel", ncpu: int, choose: Callable[[list], object]) -> None:
        self.k = k
        self.cpus = [CpuInfo(i) for i in range(ncpu)]
        self._choose = choose    # tie-break among equal candidates (seeded in --deterministic)

    # -- enqueue / dequeue ---------------------------------------------------
    def sched_enqueue(self, l: Lwp, ci: CpuInfo | None = None) -> None:
        assert l.l_stat == LSRUN, l
        if ci is None:
            ci = self.sched_takecpu(l)
        l.l_cpu = ci
        ci.spc_queue[l.l_priority].append(l)
        ci.spc_count += 1
        if self.k.listeners:
            self.k.event("enqueue", l, cpu=ci.ci_index)

    def sched_dequeue(self, l: Lwp) -> None:
        ci = l.l_cpu
        assert ci is not None
        ci.spc_queue[l.l_priority].remove(l)
        ci.spc_count -= 1

    def sched_takecpu(self, l: Lwp) -> CpuInfo:
        """Where a newly runnable LWP should run (kern_runq.c sched_takecpu)."""
        last = l.l_cpu
        if last is not None and last.ci_curlwp is None and not last.spc_count:
            return last                 # (not last.has_work(), inline: every wakeup)
        idle = [ci for ci in self.cpus if ci.ci_curlwp is None and not ci.spc_count]
        if idle:
            return idle[0] if len(idle) == 1 else self._choose(idle)  # type: ignore[return-value]
        least = min(ci.load() for ci in self.cpus)
        cands = [ci for ci in self.cpus if ci.load() == least]
        if last is not None and last in cands:
            return last
        return cands[0] if len(cands) == 1 else self._choose(cands)  # type: ignore[return-value]

    def sched_nextlwp(self, ci: CpuInfo) -> Lwp | None:
        """The next LWP for ci: its own queue first, else steal (sched_catchlwp)."""
        for q in ci.spc_queue:
            if q:
                ci.spc_count -= 1
                return q.popleft()
        victim = max(self.cpus, key=lambda c: c.spc_count)
        if victim.spc_count > 0:
            for q in victim.spc_queue:
                if q:
                    l = q.pop()            # take the most recently queued: it is coldest
                    victim.spc_count -= 1
                    self.k.event("migrate", l, cpu=ci.ci_index, src=victim.ci_index)
                    return l
        return None

    def cpus_with_work(self) -> list[CpuInfo]:
        return [ci for ci in self.cpus if ci.has_work()]
