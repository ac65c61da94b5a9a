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
- One process; every LWP is a gdb thread whose id is the LWP id (`_lwp_self()`),
  the first one being the process id. `info threads` shows each LWP's name
  (`_lwp_setname`) and its NetBSD state: "running on vCPU n", "runnable on
  vCPU n", "parked on hint 0x...", "sleeping on <wmesg>", "suspended",
  "zombie" (qThreadExtraInfo / qXfer:threads:read). Exited LWPs leave the list.
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
  one address: other code runs untouched. Stops report `swbreak`, with the PC at
  the breakpoint.
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

import ctypes
import os
import sys
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UcError
from unicorn.unicorn_py3.unicorn import uclib

from nbemu.syscalls.kern_synch import preempt
from nbemu.syscalls.lwp import LSIDL, LSONPROC, LSRUN, LSSLEEP, LSSTOP, LSSUSPENDED, LSZOMB, Lwp

from .gdb_conn import PACKET_SIZE, Conn, Listener
from .gdb_hostio import HostIO
from .gdb_solib import for_session
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
    __slots__ = ("kind", "lwp", "sig", "addr")

    def __init__(self, kind: str, lwp: Lwp | None, sig: int, addr: int = 0) -> None:
        self.kind, self.lwp, self.sig, self.addr = kind, lwp, sig, addr


class GdbStub:
    """The debugger front end of one Session (see the module docstring)."""

    def __init__(self, session: "Session", spec: str) -> None:
        self.session = session
        self.m = m = session.machine
        self.k = session.kernel
        self.proc = session.kernel.proc
        self.regs = RegFile(m)
        self.listener = Listener(spec)
        self.conn: Conn | None = None
        self.active = True           # False once detached: every hook is inert
        self.stop_pending = False    # polled by Machine.run at each turn
        self._event: Stop | None = None
        self._intr = False
        self._eof = False
        self.actions: dict[int, tuple[str, int]] = {}   # lid -> (action, gdb signal)
        self.default_action: tuple[str, int] | None = None
        self.g_lid = 0               # Hg: whose registers g/p/G/P address (0: the stopped one)
        self.c_lid = 0               # Hc: the thread of legacy c/s
        self.last_lid = 0            # the LWP of the last stop
        self.last_reply = "S05"
        self.bps: dict[int, int] = {}                    # address -> hook handle
        self.watches: dict[tuple[int, int, int], int] = {}  # (type, addr, len) -> hook handle
        self._insn_hook: Any = None  # the per-instruction hook while watchpoints exist
        self.step_lwp: Lwp | None = None
        self._step_started = False
        self._step_hook: Any = None
        self._spins = 0
        self._deadlock_reported = False
        self._signal_lwp: Lwp | None = None    # the LWP whose fault gdb is deciding on
        self._signal_decision = 0
        self._swbreak = False
        self._thread_list: list[int] = []
        self._threads_xml = b""
        self._libraries_xml = b""
        # The OS ABI gdb should use when the file says nothing (emu/gdb_hostio.py
        # hides the program's NetBSD markers, which Debian's gdb cannot handle).
        self._tdesc = _with_osabi(self.regs.xml, "none")
        self.hostio = HostIO(session.path)
        # A dynamic program: its shared objects (qXfer:libraries:read) and a watch
        # on ld.elf_so's _rtld_debug_state that reports changes as `library` stops.
        self.solib = for_session(session)
        self._solib_hook: Any = None
        if self.solib is not None and self.solib.debug_state is not None:
            a = self.solib.debug_state
            self._solib_hook = m.uc.hook_add(UC_HOOK_CODE, self._on_solib_event,
                                             begin=a, end=a)
        m.debugger = self
        m._install_block_hook()      # so that Ctrl-C can stop code that makes no syscall
        session._finishers.append(self._finish)
        first = min(self.proc.p_lwps.values(), key=lambda x: x.l_lid)
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

    def hold(self, ci: Any, l: Lwp) -> bool:
        """May l take its turn on ci? True: it is held by gdb (not resumed)."""
        if self.default_action is not None or not self.active or l.l_lid in self.actions:
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
        if not self.active or self.conn is None:
            return sig
        self._clear_step()
        self._signal_lwp, self._signal_decision = l, 0
        try:
            self._report(Stop("signal", l, sig_to_gdb(sig)))
        finally:
            self._signal_lwp = None
        if not self.active:
            return sig                   # detached while stopped: as without gdb
        if self.proc.p_exiting:
            return 0
        return sig_from_gdb(self._signal_decision)

    # ====================================================================
    # Hooks called from Unicorn callbacks (inside emu_start)
    # ====================================================================
    def _set_event(self, ev: Stop) -> None:
        if self._event is None:
            self._event = ev
        self.stop_pending = True

    def _on_breakpoint(self, uc, addr, size, user) -> None:
        if self._event is not None or addr not in self.bps or not self.active:
            return
        l = self.m.curlwp
        if l is self.step_lwp and not self._step_started:
            return                   # the step's own first instruction: the step hook decides
        self._set_event(Stop("swbreak", l, SIGTRAP, addr))
        self.m.request_stop()

    def _on_solib_event(self, uc, addr, size, user) -> None:
        """ld.elf_so calls _rtld_debug_state around every change of its object
        list: when the list differs from what gdb last read, stop with a
        `library` reply (gdb re-reads the list, resolves pending breakpoints and
        resumes by itself)."""
        if self._event is not None or not self.active or self.conn is None:
            return
        assert self.solib is not None
        if self.solib.objects(self._read_mem) != self.solib.reported:
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
        kind = _ACCESS.get(access, 0)
        end = address + size
        for (t, a, n) in self.watches:
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
        for cand in (self.step_lwp, self.m.curlwp, self.proc.lwp_find(self.last_lid)):
            if cand is not None and cand in live:
                return cand
        return live[0] if live else None

    def _live(self) -> list[Lwp]:
        """The LWPs gdb sees as threads (those with a register context)."""
        return sorted((l for l in self.proc.p_lwps.values()
                       if l.l_stat != LSZOMB and (l.l_md is not None or l is self.m.loaded)),
                      key=lambda x: x.l_lid)

    def _stop_reply(self, ev: Stop) -> str:
        lid = ev.lwp.l_lid if ev.lwp is not None else 0
        r = f"T{ev.sig:02x}"
        if ev.kind in ("watch", "rwatch", "awatch"):
            r += f"{ev.kind}:{ev.addr:x};"
        elif ev.kind == "swbreak" and self._swbreak:
            r += "swbreak:;"
        elif ev.kind == "library":
            r += "library:;"
        if lid:
            r += f"thread:{lid:x};"
        return r

    def _report(self, ev: Stop) -> None:
        if ev.lwp is not None:
            self.last_lid = ev.lwp.l_lid
        self.g_lid = self.c_lid = 0
        self.actions, self.default_action = {}, None
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
    def _parse_tid(self, s: str) -> int:
        """A thread id: hex, 0 (any), -1 (all), or pPID.TID; _ProtoError if malformed."""
        if s.startswith("p"):
            _, _, s = s[1:].partition(".")
            if not s:
                return -1
        if s == "-1":
            return -1
        return _hex(s)

    def _lwp(self, lid: int, default_to_focus: bool = True) -> Lwp:
        if lid in (0, -1) and default_to_focus:
            l = self.proc.lwp_find(self.last_lid)
            if l is None or l not in self._live():
                l = self._focus_lwp()
            if l is None:
                raise _ProtoError(E_THREAD)
            return l
        l = self.proc.lwp_find(lid)
        if l is None or l not in self._live():
            raise _ProtoError(E_THREAD)
        return l

    def _h_H(self, text: str, raw: bytes) -> str:
        if len(text) < 3 or text[1] not in "gc":
            raise _ProtoError(E_MALFORMED)
        lid = self._parse_tid(text[2:])
        if lid not in (0, -1):
            self._lwp(lid)
        if text[1] == "g":
            self.g_lid = lid
        else:
            self.c_lid = lid
        return "OK"

    def _h_T(self, text: str, raw: bytes) -> str:
        lid = self._parse_tid(text[1:])
        self._lwp(lid, default_to_focus=False)
        return "OK"

    def _threads_xml_build(self) -> bytes:
        out = ['<?xml version="1.0"?>\n<threads>\n']
        for l in self._live():
            attrs = f'id="{l.l_lid:x}"'
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
            return (f"PacketSize={PACKET_SIZE:x};qXfer:features:read+;qXfer:threads:read+;"
                    "vContSupported+;swbreak+;hwbreak+;QStartNoAckMode+;"
                    "qXfer:exec-file:read+" +
                    (";qXfer:libraries:read+" if self.solib is not None else ""))
        if text == "qfThreadInfo":
            self._thread_list = [l.l_lid for l in self._live()]
            return self._thread_chunk()
        if text == "qsThreadInfo":
            return self._thread_chunk()
        if text == "qC":
            l = self._focus_lwp() if not self.last_lid else self.proc.lwp_find(self.last_lid)
            return f"QC{l.l_lid:x}" if l is not None else "QC0"
        if text.startswith("qThreadExtraInfo,"):
            lid = self._parse_tid(text.split(",", 1)[1])
            l = self.proc.lwp_find(lid)
            if l is None:
                raise _ProtoError(E_THREAD)
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
        return "m" + ",".join(f"{x:x}" for x in part)

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
            data = os.path.abspath(self.session.path).encode()
        elif obj == "libraries" and self.solib is not None:
            if off == 0 or not self._libraries_xml:
                objs = self.solib.reported = self.solib.objects(self._read_mem)
                for o in objs:
                    self.hostio.allow(self.solib.host_path(o.name))
                self._libraries_xml = self.solib.xml(objs)
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
        return self._lwp(self.g_lid)

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
    def _read_mem(self, addr: int, n: int) -> bytes:
        vm = self.proc.p_vmspace
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
        vm = self.proc.p_vmspace
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
            self.m.uc.ctl_remove_cache(addr, end)   # patched code must be retranslated
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
        data = self._read_mem(addr, min(n, PACKET_SIZE // 2 - 8))   # a short read is allowed
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
        uc = self.m.uc
        if t in (0, 1):
            if insert:
                if addr not in self.bps:
                    self.bps[addr] = uc.hook_add(UC_HOOK_CODE, self._on_breakpoint,
                                                 begin=addr, end=addr)
                    uc.ctl_remove_cache(addr, addr + 1)
            else:
                h = self.bps.pop(addr, None)
                if h is not None:
                    uc.hook_del(h)
                    uc.ctl_remove_cache(addr, addr + 1)
            return "OK"
        if t in (2, 3, 4):
            if kind <= 0 or kind > 1 << 20 or addr + kind > 1 << 64:
                raise _ProtoError(E_MALFORMED)
            key = (t, addr, kind)
            if insert:
                if key not in self.watches:
                    types = {2: UC_HOOK_MEM_WRITE, 3: UC_HOOK_MEM_READ,
                             4: UC_HOOK_MEM_WRITE | UC_HOOK_MEM_READ}[t]
                    self.watches[key] = uc.hook_add(types, self._on_watch,
                                                    begin=max(0, addr - 15),
                                                    end=addr + kind - 1)
                    self._insn_hook_update()
            else:
                h = self.watches.pop(key, None)
                if h is not None:
                    uc.hook_del(h)
                    self._insn_hook_update()
            return "OK"
        return ""

    def _insn_hook_update(self) -> None:
        """Keep a per-instruction hook exactly while watchpoints exist."""
        uc = self.m.uc
        if self.watches and self._insn_hook is None:
            nat = self.m.native
            if nat is not None:
                h = ctypes.c_size_t()
                err = uclib.uc_hook_add(self.m.uch, ctypes.byref(h), UC_HOOK_CODE,
                                        nat.block_hook, None, ctypes.c_uint64(1),
                                        ctypes.c_uint64(0))
                if err:
                    raise UcError(err)
                self._insn_hook = ("native", h.value)
            else:
                self._insn_hook = ("py", uc.hook_add(UC_HOOK_CODE, self._on_insn_py))
        elif not self.watches and self._insn_hook is not None:
            kind, h = self._insn_hook
            if kind == "native":
                uclib.uc_hook_del(self.m.uch, ctypes.c_size_t(h))
            else:
                uc.hook_del(h)
            self._insn_hook = None
        uc.ctl_flush_tb()

    def _remove_all_points(self) -> None:
        uc = self.m.uc
        for addr, h in list(self.bps.items()):
            uc.hook_del(h)
            uc.ctl_remove_cache(addr, addr + 1)
        self.bps.clear()
        for h in self.watches.values():
            uc.hook_del(h)
        self.watches.clear()
        self._insn_hook_update()

    # -- resuming -------------------------------------------------------------------
    def _h_c(self, text: str, raw: bytes) -> Any:
        """c [addr], s [addr], C sig[;addr], S sig[;addr] (legacy, Hc thread)."""
        op = text[0]
        arg = text[1:]
        sig = 0
        if op in "CS":
            s, _, arg = arg.partition(";")
            sig = _hex(s)
        if arg:
            l = self._lwp(self.c_lid)
            self.m.regs_set(l, (self.m.abi.pc_reg,), (_hex(arg),))
        act = op.lower()
        if act == "c":
            if self.c_lid in (0, -1):
                focus = self._lwp(0)
                return self._resume([("c", sig, focus.l_lid), ("c", 0, None)])
            return self._resume([("c", sig, self.c_lid), ("c", 0, None)])
        target = self._lwp(self.c_lid).l_lid
        return self._resume([("s", sig, target)])

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
                lid: int | None = None
                if tid:
                    lid = self._parse_tid(tid)
                    if lid == -1:
                        lid = None
                    else:
                        self._lwp(lid, default_to_focus=False)
                acts.append((a[0].lower(), sig, lid))
            if not acts:
                raise _ProtoError(E_MALFORMED)
            return self._resume(acts)
        if text.startswith("vKill"):
            self._kill()
            self.conn.send("OK")  # type: ignore[union-attr]
            return _GONE
        if text == "vMustReplyEmpty":
            return ""
        if text.startswith("vFile:"):
            reply = self.hostio.handle(text[6:])
            return _Raw(reply) if isinstance(reply, bytes) else reply
        return ""

    def _resume(self, acts: list[tuple[str, int, int | None]]) -> Any:
        actions: dict[int, tuple[str, int]] = {}
        default = None
        for a, sig, lid in acts:
            if lid is None:
                if default is None:
                    default = (a, sig)
            elif lid not in actions:
                actions[lid] = (a, sig)
        step = next((lid for lid, (a, _) in actions.items() if a == "s"), None)
        if step is None and default is not None and default[0] == "s":
            # "step every thread": step the one gdb focuses on, continue the others
            focus = self._lwp(0)
            step = focus.l_lid
            actions[step] = default
            default = ("c", 0)
        self.actions, self.default_action = actions, default
        # Signals: the faulting LWP's is its decision; others get theirs posted.
        from nbemu.syscalls.kern_sig import kpsignal_lwp
        for lid, (a, sig) in actions.items():
            l = self.proc.lwp_find(lid)
            if l is None:
                continue
            if l is self._signal_lwp:
                self._signal_decision = sig
            elif sig:
                nsig = sig_from_gdb(sig)
                if nsig:
                    kpsignal_lwp(l, nsig)
        sl = self._signal_lwp
        if default is not None and default[1] and sl is not None and sl.l_lid not in actions:
            self._signal_decision = default[1]       # "C sig" for no thread: the signalled one
        if step is not None:
            self._start_step(self.proc.lwp_find(step))
        self._spins = 0
        return _RESUMED

    def _start_step(self, l: Lwp | None) -> None:
        if l is None:
            return
        self.step_lwp = l
        self._step_started = False
        uc = self.m.uc
        self._step_hook = uc.hook_add(UC_HOOK_CODE, self._on_step)
        uc.ctl_flush_tb()

    def _clear_step(self) -> None:
        if self._step_hook is not None:
            self.m.uc.hook_del(self._step_hook)
            self._step_hook = None
            self.m.uc.ctl_flush_tb()
        self.step_lwp = None

    # -- leaving ---------------------------------------------------------------------
    def _h_D(self, text: str, raw: bytes) -> Any:
        assert self.conn is not None
        self.conn.send("OK")
        self._detach("gdb detached")
        return _GONE

    def _h_k(self, text: str, raw: bytes) -> Any:
        self._kill()
        return _GONE

    def _kill(self) -> None:
        from nbemu.syscalls.kern_exit import exit1
        l = self._focus_lwp()
        if l is not None and not self.proc.p_exiting:
            exit1(l, 0, SIGKILL)
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
        self.actions, self.default_action = {}, ("c", 0)
        try:
            self._clear_step()
            self._remove_all_points()
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
            p = self.proc
            if p.p_xsig:
                conn.send(f"X{sig_to_gdb(p.p_xsig):02x}")
            else:
                xs = p.p_xstat if p.p_xstat is not None else status
                conn.send(f"W{xs & 0xFF:02x}")
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
    "?": lambda self, t, r: self.last_reply,
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
