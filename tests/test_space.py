"""The engine's regions (emu/space.py) against the VM map (uvm_map.py): after
any sequence of mmap, munmap, mprotect and fork, every page is mapped in the
engine exactly when the map has it, with its protection and its contents --
while guest-adjacent mappings share few engine regions (issue 16 item 8)."""
from __future__ import annotations

import random

import pytest
from unicorn import UC_ARCH_X86, UC_MODE_64, Uc

from nbemu.emu.space import Space
from nbemu.syscalls.uvm_map import VmMap, uvmspace_fork

PAGE = 4096
BASE = 0x7f0000000000


def _space() -> Space:
    return Space(Uc(UC_ARCH_X86, UC_MODE_64))


def _check(vm: VmMap, sp: Space) -> None:
    """Engine regions == Space's table; each page's protection and bytes == the
    map's; PROT_NONE pages are out of the engine, in Space's none ranges with
    the map's host memory."""
    engine = sorted((b, e + 1, p) for b, e, p in sp.uc.mem_regions())
    assert engine == [(s, e, p) for s, e, p, _h in sp.regions()]
    prot_at = {}
    for s, e, p in engine:
        for va in range(s, e, PAGE):
            prot_at[va] = p
    none_at = {}
    for s, e, h in sp.none_ranges():
        for va in range(s, e, PAGE):
            none_at[va] = h + (va - s)
    mapped, none = {}, {}
    for ent in vm.entries():
        for va in range(ent.start, ent.end, PAGE):
            if ent.prot:
                mapped[va] = ent.prot
            else:
                none[va] = ent.host + (va - ent.start)
    assert prot_at == mapped
    assert none_at == none
    from nbemu.syscalls.host_mem import read_host
    for ent in vm.entries():
        if ent.prot:
            n = ent.end - ent.start
            assert bytes(sp.uc.mem_read(ent.start, n)) == read_host(ent.host, n)


@pytest.mark.parametrize("seed", range(6))
def test_random_operations_keep_engine_and_map_equal(seed: int) -> None:
    rnd = random.Random(seed)
    sp = _space()
    vm = VmMap(sp, PAGE, 0x10000, 1 << 47)
    span = 256                                    # pages of guest address space in play
    spare = None                                  # an engine a child left (parked)
    for step in range(300):
        op = rnd.random()
        a = BASE + rnd.randrange(span) * PAGE
        n = rnd.randrange(1, 12) * PAGE
        end = min(a + n, BASE + span * PAGE)
        if op < 0.45:
            if vm.is_free(a, end):
                e = vm.map_anon(a, end - a, rnd.choice((0, 1, 3, 3, 3, 5)))
                vm.write_force(a, bytes([step & 0xFF]) * 8)     # contents must follow
        elif op < 0.65:
            vm.unmap(a, end)
        elif op < 0.9:
            if vm.covered(a, end):
                vm.protect(a, end, rnd.choice((0, 1, 3, 5)))
        else:
            csp = spare if spare is not None else _space()
            child = uvmspace_fork(vm, csp)        # a parked engine's regions are reused
            _check(child, csp)
            child.release_all()
            assert csp.regions() == [] and csp.none_ranges() == []
            spare = csp
        _check(vm, sp)
    vm.release_all()
    sp.pmap_update()
    assert sp.regions() == [] and list(sp.uc.mem_regions()) == []


def test_adjacent_mappings_share_regions() -> None:
    """10,000 one-page mappings, topdown as mmap places them: a handful of
    engine regions, not 10,000; unmapping one in the middle still makes a hole."""
    sp = _space()
    vm = VmMap(sp, PAGE, 0x10000, 1 << 47)
    top = BASE + 10000 * PAGE
    for i in range(10000):
        vm.map_anon(top - (i + 1) * PAGE, PAGE, 3)
    assert len(sp.regions()) < 40
    hole = top - 5000 * PAGE
    vm.unmap(hole, hole + PAGE)
    _check(vm, sp)
    assert not any(s <= hole < e for s, e, _p, _h in sp.regions())
