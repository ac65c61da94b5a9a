"""The u-area (issue 14): every LWP owns a USPACE slot of real host memory in a
bounded kernel arena (syscalls/kern_lwp.py UareaArena); its saved user context
lives there while it is off its CPU (emu/machine.py uarea_save / uarea_load), in
the port's layout (Abi.uarea_regs), where the debugger reads it
(emu/gdb_regs.py). `-m SIZE` sets the guest's RAM: hw.physmem64, and the arena
(half of it) whose exhaustion is _lwp_create's ENOMEM."""
from __future__ import annotations

import ctypes
import re

import pytest

from fixtures.build import build_c
from nbemu.guest.arch import aarch64, amd64, arm, i386
from nbemu.syscalls.kern_lwp import UAREA_CHUNK_SLOTS, UareaArena
from tests.guest import ARCHES, run_nbemu

PORTS = {"x86_64": amd64.ABI, "aarch64": aarch64.ABI, "x86": i386.ABI, "arm": arm.ABI}


# -- the arena ------------------------------------------------------------------------------
def test_arena_hands_out_distinct_writable_slots_and_reuses_freed_ones() -> None:
    a = UareaArena(size=(UAREA_CHUNK_SLOTS + 3) * 8192, usize=8192)
    slots = [a.alloc() for _ in range(UAREA_CHUNK_SLOTS + 3)]
    assert all(slots) and len(set(slots)) == len(slots)
    assert a.alloc() == 0                       # bounded: uvm_uarea_alloc fails
    assert a.used == a.size
    for i, s in enumerate(slots):               # real memory, a slot each
        ctypes.memset(s, i & 0xFF, 8192)
    assert all(ctypes.string_at(s, 8192) == bytes([i & 0xFF]) * 8192
               for i, s in enumerate(slots))
    a.free(slots[5])
    assert a.alloc() == slots[5]                # a freed slot comes back first
    assert a.alloc() == 0
    a.release()


# -- the saved context's layout -------------------------------------------------------------
@pytest.mark.parametrize("arch", list(PORTS))
def test_uarea_layout_is_where_the_engine_saves_each_register(arch: str) -> None:
    """Abi.uarea_regs: each listed register of a saved context sits at its offset."""
    from nbemu.emu.machine import Machine
    abi = PORTS[arch]
    m = Machine(abi)
    regs = dict(zip((n for n, _ in abi.report_regs), (r for _, r in abi.report_regs)))
    names = abi.gdb_reg_map()
    arena = UareaArena(size=abi.uspace, usize=abi.uspace)
    from nbemu.syscalls.lwp import Lwp, Proc
    l = Lwp(Proc(1, 1), 1)
    l.l_uarea = arena.alloc()
    checked = 0
    for i, (name, (off, size)) in enumerate(sorted(abi.uarea_regs.items())):
        uc_id = names[name][1] if name in names else regs[name]
        val = (0x5A00 + 0x10 * i) | (0x40 << 8 * (size - 1))   # even: an ARM PC
        m.uc.reg_write(uc_id, val)
        if l.l_md is None:
            m._pcb_init(l)
        m.uarea_save(l)
        raw = ctypes.string_at(l.l_uarea + off, size)
        assert int.from_bytes(raw, "little") == val, name
        checked += 1
    assert checked >= 9
    arena.release()


# -- ENOMEM from a real guest with a small RAM ----------------------------------------------
@pytest.mark.parametrize("arch", ARCHES)
def test_lwp_create_enomem_when_the_arena_runs_out(arch: str) -> None:
    abi = PORTS[arch]
    mem = 1 << 20
    r = run_nbemu(build_c("lwp_errno_enomem", arch), str(mem), opts=("-m", "1M"), timeout=300)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("PASS"), r.stdout + r.stderr
    created = int(re.search(r"^created (\d+)$", r.stdout, re.M).group(1))
    # half the RAM is the arena; main holds one u-area
    assert created == (mem // 2) // abi.uspace - 1
    assert f"uspace {abi.uspace}" in r.stdout


def test_memory_option_default_and_bad_sizes() -> None:
    prog = build_c("lwp_errno_enomem")
    r = run_nbemu(prog, str(8 << 30))           # the default: 8 GiB, nothing runs out
    assert r.returncode == 1 and "ok enomem/sysctl: hw.physmem64 is -m" in r.stdout
    assert "FAIL enomem/exhausted: not all of them" in r.stdout
    for bad in ("0", "12Q", "2T", "512K", "nan"):
        r = run_nbemu(prog, "1", opts=("-m", bad))
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and f"-m {bad}:" in r.stderr
