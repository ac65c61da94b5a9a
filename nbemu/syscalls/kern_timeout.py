"""Callouts (NetBSD's kern_timeout.c): functions to run at a time on the
kernel's clock, kept in a heap; cancelled entries are dropped lazily."""
from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable


class Callout:
    __slots__ = ("when", "fn", "arg", "active")

    def __init__(self, when: int, fn: Callable[[Any], None], arg: Any) -> None:
        self.when = when
        self.fn = fn
        self.arg = arg
        self.active = True


class CalloutQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Callout]] = []
        self._seq = itertools.count()
        self.pending = 0

    def schedule(self, when_ns: int, fn: Callable[[Any], None], arg: Any) -> Callout:
        c = Callout(when_ns, fn, arg)
        heapq.heappush(self._heap, (when_ns, next(self._seq), c))
        self.pending += 1
        return c

    def stop(self, c: Callout | None) -> None:
        if c is not None and c.active:
            c.active = False
            self.pending -= 1

    def next_deadline(self) -> int | None:
        h = self._heap
        while h and not h[0][2].active:
            heapq.heappop(h)
        return h[0][0] if h else None

    def run_due(self, now_ns: int) -> int:
        """Run every callout due at now_ns; how many ran."""
        n = 0
        h = self._heap
        while h and h[0][0] <= now_ns:
            _, _, c = heapq.heappop(h)
            if c.active:
                c.active = False
                self.pending -= 1
                c.fn(c.arg)
                n += 1
        return n
