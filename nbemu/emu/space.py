"""One guest address space held by one Unicorn engine (the pmap of one process).

Why an engine per address space (measured, see docs in DESIGN.md "Processes"):
a Unicorn engine costs ~30 ms and ~3 MB of host RSS to create, while swapping
a whole memory map in and out of one engine costs a TB flush and one
mem_unmap/mem_map_ptr per region at every process switch. Processes switch far
more often than they are created, and engines are reused through a pool
(exit/exec give theirs back), so each process keeps an engine of its own and a
process switch is a register-context switch on another engine.

Only one LWP system-wide is ever loaded on an engine (emu/machine.py keeps that
invariant): every other LWP's registers are in its saved context (l_md), which
belongs to the engine of its process.
"""
from __future__ import annotations

from typing import Any

from unicorn import Uc


class Space:
    """The pmap(9) of one VmMap: mirrors guest mappings into its engine."""

    __slots__ = ("uc", "uch", "hook_installed", "pyblock_hook", "scratch_ctx", "users")


    def __init__(self, uc: Uc) -> None:
        self.uc = uc
        self.uch: Any = uc._uch
        self.hook_installed = False     # the preemption block hook (machine.py)
        self.pyblock_hook: Any = None
        self.scratch_ctx: Any = None    # with_live_regs' parking context
        self.users = 1                  # VmMaps sharing it (vfork shares the parent's)

    def pmap_enter(self, va: int, size: int, prot: int, host_addr: int) -> None:
        self.uc.mem_map_ptr(va, size, prot & 7, host_addr)

    def pmap_remove(self, va: int, size: int) -> None:
        self.uc.mem_unmap(va, size)

    def pmap_protect(self, va: int, size: int, prot: int) -> None:
        self.uc.mem_protect(va, size, prot & 7)


def vmmap_new(abi: Any, sp: Space) -> Any:
    """An empty process address space of the port, mirrored into sp's engine."""
    from nbemu.syscalls.uvm_map import VmMap
    vm = VmMap(sp, abi.page_size, abi.page_size * 16, abi.vm_maxuser_address)
    vm.usrstack, vm.maxssiz, vm.dsiz_limit = abi.usrstack, abi.maxssiz, abi.dfldsiz
    return vm
