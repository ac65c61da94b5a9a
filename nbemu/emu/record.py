"""Record / replay (`nbemu --record LOG`, `nbemu --replay LOG`).

What makes two runs of one program differ, and how each is pinned down:

- Where a vCPU's turn is cut. In fast mode the host ticker thread preempts the
  running LWP after ~1 ms of host time; everything else the scheduler decides
  (which vCPU is served next, which LWP it picks, preemption on a system call)
  is a function of the kernel's state. The log keeps one record per turn:
  the vCPU, the LWP, whether the turn ended by preemption, and how many
  translated blocks the native hook counted. A replay disarms the ticker and
  stops a preempted turn with the deterministic block budget set to exactly
  that count; the other fields are checked, so a replay that picks another
  LWP, or runs a different number of blocks, stops at once ("diverged").
- The host clock: every CLOCK_MONOTONIC / CLOCK_REALTIME reading the kernel
  makes is logged and handed back in order; idle waits (Clock.wait_until)
  do not sleep on replay, their readings come from the log. (--deterministic
  runs have a virtual clock: nothing to log.)
- Host inputs (syscalls/hostinput.py): data read from host descriptors,
  their readiness (poll, kevent, O_NONBLOCK), directory listings, file pages
  mapped by mmap, host random bytes (kern.arandom; /dev/urandom is a host
  read), what host sockets answered ("sock": syscalls/uipc_syscalls.py). On
  replay the host is not asked: stdin is not read.
- The start: environment, working directory, hostname, boot time, argv0 and
  the options (--ncpu, --deterministic, --seed, --root) are in the header and
  a replay takes them from there.

Not logged (documented in README): file metadata (stat, open's success,
readlink: the file tree must be the same), uid/gid, how many bytes a write to
the host took, RDTSC.

The log: gzip of one JSON header line, then binary records, each a tag byte:

  S  <HIBQ  vCPU, lid, 1 if ended by preemption, blocks the hook counted
  M  <q     a CLOCK_MONOTONIC reading (ns)       R  <q  a CLOCK_REALTIME reading
  I  <B     kind index (INPUT_KINDS), then one encoded value (_enc)
  G  <B<Q   a signal the host sent nbemu, posted to the guest at a system call's
            end (the kernel's count of system calls then); g  <B  the same, before
            a turn. The byte: the NetBSD number, | SENT_BY_PROCESS (0x80) when a
            host process sent it (kill(2)) rather than the terminal (version 3;
            a version 2 log has no such bit: its signals replay as sent by the
            terminal, as that nbemu took them all)
  X  <i     the exit status: the end of the log

A turn's S record is written before the records its system calls make (its
fields are filled in when the turn ends), so a replay knows the budget first.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import socket
import stat
import struct
import sys
import zlib
from typing import Any, Callable

from nbemu.syscalls import hostinput
from nbemu.syscalls.kern_tc import Clock

FORMAT = "nbemu-replay-log"
VERSION = 3               # 3: a host signal's byte says who sent it (SENT_BY_PROCESS)
REPLAYS = (2, 3)          # 2: host signals posted before a turn have a tag of their own ("g")
SENT_BY_PROCESS = 0x80    # a host signal's byte: sent by a host process, not the terminal
EXIT_DIVERGED = 124       # the replay asked for something the log does not have next

INPUT_KINDS = ("read", "pread", "ready", "mmap", "readdir", "random", "sock")
_KIND_INDEX = {k: i for i, k in enumerate(INPUT_KINDS)}

_SLICE = struct.Struct("<HIBQ")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_U8 = struct.Struct("<B")
_FLUSH_AT = 1 << 20       # bytes of records kept before compressing them


class LogError(Exception):
    """The log cannot be replayed with this program/options (refused before running)."""


class Divergence(Exception):
    """The replayed run asked for something else than the log has next."""


# -- values of host inputs ------------------------------------------------------------------
def _enc(v: Any, out: bytearray) -> None:
    """A small tagged encoding for the results host inputs return: None, bool,
    int, bytes, str and lists/tuples of them (read: (errno, data); readdir: a
    list of (inode, type, name))."""
    if v is None:
        out += b"n"
    elif v is True or v is False:
        out += b"T" if v else b"F"
    elif isinstance(v, int):
        if -(1 << 63) <= v < (1 << 63):
            out += b"i" + _I64.pack(v)
        else:
            out += b"u" + _U64.pack(v)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        out += b"y" + _U32.pack(len(v)) + bytes(v)
    elif isinstance(v, str):
        b = v.encode("utf-8", "surrogateescape")
        out += b"s" + _U32.pack(len(b)) + b
    elif isinstance(v, (tuple, list)):
        out += (b"t" if isinstance(v, tuple) else b"l") + _U32.pack(len(v))
        for x in v:
            _enc(x, out)
    else:
        raise TypeError(f"record: cannot log a {type(v).__name__}")


def _dec(buf: memoryview, pos: int) -> tuple[Any, int]:
    tag = buf[pos]
    pos += 1
    if tag == 0x6E:                                   # n
        return None, pos
    if tag == 0x54 or tag == 0x46:                    # T F
        return tag == 0x54, pos
    if tag == 0x69:                                   # i
        return _I64.unpack_from(buf, pos)[0], pos + 8
    if tag == 0x75:                                   # u
        return _U64.unpack_from(buf, pos)[0], pos + 8
    if tag in (0x79, 0x73):                           # y s
        n = _U32.unpack_from(buf, pos)[0]
        pos += 4
        if pos + n > len(buf):
            raise IndexError("value past the end of the log")
        b = bytes(buf[pos:pos + n])
        return (b if tag == 0x79 else b.decode("utf-8", "surrogateescape")), pos + n
    if tag in (0x74, 0x6C):                           # t l
        n = _U32.unpack_from(buf, pos)[0]
        pos += 4
        items = []
        for _ in range(n):
            x, pos = _dec(buf, pos)
            items.append(x)
        return (tuple(items) if tag == 0x74 else items), pos
    raise ValueError(f"bad value tag {tag:#x}")


# -- the header -------------------------------------------------------------------------------
def program_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stdio_kinds() -> list[str]:
    """What the host's fd 0, 1, 2 are (tty, fifo, file, ...): a replay with
    other kinds may take other paths (isatty, seekable reads)."""
    kinds = []
    for fd in (0, 1, 2):
        try:
            m = os.fstat(fd).st_mode
        except OSError:
            kinds.append("closed")
            continue
        kinds.append("tty" if os.isatty(fd) else "fifo" if stat.S_ISFIFO(m) else
                     "file" if stat.S_ISREG(m) else "socket" if stat.S_ISSOCK(m) else
                     "chr" if stat.S_ISCHR(m) else "other")
    return kinds


# -- recording ------------------------------------------------------------------------------
class Recorder:
    replaying = False

    def __init__(self, path: str, header: dict) -> None:
        self.header = header
        self.path = path
        # Opened now: an unwritable LOG is refused before the guest runs.
        self._f = gzip.open(path, "wb", compresslevel=4)
        self._f.write(json.dumps(header).encode() + b"\n")
        self._buf = bytearray()
        self._slice_at = -1          # offset of the open turn's S record in _buf
        self._blocks0 = 0
        self.cwd: str = header["cwd"]
        self.diverged = False

    # scheduling
    def slice_begin(self, ci: Any, l: Any, blocks: int) -> int:
        buf = self._buf
        if len(buf) >= _FLUSH_AT:
            self._f.write(buf)
            buf.clear()
        self._slice_at = len(buf)
        buf += b"S" + _SLICE.pack(ci.ci_index, l.l_lid, 0, 0)
        self._blocks0 = blocks
        return 0

    def slice_end(self, preempted: bool, blocks: int) -> None:
        at = self._slice_at
        if at < 0:
            return
        _SLICE.pack_into(self._buf, at + 1, *_SLICE.unpack_from(self._buf, at + 1)[:2],
                         1 if preempted else 0, blocks - self._blocks0)
        self._slice_at = -1

    # the clock
    def clock(self, tag: bytes, v: int) -> None:
        self._buf += tag + _I64.pack(v)

    # signals from the host (emu/hostsig.py), at the point the kernel posts them:
    # "g" before a turn, "G" at a system call's end with the kernel's count of
    # system calls then. Both come after the S record of the turn they follow or
    # cut, and a turn's system calls log nothing of their own as a rule, so the
    # tag tells a replay before which turn, the count at which system call.
    def host_signal(self, sig: int, by_process: bool = False, at_turn: bool = False,
                    nsyscalls: int = 0) -> None:
        assert 0 < sig < SENT_BY_PROCESS, sig
        b = bytes((sig | (SENT_BY_PROCESS if by_process else 0),))
        if at_turn:
            self._buf += b"g" + b
        else:
            self._buf += b"G" + b + _U64.pack(nsyscalls)

    # host inputs (syscalls/hostinput.py)
    def input(self, kind: str, fn: Callable[[], Any]) -> Any:
        v = fn()
        buf = self._buf
        buf += b"I" + bytes((_KIND_INDEX[kind],))
        _enc(v, buf)
        return v

    @staticmethod
    def is_divergence(e: BaseException) -> bool:
        return False

    def finish(self, status: int) -> int:
        self._buf += b"X" + struct.pack("<i", status)
        self.close()
        return status

    def close(self) -> None:
        if self._f is not None:
            self._f.write(self._buf)
            self._buf.clear()
            self._f.close()
            self._f = None
        if hostinput.recorder is self:
            hostinput.recorder = None


class RecordingClock(Clock):
    """The host clock, every reading logged."""

    cpu_by_work = True          # CPU time from guest work: the replay counts the same

    def __init__(self, work_blocks: Callable[[], int]) -> None:
        super().__init__(False, work_blocks)
        self._rec: Recorder | None = None       # set once the header (its boot time) is written

    def monotonic_ns(self) -> int:
        v = super().monotonic_ns()
        self._rec.clock(b"M", v)
        return v

    def realtime_ns(self) -> int:
        v = super().realtime_ns()
        self._rec.clock(b"R", v)
        return v

    def stamp_ns(self) -> int:
        return Clock.monotonic_ns(self)


# -- replaying --------------------------------------------------------------------------------
_WHAT = {ord("S"): "a vCPU turn", ord("M"): "a CLOCK_MONOTONIC reading",
         ord("R"): "a CLOCK_REALTIME reading", ord("I"): "a host input",
         ord("G"): "a signal from the host", ord("g"): "a signal from the host",
         ord("X"): "the end of the run"}


class Replayer:
    replaying = True

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise LogError(f"cannot read {path}: {e.strerror}") from None
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise LogError(f"{path} is truncated or corrupt ({e})") from None
        nl = data.find(b"\n")
        try:
            self.header = json.loads(data[:nl]) if nl > 0 else None
        except ValueError:
            self.header = None
        if not isinstance(self.header, dict) or self.header.get("format") != FORMAT:
            raise LogError(f"{path} is not an nbemu record log")
        version = self.header.get("version")
        if version not in REPLAYS:
            raise LogError(f"{path} is a version {version} log; this nbemu replays "
                           f"versions {', '.join(map(str, REPLAYS))}")
        self._by_process = version >= 3      # host signals say who sent them
        self._buf = memoryview(data)[nl + 1:]
        self._pos = 0
        self._nrec = 0
        self._slice: tuple[int, int, int, int] | None = None
        self._blocks0 = 0
        self.cwd: str = self.header["cwd"]
        self.diverged = False
        self._first: str | None = None

    def apply_stdio(self, p: Any) -> None:
        """Give the guest's fds 0-2 the kinds they had when recorded (a tty or
        pipe read may wait and poll, a file read does not): the replay must take
        the recorded paths whatever the host's fds are now."""
        from nbemu.syscalls.kern_descrip import fd_getfile
        kinds = self.header.get("stdio") or []
        for fd, kind in enumerate(kinds[:3]):
            fp = fd_getfile(p, fd)
            if fp is not None and hasattr(fp, "may_block"):
                fp.may_block = kind in ("tty", "fifo", "socket")

    def _diverged(self, msg: str) -> Divergence:
        """The exception to raise; the first one is what gets reported (a turn
        cut short by it may fail its own check on the way out)."""
        if self._first is None:
            self._first = msg
        return Divergence(msg)

    def _next(self, tag: int, wanted: str) -> int:
        """Position after the tag byte of the next record, which must be `tag`."""
        pos = self._pos
        self._nrec += 1
        if pos >= len(self._buf):
            raise self._diverged(f"the run asked for {wanted}, but the log ends here "
                             f"(record {self._nrec})")
        t = self._buf[pos]
        if t != tag:
            raise self._diverged(f"the run asked for {wanted}, the log has "
                             f"{_WHAT.get(t, f'a bad record (tag {t:#x})')} next "
                             f"(record {self._nrec})")
        return pos + 1

    def _read(self, st: struct.Struct, pos: int) -> tuple:
        if pos + st.size > len(self._buf):
            raise self._diverged(f"the log ends inside record {self._nrec}")
        self._pos = pos + st.size
        return st.unpack_from(self._buf, pos)

    # scheduling
    def slice_begin(self, ci: Any, l: Any, blocks: int) -> int:
        """The recorded turn must run the same LWP on the same vCPU; returns the
        block budget that ends it where the recorded one was preempted (0: it
        ended in a system call or fault, which replays by itself)."""
        pos = self._next(ord("S"), f"a turn of lid {l.l_lid} on vCPU {ci.ci_index}")
        cpu, lid, pre, n = self._read(_SLICE, pos)
        if (cpu, lid) != (ci.ci_index, l.l_lid):
            raise self._diverged(f"turn {self._nrec}: the log runs lid {lid} on vCPU {cpu}, "
                             f"the replay picked lid {l.l_lid} on vCPU {ci.ci_index}")
        self._slice = (cpu, lid, pre, n)
        self._blocks0 = blocks
        return n if pre else 0

    def slice_end(self, preempted: bool, blocks: int) -> None:
        s = self._slice
        if s is None:
            return
        self._slice = None
        ran = blocks - self._blocks0
        if (bool(s[2]), s[3]) != (preempted, ran):
            how = lambda p, n: f"{'preempted' if p else 'trapped'} after {n} blocks"  # noqa: E731
            raise self._diverged(f"a turn of lid {s[1]} on vCPU {s[0]} was "
                             f"{how(s[2], s[3])} when recorded, {how(preempted, ran)} now")

    # the clock
    def clock(self, tag: int, wanted: str) -> int:
        return self._read(_I64, self._next(tag, wanted))[0]

    # signals from the host: the recorded run posted them at this point, as
    # (NetBSD signal, sent by a host process)
    def host_signals(self, at_turn: bool = False, nsyscalls: int = 0) -> list[tuple[int, bool]]:
        sigs = []
        buf = self._buf
        tag = ord("g") if at_turn else ord("G")
        while self._pos < len(buf) and buf[self._pos] == tag:
            if not at_turn and self._pos + 10 <= len(buf) \
                    and _U64.unpack_from(buf, self._pos + 2)[0] != nsyscalls:
                break                   # posted at a later system call's end
            pos = self._next(tag, "a signal from the host")
            b = self._read(_U8, pos)[0]
            # (a version 2 log: every signal as the terminal's, as it was posted)
            by_process = self._by_process and bool(b & SENT_BY_PROCESS)
            sigs.append((b & ~SENT_BY_PROCESS if self._by_process else b, by_process))
            if not at_turn:
                self._read(_U64, self._pos)
        return sigs

    # host inputs
    def input(self, kind: str, fn: Callable[[], Any]) -> Any:
        pos = self._next(ord("I"), f"host input '{kind}'")
        if pos >= len(self._buf):
            raise self._diverged(f"the log ends inside record {self._nrec}")
        k = self._buf[pos]
        if k != _KIND_INDEX[kind]:
            got = INPUT_KINDS[k] if k < len(INPUT_KINDS) else f"#{k}"
            raise self._diverged(f"the run asked for host input '{kind}', the log has "
                             f"'{got}' next (record {self._nrec})")
        try:
            v, self._pos = _dec(self._buf, pos + 1)
        except (IndexError, ValueError, struct.error) as e:
            raise self._diverged(f"record {self._nrec} is damaged ({e})") from None
        return v

    def finish(self, status: int) -> int:
        """The run ended with `status`: the log must end the same way."""
        if self.diverged:
            return EXIT_DIVERGED
        try:
            pos = self._next(ord("X"), f"nothing more (the run ended, status {status})")
            (want,) = self._read(struct.Struct("<i"), pos)
            if want != status:
                raise self._diverged(f"the run ended with status {status}, the recorded one "
                                 f"with {want}")
        except Divergence as e:
            return self.report(e)
        finally:
            self.close()
        return status

    @staticmethod
    def is_divergence(e: BaseException) -> bool:
        return isinstance(e, Divergence)

    def report(self, e: Divergence) -> int:
        self.diverged = True
        sys.stdout.flush()
        print(f"nbemu: replay diverged from {self.path}: {self._first or e} "
              f"(exit status {EXIT_DIVERGED})", file=sys.stderr)
        return EXIT_DIVERGED

    def close(self) -> None:
        if hostinput.recorder is self:
            hostinput.recorder = None


class ReplayClock(Clock):
    """The recorded host clock: readings come from the log, waits do not sleep."""

    cpu_by_work = True

    def __init__(self, rp: Replayer, work_blocks: Callable[[], int]) -> None:
        super().__init__(False, work_blocks)
        self._rp = rp
        self._last = 10**9

    def monotonic_ns(self) -> int:
        v = self._rp.clock(0x4D, "a CLOCK_MONOTONIC reading")
        self._last = v
        return v

    def realtime_ns(self) -> int:
        return self._rp.clock(0x52, "a CLOCK_REALTIME reading")

    def stamp_ns(self) -> int:
        return self._last           # traces and timelines: the last time the guest saw

    def wait_until(self, deadline_ns: int) -> None:
        self.monotonic_ns()         # the reading the recorded wait made; no sleep


# -- wiring -------------------------------------------------------------------------------------
def make_header(path: str, args: list[str], opts: Any, cwd: str, boottime_ns: int,
                arch: str) -> dict:
    return {"format": FORMAT, "version": VERSION, "program": os.path.abspath(path),
            "sha256": program_sha256(path), "args": list(args), "argv0": opts.argv0,
            "arch": arch, "ncpu": opts.ncpu, "deterministic": opts.deterministic,
            "seed": opts.seed, "root": opts.root, "memory": opts.memory, "cwd": cwd,
            "binds": [list(b) for b in opts.binds],
            # as pairs: the order of envp is guest-visible
            "env": [[k, v] for k, v in (os.environ if opts.env is None else opts.env).items()],
            "hostname": socket.gethostname(), "boottime_ns": boottime_ns,
            "stdio": stdio_kinds()}


def attach(session: Any, path: str, args: list[str], opts: Any, cwd: str) -> Recorder | Replayer:
    """Put a Session under record or replay: swap its clock (host-clock runs),
    route host inputs through the log, give the machine the turn hooks."""
    m = session.machine
    k = session.kernel
    if m.native is None:
        raise LogError("record/replay needs the native block hook (a C compiler)")
    if opts.replay is not None:
        rr: Recorder | Replayer = opts.replay
        h = rr.header
        if not opts.deterministic:
            k.clock = ReplayClock(rr, m.blocks_executed)
        k.clock.boottime_ns = h["boottime_ns"]
    else:
        clock = None if opts.deterministic else RecordingClock(m.blocks_executed)
        if clock is not None:
            k.clock = clock
        h = make_header(path, args, opts, cwd, k.clock.boottime_ns, m.abi.__class__.__name__)
        rr = Recorder(opts.record, h)
        if clock is not None:
            clock._rec = rr
    k.config["hostname"] = h["hostname"]
    hostinput.recorder = rr
    m.rr = rr
    k.hostsig_log = rr
    if rr.replaying:
        k.hostsig_check = True          # every delivery point looks for a logged signal
    return rr


def walk(body: bytes | memoryview):
    """(offset, tag, name) of each record of a log's body (after the header
    line), without replaying it: for summary() and for tests that edit a log."""
    buf = memoryview(body)
    names = {ord("S"): "turns", ord("M"): "monotonic", ord("R"): "realtime", ord("X"): "end",
             ord("G"): "hostsignal", ord("g"): "hostsignal"}
    pos = 0
    while pos < len(buf):
        tag = buf[pos]
        at = pos
        if tag == ord("I"):
            name = "input:" + INPUT_KINDS[buf[pos + 1]]
            _, pos = _dec(buf, pos + 2)
        elif tag == ord("S"):
            name = "preempted" if _SLICE.unpack_from(buf, pos + 1)[2] else "turns"
            pos += 1 + _SLICE.size
        elif tag in names:
            name = names[tag]
            pos += 1 + {ord("X"): 4, ord("G"): 9, ord("g"): 1}.get(tag, 8)
        else:
            raise LogError(f"bad record tag {tag:#x} at offset {pos}")
        yield at, chr(tag), name


def summary(path: str) -> dict[str, int]:
    """How many records of each kind a log holds ("turns", of which "preempted",
    "monotonic", "realtime", "input:read", ...): for tests and a look at a log."""
    n: dict[str, int] = {}
    for _, _, name in walk(Replayer(path)._buf):
        n[name] = n.get(name, 0) + 1
        if name == "preempted":
            n["turns"] = n.get("turns", 0) + 1
    return n


def check_replay(rp: Replayer, program: str, args: list[str], given: dict[str, Any]) -> str | None:
    """Why this log cannot be replayed with PROGRAM ARGS and the options given
    explicitly (None: it can)."""
    h = rp.header
    try:
        digest = program_sha256(program)
    except OSError as e:
        return f"cannot read {program}: {e.strerror}"
    if digest != h.get("sha256"):
        return (f"{rp.path} was recorded for another program ({h.get('program')}, sha256 "
                f"{str(h.get('sha256'))[:16]}...; {program} has {digest[:16]}...)")
    if list(args) != h.get("args"):
        return f"{rp.path} was recorded with arguments {h.get('args')}, not {list(args)}"
    for name, v in given.items():
        if h.get(name) != v:
            return (f"{rp.path} was recorded with --{name} {h.get(name)}; the replay "
                    f"takes it from the log (do not give --{name} {v})")
    return None
