"""Breakpoints and watchpoints of the processes gdb debugs (emu/gdbstub.py).

Every process has an engine of its own (emu/space.py), so a point is a Unicorn
hook on the engine of the process gdb addressed (`Hg`), registered for that
process: a vfork child runs on its parent's engine until it execs, and its
parent's points must not stop it, so each hook's callback is given the pid and
the stub compares it with the running LWP's. What gdbserver does on Linux is
mirrored: a fork child of a debugged process starts with copies of its
parent's points (fork copied the int3 bytes there), which gdb removes (z0 with
the child selected) before it detaches the child; exec and exit drop a
process's points (its image is gone); detaching removes them.

While any watchpoint exists on an engine, every instruction on it carries a
native no-op hook so that a watch stop lands on the next instruction boundary.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable

from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UcError
from unicorn.unicorn_py3.unicorn import uclib

from nbemu.syscalls.lwp import Proc

_WATCH_TYPES = {2: UC_HOOK_MEM_WRITE, 3: UC_HOOK_MEM_READ,
                4: UC_HOOK_MEM_WRITE | UC_HOOK_MEM_READ}


def engine_of(p: Proc) -> Any:
    """The Space (engine) holding p's address space."""
    return p.p_vmspace.pmap


class Points:
    """Z0/Z1 (software breakpoints) and Z2/Z3/Z4 (watchpoints), per process."""

    def __init__(self, m: Any, on_bp: Callable, on_watch: Callable,
                 on_insn_py: Callable) -> None:
        self.m = m
        self._on_bp, self._on_watch, self._on_insn_py = on_bp, on_watch, on_insn_py
        self.bps: dict[tuple[int, int], tuple[Any, Any]] = {}        # (pid, addr) -> (space, hook)
        self.watches: dict[tuple[int, int, int, int], tuple[Any, Any]] = {}
        self._insn: dict[int, tuple[Any, str, Any]] = {}  # id(space) -> (space, kind, hook)

    # -- breakpoints ----------------------------------------------------------------
    def has_bp(self, pid: int, addr: int) -> bool:
        return (pid, addr) in self.bps

    def insert_bp(self, p: Proc, addr: int) -> None:
        key = (p.p_pid, addr)
        if key in self.bps:
            return
        sp = engine_of(p)
        shared = self._on_engine(sp, addr)
        h = sp.uc.hook_add(UC_HOOK_CODE, self._on_bp, p.p_pid, addr, addr)
        self.bps[key] = (sp, h)
        if not shared:
            # Code translated before the hook does not call it. (A second hook on
            # the address -- a vfork child's copy, added inside the trap -- needs
            # no new translation: the translated call runs every hook there.)
            sp.uc.ctl_remove_cache(addr, addr + 1)

    def _on_engine(self, sp: Any, addr: int) -> bool:
        return any(s is sp and a == addr for (_, a), (s, _) in self.bps.items())

    def remove_bp(self, pid: int, addr: int, flush: bool = True) -> None:
        got = self.bps.pop((pid, addr), None)
        if got is not None:
            sp, h = got
            sp.uc.hook_del(h)
            if flush and not self._on_engine(sp, addr):
                sp.uc.ctl_remove_cache(addr, addr + 1)

    # -- watchpoints ----------------------------------------------------------------
    def watches_of(self, pid: int) -> list[tuple[int, int, int]]:
        """(type, addr, len) of pid's watchpoints."""
        return [(t, a, n) for (q, t, a, n) in self.watches if q == pid]

    def insert_watch(self, p: Proc, t: int, addr: int, n: int) -> None:
        key = (p.p_pid, t, addr, n)
        if key in self.watches:
            return
        sp = engine_of(p)
        # (begin 15 bytes early: an access that starts before addr may cover it)
        h = sp.uc.hook_add(_WATCH_TYPES[t], self._on_watch, p.p_pid,
                           max(0, addr - 15), addr + n - 1)
        self.watches[key] = (sp, h)
        self._insn_update(sp)

    def remove_watch(self, pid: int, t: int, addr: int, n: int, flush: bool = True) -> None:
        got = self.watches.pop((pid, t, addr, n), None)
        if got is not None:
            sp, h = got
            sp.uc.hook_del(h)
            self._insn_update(sp, flush)

    def _insn_update(self, sp: Any, flush: bool = True) -> None:
        """Keep a per-instruction hook on sp exactly while it has watchpoints."""
        want = any(s is sp for s, _ in self.watches.values())
        have = self._insn.get(id(sp))
        if want and have is None:
            nat = self.m.native
            if nat is not None:
                h = ctypes.c_size_t()
                err = uclib.uc_hook_add(sp.uch, ctypes.byref(h), UC_HOOK_CODE,
                                        nat.block_hook, None, ctypes.c_uint64(1),
                                        ctypes.c_uint64(0))
                if err:
                    raise UcError(err)
                self._insn[id(sp)] = (sp, "native", h.value)
            else:
                self._insn[id(sp)] = (sp, "py", sp.uc.hook_add(UC_HOOK_CODE, self._on_insn_py))
        elif not want and have is not None:
            del self._insn[id(sp)]
            _, kind, h = have
            if kind == "native":
                uclib.uc_hook_del(sp.uch, ctypes.c_size_t(h))
            else:
                sp.uc.hook_del(h)
        else:
            return
        if flush:
            sp.uc.ctl_flush_tb()

    # -- processes ------------------------------------------------------------------
    def clone(self, p1: Proc, p2: Proc) -> None:
        """p2 was forked from p1: it starts with copies of p1's points."""
        for (pid, addr) in list(self.bps):
            if pid == p1.p_pid:
                self.insert_bp(p2, addr)
        for (t, addr, n) in self.watches_of(p1.p_pid):
            self.insert_watch(p2, t, addr, n)

    def drop(self, pid: int, flush: bool = True) -> None:
        """pid's points go (its image went, or gdb left it). flush=False: the
        process exits (inside its own trap): its code never runs again."""
        for (q, addr) in [k for k in self.bps if k[0] == pid]:
            self.remove_bp(q, addr, flush)
        for (t, addr, n) in self.watches_of(pid):
            self.remove_watch(pid, t, addr, n, flush)

    def drop_all(self) -> None:
        for pid in {k[0] for k in self.bps} | {k[0] for k in self.watches}:
            self.drop(pid)
