"""The emulated machine: one Unicorn engine whose register file is switched
between LWPs, N logical vCPUs interleaved on one host thread, and the run loop.

Why one host thread: two engines sharing memory in two host threads lose
`lock inc` / `lock xadd` updates (facts/unicorn-costs.md), which would break
every guest atomic. So each vCPU gets turns: the host runs the vCPU's current
LWP until it traps into the kernel and leaves its CPU, yields, or its slice
ends; then the next vCPU with work gets the engine.

How a slice ends exactly: a native block hook (emu/native/nbhook.c) calls
uc_emu_stop() at the start of a translated block when the ticker thread (fast
mode) or the block budget (deterministic mode) says so. On PyPI's Unicorn an
asynchronous uc_emu_stop() from another thread can abandon a block half-way
and re-run its first instructions (tests/test_preempt_exact.py shows both);
on nbemu's patched engine (native/engine_lib.py) it cannot: a block is left
early only at a fault or a hook, so there the fast mode's ticker (and the
host-signal watchdog) stop the engine asynchronously and no block hook is
needed (Machine._async_stop); under --deterministic it counts blocks and
ends the budget itself (Machine.engine_counts: uc_nb_count_blocks, inline at
every block's start). The block hook is installed only when needed: a
process with more than one runnable LWP or a pending timeout on PyPI's
engine, --deterministic there, --record/--replay without --deterministic,
or gdb (per-instruction stops, Ctrl-C).

System calls are served inside the `syscall` instruction hook; the engine
stops only when the kernel asks (the LWP slept, exited, yielded, or its whole
register file must change).
"""
from __future__ import annotations

import ctypes
import os
import struct
import sys
from typing import TYPE_CHECKING, Any, Sequence

from unicorn import (UC_MEM_FETCH_PROT, UC_MEM_FETCH_UNMAPPED, UC_MEM_READ_PROT,
                     UC_MEM_READ_UNMAPPED, UC_MEM_WRITE_PROT, UC_MEM_WRITE_UNMAPPED,
                     UC_HOOK_BLOCK, UC_HOOK_INSN, UC_HOOK_INTR, UC_HOOK_MEM_FETCH_PROT,
                     UC_HOOK_MEM_FETCH_UNMAPPED, UC_HOOK_MEM_READ_PROT,
                     UC_HOOK_MEM_READ_UNMAPPED, UC_HOOK_MEM_WRITE_PROT,
                     UC_HOOK_MEM_WRITE_UNMAPPED, UcError)
from unicorn.unicorn_py3.unicorn import uclib

from nbemu.guest.arch.base import Abi
from nbemu.syscalls.kern_resource import lwp_startrun, updatertime
from nbemu.syscalls.kern_tc import Clock
from nbemu.syscalls.lwp import LP_SSTEP, LP_STEPTRAP, LSONPROC, LW_USERRET, PSL_TRACED, Lwp
from nbemu.syscalls.table import code_of
from nbemu.syscalls.uvm_map import PROT_WRITE

from . import native
from .native import engine_lib
from .engine import new_engine
from .npark import NativePark
from .regs import RegBatch, raw
from .space import Space, vmmap_new

if TYPE_CHECKING:                # built by the boot code, reached through attach()
    from nbemu.syscalls.kernel import Kernel

_INSN_SYSCALL_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_INTR_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
_INTR_OTHER_CB = ctypes.CFUNCTYPE(None, ctypes.c_uint32)
_TRAP_CB = ctypes.CFUNCTYPE(None)

# The switch path's two calls (uarea_save, uarea_load) and the turn's
# uc_emu_start, without the binding's argument conversion (regs.raw): a hop
# between LWPs makes one of each.
_ctx_save, _ctx_restore = raw("uc_context_save"), raw("uc_context_restore")
_emu_start = raw("uc_emu_start")
_reg_read_batch, _ctx_reg_read_batch = raw("uc_reg_read_batch"), raw("uc_context_reg_read_batch")
_c_void_p, _c_uint64, _c_size_t = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t
_C_TIMEOUT0 = _c_uint64(0)                         # uc_emu_start's timeout: none
_C_COUNT = (_c_size_t(0), _c_size_t(1))            # its count: none, or one (PT_STEP)
_C_NP_NONE = _c_uint64(0)                           # nb_run's np_cur_cpu when np is off

# The calls after which the native clock_gettime fast path's window stays open
# (nbhook.c nb_fc_keep, at most 4).
FAST_CLOCK_KEEPS = tuple(code_of(n) for n in ("___lwp_park60", "_lwp_unpark", "_lwp_unpark_all"))

SLICE_NS = 1_000_000                 # fast mode: a vCPU's turn on the host thread (host time;
                                     # not the guest's hardclock tick, kern_tc.TICK_NS)

# The access kinds Unicorn passes to an invalid-access hook (UC_MEM_*).
_UNMAPPED = {UC_MEM_READ_UNMAPPED, UC_MEM_WRITE_UNMAPPED, UC_MEM_FETCH_UNMAPPED}
_MEM_ACCESS = {UC_MEM_READ_UNMAPPED: "read", UC_MEM_WRITE_UNMAPPED: "write",
               UC_MEM_FETCH_UNMAPPED: "exec", UC_MEM_READ_PROT: "read",
               UC_MEM_WRITE_PROT: "write", UC_MEM_FETCH_PROT: "exec"}


class GuestFault(Exception):
    def __init__(self, sig: int, code: int, addr: int, what: str) -> None:
        super().__init__(what)
        self.sig, self.code, self.addr, self.what = sig, code, addr, what


_OUT3 = struct.Struct("<3Q").pack_into
_M64 = 0xFFFFFFFFFFFFFFFF

class Machine:
    """Hardware for one NetBSD process: engine, pmap, vCPU turns."""

    def __init__(self, abi: Abi, deterministic: bool = False) -> None:
        self.abi = abi
        self.deterministic = deterministic
        self._never_pc = _c_uint64((1 << 8 * abi.word_size) - 1)   # uc_emu_start's `until`
        self.native = native.load()
        self.hook_wanted = False                # install the block hook at the next turn
        self.catches_host_signal = False        # a handler for a forwarded signal exists
        # async uc_emu_stop() is exact on this engine (see the module's docstring)
        self.async_exact = self.native is not None and engine_lib.patched()
        # --deterministic on the patched engine: the engine counts blocks and ends
        # the budget itself (uc_nb_count_blocks), with no block hook to call
        self.engine_counts = (deterministic and self.async_exact
                              and hasattr(uclib, "uc_nb_count_blocks"))
        self.loaded: Lwp | None = None          # whose registers the engine holds
        self.curlwp: Lwp | None = None          # the LWP executing this turn
        self.in_hook = False
        self.in_emu = False
        self.stop_requested = False
        self._pending_pc: int | None = None
        self._ctx_pc: dict[int, int] = {}      # id(Lwp) -> PC not yet in its context
        self._fault: tuple[int, int, int] | None = None
        self._intno: int | None = None
        self.internal_error: InternalError | None = None
        self.debugger = None                    # emu/gdbstub.GdbStub when -g is given
        self.last_exec: Any = None              # the last execve's ExecResult (guest/exec_elf.py)
        self.rr = None                          # emu/record.Recorder / Replayer (--record/--replay)
        self.on_child_crash = None              # (lwp, sig): a process other than the first dies
        self._batches: dict[tuple[int, ...], RegBatch] = {}
        self._vbatches: dict[Any, tuple] = {}   # vregs_raw's arrays, by register ids
        self._in = RegBatch(abi.syscall_in_regs)
        self._out = RegBatch(abi.syscall_out_regs)
        # PC (+ the instruction-set register where there is one: ARM's CPSR,
        # whose T bit the address given to uc_emu_start must carry).
        self._pc = RegBatch((abi.pc_reg,) + ((abi.insn_state_reg,)
                                             if abi.insn_state_reg is not None else ()))
        self._native_trap = False
        self.npark: NativePark | None = None    # the native park path (below)
        self._np_enabled = False                # for this run (run(): no tracer, debugger, ...)
        self._fc_sysno = -1                     # the native clock_gettime fast path's call
        self._space_pool: list[Space] = []      # engines of ended address spaces
        nat = self.native
        if nat is not None:
            self._trap_cb = _TRAP_CB(self._on_trap_native)
            nin = len(abi.syscall_in_regs)
            self._nin = nin
            self._nvals = nin + abi.trap_fetch_insn    # + the appended instruction word
            self._native_trap = True
            # syscall_return's values go to the library's nb_out_vals in one pack
            # (every port returns three registers: value, second value, flags).
            assert len(abi.syscall_out_regs) == 3, abi.syscall_out_regs
            self._out_view = memoryview(nat.out_vals).cast("B")
            self._out_valid = nat.out_valid
            # the trap's registers as ints in one call (not ctypes' per-item slice)
            self._in_view = memoryview(nat.in_vals).cast("B").cast("Q")[:self._nvals]
            if abi.trap_kind == "intr":
                self._intr_other_cb = _INTR_OTHER_CB(self._on_interrupt_other)
        elif abi.trap_kind == "intr":
            self._sys_cb = _INTR_CB(self._on_intr_raw)
        else:
            self._sys_cb = _INSN_SYSCALL_CB(self._on_syscall_raw)
        self._claim_native()
        if nat is not None:
            nat.lib.nb_set_stop(ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p))
            nat.lib.nb_set_run(*(ctypes.cast(f, ctypes.c_void_p) for f in (
                uclib.uc_reg_read, uclib.uc_emu_start, uclib.uc_context_save,
                uclib.uc_context_restore)))
            # nb_run's registers: the PC, and ARM's CPSR with its T bit
            self._nb_pc = (abi.pc_reg, -1 if abi.insn_state_reg is None else abi.insn_state_reg,
                           _c_uint64(abi.thumb_state_bit))
            nat.preempt.value = 0
            nat.armed.value = 0
            nat.budget.value = 0
            nat.stop_at.value = 0
            nat.blocks.value = 0               # (engine_counts: _claim_native)
            if not deterministic:
                nat.lib.nb_start_ticker(SLICE_NS)
        # the native park path (emu/npark.py): fast mode on the patched engine
        # of a port whose park arguments come in registers (NBEMU_NATIVE_PARK=0
        # in the environment turns it off)
        if nat is not None and self.async_exact and not deterministic \
                and abi.npark_trap is not None \
                and os.environ.get("NBEMU_NATIVE_PARK", "1") != "0":
            self.npark = NativePark(self)
        self.space = self.vmspace_new()
        self.uc = self.space.uc
        self.uch = self.space.uch
        self._ctx_template = self.uc.context_save()     # what _pcb_init copies
        assert self._ctx_template.size <= abi.uspace, "the saved context exceeds USPACE"
        self.kernel: Kernel = None  # type: ignore[assignment]   # attach(): boot.boot_machine

    def after_host_fork(self) -> None:
        """In the child of a host fork (emu/survivors.py): threads do not survive
        fork(2), so the preemption ticker starts again."""
        nat = self.native
        if nat is not None and not self.deterministic:
            nat.lib.nb_stop_ticker()
            nat.lib.nb_start_ticker(SLICE_NS)

    def attach(self, kernel: Kernel) -> None:
        """The kernel this machine runs (built by the boot code on this Platform)."""
        self.kernel = kernel

    # -- engines: one per address space (emu/space.py) -------------------------------
    def vmspace_new(self) -> Space:
        """A pmap for a new address space: an engine from the pool, or a new one
        with the trap, fault and (deterministic mode) preemption hooks."""
        if self._space_pool:
            sp = self._space_pool.pop()
            sp.users = 1                  # (no image's stale code runs: Space.pmap_update)
            return sp
        abi = self.abi
        uc = new_engine(abi)                    # emu/engine.py: engine set-up
        sp = Space(uc)
        h = ctypes.c_size_t()
        nat = self.native
        intr_trap = abi.trap_kind == "intr"
        if nat is not None:
            fn = nat.intr_hook if intr_trap else nat.syscall_hook
        else:
            fn = ctypes.cast(self._sys_cb, ctypes.c_void_p)
        if intr_trap:
            # Architectures whose system call is an exception (aarch64 `svc`): one
            # UC_HOOK_INTR serves system calls and, for other numbers, faults.
            err = uclib.uc_hook_add(sp.uch, ctypes.byref(h), UC_HOOK_INTR, fn, None,
                                    ctypes.c_uint64(1), ctypes.c_uint64(0))
        else:
            err = uclib.uc_hook_add(sp.uch, ctypes.byref(h), UC_HOOK_INSN, fn, None,
                                    ctypes.c_uint64(1), ctypes.c_uint64(0),
                                    ctypes.c_int(abi.uc_hook_syscall_insn))
        if err:
            raise UcError(err)
        uc.hook_add(UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED
                    | UC_HOOK_MEM_FETCH_UNMAPPED | UC_HOOK_MEM_READ_PROT
                    | UC_HOOK_MEM_WRITE_PROT | UC_HOOK_MEM_FETCH_PROT, self._on_bad_access)
        if not intr_trap:
            uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        if self.engine_counts:
            nat = self.native
            err = uclib.uc_nb_count_blocks(sp.uch, ctypes.byref(nat.blocks),
                                           ctypes.byref(nat.stop_at))
            if err:
                raise UcError(err)
        elif self.deterministic:
            self._install_block_hook(sp)
        return sp

    def vmspace_free(self, sp: Space) -> None:
        """An address space ended (exit, exec): its mappings are gone (uvm_map
        removed them); the engine goes back to the pool -- the live one once
        another engine takes over (_switch_space)."""
        sp.users -= 1
        if sp.users == 0 and sp is not self.space:
            self._space_pool.append(sp)

    def exec_check(self, host_path: str) -> object | int:
        """exec's check of an image (guest/'s loader): the parsed ELF, or
        ENOEXEC (not an ELF program of this machine), ENOENT, EACCES."""
        from nbemu.guest.elf import ElfError
        from nbemu.guest.exec_elf import read_program
        from nbemu.syscalls.errno import Errno
        try:
            img, abi = read_program(host_path)
        except ElfError as e:
            return Errno.ENOENT if e.code == 127 else Errno.ENOEXEC
        if abi.name != self.abi.name:
            return Errno.ENOEXEC
        return img

    def exec_image(self, l: Lwp, img: object, argv: list[bytes], envp: list[bytes],
                   execname: bytes) -> None:
        """Replace l's process image (run-loop context, l loaded): the old
        address space goes (a vfork parent keeps the one it shares), a new one
        holds the program, and l starts at its entry."""
        from nbemu.guest.exec_elf import exec_image, host_ids
        p = l.l_proc
        old = p.p_vmspace
        sp = old.pmap
        if sp.users > 1:                     # a vfork child leaves its parent's space
            sp.users -= 1
            if self.loaded is l and l.l_md is not None:
                self.uarea_save(l)
            self.loaded = None
            sp = self.vmspace_new()
        else:
            old.release_all()
            sp.uc.ctl_flush_tb()             # nothing of the old image may be re-run
        vm = vmmap_new(self.abi, sp)
        p.p_vmspace = vm
        uid, gid = host_ids()
        res = exec_image(vm, img, self.abi, argv, envp, execname, uid, gid, root=self.kernel)
        self.last_exec = res                 # (where it landed: the gdb stub's library view)
        p.p_psstrp = res.ps_strings
        self._ctx_pc.pop(id(l), None)
        self._pending_pc = None
        if self.loaded is l:
            self.loaded = None
        self.start_lwp0(l, res.regs)
        if self.npark is not None:
            self.npark.forget_proc(p)

    def _switch_space(self, sp: Space) -> None:
        """Make sp's engine the live one: the loaded LWP (of another address
        space) is saved into its context first, so at most one LWP system-wide
        has live registers."""
        if sp is self.space:
            return
        cur = self.loaded
        if cur is not None and cur.l_md is not None:
            self.uarea_save(cur)
        self.loaded = None
        if self.space.users == 0:            # an ended address space's engine
            self._space_pool.append(self.space)
        self.space = sp
        self.uc = sp.uc
        self.uch = sp.uch

    @property
    def _hook_installed(self) -> bool:
        return self.space.hook_installed

    @property
    def _async_stop(self) -> bool:
        """Whether this turn is preempted by an asynchronous uc_emu_stop() (fast
        mode on the patched engine, whose blocks it cannot cut: nbhook.c
        nb_async_uc) rather than through the block hook. Not when the hook is
        installed (gdb, whose watchpoints are memory hooks: with them the engine
        checks for a stop after every access) nor when blocks are counted
        (--deterministic, --record/--replay)."""
        return (self.async_exact and not self.deterministic and self.rr is None
                and not self.space.hook_installed)

    # -- registers (Platform) ----------------------------------------------------
    def _batch(self, ids: Sequence[int]) -> RegBatch:
        key = tuple(ids)
        b = self._batches.get(key)
        if b is None:
            b = self._batches[key] = RegBatch(key)
        return b

    def regs_get(self, l: Lwp, ids: Sequence[int]) -> list[int]:
        b = self._batch(ids)
        if l is self.loaded:
            return b.read_live(self.uch)
        vals = b.read_ctx(l.l_md)
        if self._ctx_pc and id(l) in self._ctx_pc and self.abi.pc_reg in b.ids:
            vals[b.ids.index(self.abi.pc_reg)] = self._ctx_pc[id(l)]
        return vals

    def _ctx_write(self, l: Lwp, ids: Sequence[int], vals: Sequence[int]) -> None:
        """Write registers into l's saved context. Where Unicorn cannot write a
        saved context's PC (abi.context_pc_writable false: ARM's reg_write
        dereferences a pointer uc_context_save does not copy, and crashes), the PC
        waits in _ctx_pc until _load puts l on the engine."""
        pc = self.abi.pc_reg
        if not self.abi.context_pc_writable and pc in ids:
            i = list(ids).index(pc)
            self._ctx_pc[id(l)] = vals[i]
            ids = [r for j, r in enumerate(ids) if j != i]
            vals = [v for j, v in enumerate(vals) if j != i]
            if not ids:
                return
        self._batch(ids).write_ctx(l.l_md, vals)

    def pending_pc(self, l: Lwp) -> int | None:
        """A PC written to l off the engine that its saved context does not hold yet."""
        return self._ctx_pc.get(id(l)) if self._ctx_pc else None

    def regs_set(self, l: Lwp, ids: Sequence[int], vals: Sequence[int]) -> None:
        if l is self.loaded:
            pc = self.abi.pc_reg
            if self.in_hook and pc in ids:
                # A PC written inside the syscall hook is advanced past the
                # instruction by Unicorn: apply such writes once the engine stopped.
                i = list(ids).index(pc)
                self._pending_pc = vals[i]
                ids = [r for j, r in enumerate(ids) if j != i]
                vals = [v for j, v in enumerate(vals) if j != i]
                self.request_stop()
                if not ids:
                    return
            self._batch(ids).write_live(self.uch, vals)
        elif l.l_md is not None:       # (an LWP that just exited has no context)
            if l.l_npark:              # (its registers change: the kernel resumes it)
                self.npark_end(l)
            self._ctx_write(l, ids, vals)

    def vregs_get(self, l: Lwp, ids: Sequence[int]) -> list[int]:
        """128-bit registers (XMM) of the live engine or of l's saved context."""
        raw = self.vregs_raw(l, ids)
        return [int.from_bytes(raw[16 * i:16 * i + 16], "little") for i in range(len(ids))]

    def vregs_raw(self, l: Lwp, ids: Sequence[int]) -> bytes:
        """The same as 16 little-endian bytes each, in one batch call: the
        layout of the fxsave / __fregs areas that getcontext and every signal
        frame copy them into (no conversion to ints and back)."""
        key = ids if ids.__class__ is tuple else tuple(ids)
        b = self._vbatches.get(key)
        if b is None:
            n = len(ids)
            bufs = (ctypes.c_uint8 * (16 * n))()
            ptrs = (ctypes.c_void_p * n)(*[ctypes.addressof(bufs) + 16 * i for i in range(n)])
            cids = (ctypes.c_int * n)(*ids)
            # (the arrays are kept alive here; the calls get their addresses: regs.raw)
            b = self._vbatches[key] = (cids, ptrs, bufs, n, _c_void_p(ctypes.addressof(cids)),
                                       _c_void_p(ctypes.addressof(ptrs)))
        _cids, _ptrs, bufs, n, cids_p, ptrs_p = b
        if l is self.loaded:
            _reg_read_batch(self.uch, cids_p, ptrs_p, n)
        else:
            _ctx_reg_read_batch(_c_void_p(l.l_md), cids_p, ptrs_p, n)
        return bytes(bufs)

    def vregs_set(self, l: Lwp, ids: Sequence[int], vals: Sequence[int]) -> None:
        for r, v in zip(ids, vals):
            buf = (ctypes.c_uint8 * 16).from_buffer_copy(
                (v & ((1 << 128) - 1)).to_bytes(16, "little"))
            if l is self.loaded:
                uclib.uc_reg_write(self.uch, r, buf)
            elif l.l_md is not None:
                uclib.uc_context_reg_write(l.l_md, r, buf)

    def syscall_return(self, l: Lwp, vals: Sequence[int]) -> None:
        """Write abi.syscall_out_regs (the trap's hot path: one prebuilt batch)."""
        if l is self.loaded:
            if self.in_hook and self._native_trap:
                v0, v1, v2 = vals
                _OUT3(self._out_view, 0, v0 & _M64, v1 & _M64, v2 & _M64)
                self._out_valid.value = 1
            else:                       # (a blocked call ends: after its wakeup)
                v0, v1, v2 = vals
                _OUT3(self._out.view, 0, v0 & _M64, v1 & _M64, v2 & _M64)
                self._out.flush_live(self.uch)
        elif l.l_md is not None:
            self._out.write_ctx(l.l_md, vals)

    def context_fork(self, parent: Lwp, child: Lwp) -> None:
        """child gets parent's registers (the trap's), in its u-area: a new
        LWP of the process, or a fork child, whose engine loads them from there."""
        assert parent is self.loaded
        self._pcb_init(child)
        _ctx_save(self.uch, _c_void_p(child.l_md))
        # Unless the ucontext sets them, the child resumes after the trap.
        pc = self._pc.read_live(self.uch)[0]
        if self.in_hook:
            pc += self.abi.syscall_insn_len - self.abi.trap_pc_offset
        self._ctx_write(child, (self.abi.pc_reg,), (pc,))

    def with_live_regs(self, l: Lwp, fn) -> None:
        """Call fn(uc) with l's registers live in the engine, for state Unicorn
        only writes on a live CPU (i386's %gs base through an MSR: writing it
        into a saved context crashes). For an LWP off the engine: park the
        loaded registers in a scratch context, load l's, call fn, save them
        back, restore the parked ones (also valid inside the trap hook: the
        engine gets back exactly the state it had)."""
        if l is self.loaded:
            fn(self.uc)
            return
        if l.l_md is None:
            return
        sp = l.l_proc.p_vmspace.pmap          # l's engine (not loaded: see _switch_space)
        scratch = sp.scratch_ctx
        if scratch is None:
            scratch = sp.scratch_ctx = sp.uc.context_save()
        uclib.uc_context_save(sp.uch, scratch.context)
        uclib.uc_context_restore(sp.uch, l.l_md)
        try:
            fn(sp.uc)
        finally:
            uclib.uc_context_save(sp.uch, l.l_md)
            uclib.uc_context_restore(sp.uch, scratch.context)

    def context_free(self, l: Lwp) -> None:
        self._ctx_pc.pop(id(l), None)
        if self.npark is not None:
            self.npark.forget_lwp(l)
        if l is self.loaded:
            self.loaded = None
        l.l_md = None

    def request_stop(self) -> None:
        if self.in_emu and not self.stop_requested:
            if self.in_hook and self._native_trap:
                self.native.stop_after.value = 1    # the hook stops after the write-back
            else:
                uclib.uc_emu_stop(self.uch)
        self.stop_requested = True

    def work_added(self) -> None:
        """An LWP became runnable during a slice (a wakeup from a system call):
        if the slice started unpreemptible (nothing else to run then), arm the
        ticker now, or end the slice when the block hook is not installed yet."""
        if not self.in_emu or self.deterministic:
            return
        nat = self.native
        if nat is not None and self._hook_installed:
            if not nat.armed.value and (self.rr is None or not self.rr.replaying):
                nat.preempt.value = 0
                nat.armed.value = 1
        elif self._async_stop:
            if not nat.armed.value:
                nat.async_uc.value = self.uch.value
                nat.armed.value = 1
        elif self._py_budget <= 0:
            self.request_stop()

    def restart_syscall(self, l: Lwp) -> None:
        abi = self.abi
        n = abi.syscall_insn_len
        st = 0
        if abi.insn_state_reg is not None:     # ARM: Thumb's svc is 2 bytes
            st = self.regs_get(l, (abi.insn_state_reg,))[0]
            n = abi.syscall_insn_size(st)
        if l is self.loaded and self.in_hook:
            self._pending_pc = self.uc.reg_read(abi.pc_reg) - abi.trap_pc_past(st)
            self.request_stop()
        else:
            pc = self.regs_get(l, (abi.pc_reg,))[0]
            self.regs_set(l, (abi.pc_reg,), (abi.resume_address(pc - n, st),))

    def _apply_pending_pc(self) -> None:
        """Write the PC deferred by a write inside the trap hook (restart, setcontext)."""
        pc, self._pending_pc = self._pending_pc, None
        abi = self.abi
        if abi.insn_state_reg is not None:
            pc = abi.resume_address(pc, self.uc.reg_read(abi.insn_state_reg))
        self.uc.reg_write(abi.pc_reg, pc)

    def _set_budget(self, budget: int) -> None:
        """End the turn after `budget` more blocks (0: no budget): the block
        hook counts nb_budget down; an engine that counts blocks itself stops
        when nb_blocks reaches nb_stop_at."""
        nat = self.native
        if self.engine_counts:
            nat.stop_at.value = nat.blocks.value + budget if budget > 0 else 0
        else:
            nat.budget.value = budget

    def blocks_executed(self) -> int:
        if self.native is not None:
            return self.native.blocks.value
        return self._pyblocks

    # -- parks the native path may end (Platform; emu/npark.py) ---------------------
    # With the path off; run() makes them NativePark's own begin and end when it
    # is on (every park and wakeup of the kernel's path calls one of them).
    def npark_begin(self, l: Lwp) -> None:
        pass

    def npark_end(self, l: Lwp) -> None:
        l.l_npark = False

    def trap_vals(self, l: Lwp) -> list[int]:
        """The trap registers (abi.syscall_in_regs, + the trapping instruction
        word where the port appends it) of l, off the engine since its trap."""
        return self._with_insn_word(self.regs_get(l, self.abi.syscall_in_regs))

    def _with_insn_word(self, vals: list[int]) -> list[int]:
        """vals (abi.syscall_in_regs values), + the trapping instruction word
        where the port's decode_syscall reads it (abi.trap_fetch_insn)."""
        abi = self.abi
        if abi.trap_fetch_insn:
            pc = vals[abi.syscall_in_regs.index(abi.pc_reg)]
            vals.append(int.from_bytes(self.uc.mem_read(pc - abi.trap_pc_offset, 4), "little"))
        return vals

    def _np_sync(self) -> None:
        """nbhook.c: the kernel is about to serve a system call after the native
        park path served some (the engine holds the LWP it last switched to)."""
        try:
            self.npark.sync()               # type: ignore[union-attr]
        except Exception as e:            # an emulator bug, never the guest's fault
            l = self.curlwp
            self.internal_error = InternalError(l, [], e)  # type: ignore[arg-type]
            self.request_stop()

    def _claim_native(self) -> None:
        """The native library's globals serve one running machine per process:
        point its trap callback at this one."""
        if self._native_trap:
            nat = self.native
            nat.engine_counts.value = self.engine_counts
            nat.lib.nb_set_trap(ctypes.cast(uclib.uc_reg_read_batch, ctypes.c_void_p),
                                ctypes.cast(uclib.uc_reg_write_batch, ctypes.c_void_p),
                                ctypes.cast(self._trap_cb, ctypes.c_void_p), self._nin,
                                len(self.abi.syscall_out_regs))
            for i, r in enumerate(self.abi.syscall_in_regs):
                nat.in_ids[i] = r
            for i, r in enumerate(self.abi.syscall_out_regs):
                nat.out_ids[i] = r
            if self.abi.trap_kind == "intr":
                self._set_native_intr()
            fc = self.abi.fast_clock_trap
            self._fc_sysno = fc[0] if fc is not None and self.abi.trap_kind == "insn" else -1
            nat.fc_hi.value = 0
            nat.fc_sysno.value = self._fc_sysno
            if fc is not None:
                nat.fc_flags_idx.value, nat.fc_carry.value = fc[1], fc[2]
            # calls that leave the window open (nbhook.c nb_fc_keep, consulted
            # only where the fast path exists): the park calls change no mapping
            for i, code in enumerate(FAST_CLOCK_KEEPS):
                nat.fc_keep[i] = code
            if self.npark is not None:
                self.npark.claim()

    def _set_native_intr(self) -> None:
        abi = self.abi
        pc_idx = abi.syscall_in_regs.index(abi.pc_reg) if abi.trap_fetch_insn else -1
        if self.native.lib.nb_set_intr(abi.trap_intno, pc_idx, abi.trap_pc_offset,
                                       ctypes.cast(uclib.uc_mem_read, ctypes.c_void_p),
                                       ctypes.cast(self._intr_other_cb, ctypes.c_void_p)):
            raise RuntimeError("nb_set_intr: too many trap registers")

    # -- the block hook (preemption) ----------------------------------------------
    _pyblocks = 0

    def _install_block_hook(self, sp: Space | None = None) -> None:
        sp = sp or self.space
        if sp.hook_installed:
            return
        sp.hook_installed = True
        if self.native is not None:
            h = ctypes.c_size_t()
            err = uclib.uc_hook_add(sp.uch, ctypes.byref(h), UC_HOOK_BLOCK,
                                    self.native.block_hook, None, ctypes.c_uint64(1),
                                    ctypes.c_uint64(0))
            if err:
                raise UcError(err)
        else:
            print("nbemu: warning: no C compiler for the native block hook; "
                  "preemption uses a slow Python hook", file=sys.stderr)
            sp.pyblock_hook = sp.uc.hook_add(UC_HOOK_BLOCK, self._py_block)
        # Blocks translated before the hook existed do not call it.
        sp.uc.ctl_flush_tb()

    def signal_caught(self, sig: int) -> None:
        """sigaction installed a handler (sys_sig.sigaction1). A host signal must
        be able to end a turn exactly (emu/hostsig.py arms the block hook), even
        for a lone LWP spinning without system calls: install the hook at the
        next turn (not inside this trap: flushing translated blocks there is
        unsafe) and end this one."""
        from .hostsig import FORWARDED
        if sig not in FORWARDED.values():
            return
        self.catches_host_signal = True
        if self._async_stop or self.engine_counts:
            return                      # the watchdog stops the engine asynchronously
        if not self._hook_installed and not self.hook_wanted:
            self.hook_wanted = True
            self.request_stop()

    def _py_block(self, uc, addr, size, user) -> None:
        self._pyblocks += 1
        if self._py_budget > 0:
            self._py_budget -= 1
            if self._py_budget == 0:
                uc.emu_stop()
    _py_budget = 0

    # -- traps ----------------------------------------------------------------------
    def _on_trap_native(self) -> None:
        # _trap's body, inline: one Python frame less on every system call.
        vals = self._in_view.tolist()
        l = self.curlwp
        self.in_hook = True
        try:
            self.kernel.syscall(l, vals)
            if vals[0] == self._fc_sysno:
                self._fast_clock_window(l, vals)
        except Exception as e:            # an emulator bug, never the guest's fault
            self.internal_error = InternalError(l, vals, e)
            self.request_stop()
        finally:
            self.in_hook = False

    def _on_syscall_raw(self, uch, user_data) -> None:
        self._trap(self._in.read_live(self.uch))

    def _on_intr_raw(self, uch, intno, user_data) -> None:
        """UC_HOOK_INTR without the native library (trap_kind "intr")."""
        abi = self.abi
        if intno != abi.trap_intno:
            self._on_interrupt_other(intno)
            return
        self._trap(self._with_insn_word(self._in.read_live(self.uch)))

    def _on_interrupt_other(self, intno: int) -> None:
        self._intno = intno
        uclib.uc_emu_stop(self.uch)

    def _trap(self, vals: list[int]) -> None:
        l = self.curlwp
        self.in_hook = True
        try:
            self.kernel.syscall(l, vals)
            if vals[0] == self._fc_sysno:
                self._fast_clock_window(l, vals)
        except Exception as e:            # an emulator bug, never the guest's fault
            self.internal_error = InternalError(l, vals, e)
            self.request_stop()
        finally:
            self.in_hook = False

    def _fast_clock_window(self, l: Lwp, vals: list[int]) -> None:
        """After a clock_gettime the kernel served: let the native trap serve the
        next ones (nbhook.c's fast path) into the writable map entry that holds
        its timespec, unless something must see each system call or run at its
        end: a trace, a record or replay, the virtual clock, a debugger or tracer,
        a pending signal or other user-return work of l."""
        k = self.kernel
        clock = k.clock
        if (self.deterministic or self.rr is not None or self.debugger is not None
                or k.strace is not None or type(clock) is not Clock or clock.virtual
                or k.hostsig_check or l is not self.loaded or l.l_stat != LSONPROC
                or l.l_flag & LW_USERRET or l.l_kstack is not None
                or l.l_proc.p_slflag & PSL_TRACED or self.stop_requested):
            return
        tp = vals[2]
        e = l.l_proc.p_vmspace.lookup(tp)
        if e is None or not e.prot & PROT_WRITE or tp + 16 > e.end:
            return
        nat = self.native
        nat.fc_mono_off.value = clock.host_monotonic_offset_ns()
        nat.fc_lo.value = e.start
        nat.fc_host.value = e.host
        nat.fc_hi.value = e.end

    def _on_bad_access(self, uc, access, address, size, value, user) -> bool:
        self._fault = (access, address, size)
        return False

    def _on_interrupt(self, uc, intno, user) -> None:
        self._intno = intno
        uc.emu_stop()

    # -- loading LWPs ------------------------------------------------------------------
    # An LWP off the engine keeps its registers in its u-area (kern_lwp.UareaArena):
    # the engine's saved CPU state at the u-area's start, l_md pointing at it
    # (its layout: Abi.uarea_regs). These two are the switch path's only copies.
    def uarea_save(self, l: Lwp) -> None:
        """The engine's registers (l's) to l's u-area."""
        _ctx_save(self.uch, _c_void_p(l.l_md))

    def uarea_load(self, l: Lwp) -> None:
        """l's registers from its u-area to the engine."""
        _ctx_restore(self.uch, _c_void_p(l.l_md))

    def _pcb_init(self, l: Lwp) -> None:
        """Make l's u-area hold a context (Unicorn's header, then the CPU state
        that uarea_save fills in): l_md points at it from now on."""
        assert l.l_uarea, "an LWP without a u-area"
        t = self._ctx_template
        ctypes.memmove(l.l_uarea, t.context, t.size)
        l.l_md = l.l_uarea

    def _load(self, l: Lwp) -> None:
        if self.loaded is l:
            return
        sp = l.l_proc.p_vmspace.pmap
        if sp is not self.space:
            self._switch_space(sp)
        old = self.loaded
        if self.native is not None:             # (uarea_save and uarea_load in one call)
            self.native.switch(self.uch, None if old is None or old.l_md is None
                               else _c_void_p(old.l_md), _c_void_p(l.l_md))
        else:
            if old is not None and old.l_md is not None:
                self.uarea_save(old)
            self.uarea_load(l)
        self.loaded = l
        if self._ctx_pc:
            pc = self._ctx_pc.pop(id(l), None)
            if pc is not None:                  # a PC written while l was off the engine
                self._pending_pc = pc
                self._apply_pending_pc()

    def start_lwp0(self, l: Lwp, regs: dict[int, int]) -> None:
        """Registers of a process's first LWP (boot and exec)."""
        self._switch_space(l.l_proc.p_vmspace.pmap)
        if self.loaded is not None and self.loaded is not l and self.loaded.l_md is not None:
            self.uarea_save(self.loaded)
        for rid, v in regs.items():
            self.uc.reg_write(rid, v)
        if l.l_md is None:
            self._pcb_init(l)
        self.uarea_save(l)
        self.loaded = l

    # -- the run loop --------------------------------------------------------------------
    def run(self, survivors: bool = False) -> None:
        """Run until the first process exits, or with survivors until every
        process has (emu/survivors.py), or deadlocks: DeadlockError."""
        k = self.kernel
        p = k.proc
        assert p is not None
        self._claim_native()
        dbg = self.debugger
        # the native park path, unless something must see every park: a
        # tracer, a recorder, a debugger, the event listeners (timeline)
        self._np_enabled = (self.npark is not None and dbg is None and self.rr is None
                            and k.strace is None and not k.listeners)
        if self._np_enabled:
            self.npark_begin = self.npark.begin     # type: ignore[method-assign,union-attr]
            self.npark_end = self.npark.end         # type: ignore[method-assign,union-attr]
        if survivors:
            def ended() -> bool:
                return not k.live_procs()
        else:
            def ended() -> bool:
                return p.p_exiting
        while not ended():
            if dbg is not None and dbg.stop_pending:
                dbg.stopped()                   # all-stop: gdb holds every vCPU here
                if ended():
                    break
            if self.internal_error is not None:
                raise self.internal_error
            turn = k.next_turn()
            if turn is None:
                if ended():
                    break
                stopped, deadline = k.idle()
                if stopped:                     # SSTOP: stopped by a signal
                    self._host_stop()
                    continue
                if dbg is not None and dbg.idle(deadline):
                    continue
                if deadline is None:
                    raise DeadlockError()
                k.idle_until(deadline)
                continue
            ci, l = turn
            if l is None:
                continue
            if dbg is not None and dbg.hold(ci, l):
                continue                        # not resumed by gdb: its vCPU waits
            self._load(l)
            self.curlwp = l
            try:
                go = k.enter(l)
            except Exception as e:
                raise InternalError(l, l.l_sysvals or [], e) from e
            if self._pending_pc is not None:
                self._apply_pending_pc()
            if go and dbg is not None and dbg.stop_pending:
                continue                        # a stop came in its system call (exec): report first
            if go:
                self._run_slice(ci, l)

    def _run_slice(self, ci, l: Lwp) -> None:
        k = self.kernel
        nat = self.native
        rr = self.rr
        step = l.l_pflag & (LP_SSTEP | LP_STEPTRAP)
        if step & LP_STEPTRAP:          # its stepped system call has returned
            self._step_trap(l)
            return
        cut, budget = k.slice(ci, l)
        arm = 0                         # the preemption the turn needs (nb_run's arm)
        budgeted = self.deterministic or rr is not None or step   # (a block budget to clear)
        if self.hook_wanted and not self._hook_installed:
            self._install_block_hook()
        if self.deterministic:
            if nat is not None:
                self._set_budget(budget)
            else:
                self._py_budget = budget
        elif rr is not None and rr.replaying:
            # Replay: the ticker stays disarmed; the log's block count (below)
            # ends the turn where the recorded one was preempted.
            if cut:
                self._install_block_hook()
        elif cut and self._async_stop:
            arm = 2                     # (nb_run: the ticker stops the engine itself)
        elif cut:
            self._install_block_hook()
            if nat is not None:
                arm = 1                 # (nb_run: the ticker sets nb_preempt)
            else:
                self._py_budget = 20_000
        if rr is not None:
            blocks0 = nat.blocks.value
            budget = rr.slice_begin(ci, l, blocks0)
            if budget:
                if not self.engine_counts:
                    self._install_block_hook()
                self._set_budget(budget)
        if step:
            # one instruction, whole: no preemption may end the turn before it
            self._py_budget = 0
            arm = 0
            # Unicorn adds its instruction-count hook (count=1) without dropping
            # the blocks translated before it, which do not call it: one of
            # them would run on past the instruction, to the next system call.
            self.uc.ctl_flush_tb()
            if nat is not None:            # (a preempt flag left from a slice before too)
                nat.preempt.value = 0
                self._set_budget(0)
        np, np_cur = None, _C_NP_NONE
        # (only while nothing else wants the host thread: with other vCPUs'
        # work a park ends the turn through the kernel, and an unpark served
        # natively would only move the kernel's work to the next system call)
        if self._np_enabled and not step and arm == 0 and self._async_stop:
            np, cur = self.npark.engage(ci, l)  # type: ignore[union-attr]
            if np is not None:
                np_cur = _c_uint64(cur)
        self.stop_requested = False
        self._fault = None
        self._intno = None
        self.in_emu = True
        err = 0
        lwp_startrun(l)                 # its CPU time runs from here (updatertime below)
        try:
            # uc_emu_start directly: the binding's wrapper costs ~1 us per turn
            # and only re-raises exceptions of Python hooks, which ours never raise.
            # until: an address no instruction can start at (all ones for the
            # word size); 0 would stop a jump to 0 instead of faulting it.
            if nat is not None and not step:
                # (nb_run: the PC read, the arming and uc_emu_start in one call)
                pc_id, state_id, state_bit = self._nb_pc
                err = nat.run(self.uch, pc_id, state_id, state_bit, self._never_pc, arm,
                              np, np_cur)
            else:
                pcv = self._pc.read_live(self.uch)
                pc = pcv[0] if self._pc.n == 1 else self.abi.resume_address(pcv[0], pcv[1])
                if nat is not None:
                    nat.fc_hi.value = 0      # the fast clock's window was the last turn's
                # (ptrace PT_STEP: one instruction, then the trace trap)
                err = _emu_start(self.uch, _c_uint64(pc), self._never_pc, _C_TIMEOUT0,
                                 _C_COUNT[1 if step else 0])
            if np is not None:
                self.in_emu = False
                if self.npark._ntouched.value:      # type: ignore[union-attr]
                    self.npark.sync()               # type: ignore[union-attr]
                l = self.curlwp             # (a park served natively switched LWPs:
                assert l is not None        # this sync's or one in the trap hook)
            if err:
                self.in_emu = False
                self._guest_fault(l, UcError(err))
                return
        finally:
            self.in_emu = False
            updatertime(l)
            if nat is not None:
                if step:
                    nat.armed.value = 0
                    nat.async_uc.value = None
                if budgeted:
                    self._set_budget(0)
                if self._fc_sysno >= 0 and nat.fc_count.value:
                    k.nsyscalls += nat.fc_count.value    # served by the fast path
                    nat.fc_count.value = 0
            if rr is not None:
                # Preempted: stopped by the block hook, not by the kernel or a fault.
                rr.slice_end(not err and not self.stop_requested and self._intno is None,
                             nat.blocks.value)
        if self._pending_pc is not None:
            self._apply_pending_pc()
        if self._intno is not None:
            self._guest_fault(l, None)
            return
        if step:
            if l.l_kstack is not None or l.l_stat != LSONPROC:
                l.l_pflag |= LP_STEPTRAP          # trap once its system call returns
            else:
                self._step_trap(l)
            return
        if not self.stop_requested:
            k.tick(ci)

    def _step_trap(self, l: Lwp) -> None:
        """The trace trap after a single step (x86 T_TRCTRAP, aarch64's software
        step exception): SIGTRAP / TRAP_TRACE stops the traced process."""
        from nbemu.syscalls.kern_sig import eventswitch
        from nbemu.syscalls.signals import TRAP_TRACE
        l.l_pflag &= ~LP_STEPTRAP
        eventswitch(l, TRAP_TRACE)

    # -- faults -------------------------------------------------------------------------
    def _guest_fault(self, l: Lwp, err: UcError | None) -> None:
        """A fault of l's user code becomes a signal (kern_sig.trapsignal): its
        handler runs when one is installed and the signal is not masked; else
        the process dies of it (with the crash report)."""
        from nbemu.syscalls.kern_sig import fault_ksiginfo, trapsignal
        from nbemu.syscalls.signals import Sig
        sig, code, addr, what = Sig.SIGSEGV, 1, 0, "fault"
        trapno = errc = 0
        fsi = self.abi.fault_siginfo                     # NetBSD trap(): si_code, trapno
        pc = self.regs_get(l, (self.abi.pc_reg,))[0]
        if self._fault is not None:
            access, addr, _size = self._fault
            kind = _MEM_ACCESS.get(access, "access")
            # PROT_NONE pages are not in the engine (space.py): mapped, not permitted
            unmapped = access in _UNMAPPED and l.l_proc.p_vmspace.lookup(addr) is None
            sig, code, addr, trapno, errc, what = fsi(
                "unmapped" if unmapped else "prot", addr, pc, access=kind)
        elif self._intno is not None:
            sig, code, addr, trapno, errc, what = fsi("intr", 0, pc, intno=self._intno)
        elif err is not None:
            from unicorn import UC_ERR_INSN_INVALID
            if err.errno == UC_ERR_INSN_INVALID:
                sig, code, addr, trapno, errc, what = fsi("invalid", 0, pc)
            else:
                what = f"engine error: {err}"
        if self.debugger is not None:
            sig = self.debugger.on_signal(l, sig)   # gdb sees the fault first
            if not sig:
                return
        self.last_fault = GuestFault(sig, code, addr, what)
        self.last_fault_lwp = l
        if trapsignal(l, fault_ksiginfo(sig, code, addr, trapno, errc)):
            self.last_fault = None                  # its handler runs

    def note_core(self, l: Lwp, sig: int) -> None:
        """A signal whose default action dumps core kills the process: keep what
        the crash report shows (unless a fault of its own is already noted)."""
        from nbemu.syscalls.signals import signame
        cur = getattr(self, "last_fault", None)
        if cur is None or cur.sig != sig:
            self.last_fault = GuestFault(sig, 0, 0, f"{signame(sig)} (core dumped)")
            self.last_fault_lwp = l
        if l.l_proc is not self.kernel.proc and self.on_child_crash is not None:
            # Another process dies of it: report now, while its image and
            # registers exist (exit1 frees them); its parent goes on.
            self.on_child_crash(l, sig)
            self.last_fault = None

    def _host_stop(self) -> None:
        """The guest process is stopped by a signal (SIGSTOP, SIGTSTP, ...): so
        is nbemu, as the program would be under a shell. SIGCONT to nbemu
        continues it, and the guest gets SIGCONT."""
        import os
        import signal
        from nbemu.syscalls.kern_sig import psignal
        from nbemu.syscalls.signals import Sig
        sys.stdout.flush()
        sys.stderr.flush()
        if self.rr is None or not self.rr.replaying:      # a replay does not stop the host
            os.kill(os.getpid(), signal.SIGSTOP)
        psignal(self.kernel.proc, Sig.SIGCONT)

class InternalError(Exception):
    """A Python exception escaped the kernel: a bug of nbemu, reported as such."""

    def __init__(self, l: Lwp, vals: list[int], exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.lwp, self.vals, self.exc = l, vals, exc


class DeadlockError(Exception):
    """Every LWP is blocked with no timeout pending."""
