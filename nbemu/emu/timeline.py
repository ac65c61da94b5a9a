"""--timeline FILE: a Chrome / Perfetto trace (JSON "traceEvents") of a run.

Open it in https://ui.perfetto.dev or chrome://tracing, or render it with
`nbemu timeline FILE --png OUT`. Layout:

- process "vCPUs" (pid VCPU_PID): one track (tid = CPU index) per vCPU, with a
  slice "lid N name" for every stretch an LWP ran on it;
- process "<program> (pid P)", one per guest process (fork, exec: the name is
  the last program it ran): one track per LWP (tid = lid), named after the
  LWP (_lwp_setname), with consecutive, non-overlapping slices for its states:
  "running" (args: cpu), "runnable" (queued on a CPU), "parked <hint>" or
  "sleep <wmesg>" (args: wchan, hint with its ELF symbol), "suspended",
  "stopped" (by a signal);
- flow arrows (ph "s" -> ph "f", cat "wakeup") from the waker's track to the
  wakee's at every unpark / wakeup whose waker is an LWP;
- instant events (ph "i") for creation, exit, reaping, names, signals, process exit.

Timestamps are the kernel clock's CLOCK_MONOTONIC in microseconds (virtual under
--deterministic). The recorder is a listener of the kernel's event stream,
attached only when --timeline is given; the file is written at exit.
"""
from __future__ import annotations

import json
from typing import Any

from nbemu.syscalls.lwp import Lwp

from .trace import EWOULDBLOCK, lwp_name, waker_of, wchan_label

Key = tuple[int, int]      # an LWP: (pid, lid)
VCPU_PID = 1               # the vCPU "process" (the guest's pid must differ: see _pids)
MAX_EVENTS = 2_000_000     # beyond this the recorder stops (the file says so)

CAT_STATE = "state"
CAT_CPU = "cpu"


# Start trampolines that take the real start function in a register: Go's
# runtime.lwp_tramp (its newosproc's lwp_mcontext_init puts fn in the port's
# Abi.go_lwp_tramp_fn_reg: R12 on amd64, ESI on i386, X2 on arm64, R2 on arm).
_TRAMPOLINES = {"runtime.lwp_tramp"}


def _func(sym: str | None) -> str | None:
    """A function's name from "name+0x10", without Go's ABI-wrapper suffix."""
    if not sym:
        return None
    nm = sym.split("+", 1)[0]
    return nm[:-5] if nm.endswith(".abi0") else nm


class Timeline:
    """Turns kernel events into trace events as they come (open intervals per LWP
    and per vCPU are closed at the next state change, or at the end)."""

    def __init__(self, session: Any, path: str | None) -> None:
        self.s = session
        self.k = session.kernel
        self.path = path
        p = self.k.proc
        self.pid = p.p_pid
        self.cpu_pid = VCPU_PID if p.p_pid != VCPU_PID else VCPU_PID + 1
        self.events: list[dict] = []
        # LWPs are keyed (pid, lid): LWP ids repeat across processes.
        self.state: dict[Key, tuple] = {}        # LWP -> (name, t0, args) of the open slice
        self.oncpu: dict[int, tuple] = {}        # cpu -> (LWP, t0)
        self.names: dict[Key, str] = {}
        self.comms: dict[int, str] = {p.p_pid: p.p_comm.decode("latin-1")}   # pid -> program
        self.starts: dict[Key, str] = {}         # LWP -> the function it started in
        self.start_regs: dict[Key, tuple] = {}   # LWP -> (pc, trampoline's fn register)
        self.pending_by: dict[Key, Key] = {}     # LWP -> unparker, until its wakeup
        self.flows = 0
        self.t_last = 0
        self.truncated = False
        self._syms = None
        for l in p.p_lwps.values():
            self.names[(p.p_pid, l.l_lid)] = lwp_name(l)

    # -- helpers ----------------------------------------------------------------
    def _us(self, t: int) -> float:
        return t / 1000.0

    def _sym(self, addr: int) -> str:
        if self._syms is None:
            from .crash import Symbols
            self._syms = Symbols.of(self.s)
        return self._syms.describe(addr)

    def _emit(self, ev: dict) -> None:
        if len(self.events) >= MAX_EVENTS:
            self.truncated = True
            return
        self.events.append(ev)

    def _close(self, key: Key, t: int) -> None:
        st = self.state.pop(key, None)
        if st is not None:
            name, t0, args = st
            self._emit({"ph": "X", "cat": CAT_STATE, "name": name, "pid": key[0], "tid": key[1],
                        "ts": self._us(t0), "dur": self._us(t) - self._us(t0), "args": args})
        for cpu, (ckey, t0) in list(self.oncpu.items()):
            if ckey == key:
                del self.oncpu[cpu]
                self._emit({"ph": "X", "cat": CAT_CPU, "name": self._label(key),
                            "pid": self.cpu_pid, "tid": cpu, "ts": self._us(t0),
                            "dur": self._us(t) - self._us(t0),
                            "args": {"lid": key[1], "pid": key[0]}})

    def _open(self, key: Key, t: int, name: str, args: dict) -> None:
        self._close(key, t)
        self.state[key] = (name, t, args)

    def _bare(self, key: Key) -> str:
        """"lid N" for the first process's LWPs, "pid P lid N" for the others'."""
        return f"lid {key[1]}" if key[0] == self.pid else f"pid {key[0]} lid {key[1]}"

    def _label(self, key: Key) -> str:
        nm = self.names.get(key, "-")
        if nm and nm != "-":
            return f"{self._bare(key)} {nm}"
        start = self.starts.get(key)
        return f"{self._bare(key)} ({start})" if start else self._bare(key)

    def _note_start(self, l: Lwp) -> None:
        """Remember where an LWP starts (its PC when it first runs, and the register
        a start trampoline passes the real function in), to label LWPs that never
        call _lwp_setname: Go names none of its Ms. Only raw values now: symbols
        are loaded at the end (loading them mid-run would stall a host-clock run)."""
        key = (l.l_proc.p_pid, l.l_lid)
        if key in self.start_regs or l.l_lid == l.l_proc.p_pid:
            return
        try:
            m = self.s.machine
            ids = [m.abi.pc_reg, m.abi.go_lwp_tramp_fn_reg]
            self.start_regs[key] = tuple(m.regs_get(l, ids))
        except Exception:          # (no saved context: only the label is lost)
            self.start_regs[key] = ()

    def _name_starts(self) -> None:
        """lid -> the function it started in (seen through Go's lwp_tramp)."""
        from .crash import Symbols
        syms = Symbols.of(self.s)
        for lid, regs in self.start_regs.items():
            if lid in self.starts or not regs:
                continue
            nm = _func(syms.name(regs[0]))
            if nm in _TRAMPOLINES and len(regs) > 1:
                nm = _func(syms.name(regs[1])) or nm
            if nm:
                self.starts[lid] = nm

    def _instant(self, key: Key, t: int, name: str, args: dict | None = None) -> None:
        ev = {"ph": "i", "s": "t", "cat": "lwp", "name": name, "pid": key[0], "tid": key[1],
              "ts": self._us(t)}
        if args:
            ev["args"] = args
        self._emit(ev)

    # -- the listener ---------------------------------------------------------------
    def __call__(self, kind: str, l: Lwp, data: dict) -> None:
        t = data["t"]
        if t > self.t_last:
            self.t_last = t
        lid = (l.l_proc.p_pid, l.l_lid)            # the LWP's key (see __init__)
        if lid not in self.names:
            self.names[lid] = lwp_name(l)
            self.comms[lid[0]] = l.l_proc.p_comm.decode("latin-1")
        if kind == "run":
            self._note_start(l)
            cpu = data.get("cpu")
            prev = self.oncpu.get(cpu)
            if prev is not None and prev[0] != lid:       # (never seen: it left first)
                self._close(prev[0], t)
            self._open(lid, t, "running", {"cpu": cpu})
            self.oncpu[cpu] = (lid, t)
        elif kind == "enqueue":
            self._open(lid, t, "runnable", {"cpu": data.get("cpu")})
        elif kind in ("preempt", "yield"):
            self._close(lid, t)
            if kind == "yield":
                self._instant(lid, t, "yield")
        elif kind == "sleep":
            wmesg = data.get("wmesg", "")
            args: dict[str, Any] = {"wchan": wchan_label(data.get("wchan")), "wmesg": wmesg}
            if wmesg == "parked":
                # (named at the end: loading symbols now would stall a host-clock run)
                args["hint"] = l.l_park_hint
                name = "parked"
            else:
                name = f"sleep {wmesg}"
                if wmesg == "lwpwait" and l.l_waitingfor:
                    args["waitfor"] = l.l_waitingfor
                    name += f" lid {l.l_waitingfor}"
            self._open(lid, t, name, args)
        elif kind == "unpark":
            by = data.get("by")
            if by is not None:
                self.pending_by[lid] = (lid[0], by)
        elif kind == "wakeup":
            by = self.pending_by.pop(lid, None)
            if by is None:
                waker = waker_of(self.s, kind, l, data)
                by = (lid[0], waker) if waker is not None else None
            self._close(lid, t)
            err = data.get("error", 0)
            if by is not None and by != lid:
                self.flows += 1
                fid = self.flows
                self._emit({"ph": "s", "cat": "wakeup", "name": "wakeup", "id": fid,
                            "pid": by[0], "tid": by[1], "ts": self._us(t)})
                self._emit({"ph": "f", "bp": "e", "cat": "wakeup", "name": "wakeup", "id": fid,
                            "pid": lid[0], "tid": lid[1], "ts": self._us(t)})
            elif err == EWOULDBLOCK:
                self._instant(lid, t, "timeout")
        elif kind == "suspend":
            self._open(lid, t, "suspended", {})
        elif kind == "stop":
            self._open(lid, t, "stopped", {"sig": data.get("sig", 0)})
        elif kind == "continue":
            st = self.state.get(lid)
            if st is not None and st[0] in ("stopped", "suspended"):
                if l.l_stat.name == "LSSLEEP":        # back to the sleep it was stopped in
                    self._open(lid, t, f"sleep {l.l_wmesg}",
                               {"wchan": wchan_label(l.l_wchan), "wmesg": l.l_wmesg})
                else:
                    self._close(lid, t)
            self._instant(lid, t, "continue")
        elif kind in ("sigdeliver", "sigwake"):
            from nbemu.syscalls.signals import signame
            sig = data.get("sig", 0)
            self._instant(lid, t, f"{signame(sig)} {'delivered' if kind == 'sigdeliver' else 'wakes'}",
                          {"sig": sig})
        elif kind == "proc_stop":
            self._instant(lid, t, "process stop", {"sig": data.get("sig", 0)})
        elif kind == "create":
            self._instant(lid, t, "create", {"parent": data.get("parent", 0)})
        elif kind == "exit":
            self._close(lid, t)
            self._instant(lid, t, "exit")
        elif kind == "free":
            self._close(lid, t)
            self._instant(lid, t, "reaped")
        elif kind == "setname":
            self.names[lid] = data.get("name", "")
            self._instant(lid, t, "setname", {"name": data.get("name", "")})
        elif kind in ("signal", "sigpipe"):
            from nbemu.syscalls.signals import signame
            sig = data.get("sig", 13)
            self._instant(lid, t, signame(sig), {"sig": sig})
        elif kind == "exec":
            self.comms[lid[0]] = l.l_proc.p_comm.decode("latin-1")
            self._instant(lid, t, "exec", {"path": data.get("path", "")})
        elif kind == "fork":
            self._instant(lid, t, "fork", {"child": data.get("child", 0)})
        elif kind == "proc_exit":
            self._instant(lid, t, "process exit", {"status": data.get("status", 0),
                                                   "signal": data.get("signo", 0)})
        elif kind == "migrate":
            self._instant(lid, t, "migrate", {"from": data.get("src"), "to": data.get("cpu")})

    # -- output -------------------------------------------------------------------------
    def trace(self, status: int | None = None) -> dict:
        """The trace as a dict (closes what is still open at the last time seen)."""
        t_end = max(self.t_last, self.k.clock.stamp_ns())
        for lid in list(self.state):
            self._close(lid, t_end)
        for cpu, (lid, _t0) in list(self.oncpu.items()):
            self._close(lid, t_end)
        meta: list[dict] = [
            {"ph": "M", "name": "process_name", "pid": self.cpu_pid, "args": {"name": "vCPUs"}},
            {"ph": "M", "name": "process_sort_index", "pid": self.cpu_pid,
             "args": {"sort_index": 0}},
        ]
        pids = [self.pid] + sorted(pid for pid in self.comms if pid != self.pid)
        for i, pid in enumerate(pids):
            meta.append({"ph": "M", "name": "process_name", "pid": pid,
                         "args": {"name": f"{self.comms.get(pid, '?')} (pid {pid})"}})
            meta.append({"ph": "M", "name": "process_sort_index", "pid": pid,
                         "args": {"sort_index": 1 + i}})
        for cpu in range(self.k.ncpu):
            meta.append({"ph": "M", "name": "thread_name", "pid": self.cpu_pid, "tid": cpu,
                         "args": {"name": f"cpu{cpu}"}})
            meta.append({"ph": "M", "name": "thread_sort_index", "pid": self.cpu_pid,
                         "tid": cpu, "args": {"sort_index": cpu}})
        self._name_starts()
        for key in sorted(self.names):
            meta.append({"ph": "M", "name": "thread_name", "pid": key[0], "tid": key[1],
                         "args": {"name": self._label(key)}})
            meta.append({"ph": "M", "name": "thread_sort_index", "pid": key[0], "tid": key[1],
                         "args": {"sort_index": key[1]}})
        for e in self.events:
            a = e.get("args")
            if e.get("cat") == CAT_CPU and a:
                key = (a.get("pid"), a.get("lid"))
                if e["name"] == self._bare(key) and key in self.starts:
                    e["name"] = self._label(key)      # unnamed then: where it started
            if e["ph"] == "X" and a and isinstance(a.get("hint"), int):
                label = self._sym(a["hint"]) if a["hint"] else "NULL"
                a["hint"] = label
                e["name"] = f"parked {label}"
        events = sorted(self.events, key=lambda e: e["ts"])
        other = {"program": getattr(self.s, "path", ""), "ncpu": self.k.ncpu,
                 "clock": "virtual" if self.k.deterministic else "host",
                 "vcpu_pid": self.cpu_pid, "guest_pid": self.pid}
        if status is not None:
            other["exit_status"] = status
        if self.truncated:
            other["truncated_after_events"] = MAX_EVENTS
        return {"traceEvents": meta + events, "displayTimeUnit": "ns", "otherData": other}

    def write(self, status: int | None = None) -> None:
        if self.path is None:
            return
        with open(self.path, "w") as f:
            json.dump(self.trace(status), f, separators=(",", ":"))
            f.write("\n")


def attach(session: Any, path: str | None) -> Timeline:
    """Record a timeline of a Session; written to `path` when the run ends."""
    tl = Timeline(session, path)
    session.kernel.listeners.append(tl)
    session._finishers.append(tl.write)
    return tl
