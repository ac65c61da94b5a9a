"""Batched register access to the live engine or to a saved context.

Reading registers one at a time through the Python binding costs 2-5 us each
(facts/unicorn-costs.md); a batch of 20 costs ~3 us. Each RegBatch preallocates
its ctypes arrays once and is reused on the hot path (the syscall trap).

The calls go through raw(): the binding's prototypes convert each argument
through its declared type (pointer types check the array's class), ~1.4 us a
call of the ~2.2 us; a raw pointer given prebuilt c_void_p arguments costs
~0.8 us. Values move between Python and the staged array as one memoryview
`tolist()` / struct pack, not element by element through ctypes.
"""
from __future__ import annotations

import ctypes
import struct
from typing import Callable, Sequence

from unicorn.unicorn_py3.unicorn import uclib


_M64 = 0xFFFFFFFFFFFFFFFF


def raw(name: str) -> Callable[..., int]:
    """uclib's function `name` with no argument conversion: callers pass
    ctypes objects only (c_void_p for pointers and handles, c_uint64 /
    c_size_t for 64-bit values) or small Python ints for `int` parameters.
    Returns the uc_err as an int."""
    f = uclib._FuncPtr((name, uclib))
    f.restype = ctypes.c_int
    return f


_read_batch = raw("uc_reg_read_batch")
_write_batch = raw("uc_reg_write_batch")
_ctx_read_batch = raw("uc_context_reg_read_batch")
_ctx_write_batch = raw("uc_context_reg_write_batch")
_c_void_p = ctypes.c_void_p


class RegBatch:
    """A fixed list of register ids read or written together."""

    __slots__ = ("ids", "n", "_ids", "_vals", "_ptrs", "view", "_cids", "_cptrs", "_q",
                 "_pack")

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = tuple(ids)
        self.n = len(self.ids)
        self._ids = (ctypes.c_int * self.n)(*self.ids)
        self._vals = (ctypes.c_uint64 * self.n)()
        self._ptrs = (ctypes.c_void_p * self.n)(
            *[ctypes.addressof(self._vals) + 8 * i for i in range(self.n)])
        # the staged values as bytes: a caller may pack them here, then flush_live
        self.view = memoryview(self._vals).cast("B")
        self._q = self.view.cast("Q")              # the staged values as ints
        self._pack = struct.Struct(f"<{self.n}Q").pack_into
        self._cids = _c_void_p(ctypes.addressof(self._ids))    # raw() arguments
        self._cptrs = _c_void_p(ctypes.addressof(self._ptrs))

    def _stage(self, vals: Sequence[int]) -> None:
        self._pack(self.view, 0, *[x & _M64 for x in vals])

    def read_live(self, uch: ctypes.c_void_p) -> list[int]:
        _read_batch(uch, self._cids, self._cptrs, self.n)
        return self._q.tolist()

    def write_live(self, uch: ctypes.c_void_p, vals: Sequence[int]) -> None:
        self._stage(vals)
        _write_batch(uch, self._cids, self._cptrs, self.n)

    def flush_live(self, uch: ctypes.c_void_p) -> None:
        """Write the values staged in self.view to the live engine."""
        _write_batch(uch, self._cids, self._cptrs, self.n)

    def read_ctx(self, ctx: int) -> list[int]:
        """From a saved context (its host address: an LWP's l_md)."""
        _ctx_read_batch(_c_void_p(ctx), self._cids, self._cptrs, self.n)
        return self._q.tolist()

    def write_ctx(self, ctx: int, vals: Sequence[int]) -> None:
        self._stage(vals)
        _ctx_write_batch(_c_void_p(ctx), self._cids, self._cptrs, self.n)
