"""The preemption point is exact: a guest loop of read-modify-write memory
instructions, cut thousands of times by the native block hook (ticker thread
and block budget), leaves memory and register counters in perfect agreement.

Background (facts/unicorn-costs.md, re-measured here while designing): on
PyPI's Unicorn an asynchronous uc_emu_stop() from another thread can abandon a
translated block inside a memory helper and resume at an earlier instruction,
so `add [mem], 1` runs twice; there nbemu stops only from the block hook. On
nbemu's patched engine no helper leaves a block for a stop request (no memory
hooks), so the ticker's asynchronous stop (nb_async_uc) is exact too.
"""
from __future__ import annotations

import ctypes
import struct

import pytest
from unicorn import UC_ARCH_X86, UC_HOOK_BLOCK, UC_MODE_64, Uc
from unicorn import x86_const as X
from unicorn.unicorn_py3.unicorn import uclib

from nbemu.emu import native

# loop: add qword [rbx],1; mov rax,[rbx+8]; add rax,3; mov [rbx+8],rax;
#       add qword [rbx+16],1; inc rcx; cmp rcx,r8; jne loop; nop
CODE = bytes.fromhex("48830301488b43084883c003488943084883431001" "48ffc14c39c175e390")
BASE, DATA = 0x400000, 0x600000


def _engine(n: int) -> Uc:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(BASE, 0x1000)
    uc.mem_write(BASE, CODE)
    uc.mem_map(DATA, 0x1000)
    uc.reg_write(X.UC_X86_REG_RBX, DATA)
    uc.reg_write(X.UC_X86_REG_R8, n)
    return uc


def _run_cut(uc: Uc, nat, mode: str) -> int:
    nat.lib.nb_set_stop(ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p))
    nat.engine_counts.value = 0          # the hook counts (a --deterministic machine's flag)
    h = ctypes.c_size_t()
    assert uclib.uc_hook_add(uc._uch, ctypes.byref(h), UC_HOOK_BLOCK, nat.block_hook, None,
                             ctypes.c_uint64(1), ctypes.c_uint64(0)) == 0
    end = BASE + len(CODE) - 1
    pc, slices = BASE, 0
    if mode == "ticker":
        nat.lib.nb_start_ticker(100_000)     # 0.1 ms
        nat.armed.value = 1
    while pc != end:
        if mode == "budget":
            nat.budget.value = 997
        uc.emu_start(pc, end)
        slices += 1
        pc = uc.reg_read(X.UC_X86_REG_RIP)
    nat.armed.value = 0
    nat.budget.value = 0
    if mode == "ticker":
        nat.lib.nb_stop_ticker()
    return slices


@pytest.mark.parametrize("mode", ["budget", "ticker"])
def test_native_hook_cuts_exactly(mode: str) -> None:
    nat = native.load()
    if nat is None:
        pytest.skip("no C compiler: native hook unavailable")
    n = 300_000 if mode == "budget" else 3_000_000
    uc = _engine(n)
    slices = _run_cut(uc, nat, mode)
    a, b, c = struct.unpack("<3Q", uc.mem_read(DATA, 24))
    rcx = uc.reg_read(X.UC_X86_REG_RCX)
    assert slices > 100, "the loop was not cut often enough to prove anything"
    assert (a, b, c, rcx) == (n, 3 * n, n, n)


def test_async_stop_is_exact_on_the_patched_engine() -> None:
    """The fast mode's preemption without a block hook (Machine._async_stop):
    the ticker thread calls uc_emu_stop() on the running engine."""
    from nbemu.emu.native.engine_lib import patched
    nat = native.load()
    if nat is None:
        pytest.skip("no C compiler: native hook unavailable")
    if not patched():
        pytest.skip("PyPI's Unicorn: nbemu preempts through the block hook there")
    n = 3_000_000
    uc = _engine(n)
    stops0 = nat.async_stops.value
    nat.lib.nb_set_stop(ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p))
    end = BASE + len(CODE) - 1
    pc, slices = BASE, 0
    nat.lib.nb_start_ticker(100_000)
    try:
        while pc != end:                 # each turn armed as Machine._run_slice does
            nat.async_uc.value = uc._uch.value
            nat.armed.value = 1
            uc.emu_start(pc, end)
            slices += 1
            pc = uc.reg_read(X.UC_X86_REG_RIP)
    finally:
        nat.armed.value = 0
        nat.async_uc.value = None
        nat.lib.nb_stop_ticker()
    a, b, c = struct.unpack("<3Q", uc.mem_read(DATA, 24))
    assert nat.async_stops.value - stops0 > 100 and slices > 100, "too few cuts to prove anything"
    assert (a, b, c, uc.reg_read(X.UC_X86_REG_RCX)) == (n, 3 * n, n, n)
