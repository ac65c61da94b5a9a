"""Batched register access to the live engine or to a saved context.

Reading registers one at a time through the Python binding costs 2-5 us each
(facts/unicorn-costs.md); a batch of 20 costs ~3 us. Each RegBatch preallocates
its ctypes arrays once and is reused on the hot path (the syscall trap).
"""
from __future__ import annotations

import ctypes
from typing import Sequence

from unicorn.unicorn_py3.unicorn import uclib


class RegBatch:
    """A fixed list of register ids read or written together."""

    __slots__ = ("ids", "n", "_ids", "_vals", "_ptrs", "view")

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = tuple(ids)
        self.n = len(self.ids)
        self._ids = (ctypes.c_int * self.n)(*self.ids)
        self._vals = (ctypes.c_uint64 * self.n)()
        self._ptrs = (ctypes.c_void_p * self.n)(
            *[ctypes.addressof(self._vals) + 8 * i for i in range(self.n)])
        # the staged values as bytes: a caller may pack them here, then flush_live
        self.view = memoryview(self._vals).cast("B")

    def read_live(self, uch: ctypes.c_void_p) -> list[int]:
        uclib.uc_reg_read_batch(uch, self._ids, self._ptrs, self.n)
        return self._vals[:]

    def write_live(self, uch: ctypes.c_void_p, vals: Sequence[int]) -> None:
        v = self._vals
        for i, x in enumerate(vals):
            v[i] = x & 0xFFFFFFFFFFFFFFFF
        uclib.uc_reg_write_batch(uch, self._ids, self._ptrs, self.n)

    def flush_live(self, uch: ctypes.c_void_p) -> None:
        """Write the values staged in self.view to the live engine."""
        uclib.uc_reg_write_batch(uch, self._ids, self._ptrs, self.n)

    def read_ctx(self, ctx: int) -> list[int]:
        """From a saved context (its host address: an LWP's l_md)."""
        uclib.uc_context_reg_read_batch(ctx, self._ids, self._ptrs, self.n)
        return self._vals[:]

    def write_ctx(self, ctx: int, vals: Sequence[int]) -> None:
        v = self._vals
        for i, x in enumerate(vals):
            v[i] = x & 0xFFFFFFFFFFFFFFFF
        uclib.uc_context_reg_write_batch(ctx, self._ids, self._ptrs, self.n)
