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


# -- the debugger reads a parked LWP's registers from its u-area ----------------------------
@pytest.mark.parametrize("arch", ARCHES)
def test_debugger_reads_a_parked_lwps_registers_from_its_uarea(arch: str) -> None:
    """gdb's register file (emu/gdb_regs.py, what 'g'/'p' answer) for an LWP parked
    in _lwp_park: its general registers are the bytes of its u-area at the port's
    offsets -- a byte changed there is what gdb sees, and what the engine would
    load (the same memory is the saved context); changed back, the run goes on."""
    from nbemu.emu.boot import Options, Session
    from nbemu.emu.gdb_regs import RegFile
    from nbemu.syscalls.lwp import LSSLEEP
    abi = PORTS[arch]
    s = Session(str(build_c("lwp_errno_enomem", arch)), [str(1 << 20)],
                Options(memory=1 << 20, deterministic=True))
    m, k = s.machine, s.kernel
    rf = RegFile(m)
    num = {r.name: r.num for r in rf.regs}
    done: list[str] = []

    def on_event(kind: str, l, data: dict) -> None:
        if kind != "create" or done:
            return
        parked = [t for t in k.proc.p_lwps.values()
                  if t.l_stat == LSSLEEP and t.l_wmesg == "parked" and t is not m.loaded]
        if len(parked) < 2:
            return
        t = parked[0]
        before = rf.read_all(t)
        # the same values as the engine's reader of the saved context
        pc, sp = m.regs_get(t, (abi.pc_reg, abi.sp_reg))
        pc_name = next(n for n, r in abi.report_regs if r == abi.pc_reg)
        assert int.from_bytes(before[num[pc_name]], "little") == pc
        assert sp != 0
        name = sorted(abi.uarea_regs)[0]
        off, n = abi.uarea_regs[name]
        assert before[num[name]] == ctypes.string_at(t.l_uarea + off, n)
        orig = ctypes.string_at(t.l_uarea + off, n)
        marker = bytes(range(0xA1, 0xA1 + n))
        ctypes.memmove(t.l_uarea + off, marker, n)
        try:
            after = rf.read_all(t)
            assert after[num[name]] == marker
            assert [a for i, a in enumerate(after) if i != num[name]] == \
                [b for i, b in enumerate(before) if i != num[name]]
            uc_id = abi.gdb_reg_map()[name][1]
            assert m.regs_get(t, (uc_id,))[0] == int.from_bytes(marker, "little")
        finally:
            ctypes.memmove(t.l_uarea + off, orig, n)
        assert rf.read_all(t) == before
        done.append(name)

    k.listeners.append(on_event)
    assert s.run() == 0
    assert done
