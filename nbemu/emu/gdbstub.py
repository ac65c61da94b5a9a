"""A GDB remote stub for the guest: `nbemu -g PORT PROGRAM` (qemu-user's spelling),
`-g HOST:PORT`, or `-g unix:/path`.

    nbemu -g 1234 ./prog &          # waits for gdb before the first instruction
    gdb-multiarch -ex 'target remote :1234'

`-g PORT` listens on 127.0.0.1 only (qemu-user listens on every interface);
`-g 0` picks a free port and prints it ("nbemu: waiting for gdb on port N",
with the gdb command to use). Debian's gdb and gdb-multiarch know no NetBSD OS
ABI: a file they sniff as NetBSD's makes them reject the target description
and cut pointers to 32 bits. So gdb, given no file, fetches the program's path
(qXfer:exec-file) and reads the program through the stub (vFile, in
emu/gdb_hostio.py) with its NetBSD markers hidden, and the target description
says `<osabi>none</osabi>`. A local file needs `-iex 'set osabi none'` before
it. gdb 13 cannot open a Unix socket itself: relay it, e.g.
`target remote | socat - UNIX-CONNECT:/path`. Architectures:
amd64, aarch64, earmv7hf and i386 (their target descriptions:
guest/arch/gdb_target.py; all but amd64 need gdb-multiarch).

What gdb sees
-------------
- Every LWP is a gdb thread whose id is the LWP id (`_lwp_self()`), the first
  one being the process id; `p<pid>.<lid>` once gdb offers multiprocess+.
  `info threads` shows each LWP's name (`_lwp_setname`) and its NetBSD
  state: "running on vCPU n", "runnable on vCPU n", "parked on hint 0x...",
  "sleeping on <wmesg>", "suspended", "zombie" (qThreadExtraInfo /
  qXfer:threads:read). Exited LWPs leave the list.
- Processes (gdbserver's multiprocess model on Linux): the stub debugs a set of
  processes, gdb's inferiors (`attached`): the first, and, when gdb offers
  fork-events+/vfork-events+ (with multiprocess+), every child a debugged
  process forks, stopped with it (`T05fork:p<child>.<lid>;thread:...`) until
  gdb resumes or detaches it (`D;pid`). The kernel's events (a listener:
  fork, vfork_done, exec, proc_exit) become the stops `vfork`, `vforkdone`,
  `exec:<hex path>` (the new program's host path, served by vFile) and
  `W<st>;process:<pid>`. A stop that comes inside a system call is reported
  before the LWP's user code runs (Machine.run checks stop_pending after
  entering the kernel). Stops that come together (a vfork child's exec and
  its parent's vforkdone) are queued: each is reported in turn, the next
  one at the next resume, before anything runs. Processes not debugged are
  never held. `vKill;pid` of a child kills it alone (SIGKILL); of the first
  process it ends nbemu, as the first process's end always does.
- Breakpoints and watchpoints are per process (emu/gdb_points.py): hooks on
  that process's engine for Hg's process, filtered by pid (a vfork child
  shares its parent's engine); a fork child starts with copies (gdb removes
  them before detaching it, as with ptrace's copied int3s); exec and exit
  drop them. Memory packets address Hg's process, and so does the library
  list (qXfer:libraries, emu/gdb_solib.py): each process has its view, a
  fork child a copy of its parent's, an exec a new one (Machine.last_exec:
  where the program and its ld.elf_so landed), each with its own watch on
  _rtld_debug_state.
- All-stop: when one LWP stops (breakpoint, watchpoint, step, signal, Ctrl-C)
  every vCPU stops — the emulator's single run loop simply does not take its
  next turn — and the stop reply names the LWP that stopped. `vCont` actions
  are per thread; an LWP without an action stays stopped (held) while the
  others run. A held LWP keeps its state: if it was on a vCPU it stays there,
  yielding that vCPU to queued LWPs that may run.
- Registers and memory of any LWP, running or blocked in a system call: an LWP
  blocked in a system call shows the PC after its `syscall` instruction.
  Memory goes through the guest's VM map: unmapped or PROT_NONE addresses give
  `E14` (EFAULT), never a crash; a write may patch read-only text (as ptrace
  does) and drops translated code of the range.
- Software breakpoints (Z0, and Z1 treated alike) are Unicorn code hooks on the
  one address, on the engine of one process: other code runs untouched.
  Stops report `swbreak`, with the PC at the breakpoint.
- Watchpoints (Z2 write, Z3 read, Z4 access) are Unicorn memory hooks on the
  range; the stop is exact — after the accessing instruction, in the LWP that
  made the access (`T05watch:ADDR;thread:LID;`). While any watchpoint is set,
  every instruction carries a native no-op hook so that the stop can land on
  the next instruction boundary (in --deterministic mode this also makes the
  virtual clock and the block budget count instructions). Writes the kernel
  itself makes (read(2) into the watched variable) are not seen.
- Single step (s, vCont;s) runs one instruction of one LWP: a `syscall`
  instruction counts as one, however long the LWP then sleeps.
- Signals: a fault (SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTRAP of an int3) stops
  the process with `T<sig>` before it is delivered; continuing with the signal
  (gdb's default for these) delivers it and usually ends the program with
  `X<sig>`; continuing without it re-executes the instruction. A signal given
  in C/S/vCont for another LWP is posted to it.
- The end: `W<status>` when the program exits, `X<sig>` when a signal kills it.
  A guest deadlock (every LWP blocked, no timeout pending) is first reported as
  a SIGSTOP stop so the blocked LWPs can be inspected; continuing then ends the
  program with nbemu's deadlock report and exit status 125 (`W7d`).
- `k` / `vKill` kill the guest (nbemu exits 137). `D` detaches: breakpoints and
  watchpoints are removed and the guest runs on to its end without the
  debugger; so does a guest whose gdb disconnects without detaching.

Protocol robustness: packets with a bad checksum are refused with '-' (in
acknowledgement mode) and ignored; packets longer than PacketSize are dropped
and answered `E01`; malformed packets get `E01`, unknown threads `E02`, bad
addresses `E14`, unsupported packets the empty reply. Nothing gdb sends can
raise a Python exception out of the stub: an unexpected one becomes `E01` and
one line on stderr.

Cost without -g: nothing — Machine.debugger is None and the run loop tests it
once per turn. With -g the native block hook is always installed (so that a
Ctrl-C can stop a guest that makes no system call).
"""
from __future__ import annotations

import copy
import os
import sys
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from unicorn import UC_HOOK_CODE, UcError

from nbemu.syscalls.kern_synch import preempt
from nbemu.syscalls.lwp import (LSIDL, LSONPROC, LSRUN, LSSLEEP, LSSTOP, LSSUSPENDED, LSZOMB,
                                Lwp, Proc)

from .gdb_conn import PACKET_SIZE, Conn, Listener
from .gdb_hostio import HostIO
from .gdb_points import Points, engine_of
from .gdb_solib import SharedLibraries, for_exec, for_session
from .gdb_regs import RegFile

if TYPE_CHECKING:
    from .boot import Session

SIGINT, SIGTRAP, SIGKILL, SIGSTOP = 2, 5, 9, 17     # same numbers for gdb and NetBSD

E_MALFORMED = "E01"
E_THREAD = "E02"
E_FAULT = "E14"
E_NOTSUP = "E03"

_RESUMED = object()      # a handler resumed the guest: the reply is the next stop
_GONE = object()         # the session with gdb ended (detach, kill, disconnect)

# The kernel events (Kernel.event) that matter to the stub: process life.
_PROC_EVENTS = frozenset(("fork", "vfork_done", "exec", "proc_exit"))

# gdb's signal numbers equal NetBSD's for 1..28 and 30..32; NetBSD's SIGINFO (29)
# is gdb's 142; NetBSD's real-time signals 33..63 are gdb's REALTIME_33.. (45..).
_GDB_SIGINFO = 142


def sig_to_gdb(sig: int) -> int:
    if sig == 29:
        return _GDB_SIGINFO
    if 33 <= sig <= 63:
        return sig + 12
    return sig if 0 <= sig <= 32 else 143          # GDB_SIGNAL_UNKNOWN


def sig_from_gdb(g: int) -> int:
    if g == _GDB_SIGINFO:
        return 29
    if 45 <= g <= 75:
        return g - 12
    return g if 0 <= g <= 32 and g != 29 else 0


def lwp_state(l: Lwp) -> str:
    """An LWP's NetBSD state in words (qThreadExtraInfo)."""
    st = l.l_stat
    ci = l.l_cpu.ci_index if l.l_cpu is not None else "?"
    if st == LSONPROC:
        return f"running on vCPU {ci}"
    if st == LSRUN:
        return f"runnable on vCPU {ci}"
    if st == LSSLEEP:
        if l.l_wmesg == "parked":
            return f"parked on hint {l.l_park_hint:#x}"
        return f"sleeping on {l.l_wmesg or 'a wait channel'}"
    if st == LSSUSPENDED:
        return "suspended"
    if st == LSZOMB:
        return "zombie"
    if st == LSSTOP:
        return "stopped"
    if st == LSIDL:
        return "being created"
    return str(st)


class Stop:
    __slots__ = ("kind", "lwp", "sig", "addr", "other")

    def __init__(self, kind: str, lwp: Lwp | None, sig: int, addr: int = 0,
                 other: Any = None) -> None:
        self.kind, self.lwp, self.sig, self.addr = kind, lwp, sig, addr
        self.other = other           # fork/vfork: the child's LWP; exec: the path; exit: the Proc


class GdbStub:
    """The debugger front end of one Session (see the module docstring)."""

    def __init__(self, session: "Session", spec: str) -> None:
        self.session = session
        self.m = m = session.machine
        self.k = session.kernel
        self.first = session.kernel.proc     # nbemu ends with it
        # The processes gdb debugs (gdb's inferiors): the first, and with fork
        # events the children of debugged processes until gdb detaches them.
        self.attached: dict[int, Proc] = {self.first.p_pid: self.first}
        self.exe: dict[int, str] = {self.first.p_pid: os.path.abspath(session.path)}
        self.multiprocess = False    # gdb's qSupported offers (p<pid>.<lid> thread ids)
        self.fork_events = self.vfork_events = self.exec_events = False
        self.regs = RegFile(m)
        self.listener = Listener(spec)
        self.conn: Conn | None = None
        self.active = True           # False once detached: every hook is inert
        self.stop_pending = False    # polled by Machine.run at each turn
        self._event: Stop | None = None
        self._intr = False
        self._eof = False
        # (pid, lid) -> (action, gdb signal); lid -1: every LWP of the process
        self.actions: dict[tuple[int, int], tuple[str, int]] = {}
        self.default_action: tuple[str, int] | None = None
        # Thread ids are (pid, lid); 0: any (the stopped one), -1: all.
        self.g_tid = (0, 0)          # Hg: whose registers and memory g/p/m/Z address
        self.c_tid = (0, 0)          # Hc: the thread of legacy c/s
        self.last: Lwp | None = None  # the LWP of the last stop
        self.last_reply = "S05"
        self.last_ev: Stop | None = None
        self.points = Points(m, self._on_breakpoint, self._on_watch, self._on_insn_py)
        self._queued: list[Stop] = []   # stops that came while one was pending
        self.step_lwp: Lwp | None = None
        self._step_started = False
        self._step_hook: tuple[Any, Any] | None = None    # (engine, hook)
        self._spins = 0
        self._deadlock_reported = False
        self._signal_lwp: Lwp | None = None    # the LWP whose fault gdb is deciding on
        self._signal_decision = 0
        self._swbreak = False
        self._thread_list: list[str] = []
        self._threads_xml = b""
        self._libraries_xml = b""
        # The OS ABI gdb should use when the file says nothing (emu/gdb_hostio.py
        # hides the program's NetBSD markers, which Debian's gdb cannot handle).
        self._tdesc = _with_osabi(self.regs.xml, "none")
        self.hostio = HostIO(session.path)
        # A dynamic program: its shared objects (qXfer:libraries:read) and a watch
        # on ld.elf_so's _rtld_debug_state that reports changes as `library` stops.
        # A dynamic program's shared objects (qXfer:libraries:read), per process
        # (a fork child starts with its parent's view, an exec makes a new one),
        # and a watch on ld.elf_so's _rtld_debug_state that reports changes as
        # `library` stops.
        self.solibs: dict[int, SharedLibraries | None] = {self.first.p_pid: for_session(session)}
        self._solib_hooks: dict[int, tuple[Any, Any]] = {}     # pid -> (engine, hook)
        self._solib_watch(self.first)
        m.debugger = self
        m._install_block_hook()      # so that Ctrl-C can stop code that makes no syscall
        session._finishers.append(self._finish)
        self.k.listeners.append(self._on_kernel_event)
        first = min(self.first.p_lwps.values(), key=lambda x: x.l_lid)
        self._set_event(Stop("start", first, SIGTRAP))
        print(f"nbemu: waiting for gdb on {self.listener.where} "
              f"(gdb-multiarch -ex 'target remote {self.listener.gdb_target}')",
              file=sys.stderr, flush=True)

    # ====================================================================
    # Hooks called by Machine.run (the emulator's thread)
    # ====================================================================
    def stopped(self) -> None:
        """A stop is pending: every vCPU is between turns. Report it and serve
        gdb until it resumes the guest (or leaves)."""
        self.stop_pending = False
        ev, self._event = self._event, None
        intr, self._intr = self._intr, False
        nat = self.m.native
        if nat is not None:
            nat.preempt.value = 0
        if not self.active:
            return
        self._clear_step()
        if self._eof:
            self._detach("gdb disconnected")
            return
        if ev is None:
            if not intr:
                return
            ev = Stop("intr", self._focus_lwp(), SIGINT)
        self._report(ev)

    def _action(self, l: Lwp) -> tuple[str, int] | None:
        """What gdb's last resume said l does (None: it stays stopped)."""
        a = self.actions
        if a:
            pid = l.l_proc.p_pid
            got = a.get((pid, l.l_lid)) or a.get((pid, -1))
            if got is not None:
                return got
        return self.default_action

    def hold(self, ci: Any, l: Lwp) -> bool:
        """May l take its turn on ci? True: it is held by gdb (not resumed).
        Processes gdb does not debug (children it detached or was never told
        of) are never held."""
        if (not self.active or self._action(l) is not None
                or l.l_proc.p_pid not in self.attached):
            self._spins = 0
            self._deadlock_reported = False
            return False
        st = self.step_lwp
        if st is not None and st.l_stat == LSZOMB:
            # The LWP gdb was stepping exited (a `syscall` of _lwp_exit): the step
            # can never complete; let every LWP run so that the program goes on.
            self._clear_step()
            self.default_action = ("c", 0)
            return False
        if ci.spc_count:
            preempt(self.k, ci)              # let queued LWPs that may run have the vCPU
        self._spins += 1
        if self._spins > 4 * len(self.k.cpus) + 8:
            # Nothing that gdb resumed can run: wait for gdb (Ctrl-C) or a timeout.
            self._spins = 0
            self._wait(self.k.callout.next_deadline())
        return True

    def idle(self, deadline: int | None) -> bool:
        """No vCPU has work. True: handled here (waited, or a stop is pending);
        False: let the machine go on (a deadlock that was already reported)."""
        if not self.active:
            return False
        if deadline is None:
            if self._deadlock_reported:
                return False
            self._deadlock_reported = True
            print("nbemu: every LWP is blocked (deadlock): stopped for gdb with SIGSTOP; "
                  "continuing ends the program (exit 125)", file=sys.stderr, flush=True)
            self._set_event(Stop("deadlock", self._focus_lwp(), SIGSTOP))
            return True
        self._wait(deadline)
        return True

    def on_signal(self, l: Lwp, sig: int) -> int:
        """A synchronous signal (a fault) of LWP l, about to be posted: stop for
        gdb first. Returns the signal to post (0: gdb discarded it)."""
        if not self.active or self.conn is None or l.l_proc.p_pid not in self.attached:
            return sig
        self._clear_step()
        self._signal_lwp, self._signal_decision = l, 0
        try:
            self._report(Stop("signal", l, sig_to_gdb(sig)))
        finally:
            self._signal_lwp = None
        if not self.active:
            return sig                   # detached while stopped: as without gdb
        if l.l_proc.p_exiting:
            return 0
        return sig_from_gdb(self._signal_decision)

    # ====================================================================
    # Hooks called from Unicorn callbacks (inside emu_start)
    # ====================================================================
    def _set_event(self, ev: Stop, queue: bool = False) -> None:
        """The stop to report at the next turn boundary; with queue, one that
        must not be lost when another is pending (a process's fork, exec or
        exit): it is reported at the next resume, before anything runs."""
        if self._event is None:
            self._event = ev
        elif queue:
            self._queued.append(ev)
        self.stop_pending = True

    # -- processes: fork, vfork, exec and exit (a kernel listener) ---------------
    def _on_kernel_event(self, kind: str, l: Lwp, data: dict) -> None:
        """The kernel's fork, vfork_done, exec and proc_exit events of the
        processes gdb debugs become gdb's fork/vfork/vforkdone/exec stops and
        process exits (gdbserver's reports on Linux). Without the matching
        qSupported feature a fork child is not debugged: it runs unseen."""
        if kind not in _PROC_EVENTS or not self.active:
            return
        p = l.l_proc
        pid = p.p_pid
        if pid not in self.attached:
            return
        if kind == "fork":
            p2 = self.k.allproc.get(data["child"])
            if p2 is None or not p2.p_lwps:
                return
            vfork = p2.p_vmspace is p.p_vmspace
            if not (self.vfork_events if vfork else self.fork_events):
                return
            self.attached[p2.p_pid] = p2
            self.exe[p2.p_pid] = self.exe.get(pid, self.hostio.path)
            view = self.solibs.get(pid)
            self.solibs[p2.p_pid] = copy.copy(view) if view is not None else None
            self._solib_watch(p2)
            self.points.clone(p, p2)
            self.m._install_block_hook(engine_of(p2))   # Ctrl-C reaches its code
            child = min(p2.p_lwps.values(), key=lambda x: x.l_lid)
            self._set_event(Stop("vfork" if vfork else "fork", l, SIGTRAP, other=child),
                            queue=True)
        elif kind == "vfork_done":
            if not self.vfork_events:
                return
            self._set_event(Stop("vforkdone", l, SIGTRAP), queue=True)
        elif kind == "exec":
            path = self._host_path(p.p_path)
            self.exe[pid] = path
            res = getattr(self.m, "last_exec", None)
            self.solibs[pid] = for_exec(res, self.session.opts.root) if res is not None else None
            self._solib_watch(p)
            self.hostio.allow(path)
            if not self.exec_events:
                return
            # The old image and its points are gone; gdb inserts them anew.
            self.points.drop(pid)
            self.m._install_block_hook(engine_of(p))
            self._set_event(Stop("exec", l, SIGTRAP, other=path), queue=True)
        elif kind == "proc_exit":
            if p is self.first:
                return                   # nbemu ends: _finish reports it
            self.points.drop(pid, flush=False)   # (before its engine goes to the pool)
            self._forget(pid)
            self._set_event(Stop("exited", l, 0, other=p), queue=True)
        else:
            return
        self.m.request_stop()

    def _host_path(self, guest: str) -> str:
        """The host file of a guest program path (inside --root)."""
        root = self.session.opts.root
        if root in ("", "/"):
            return os.path.abspath(guest)
        return os.path.join(os.path.abspath(root), guest.lstrip("/"))

    def _forget(self, pid: int) -> None:
        """pid is no longer debugged (it exited or gdb detached it)."""
        self.attached.pop(pid, None)
        self._solib_unwatch(pid)
        self.solibs.pop(pid, None)
        self.actions = {k: v for k, v in self.actions.items() if k[0] != pid}
        if self.last is not None and self.last.l_proc.p_pid == pid:
            self.last = None
        st = self.step_lwp
        if st is not None and st.l_proc.p_pid == pid:
            self._clear_step()

    def _on_breakpoint(self, uc, addr, size, user) -> None:
        if self._event is not None or not self.active:
            return
        l = self.m.curlwp
        # (a vfork child runs on its parent's engine: its parent's points are not its own)
        if l is None or l.l_proc.p_pid != user or not self.points.has_bp(user, addr):
            return
        if l is self.step_lwp and not self._step_started:
            return                   # the step's own first instruction: the step hook decides
        self._set_event(Stop("swbreak", l, SIGTRAP, addr))
        self.m.request_stop()

    def _solib_watch(self, p: Proc) -> None:
        """Watch p's _rtld_debug_state (its view's), on p's engine."""
        self._solib_unwatch(p.p_pid)
        view = self.solibs.get(p.p_pid)
        if view is None or view.debug_state is None:
            return
        sp = engine_of(p)
        a = view.debug_state
        self._solib_hooks[p.p_pid] = (sp, sp.uc.hook_add(UC_HOOK_CODE, self._on_solib_event,
                                                         p.p_pid, a, a))

    def _solib_unwatch(self, pid: int) -> None:
        got = self._solib_hooks.pop(pid, None)
        if got is not None:
            got[0].uc.hook_del(got[1])

    def _on_solib_event(self, uc, addr, size, user) -> None:
        """ld.elf_so calls _rtld_debug_state around every change of its object
        list: when the list differs from what gdb last read, stop with a
        `library` reply (gdb re-reads the list, resolves pending breakpoints and
        resumes by itself)."""
        if self._event is not None or not self.active or self.conn is None:
            return
        l = self.m.curlwp
        view = self.solibs.get(user)
        if l is None or l.l_proc.p_pid != user or user not in self.attached or view is None:
            return
        if view.objects(lambda a, n: self._read_mem(a, n, l.l_proc)) != view.reported:
            self._set_event(Stop("library", self.m.curlwp, SIGTRAP))
            self.m.request_stop()

    def _on_step(self, uc, addr, size, user) -> None:
        l = self.m.curlwp
        if l is not self.step_lwp or not self.active:
            return
        if not self._step_started:
            self._step_started = True
            return
        if self._event is None:
            self._set_event(Stop("step", l, SIGTRAP))
        self.m.request_stop()

    def _on_watch(self, uc, access, address, size, value, user) -> None:
        if self._event is not None or not self.active:
            return
        l = self.m.curlwp
        if l is None or l.l_proc.p_pid != user:
            return
        kind = _ACCESS.get(access, 0)
        end = address + size
        for (t, a, n) in self.points.watches_of(user):
            if a < end and address < a + n and (t == 4 or t == kind):
                name = {2: "watch", 3: "rwatch", 4: "awatch"}[t]
                self._set_event(Stop(name, self.m.curlwp, SIGTRAP, a))
                self._stop_after_insn()
                return

    def _stop_after_insn(self) -> None:
        """Stop at the next instruction boundary. Not uc_emu_stop() here: from a
        memory hook it leaves the PC on the accessing instruction, already done,
        which would then run twice."""
        nat = self.m.native
        if nat is not None:
            nat.preempt.value = 1            # the per-instruction native hook stops
        # else: the Python per-instruction hook sees self._event and stops

    def _on_insn_py(self, uc, addr, size, user) -> None:
        if self._event is not None:
            self.m.request_stop()

    def _on_interrupt(self) -> None:
        """Reader thread: gdb sent 0x03. gdb sends it only after a resume packet,
        which the emulator's thread may not have taken yet: so the request is
        recorded even now, and dropped by _serve if it reads the 0x03 before any
        resume packet (a stray byte while stopped)."""
        if self.active:
            self._intr = True
            self.stop_pending = True
            self._kick()

    def _on_eof(self) -> None:
        """Reader thread: gdb's connection closed."""
        self._eof = True
        if self.active:
            self.stop_pending = True
            self._kick()

    def _kick(self) -> None:
        """Make a running engine stop at its next block boundary (thread-safe)."""
        nat = self.m.native
        if nat is not None:
            nat.preempt.value = 1
        else:
            self.m._py_budget = 1

    # ====================================================================
    # Stops and the packet loop
    # ====================================================================
    def _focus_lwp(self) -> Lwp | None:
        live = self._live()
        for cand in (self.step_lwp, self.m.curlwp, self.last):
            if cand is not None and cand in live:
                return cand
        return live[0] if live else None

    def _live(self) -> list[Lwp]:
        """The LWPs gdb sees as threads (those with a register context), of
        every process it debugs."""
        out: list[Lwp] = []
        for pid in sorted(self.attached):
            out += sorted((l for l in self.attached[pid].p_lwps.values()
                           if l.l_stat != LSZOMB and (l.l_md is not None or l is self.m.loaded)),
                          key=lambda x: x.l_lid)
        return out

    def _tid(self, l: Lwp) -> str:
        """l's thread id for gdb: p<pid>.<lid> once gdb speaks multiprocess."""
        if self.multiprocess:
            return f"p{l.l_proc.p_pid:x}.{l.l_lid:x}"
        return f"{l.l_lid:x}"

    def _stop_reply(self, ev: Stop) -> str:
        if ev.kind == "exited":
            p = ev.other
            r = (f"X{sig_to_gdb(p.p_xsig):02x}" if p.p_xsig
                 else f"W{(p.p_xstat or 0) & 0xFF:02x}")
            return r + (f";process:{p.p_pid:x}" if self.multiprocess else "")
        r = f"T{ev.sig:02x}"
        if ev.kind in ("watch", "rwatch", "awatch"):
            r += f"{ev.kind}:{ev.addr:x};"
        elif ev.kind == "swbreak" and self._swbreak:
            r += "swbreak:;"
        elif ev.kind == "library":
            r += "library:;"
        elif ev.kind in ("fork", "vfork"):
            r += f"{ev.kind}:{self._tid(ev.other)};"
        elif ev.kind == "vforkdone":
            r += "vforkdone:;"
        elif ev.kind == "exec":
            r += f"exec:{os.fsencode(ev.other).hex()};"
        if ev.lwp is not None:
            r += f"thread:{self._tid(ev.lwp)};"
        return r

    def _report(self, ev: Stop) -> None:
        if ev.lwp is not None and ev.kind != "exited":
            self.last = ev.lwp
        self.g_tid = self.c_tid = (0, 0)
        self.actions, self.default_action = {}, None
        self.last_ev = ev
        self.last_reply = self._stop_reply(ev)
        if self.conn is None:
            if not self._accept():
                return
        else:
            self.conn.send(self.last_reply)
        self._serve()

    def _accept(self) -> bool:
        try:
            sock = self.listener.accept()
        except KeyboardInterrupt:
            print("nbemu: interrupted while waiting for gdb", file=sys.stderr)
            self.listener.close()
            raise SystemExit(130) from None
        except OSError as e:
            print(f"nbemu: gdb stub: accept failed ({e}); running without gdb",
                  file=sys.stderr)
            self._detach(None)
            return False
        self.conn = Conn(sock, self._on_interrupt, self._on_eof)
        return True

    def _serve(self) -> None:
        conn = self.conn
        assert conn is not None
        while True:
            ev = conn.get()
            kind = ev[0]
            if kind == "pkt":
                r = self._dispatch(ev[1])
                if r is _RESUMED or r is _GONE:
                    return
                conn.send(r)
            elif kind == "long":
                conn.send(E_MALFORMED)
            elif kind == "nak":
                conn.resend()
            elif kind == "eof":
                self._detach("gdb disconnected")
                return
            elif kind == "intr":
                # 0x03 while stopped, before any resume packet: nothing to interrupt
                self._intr = False
                self.stop_pending = self._event is not None
            # "bad" was already refused with '-' (in acknowledgement mode)

    def _wait(self, deadline: int | None) -> None:
        """The guest runs but nothing may execute before `deadline` (None: before
        gdb does something): wait for gdb's Ctrl-C or disconnection, or the time."""
        conn = self.conn
        clock = self.k.clock
        if conn is None:
            if deadline is not None:
                clock.wait_until(deadline)
            return
        if deadline is None:
            timeout: float | None = None
        elif clock.virtual:
            timeout = 0.0
        else:
            timeout = max(0.0, (deadline - clock.monotonic_ns()) / 1e9)
        ev = conn.get(timeout) if timeout != 0.0 else conn.get(0.0001)
        if ev is None:
            if deadline is not None:
                clock.wait_until(deadline)
            return
        if ev[0] == "nak":
            conn.resend()
        elif ev[0] == "pkt":
            # In all-stop mode gdb sends nothing but 0x03 while the guest runs.
            conn.send("")
        # "intr" and "eof" already set stop_pending through the reader's callbacks

    # ====================================================================
    # Packet dispatch
    # ====================================================================
    def _dispatch(self, pkt: bytes) -> Any:
        try:
            text = pkt.decode("latin-1")
            if not text:
                return ""
            h = _HANDLERS.get(text[0])
            if h is None:
                return ""
            return h(self, text, pkt)
        except _ProtoError as e:
            return e.reply
        except Exception as e:          # a stub bug must not take the emulator down
            print(f"nbemu: gdb stub: error serving {pkt[:40]!r}: {e!r}", file=sys.stderr)
            return E_MALFORMED

    # -- threads ------------------------------------------------------------
    def _parse_tid(self, s: str) -> tuple[int, int]:
        """A thread id as (pid, lid): LID, or pPID.LID, pPID (all its LWPs); 0
        is any, -1 all; _ProtoError if malformed."""
        if s.startswith("p"):
            ps, dot, ls = s[1:].partition(".")
            pid = -1 if ps == "-1" else _hex(ps)
            return pid, (-1 if not dot or ls == "-1" else _hex(ls))
        return 0, (-1 if s == "-1" else _hex(s))

    def _lwp(self, tid: tuple[int, int], default_to_focus: bool = True) -> Lwp:
        """The live LWP a thread id names; "any" (lid 0 or -1) is the focus
        (the last stop's LWP), within the process when one is named."""
        pid, lid = tid
        live = self._live()
        if lid in (0, -1):
            if default_to_focus:
                cands = [l for l in live if pid in (0, -1) or l.l_proc.p_pid == pid]
                for c in (self.last, self._focus_lwp()):
                    if c is not None and c in cands:
                        return c
                if cands:
                    return cands[0]
            raise _ProtoError(E_THREAD)
        for l in live:
            if l.l_lid == lid and (pid in (0, -1) or l.l_proc.p_pid == pid):
                return l
        raise _ProtoError(E_THREAD)

    def _key(self, l: Lwp) -> tuple[int, int]:
        return l.l_proc.p_pid, l.l_lid

    def _h_H(self, text: str, raw: bytes) -> str:
        if len(text) < 3 or text[1] not in "gc":
            raise _ProtoError(E_MALFORMED)
        tid = self._parse_tid(text[2:])
        if tid[1] not in (0, -1) or tid[0] > 0:
            self._lwp(tid)
        if text[1] == "g":
            self.g_tid = tid
        else:
            self.c_tid = tid
        return "OK"

    def _h_T(self, text: str, raw: bytes) -> str:
        self._lwp(self._parse_tid(text[1:]), default_to_focus=False)
        return "OK"

    def _threads_xml_build(self) -> bytes:
        out = ['<?xml version="1.0"?>\n<threads>\n']
        for l in self._live():
            attrs = f'id="{self._tid(l)}"'
            if l.l_cpu is not None:
                attrs += f' core="{l.l_cpu.ci_index}"'
            if l.l_name:
                attrs += " name=" + quoteattr(l.l_name.decode("latin-1"))
            out.append(f"<thread {attrs}>{xml_escape(lwp_state(l))}</thread>\n")
        out.append("</threads>\n")
        return "".join(out).encode("latin-1", "replace")

    # -- queries ------------------------------------------------------------
    def _h_q(self, text: str, raw: bytes) -> Any:
        name, sep, rest = text[1:].partition(":")
        if text.startswith("qSupported"):
            feats = text[len("qSupported:"):].split(";") if ":" in text else []
            self._swbreak = "swbreak+" in feats
            # Fork, vfork and exec events need multiprocess thread ids (as gdbserver).
            self.multiprocess = mp = "multiprocess+" in feats
            self.fork_events = mp and "fork-events+" in feats
            self.vfork_events = mp and "vfork-events+" in feats
            self.exec_events = mp and "exec-events+" in feats
            extra = "".join(f";{name}+" for name, on in (
                ("multiprocess", mp), ("fork-events", self.fork_events),
                ("vfork-events", self.vfork_events), ("exec-events", self.exec_events)) if on)
            return (f"PacketSize={PACKET_SIZE:x};qXfer:features:read+;qXfer:threads:read+;"
                    "vContSupported+;swbreak+;hwbreak+;QStartNoAckMode+;"
                    "qXfer:exec-file:read+" +
                    ";qXfer:libraries:read+" + extra)
        if text == "qfThreadInfo":
            self._thread_list = [self._tid(l) for l in self._live()]
            return self._thread_chunk()
        if text == "qsThreadInfo":
            return self._thread_chunk()
        if text == "qC":
            l = self._focus_lwp() if self.last is None or self.last not in self._live() \
                else self.last
            return f"QC{self._tid(l)}" if l is not None else "QC0"
        if text.startswith("qThreadExtraInfo,"):
            l = self._lwp(self._parse_tid(text.split(",", 1)[1]), default_to_focus=False)
            return lwp_state(l).encode().hex()
        if text.startswith("qXfer:"):
            return self._xfer(text)
        if text == "qAttached" or text.startswith("qAttached:"):
            return "1"
        if text == "qOffsets":
            return "Text=0;Data=0;Bss=0"
        if text.startswith("qSymbol"):
            return "OK"
        return ""

    def _thread_chunk(self) -> str:
        if not self._thread_list:
            return "l"
        part, self._thread_list = self._thread_list[:256], self._thread_list[256:]
        return "m" + ",".join(part)

    def _xfer(self, text: str) -> Any:
        parts = text.split(":")
        if len(parts) != 5 or parts[2] != "read":
            return ""
        obj, annex, span = parts[1], parts[3], parts[4]
        off_s, _, len_s = span.partition(",")
        off, length = _hex(off_s), _hex(len_s)
        if obj == "features":
            if annex != "target.xml":
                return "E00"
            data = self._tdesc
        elif obj == "exec-file":
            # gdb's `target remote` without a `file`: it loads the program from here
            # (the annex: a process's pid, after a fork or exec)
            pid = _hex(annex) if annex else self.first.p_pid
            if pid not in self.exe:
                return "E00"
            data = os.fsencode(self.exe[pid])
        elif obj == "libraries":
            if off == 0 or not self._libraries_xml:
                # Hg's process's list, read from its memory (empty: a static program)
                p = self._mem_proc()
                view = self.solibs.get(p.p_pid)
                if view is None:
                    self._libraries_xml = b'<library-list version="1.0">\n</library-list>\n'
                else:
                    objs = view.reported = view.objects(lambda a, n: self._read_mem(a, n, p))
                    for o in objs:
                        self.hostio.allow(view.host_path(o.name))
                    self._libraries_xml = view.xml(objs)
            data = self._libraries_xml
        elif obj == "threads":
            if off == 0 or not self._threads_xml:
                self._threads_xml = self._threads_xml_build()
            data = self._threads_xml
        else:
            return ""
        length = min(length, PACKET_SIZE // 2)
        chunk = data[off:off + length]
        return _Raw((b"l" if off + length >= len(data) else b"m") + chunk)

    def _h_Q(self, text: str, raw: bytes) -> str:
        if text == "QStartNoAckMode":
            assert self.conn is not None
            self.conn.ack = False
            return "OK"
        return ""

    # -- registers ------------------------------------------------------------
    def _reg_lwp(self) -> Lwp:
        return self._lwp(self.g_tid)

    def _mem_proc(self) -> Proc:
        """The process whose memory m/M/X/Z address: Hg's."""
        return self._lwp(self.g_tid).l_proc

    def _h_g(self, text: str, raw: bytes) -> str:
        if text != "g":
            raise _ProtoError(E_MALFORMED)
        l = self._reg_lwp()
        return "".join(v.hex() if v is not None else "xx" * r.size
                       for v, r in zip(self.regs.read_all(l), self.regs.regs))

    def _h_G(self, text: str, raw: bytes) -> str:
        l = self._reg_lwp()
        blob = text[1:]
        pos = 0
        for r in self.regs.regs:
            part = blob[pos:pos + 2 * r.size]
            if len(part) < 2 * r.size:
                break
            pos += 2 * r.size
            if "x" in part:
                continue
            self.regs.write(l, r.num, _unhex(part))
        if pos != len(blob):
            raise _ProtoError(E_MALFORMED)
        return "OK"

    def _h_p(self, text: str, raw: bytes) -> str:
        n = _hex(text[1:])
        if not 0 <= n < len(self.regs.regs):
            raise _ProtoError(E_MALFORMED)
        v = self.regs.read_one(self._reg_lwp(), n)
        return v.hex() if v is not None else "xx" * self.regs.regs[n].size

    def _h_P(self, text: str, raw: bytes) -> str:
        n_s, sep, v_s = text[1:].partition("=")
        if not sep:
            raise _ProtoError(E_MALFORMED)
        n = _hex(n_s)
        if not self.regs.write(self._reg_lwp(), n, _unhex(v_s)):
            raise _ProtoError(E_MALFORMED)
        return "OK"

    # -- memory ---------------------------------------------------------------
    def _read_mem(self, addr: int, n: int, p: Proc | None = None) -> bytes:
        vm = (p or self.first).p_vmspace
        data = vm.copyin(addr, n)
        if not isinstance(data, int):
            return data
        # Partially readable: the readable prefix (gdb accepts a short read).
        out = b""
        page = vm.page
        while len(out) < n:
            k = min(n - len(out), page - ((addr + len(out)) % page))
            d = vm.copyin(addr + len(out), k)
            if isinstance(d, int):
                break
            out += d
        return out

    def _write_mem(self, addr: int, data: bytes) -> bool:
        p = self._mem_proc()
        vm = p.p_vmspace
        if not data:
            return True
        va, end = addr, addr + len(data)
        if va < 0 or end > 1 << 64:
            return False
        while va < end:                      # every byte must be mapped (any protection)
            e = vm.lookup(va)
            if e is None:
                return False
            va = e.end
        vm.write_force(addr, data)
        try:
            engine_of(p).uc.ctl_remove_cache(addr, end)   # patched code must be retranslated
        except UcError:
            pass
        return True

    def _addr_len(self, s: str) -> tuple[int, int]:
        a, sep, n = s.partition(",")
        if not sep:
            raise _ProtoError(E_MALFORMED)
        return _hex(a), _hex(n)

    def _h_m(self, text: str, raw: bytes) -> str:
        addr, n = self._addr_len(text[1:])
        if n == 0:
            return ""
        data = self._read_mem(addr, min(n, PACKET_SIZE // 2 - 8),   # a short read is allowed
                              self._mem_proc())
        return data.hex() if data else E_FAULT

    def _h_M(self, text: str, raw: bytes) -> str:
        head, sep, hexdata = text[1:].partition(":")
        if not sep:
            raise _ProtoError(E_MALFORMED)
        addr, n = self._addr_len(head)
        data = _unhex(hexdata)
        if len(data) != n:
            raise _ProtoError(E_MALFORMED)
        return "OK" if self._write_mem(addr, data) else E_FAULT

    def _h_X(self, text: str, raw: bytes) -> str:
        colon = raw.find(b":")
        if colon < 0:
            raise _ProtoError(E_MALFORMED)
        addr, n = self._addr_len(raw[1:colon].decode("latin-1"))
        data = raw[colon + 1:]
        if len(data) != n:
            raise _ProtoError(E_MALFORMED)
        return "OK" if self._write_mem(addr, data) else E_FAULT

    # -- breakpoints and watchpoints ---------------------------------------------
    def _h_Z(self, text: str, raw: bytes) -> str:
        insert = text[0] == "Z"
        fields = text[1:].split(";", 1)[0].split(",")
        if len(fields) != 3:
            raise _ProtoError(E_MALFORMED)
        t, addr, kind = _hex(fields[0]), _hex(fields[1]), _hex(fields[2])
        if t not in (0, 1, 2, 3, 4):
            return ""
        p = self._mem_proc()
        pts = self.points
        if t in (0, 1):
            if insert:
                pts.insert_bp(p, addr)
            else:
                pts.remove_bp(p.p_pid, addr)
            return "OK"
        if kind <= 0 or kind > 1 << 20 or addr + kind > 1 << 64:
            raise _ProtoError(E_MALFORMED)
        if insert:
            pts.insert_watch(p, t, addr, kind)
        else:
            pts.remove_watch(p.p_pid, t, addr, kind)
        return "OK"

    # -- resuming -------------------------------------------------------------------
    def _h_c(self, text: str, raw: bytes) -> Any:
        """c [addr], s [addr], C sig[;addr], S sig[;addr] (legacy, Hc thread)."""
        op = text[0]
        arg = text[1:]
        sig = 0
        if op in "CS":
            s, _, arg = arg.partition(";")
            sig = _hex(s)
        l = self._lwp(self.c_tid)
        if arg:
            self.m.regs_set(l, (self.m.abi.pc_reg,), (_hex(arg),))
        if op.lower() == "c":
            return self._resume([("c", sig, self._key(l)), ("c", 0, None)])
        return self._resume([("s", sig, self._key(l))])

    def _h_v(self, text: str, raw: bytes) -> Any:
        if text == "vCont?":
            return "vCont;c;C;s;S"
        if text.startswith("vCont;"):
            acts = []
            for item in text[6:].split(";"):
                a, _, tid = item.partition(":")
                if not a or a[0] not in "cCsS":
                    raise _ProtoError(E_MALFORMED)
                sig = _hex(a[1:]) if a[0] in "CS" else 0
                if a[0] in "cs" and len(a) != 1:
                    raise _ProtoError(E_MALFORMED)
                key: tuple[int, int] | None = None     # None: every thread
                if tid:
                    pid, lid = self._parse_tid(tid)
                    if lid != -1:
                        key = self._key(self._lwp((pid, lid), default_to_focus=False))
                    elif pid > 0:
                        if pid not in self.attached:
                            raise _ProtoError(E_THREAD)
                        key = (pid, -1)                # every LWP of that process
                acts.append((a[0].lower(), sig, key))
            if not acts:
                raise _ProtoError(E_MALFORMED)
            return self._resume(acts)
        if text.startswith("vKill"):
            _, sep, pid_s = text.partition(";")
            pid = _hex(pid_s) if sep else self.first.p_pid
            p = self.attached.get(pid)
            if p is None:
                return E_THREAD
            if p is not self.first:
                # A child dies alone; gdb goes on with the others, if any.
                from nbemu.syscalls.kern_sig import psignal
                self.points.drop(pid)
                self._forget(pid)
                psignal(p, SIGKILL)
                if self.attached:
                    return "OK"
                self.conn.send("OK")  # type: ignore[union-attr]
                self._detach(None)
                return _GONE
            self._kill()
            self.conn.send("OK")  # type: ignore[union-attr]
            return _GONE
        if text == "vMustReplyEmpty":
            return ""
        if text.startswith("vFile:"):
            reply = self.hostio.handle(text[6:])
            return _Raw(reply) if isinstance(reply, bytes) else reply
        return ""

    def _resume(self, acts: list[tuple[str, int, tuple[int, int] | None]]) -> Any:
        """Resume as vCont says: per thread (pid, lid), per process (pid, -1),
        or for every thread (None); a thread without an action stays stopped."""
        actions: dict[tuple[int, int], tuple[str, int]] = {}
        default = None
        for a, sig, key in acts:
            if key is None:
                if default is None:
                    default = (a, sig)
            elif key not in actions:
                actions[key] = (a, sig)
        step = next((key for key, (a, _) in actions.items() if a == "s" and key[1] != -1), None)
        if step is None and default is not None and default[0] == "s":
            # "step every thread": step the one gdb focuses on, continue the others
            step = self._key(self._lwp((0, 0)))
            actions[step] = default
            default = ("c", 0)
        self.actions, self.default_action = actions, default
        # Signals: the faulting LWP's is its decision; others get theirs posted.
        from nbemu.syscalls.kern_sig import kpsignal_lwp
        sl = self._signal_lwp
        for (pid, lid), (a, sig) in actions.items():
            p = self.attached.get(pid)
            l = p.lwp_find(lid) if p is not None and lid != -1 else None
            if l is None or l is sl or not sig:
                continue
            nsig = sig_from_gdb(sig)
            if nsig:
                kpsignal_lwp(l, nsig)
        if sl is not None:
            act = self._action(sl)
            self._signal_decision = act[1] if act is not None else 0
        if step is not None:
            self._start_step(self.attached[step[0]].lwp_find(step[1]))
        self._spins = 0
        if self._queued:
            # A stop that came with the last one: report it before anything runs.
            self._set_event(self._queued.pop(0))
        return _RESUMED

    def _start_step(self, l: Lwp | None) -> None:
        if l is None:
            return
        self.step_lwp = l
        self._step_started = False
        sp = engine_of(l.l_proc)
        self._step_hook = (sp, sp.uc.hook_add(UC_HOOK_CODE, self._on_step))
        sp.uc.ctl_flush_tb()

    def _clear_step(self) -> None:
        if self._step_hook is not None:
            sp, h = self._step_hook
            self._step_hook = None
            sp.uc.hook_del(h)
            sp.uc.ctl_flush_tb()
        self.step_lwp = None

    # -- leaving ---------------------------------------------------------------------
    def _h_D(self, text: str, raw: bytes) -> Any:
        assert self.conn is not None
        _, sep, pid_s = text.partition(";")
        if sep:
            pid = _hex(pid_s)
            if pid not in self.attached:
                return E_MALFORMED
            if len(self.attached) > 1:
                # One of several processes (gdb's detach-on-fork): it runs on alone.
                self.points.drop(pid)
                self._forget(pid)
                return "OK"
        self.conn.send("OK")
        self._detach("gdb detached")
        return _GONE

    def _h_k(self, text: str, raw: bytes) -> Any:
        self._kill()
        return _GONE

    def _kill(self) -> None:
        from nbemu.syscalls.kern_exit import exit1
        first = self.first
        if not first.p_exiting and first.p_lwps:
            exit1(min(first.p_lwps.values(), key=lambda x: x.l_lid), 0, SIGKILL)
        self._detach(None, close_now=False)

    def _detach(self, why: str | None, close_now: bool = True) -> None:
        """Forget gdb: no more stops; held LWPs run; the guest goes on to its end."""
        if not self.active:
            return
        if why:
            print(f"nbemu: {why}; the guest continues without the debugger",
                  file=sys.stderr, flush=True)
        self.active = False
        self.stop_pending = False
        self._event = None
        self._queued = []
        self.actions, self.default_action = {}, ("c", 0)
        try:
            self._clear_step()
            self.points.drop_all()
        except UcError:
            pass
        if close_now:
            self._close()

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()

    def _finish(self, status: int) -> None:
        """Session finisher: the program ended; tell gdb how."""
        conn = self.conn
        if self.active and conn is not None and not conn.closed:
            p = self.first
            if p.p_xsig:
                r = f"X{sig_to_gdb(p.p_xsig):02x}"
            else:
                xs = p.p_xstat if p.p_xstat is not None else status
                r = f"W{xs & 0xFF:02x}"
            if p.p_pid not in self.attached and self.attached:
                # gdb debugs only children of it: they end with nbemu (killed)
                p, r = self.attached[min(self.attached)], f"X{SIGKILL:02x}"
            conn.send(r + (f";process:{p.p_pid:x}" if self.multiprocess else ""))
            # Let gdb take the reply (and ack it) before the connection goes.
            for _ in range(4):
                ev = conn.get(0.5)
                if ev is None or ev[0] == "eof":
                    break
                if ev[0] == "pkt":
                    conn.send("OK" if ev[1][:1] in (b"k", b"D") or ev[1].startswith(b"vKill")
                              else E_MALFORMED)
                    if ev[1][:1] in (b"k", b"D") or ev[1].startswith(b"vKill"):
                        break
        self.active = False
        self._close()


class _ProtoError(Exception):
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def _with_osabi(xml: bytes, osabi: str) -> bytes:
    """The target description with an <osabi> element after <architecture>."""
    if b"<osabi>" in xml:
        return xml
    end = xml.find(b"</architecture>")
    if end < 0:
        return xml
    end += len(b"</architecture>")
    return xml[:end] + f"\n  <osabi>{osabi}</osabi>".encode() + xml[end:]


class _Raw(bytes):
    """A binary reply (sent as is, escaped by the framing)."""


def _hex(s: str) -> int:
    """A hex number of at most 64 bits (addresses, lengths, ids, numbers)."""
    if not s or len(s) > 16:
        raise _ProtoError(E_MALFORMED)
    try:
        return int(s, 16)
    except ValueError:
        raise _ProtoError(E_MALFORMED) from None


def _unhex(s: str) -> bytes:
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise _ProtoError(E_MALFORMED) from None


# Unicorn memory access kinds -> gdb watchpoint types (2 write, 3 read)
def _access_table() -> dict[int, int]:
    from unicorn import UC_MEM_READ, UC_MEM_WRITE
    return {UC_MEM_WRITE: 2, UC_MEM_READ: 3}


_ACCESS = _access_table()

_HANDLERS = {
    "?": lambda self, t, r: self._stop_reply(self.last_ev) if self.last_ev else self.last_reply,
    "q": GdbStub._h_q, "Q": GdbStub._h_Q, "H": GdbStub._h_H, "T": GdbStub._h_T,
    "g": GdbStub._h_g, "G": GdbStub._h_G, "p": GdbStub._h_p, "P": GdbStub._h_P,
    "m": GdbStub._h_m, "M": GdbStub._h_M, "X": GdbStub._h_X,
    "Z": GdbStub._h_Z, "z": GdbStub._h_Z,
    "c": GdbStub._h_c, "C": GdbStub._h_c, "s": GdbStub._h_c, "S": GdbStub._h_c,
    "v": GdbStub._h_v, "D": GdbStub._h_D, "k": GdbStub._h_k,
}


def attach(session: "Session", spec: str) -> GdbStub:
    """Start the stub for `session` (called by Session when Options.gdb is set)."""
    try:
        return GdbStub(session, spec)
    except (OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        print(f"nbemu: -g {spec}: {why}", file=sys.stderr)
        raise SystemExit(2) from None
