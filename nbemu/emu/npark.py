"""The native park path, machine side: the tables nbhook.c's np_trap serves
_lwp_unpark and ___lwp_park60 from, and what the kernel is told afterwards.

A park/unpark hop between two LWPs of a process is two system calls and a
context switch. Through the Python kernel that is ~124K host instructions,
natively ~7.7K (BENCHMARKS.md). nbhook.c serves it in a turn that began with
nothing else to run (no other vCPU's work, no callout due), in fast mode on
the patched engine, with no tracer, recorder, debugger or event listener, in
a process of more than one LWP, on a port whose trap it can read
(guest/arch/base.py NparkTrap).

The state that path reads and writes is declared here and in nbhook.c
(struct nb_np_ent): one table per process, an entry per LWP id. The kernel
keeps its own state as before and hands LWPs over explicitly:

- Platform.npark_begin(l): l parked without a timeout, nothing pending
  (sys_lwp.lwp_park): its entry says NP_PARKED, so an _lwp_unpark served
  natively may wake it and a park served natively may switch to it.
- Platform.npark_end(l): the kernel acts on an LWP the path holds (a wakeup,
  a stop, a signal, a suspension, a pending unpark, a new lwpctl: Lwp.set_stat
  and the flag sites): NP_NONE again.
- Each turn, the LWP about to run gets NP_RUNNING when it may park natively
  (no pending unpark, cancellation or user-return work), else NP_NONE; the
  path keeps it so until it parks, or until npark_end.

Before the kernel runs again -- at the next system call it serves (nbhook.c
calls sync() first) and at the end of the turn -- sync() reads what the
native path did (the LWPs it touched, which one is on the engine now, their
run time and calls) and applies it through the kernel's own functions
(sys_lwp.lwp_park_native_*), so the kernel never sees a state it did not
make. Only the running process's LWPs can differ: every turn starts in sync.
"""
from __future__ import annotations

import ctypes
import struct
from typing import TYPE_CHECKING

from nbemu.syscalls.lwp import LSONPROC, LwpFlag, Lwp, PSL_SYSCALL, PSL_TRACED, Proc
from nbemu.syscalls.sys_lwp import (lwp_park_native_parked, lwp_park_native_ran,
                                    lwp_park_native_woken)

if TYPE_CHECKING:
    from .machine import Machine

NP_NONE, NP_PARKED, NP_WOKEN, NP_RUNNING = 0, 1, 2, 3
NP_CAP = 4096           # LWP ids served natively per process: 1 .. NP_CAP - 1
NP_RING = 256           # nbhook.c's: LWPs it may touch (and queue) between two syncs
SYS_lwp_unpark, SYS___lwp_park60 = 321, 478

# What must keep an LWP from parking natively: the kernel acts on it first.
_NOT_CLEAN = (LwpFlag.LW_UNPARKED | LwpFlag.LW_CANCELLED | LwpFlag.LW_PENDSIG
              | LwpFlag.LW_WSUSPEND | LwpFlag.LW_WEXIT | LwpFlag.LW_WCORE
              | LwpFlag.LW_DBGSUSPEND)


class NpEnt(ctypes.Structure):
    """struct nb_np_ent (nbhook.c)."""
    _fields_ = [("md", ctypes.c_uint64), ("lwpctl", ctypes.c_uint64),
                ("run_ns", ctypes.c_uint64), ("nsys", ctypes.c_uint32),
                ("state", ctypes.c_uint8), ("touched", ctypes.c_uint8),
                ("ran", ctypes.c_uint8), ("pad", ctypes.c_uint8)]


NpTable = NpEnt * NP_CAP
# An entry as the kernel's hand-overs write it whole: md, lwpctl, run_ns, nsys,
# state (touched, ran and pad zero: the path has been synced when they run)
_ENT = struct.Struct("<QQQIB3x")
_ENT_SIZE = ctypes.sizeof(NpEnt)
_STATE_OFF = NpEnt.state.offset
assert _ENT.size == _ENT_SIZE == 32


class NativePark:
    """One machine's native park path (None where it cannot exist)."""

    def __init__(self, m: "Machine") -> None:
        self.m = m
        lib = m.native.lib
        self._lib = lib
        self._sync_cb = _SYNC_CB(m._np_sync)
        lib.nb_np_set_sync.argtypes = [ctypes.c_void_p]
        lib.nb_np_set_sync.restype = None
        self._cur = ctypes.c_uint32.in_dll(lib, "nb_np_cur")
        self._touched = (ctypes.c_uint32 * NP_RING).in_dll(lib, "nb_np_touched")
        self._ntouched = ctypes.c_uint32.in_dll(lib, "nb_np_ntouched")
        self._rq_len = ctypes.c_uint32.in_dll(lib, "nb_np_rq_len")
        self._switches = ctypes.c_uint32.in_dll(lib, "nb_np_switches")
        self._t = ctypes.c_uint64.in_dll(lib, "nb_np_t")
        self.count = ctypes.c_uint64.in_dll(lib, "nb_np_count")
        self.tab: ctypes.Array | None = None     # the engaged process's table, this turn

    def claim(self) -> None:
        """Point the library's native park globals at this machine (its port's
        trap layout, its sync callback): one running machine per process."""
        lib = self._lib
        abi = self.m.abi
        t = abi.npark_trap
        lib.nb_np_set_sync(ctypes.cast(self._sync_cb, ctypes.c_void_p))
        ctypes.c_int.in_dll(lib, "nb_np_sysno_idx").value = t.sysno_idx
        ctypes.c_int.in_dll(lib, "nb_np_insn_shift").value = t.insn_shift
        ctypes.c_uint64.in_dll(lib, "nb_np_insn_mask").value = t.insn_mask
        ctypes.c_uint64.in_dll(lib, "nb_np_os_mask").value = t.os_mask
        ctypes.c_uint64.in_dll(lib, "nb_np_os_val").value = t.os_val
        ctypes.c_int.in_dll(lib, "nb_np_thumb_idx").value = t.thumb_idx
        ctypes.c_uint64.in_dll(lib, "nb_np_thumb_bit").value = t.thumb_bit
        args = (ctypes.c_int * 6).in_dll(lib, "nb_np_arg_idx")
        for i, v in enumerate(t.arg_idx):
            args[i] = v
        ctypes.c_int.in_dll(lib, "nb_np_rv1_idx").value = abi.rv1_index
        ctypes.c_int.in_dll(lib, "nb_np_flags_idx").value = t.flags_idx
        ctypes.c_uint64.in_dll(lib, "nb_np_carry").value = t.carry
        ctypes.c_uint64.in_dll(lib, "nb_np_word_mask").value = t.word_mask
        ctypes.c_int.in_dll(lib, "nb_np_nr_park").value = SYS___lwp_park60
        ctypes.c_int.in_dll(lib, "nb_np_nr_unpark").value = SYS_lwp_unpark
        ctypes.c_uint32.in_dll(lib, "nb_np_cap").value = NP_CAP
        self._ntouched.value = 0
        self._rq_len.value = 0
        self._switches.value = 0

    # -- the kernel's hand-overs (Platform.npark_begin / npark_end) -------------------
    # (Machine.run makes these two the Machine's npark_begin / npark_end for a run
    # with the path on: they are on every park and wakeup of the kernel's path)
    def begin(self, l: Lwp) -> None:
        """l is parked in the kernel with no timeout and nothing pending."""
        lid = l.l_lid
        md = l.l_md
        if lid >= NP_CAP or md is None:
            return
        t = l.l_proc.p_md or self._table(l.l_proc)
        _ENT.pack_into(t.view, lid * _ENT_SIZE, md, t.lwpctl_host(l), 0, 0, NP_PARKED)
        l.l_npark = True

    def end(self, l: Lwp) -> None:
        """The kernel acts on l: its entry says NP_NONE."""
        l.l_npark = False
        t = l.l_proc.p_md
        if t is not None and l.l_lid < NP_CAP:
            t.view[l.l_lid * _ENT_SIZE + _STATE_OFF] = NP_NONE

    forget_lwp = end                    # (l's context is freed: no entry may point at it)

    def forget_proc(self, p: Proc) -> None:
        """p's image is replaced (exec): its LWP ids start again."""
        p.p_md = None

    def _table(self, p: Proc) -> "NpProc":
        t = p.p_md
        if t is None:
            t = p.p_md = NpProc(p)
        return t

    # -- a turn ------------------------------------------------------------------------------
    def engage(self, ci, l: Lwp) -> tuple[ctypes.c_void_p | None, int]:
        """nb_run's arguments for l's turn on ci: its process's table (None: the
        path is off) and l's id with the vCPU's index in the high half."""
        p = l.l_proc
        if p.p_nlwps < 2 or l.l_lid >= NP_CAP or p.p_slflag & (PSL_TRACED | PSL_SYSCALL):
            self.tab = None
            return None, 0
        t = p.p_md or self._table(p)
        self.tab = t.arr
        self.mark_running(l)
        return t.ptr, l.l_lid | ci.ci_index << 32

    def mark_running(self, l: Lwp) -> None:
        """l is on the engine (a turn's start, or the LWP the path switched to):
        NP_RUNNING when it may park natively. It stays so until the kernel acts
        on it (Platform.npark_end: it blocks, is preempted or flagged), which
        makes it NP_NONE for the rest of the turn."""
        t = l.l_proc.p_md
        off = l.l_lid * _ENT_SIZE
        if (l.l_stat == LSONPROC and not l.l_flag & _NOT_CLEAN and l.l_kstack is None
                and l.l_md is not None):
            _ENT.pack_into(t.view, off, l.l_md, t.lwpctl_host(l), 0, 0, NP_RUNNING)
            l.l_npark = True
        else:
            t.view[off + _STATE_OFF] = NP_NONE
            l.l_npark = False

    def sync(self) -> None:
        """Apply what the native path did since the last sync to the kernel."""
        n = self._ntouched.value
        if not n:
            return
        m = self.m
        tab = self.tab
        a = m.curlwp
        assert tab is not None and a is not None
        p = a.l_proc
        k = p.k
        ci = a.l_cpu
        xlid = self._cur.value
        x = p.lwp_find(xlid)
        assert x is not None, xlid
        changed: list[tuple[Lwp, int, int]] = []
        for lid in self._touched[:n]:
            e = tab[lid]
            l = p.lwp_find(lid)
            assert l is not None, lid
            changed.append((l, e.state, e.ran))
            l.l_rtime += e.run_ns
            l.l_nsyscall += e.nsys
            k.nsyscalls += e.nsys
            e.run_ns = 0
            e.nsys = 0
            e.touched = 0
            e.ran = 0
        self._ntouched.value = 0
        self._rq_len.value = 0          # (its LWPs go to the kernel's run queues below)
        switches = self._switches.value
        self._switches.value = 0
        if x is not a:
            # a's park was served natively; another LWP runs on its vCPU now
            a.l_stime_ns = -1               # (its run time came in run_ns)
            m.loaded = x                    # (first: a's registers are in its u-area)
            lwp_park_native_parked(a, m.trap_vals(a))
            m.curlwp = x
            lwp_park_native_ran(ci, x)
        elif switches:
            st = dict((id(l), s) for l, s, _ in changed).get(id(a), NP_RUNNING)
            assert st == NP_RUNNING, st     # (a parked, others ran, a runs again)
        if switches:
            # (lwp_park_native_ran counted the switch to x through cpu_switchto)
            ci.ci_nswitch += switches - (x is not a)
            x.l_stime_ns = self._t.value
            x.l_stime_nsyscall = k.clock.syscalls
        for l, st, ran in changed:
            if l is x or l is a:
                if st == NP_WOKEN:          # a parked natively, then was woken
                    lwp_park_native_woken(l)
                continue
            if ran:                         # it ran, then parked again: this park's registers
                vals = m.trap_vals(l)
                l.l_sysvals = vals
                l.l_retval = [0, vals[m.abi.rv1_index]]
            if st == NP_WOKEN:
                lwp_park_native_woken(l)
        self.mark_running(x)


class NpProc:
    """A process's table (Proc.p_md): the entries nbhook.c reads (arr, at ptr),
    a byte view of them for the kernel's hand-overs, and the host address of
    each of the process's lwpctl pages."""

    __slots__ = ("arr", "ptr", "view", "_ctl", "_mask")

    def __init__(self, p: Proc) -> None:
        self.arr = NpTable()
        self.ptr = ctypes.c_void_p(ctypes.addressof(self.arr))
        self.view = memoryview(self.arr).cast("B")
        self._ctl: dict[int, int] = {}
        self._mask = ~(p.k.abi.page_size - 1)

    def lwpctl_host(self, l: Lwp) -> int:
        """Host address of l's lwpctl_t (lc_curcpu is its first field), 0: none."""
        va = l.l_lwpctl
        if not va:
            return 0
        page = va & self._mask
        base = self._ctl.get(page)
        if base is None:
            view = l.l_proc.p_lwpctl_pages.get(page)
            if view is None:
                return 0
            base = self._ctl[page] = ctypes.addressof(ctypes.c_char.from_buffer(view))
        return base + (va - page)


_SYNC_CB = ctypes.CFUNCTYPE(None)
