"""Driving nbemu from Python: load a NetBSD program, hook its system calls and
the kernel's LWP events, run it a bounded number of turns, look at its LWPs,
registers and memory, and continue to the end.

    from nbemu.emu.api import Emulator

    emu = Emulator("prog", ["arg"], ncpu=2, deterministic=True, seed=1)

    @emu.on_syscall("_lwp_unpark")                 # before the kernel serves it
    def unpark(call):
        print(call.lwp.lid, call.name, call.args["target"], hex(call.args["hint"]))

    @emu.on_syscall("___lwp_park60", when="after")  # with its result
    def parked(call):
        print(call.lwp.lid, call.error_name or call.retval)

    @emu.on_event("create", "exit")                 # the kernel's event stream
    def lifecycle(ev):
        print(ev.kind, ev.lwp.lid, ev.data)

    emu.run(turns=100)          # None: still running after 100 vCPU turns
    for t in emu.lwps():
        print(t.lid, t.name, t.state, hex(t.pc), t.backtrace())
    print(emu.read(emu.symbol("counter"), 8))
    status = emu.run()          # to the end: the exit status, as nbemu's

A *turn* is one pass of the run loop: the scheduler gives a vCPU the host and
its LWP runs until it traps into the kernel and leaves the CPU, or its time
slice ends. `Emulator.pause()` (from a hook) ends the current turn at once
and makes `run` return before the next one.

Nothing here costs anything unless used: before-hooks wrap the kernel's
system-call entry, after-hooks share the kernel's after-call slot with
--strace (`emu.trace.add_syscall_hook`), event hooks are kernel listeners,
and turn counting wraps `Kernel.pick_cpu` — all on this session only.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from nbemu.syscalls.errno import errno_name
from nbemu.syscalls.lwp import Lwp
from nbemu.syscalls.table import SYSENT, name_of

from .boot import Options, Session
from .trace import add_syscall_hook, lwp_name


class EmuError(Exception):
    """A request the API cannot satisfy (unmapped memory, unknown LWP, ...)."""


class _Pause(Exception):
    """Raised from the run loop's scheduler call to return control to the caller."""


class LwpView:
    """One LWP of the guest, read live from the kernel."""

    def __init__(self, emu: "Emulator", l: Lwp) -> None:
        self._emu = emu
        self.l = l

    lid = property(lambda self: self.l.l_lid)
    name = property(lambda self: lwp_name(self.l))
    state = property(lambda self: self.l.l_stat.name)          # "LSONPROC", "LSSLEEP", ...
    cpu = property(lambda self: self.l.l_cpu.ci_index if self.l.l_cpu is not None else None)
    wmesg = property(lambda self: self.l.l_wmesg if self.l.l_stat.name == "LSSLEEP" else "")
    park_hint = property(lambda self: self.l.l_park_hint)

    @property
    def has_context(self) -> bool:
        m = self._emu.machine
        return self.l.l_md is not None or self.l is m.loaded

    @property
    def regs(self) -> dict[str, int]:
        """The LWP's user registers (for a running LWP: live; else its saved context)."""
        if not self.has_context:
            raise EmuError(f"lid {self.lid} has no register context ({self.state})")
        m = self._emu.machine
        names = [n for n, _ in m.abi.report_regs]
        vals = m.regs_get(self.l, [r for _, r in m.abi.report_regs])
        return dict(zip(names, vals))

    def set_reg(self, name: str, value: int) -> None:
        m = self._emu.machine
        ids = dict(m.abi.report_regs)
        if name not in ids:
            raise EmuError(f"no register {name!r} (known: {', '.join(ids)})")
        m.regs_set(self.l, (ids[name],), (value,))

    @property
    def pc(self) -> int:
        m = self._emu.machine
        return m.regs_get(self.l, (m.abi.pc_reg,))[0]

    @property
    def sp(self) -> int:
        m = self._emu.machine
        return m.regs_get(self.l, (m.abi.sp_reg,))[0]

    def backtrace(self) -> list[str]:
        """`0x401234 worker+0x14`, innermost first (CFI or frame pointers)."""
        from .crash import Symbols, backtrace
        sym = Symbols.of(self._emu.session)
        return [f"{pc:#x} {sym.name(pc) or '??'}" for pc, _ in backtrace(self._emu.session, self.l)]

    def waits_on(self) -> str:
        """What the LWP waits for, in words (as the deadlock report says it)."""
        from .crash import waits_on
        return waits_on(self._emu.session, self.l)[0]

    @property
    def recent_syscalls(self) -> list[str]:
        from .crash import recent_syscalls
        return recent_syscalls(self.l)

    def __repr__(self) -> str:
        return f"<LwpView lid {self.lid} {self.name!r} {self.state}>"


class SyscallCall:
    """One system call seen by a hook: before it is served (`error`/`retval` are
    None) or after (`error` 0 or an errno; `retval` the first result register)."""

    def __init__(self, emu: "Emulator", l: Lwp, code: int, values: tuple, when: str) -> None:
        self.emu = emu
        self.lwp = LwpView(emu, l)
        self.code = code
        self.name = name_of(code)
        self.when = when
        self.values = tuple(values)
        ent = SYSENT.get(code)
        specs = [s.name for s in ent.args] if ent is not None else []
        self.args: dict[str, int] = {n: v for n, v in zip(specs, values) if n != "PAD"}
        self.error: int | None = None
        self.retval: int | None = None

    @property
    def error_name(self) -> str | None:
        return errno_name(self.error) if self.error else None

    def __repr__(self) -> str:
        a = ", ".join(f"{k}={v:#x}" if v > 0xFFFF else f"{k}={v}" for k, v in self.args.items())
        res = "" if self.when == "before" else (
            f" = -1 {self.error_name}" if self.error else f" = {self.retval}")
        return f"<{self.lwp.lid} {self.name}({a}){res}>"


class Event:
    """One event of the kernel's stream: kind ("create", "run", "sleep", "wakeup",
    "unpark", "exit", "signal", ...), the LWP, its data, the time in ns."""

    def __init__(self, emu: "Emulator", kind: str, l: Lwp, data: dict) -> None:
        self.kind = kind
        self.lwp = LwpView(emu, l)
        self.data = {k: v for k, v in data.items() if k != "t"}
        self.t = data.get("t", 0)

    def __repr__(self) -> str:
        return f"<Event {self.kind} lid {self.lwp.lid} {self.data}>"


def _names(spec: str | Iterable[str] | None) -> set[str] | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = [spec]
    out = set(spec)
    known = {e.name for e in SYSENT.values()}
    bad = out - known
    if bad:
        raise EmuError(f"unknown system call(s): {', '.join(sorted(bad))}")
    return out


class Emulator:
    """A NetBSD program loaded into nbemu, not yet running.

    Options are nbemu's: ncpu, deterministic, seed, root, env (the guest's
    environment; default nbemu's own), argv0, strace (a file object), trace (a
    --trace class list), timeline (a file name). The guest writes to the host's
    file descriptors 1 and 2, as under the command line."""

    def __init__(self, program: str | os.PathLike, args: Iterable[str] = (), **options: Any) -> None:
        opts = Options(**options)
        self.session = Session(str(program), [str(a) for a in args], opts)
        self.kernel = self.session.kernel
        self.machine = self.session.machine
        self.status: int | None = None
        self.turns = 0
        self._budget: int | None = None
        self._before: list[tuple[set[str] | None, Callable]] = []
        self._after: list[tuple[set[str] | None, Callable]] = []
        self._events: list[tuple[set[str] | None, Callable]] = []
        self._pause = False
        k = self.kernel
        orig_pick = k.pick_cpu

        def pick_cpu():
            if self._pause or (self._budget is not None and self._budget <= 0):
                self._pause = False
                raise _Pause()
            if self._budget is not None:
                self._budget -= 1
            self.turns += 1
            return orig_pick()
        k.pick_cpu = pick_cpu             # this kernel only (an instance attribute)

    # -- hooks ---------------------------------------------------------------------------------
    def on_syscall(self, names: str | Iterable[str] | None = None, when: str = "before",
                   fn: Callable[[SyscallCall], Any] | None = None):
        """Call fn(SyscallCall) before (or `when="after"`) each system call named in
        `names` (None: all). Usable as a decorator."""
        if when not in ("before", "after"):
            raise EmuError("when must be 'before' or 'after'")
        sel = _names(names)

        def register(f: Callable[[SyscallCall], Any]) -> Callable[[SyscallCall], Any]:
            if when == "before":
                if not self._before:
                    self._wrap_syscall_entry()
                self._before.append((sel, f))
            else:
                if not self._after:
                    add_syscall_hook(self.kernel, self._after_hook)
                self._after.append((sel, f))
            return f
        return register(fn) if fn is not None else register

    def on_event(self, *kinds: str, fn: Callable[[Event], Any] | None = None):
        """Call fn(Event) for each kernel event of these kinds (none given: all)."""
        sel = set(kinds) or None

        def register(f: Callable[[Event], Any]) -> Callable[[Event], Any]:
            if not self._events:
                self.kernel.listeners.append(self._event_hook)
            self._events.append((sel, f))
            return f
        return register(fn) if fn is not None else register

    def _wrap_syscall_entry(self) -> None:
        k = self.kernel
        orig = k.syscall

        def syscall(l: Lwp, vals: list[int]) -> None:
            code, decoded = k.decode_args(l, vals)
            values = decoded if isinstance(decoded, tuple) else ()
            call = None
            for sel, f in self._before:
                if sel is None or name_of(code) in sel:
                    call = call or SyscallCall(self, l, code, values, "before")
                    f(call)
            orig(l, vals)
        k.syscall = syscall               # this kernel only (an instance attribute)

    def _after_hook(self, l: Lwp, code: int, args: tuple, error: int, retval: list) -> None:
        call = None
        nm = name_of(code)
        for sel, f in self._after:
            if sel is None or nm in sel:
                if call is None:
                    call = SyscallCall(self, l, code, args, "after")
                    call.error, call.retval = int(error), retval[0]
                f(call)

    def _event_hook(self, kind: str, l: Lwp, data: dict) -> None:
        ev = None
        for sel, f in self._events:
            if sel is None or kind in sel:
                ev = ev or Event(self, kind, l, data)
                f(ev)

    # -- running -----------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.status is not None

    def run(self, turns: int | None = None) -> int | None:
        """Run `turns` more turns (None: to the end). Returns the exit status once the
        guest has ended (exited, was killed, deadlocked: 125), else None."""
        if self.status is not None:
            return self.status
        self._budget = turns
        try:
            self.status = self.session.run()
        except _Pause:
            return None
        finally:
            self._budget = None
        return self.status

    def step(self, turns: int = 1) -> int | None:
        """run(turns=1): one vCPU turn."""
        return self.run(turns)

    def pause(self) -> None:
        """From a hook: end the current turn now and return from run()."""
        self._pause = True
        self.machine.request_stop()

    # -- inspection ----------------------------------------------------------------------------------
    @property
    def proc(self):
        return self.kernel.proc

    def lwps(self) -> list[LwpView]:
        return [LwpView(self, l) for _, l in sorted(self.proc.p_lwps.items())]

    def lwp(self, lid: int) -> LwpView:
        l = self.proc.lwp_find(lid)
        if l is None:
            raise EmuError(f"no LWP {lid}")
        return LwpView(self, l)

    def read(self, addr: int, n: int) -> bytes:
        data = self.proc.p_vmspace.copyin(addr, n)
        if isinstance(data, int):
            raise EmuError(f"cannot read {n} bytes at {addr:#x}: {errno_name(data)}")
        return bytes(data)

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")

    def read_str(self, addr: int, limit: int = 4096) -> bytes:
        s = self.proc.p_vmspace.copyinstr(addr, limit)
        if isinstance(s, int):
            raise EmuError(f"cannot read a string at {addr:#x}: {errno_name(s)}")
        return bytes(s)

    def write(self, addr: int, data: bytes) -> None:
        """Write guest memory (its protections apply, as for copyout)."""
        err = self.proc.p_vmspace.copyout(bytes(data), addr)
        if err:
            raise EmuError(f"cannot write {len(data)} bytes at {addr:#x}: {errno_name(err)}")

    def symbol(self, name: str) -> int:
        """The address of an ELF symbol of the program."""
        from .crash import Symbols
        a = Symbols.of(self.session).address(name)
        if a is None:
            raise EmuError(f"no symbol {name!r}")
        return a

    def symbolize(self, addr: int) -> str | None:
        """`name+0xoff` of an address, or None."""
        from .crash import Symbols
        return Symbols.of(self.session).name(addr)

    def wait_for_report(self) -> str:
        """The deadlock detector's wait-for report of the current state."""
        from .crash import wait_for_report
        return "\n".join(wait_for_report(self.session))

    def schedule_hash(self) -> str:
        return self.session.schedule_hash()
