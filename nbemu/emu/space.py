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

import bisect
from typing import Any

from unicorn import Uc

from nbemu.syscalls.host_mem import Arena, read_host


class Space:
    """The pmap(9) of one VmMap: mirrors guest mappings into its engine.

    Unicorn's cost per mem_map_ptr / mem_unmap grows with its number of
    regions (each rebuilds the whole memory view: measured ~0.6 ms per map at
    1,000 regions, 15 ms per map + unmap pair), and mem_unmap flushes the TLB
    page by page (~0.22 us per page of the region: 58 ms for 1 GiB). So the
    engine holds few regions: a mapping whose host memory continues a
    neighbouring region's, with the same protection, joins it (uvm_map.py
    allocates guest-adjacent memory host-adjacent). A merge unmaps the
    neighbours (their pages are flushed), so regions merge as the digits of a
    counter in base FANOUT: FANOUT regions of one size tier become one of the
    next, and each page is flushed once per tier (a 1 MiB mmap: ~2 times);
    regions grow up to 1/FANOUT of all that is mapped (MERGE_MIN at least,
    MERGE_CAP at most), so the engine holds O(FANOUT x tiers) regions up to
    4 GiB mapped, then one more per MERGE_CAP (mappings larger than that stay
    regions of their own: merging 1 GiB mmaps flushed 58 ms per GiB each
    time). The price: unmapping part of a merged region flushes all of it.
    Executable regions never merge (unmapping one drops its translated
    code). Removing or re-protecting part of a region unmaps it and maps the
    rest back (what Unicorn's own split does): holes and PROT_NONE pages fault
    exactly as before.

    PROT_NONE pages are not in the engine at all (an access faults the same
    way, and the fault path names it SEGV_ACCERR from the VM map): Go
    reserves 512 MiB arenas PROT_NONE and maps pieces of them read-write with
    MAP_FIXED; held as engine regions, each piece split a reservation, whose
    mem_unmap flushed all of it (11 ms per 512 MiB, ~30 ms of every Go
    program's start). Out of the engine, a piece is one small mem_map."""

    __slots__ = ("uc", "uch", "hook_installed", "pyblock_hook", "scratch_ctx", "users",
                 "_rs", "_rg", "_mapped", "arena", "_stale", "_code", "_tb_stale",
                 "_ns", "_ng")

    FANOUT = 16                  # regions of one size tier that merge into one
    TIER_BITS = 4                # tiers: 1-15 pages, 16-255, 256-4095, ...
    MERGE_MIN = 64 << 20         # bytes: regions grow to this, or 1/FANOUT of all mapped,
    MERGE_CAP = 256 << 20        # but never beyond this (a merge flushes ~14 ms then)

    def __init__(self, uc: Uc) -> None:
        self.uc = uc
        self.uch: Any = uc._uch
        self.hook_installed = False     # the preemption block hook (machine.py)
        self.pyblock_hook: Any = None
        self.scratch_ctx: Any = None    # with_live_regs' parking context
        self.users = 1                  # VmMaps sharing it (vfork shares the parent's)
        self._rs: list[int] = []        # region starts, sorted
        self._rg: list[list[int]] = []  # [start, end, prot, host address] per region
        self._mapped = 0                # bytes in all regions
        self.arena = Arena()            # host memory of its address spaces (host_mem.py)
        self._stale: dict[int, list[int]] = {}  # parked regions, by start
        self._code: dict[int, bytes] = {}       # parked executable regions' bytes
        self._tb_stale = False                  # translated code may be out of date
        self._ns: list[int] = []                # PROT_NONE ranges' starts, sorted
        self._ng: list[list[int]] = []          # [start, end, host address] per range

    def regions(self) -> list[tuple[int, ...]]:
        """The engine's regions as (start, end, prot, host address)."""
        return [tuple(r) for r in self._rg]

    def none_ranges(self) -> list[tuple[int, ...]]:
        """The PROT_NONE ranges kept out of the engine, as (start, end, host address)."""
        return [tuple(r) for r in self._ng]

    # -- PROT_NONE ranges (no engine state) --------------------------------------------
    def _none_add(self, start: int, end: int, host: int) -> None:
        i = bisect.bisect_left(self._ns, start)
        self._ns.insert(i, start)
        self._ng.insert(i, [start, end, host])

    def _none_take(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """Remove [start, end) from the PROT_NONE ranges (their outer parts
        stay); the pieces removed, as (start, end, host address)."""
        ns, ng = self._ns, self._ng
        i = bisect.bisect_right(ns, start) - 1
        if i < 0 or ng[i][1] <= start:
            i += 1
        taken = []
        while i < len(ng) and ng[i][0] < end:
            s, e, host = ng.pop(i)
            del ns[i]
            lo, hi = max(s, start), min(e, end)
            taken.append((lo, hi, host + (lo - s)))
            if s < start:
                ns.insert(i, s)
                ng.insert(i, [s, start, host])
                i += 1
            if e > end:
                ns.insert(i, end)
                ng.insert(i, [end, e, host + (end - s)])
                i += 1
        return taken

    # -- the region table and the engine ---------------------------------------------
    def _add(self, start: int, end: int, prot: int, host: int) -> int:
        self.uc.mem_map_ptr(start, end - start, prot, host)
        self._mapped += end - start
        i = bisect.bisect_left(self._rs, start)
        self._rs.insert(i, start)
        self._rg.insert(i, [start, end, prot, host])
        return i

    def _drop(self, i: int) -> list[int]:
        r = self._rg.pop(i)
        del self._rs[i]
        self.uc.mem_unmap(r[0], r[1] - r[0])
        self._mapped -= r[1] - r[0]
        return r

    def _overlapping(self, start: int, end: int) -> tuple[int, int]:
        """Indices [i, j) of the regions that overlap [start, end)."""
        i = bisect.bisect_right(self._rs, start) - 1
        if i < 0 or self._rg[i][1] <= start:
            i += 1
        return i, bisect.bisect_left(self._rs, end)

    def _tier(self, size: int) -> int:
        return ((size >> 12).bit_length() - 1) // self.TIER_BITS

    def _chain(self, lo: int, hi: int, start: int, end: int, prot: int,
               host: int) -> tuple[int, int, int]:
        """The neighbours that [start, end) at host may join, when the regions
        below it end at index lo and those above start at index hi: how many
        below, how many above (consecutive, same protection, host memory
        continuing, the same size tier, not full -- half of _merge_max -- and
        not beyond it together), and their bytes."""
        t, nb, na, size = self._tier(end - start), 0, 0, 0
        rg, s, h = self._rg, start, host
        full = self._merge_max()
        room = full - (end - start)
        while lo - nb >= 0 and nb + na < self.FANOUT - 1:
            r = rg[lo - nb]
            n = r[1] - r[0]
            if r[1] != s or r[2] != prot or r[3] + n != h or self._tier(n) != t \
                    or size + n > room or 2 * n >= full:
                break
            s, h, size, nb = r[0], r[3], size + n, nb + 1
        e, h = end, host + (end - start)
        while hi + na < len(rg) and nb + na < self.FANOUT - 1:
            r = rg[hi + na]
            n = r[1] - r[0]
            if r[0] != e or r[2] != prot or r[3] != h or self._tier(n) != t \
                    or size + n > room or 2 * n >= full:
                break
            e, h, size, na = r[1], h + n, size + n, na + 1
        return nb, na, size

    def _merge_max(self) -> int:
        return min(max(self.MERGE_MIN, self._mapped // self.FANOUT), self.MERGE_CAP)

    def _merges(self, nb: int, na: int, size: int, m: int) -> bool:
        """Join FANOUT - 1 neighbours, or fewer when the result is half as
        large as a region may be (the top tier fills up by halves)."""
        return nb + na >= self.FANOUT - 1 or (
            nb + na > 0 and 2 * (size + m) > self._merge_max())

    def _absorb(self, i: int, start: int, end: int, prot: int, host: int) -> int:
        """Map [start, end) at insertion index i -- joined with its neighbours
        when FANOUT - 1 of them of its size tier are there (they are unmapped
        first); its index."""
        if not prot & 4:
            while True:
                nb, na, size = self._chain(i - 1, i, start, end, prot, host)
                if not self._merges(nb, na, size, end - start):
                    break
                for _ in range(na):
                    end = self._drop(i)[1]
                for _ in range(nb):
                    start, _, _, host = self._drop(i - 1)
                    i -= 1
        return self._add(start, end, prot, host)

    # -- pmap(9) -------------------------------------------------------------------------
    def pmap_enter(self, va: int, size: int, prot: int, host_addr: int) -> None:
        """Map [va, va+size) (nothing mapped there) to host memory at host_addr."""
        prot &= 7
        i = bisect.bisect_left(self._rs, va)
        if self._stale:
            r = self._stale.pop(va, None)
            if r is not None and r[1] == va + size and r[2] == prot and r[3] == host_addr:
                self._rs.insert(i, va)              # the engine has it already
                self._rg.insert(i, r)
                self._mapped += size
                if prot & 4 and read_host(host_addr, size) != self._code.get(va):
                    self._tb_stale = True           # other code at the same place
                return
            if r is not None:
                self._stale[va] = r
            for s in [s for s, r in self._stale.items() if s < va + size and r[1] > va]:
                r = self._stale.pop(s)
                self.uc.mem_unmap(r[0], r[1] - r[0])
        if not prot:
            self._none_add(va, va + size, host_addr)
            return
        self._absorb(i, va, va + size, prot, host_addr)

    def pmap_park(self) -> bool:
        """The address space ended with its pages (uvm_map.release_all): keep
        its regions in the engine for the next one, whose mappings are likely
        the same (the next child forked by the same parent) and cost nothing
        then -- mem_unmap flushes every page of a region.  True: kept."""
        for r in self._rg:
            self._stale[r[0]] = r
            if r[2] & 4:                            # its translated code stays
                self._code[r[0]] = read_host(r[3], r[1] - r[0])
        self._rs.clear()
        self._rg.clear()
        self._ns.clear()
        self._ng.clear()
        self._mapped = 0
        return True

    def pmap_update(self) -> None:
        """A new address space is in place (pmap_update(9)): the parked regions
        it did not take are unmapped, so their addresses fault (mem_unmap drops
        their translated code). Code translated in a region taken over is
        kept when its bytes are the same (a forked child of the same program:
        a TB flush costs ~0.15 ms, and the code is translated again after it);
        otherwise every translation goes."""
        for r in self._stale.values():
            self.uc.mem_unmap(r[0], r[1] - r[0])
        self._stale.clear()
        self._code.clear()
        if self._tb_stale:
            self.uc.ctl_flush_tb()
            self._tb_stale = False

    def pmap_remove(self, va: int, size: int) -> None:
        """Unmap [va, va+size): a region partly inside keeps its outer parts."""
        end = va + size
        if self._ng:
            self._none_take(va, end)
        i, j = self._overlapping(va, end)
        for _ in range(j - i):      # (only the last one can leave a part above end)
            i = self._split(i, va, end, inner=False)[3]

    def _split(self, i: int, va: int, end: int, inner: bool = True
               ) -> tuple[int, int, int, int]:
        """Cut region i at va and end: its parts outside [va, end) become regions
        of their own (same protection); the part inside, (start, end, host
        address), is mapped alone at the index returned (inner), or not at all."""
        s, e, prot, host = self._drop(i)
        if s < va:
            self._add(s, va, prot, host)
            i += 1
        if e > end:
            self._add(end, e, prot, host + (end - s))
        lo, hi = max(s, va), min(e, end)
        if inner:
            self._add(lo, hi, prot, host + (lo - s))
        return lo, hi, host + (lo - s), i

    def pmap_protect(self, va: int, size: int, prot: int) -> None:
        """Change the protection of [va, va+size) (every page of it mapped)."""
        prot &= 7
        end = va + size
        i = self._overlapping(va, end)[0]
        while i < len(self._rg) and self._rg[i][0] < end:
            s, e, old, host = self._rg[i]
            if old != prot and not prot:            # out of the engine
                lo, hi, h, i = self._split(i, va, end, inner=False)
                self._none_add(lo, hi, h)
                continue
            if old != prot:
                if s < va or e > end:               # the outer parts keep theirs
                    s, e, host, i = self._split(i, va, end)
                # the engine's own change on a whole region (no split): it also
                # ends the running block when the region loses EXEC
                self.uc.mem_protect(s, e - s, prot)
                self._rg[i][2] = prot
                if not prot & 4:
                    nb, na, size = self._chain(i - 1, i + 1, s, e, prot, host)
                    if self._merges(nb, na, size, e - s):
                        self._drop(i)
                        i = self._absorb(i, s, e, prot, host)
            i += 1
        if prot and self._ng:                        # PROT_NONE pages come in
            for lo, hi, host in self._none_take(va, end):
                self._absorb(bisect.bisect_left(self._rs, lo), lo, hi, prot, host)


def vmmap_new(abi: Any, sp: Space) -> Any:
    """An empty process address space of the port, mirrored into sp's engine."""
    from nbemu.syscalls.uvm_map import VmMap
    sp.pmap_update()                # (exec's image does not reuse the old one's regions)
    vm = VmMap(sp, abi.page_size, abi.page_size * 16, abi.vm_maxuser_address)
    vm.usrstack, vm.maxssiz, vm.dsiz_limit = abi.usrstack, abi.maxssiz, abi.dfldsiz
    return vm
