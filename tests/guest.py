"""Helpers to run a NetBSD program under nbemu in a subprocess."""
from __future__ import annotations

import functools
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from fixtures.build import build_c
from nbemu.emu.native import engine_lib

REPO = Path(__file__).resolve().parents[1]

# The patched engine (nbemu/emu/native/engine_lib.py), when `make setup` built it.
PATCHED = engine_lib.built()
needs_patched = pytest.mark.skipif(
    PATCHED is None, reason="the patched engine is not built here (make setup says why: "
                            "cmake or cc missing); nbemu runs on PyPI's Unicorn")


def engine_env(**set_: str) -> dict[str, str]:
    """The environment without an engine choice (LIBUNICORN_PATH, NBEMU_ENGINE),
    plus set_: nbemu picks the patched engine unless set_ chooses."""
    env = {k: v for k, v in os.environ.items() if k not in ("LIBUNICORN_PATH", "NBEMU_ENGINE")}
    env.update(set_)
    return env

# The guest architectures every guest suite runs on: C names (fixtures.build.build_c,
# fixtures/c/rt/<arch>/) and the matching GOARCHes (build_go), in the same order.
ARCHES = ["x86_64", "aarch64", "x86", "arm"]
GOARCHES = ["amd64", "arm64", "386", "arm"]
# Suites with a big matrix (ncpu x seed x fixture) run all of it on amd64 and one
# representative cell on the other ports: OTHER_ARCHES / OTHER_GOARCHES.
OTHER_ARCHES = ARCHES[1:]
OTHER_GOARCHES = GOARCHES[1:]


def run_nbemu(prog: Path | str, *args: str, opts: tuple[str, ...] = (), timeout: int = 300,
              env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbemu.emu.cli", *opts, str(prog), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env,
                          **kw)



class Running:
    """nbemu running a guest in a subprocess, its stdout and stderr read line by
    line as they come: a test waits for the guest's line (expect) before it
    sends a signal or input -- a handshake, never a sleep. `timeout` only
    bounds a guest that never says its line (on a loaded host it just comes
    later)."""

    def __init__(self, prog: Path | str, *args: str, opts: tuple[str, ...] = (),
                 timeout: float = 120) -> None:
        self.p = subprocess.Popen([sys.executable, "-m", "nbemu.emu.cli", *opts, str(prog), *args],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.timeout = timeout
        self.lines: dict[str, list[str]] = {"out": [], "err": []}
        self._q: dict[str, queue.Queue] = {"out": queue.Queue(), "err": queue.Queue()}
        self._pumps = [threading.Thread(target=self._pump, args=(name, stream), daemon=True)
                       for name, stream in (("out", self.p.stdout), ("err", self.p.stderr))]
        for t in self._pumps:
            t.start()

    def _pump(self, name: str, stream) -> None:
        for line in stream:
            self._q[name].put(line)
        self._q[name].put(None)

    def expect(self, want: str | re.Pattern | Callable[[str], bool], stream: str = "out") -> str:
        """The next line of stream (`out` / `err`) that is `want` (a whole line,
        a pattern it contains, or a test); the lines before it are kept."""
        if isinstance(want, str):
            match = lambda ln: ln == want              # noqa: E731
        elif isinstance(want, re.Pattern):
            match = lambda ln: want.search(ln) is not None   # noqa: E731
        else:
            match = want
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                line = self._q[stream].get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError(f"no line {want!r} on std{stream} in {self.timeout} s: "
                                     f"{''.join(self.lines[stream])!r}") from None
            if line is None:
                self._q[stream].put(None)
                raise AssertionError(f"the guest ended before {want!r} on std{stream}: "
                                     f"{''.join(self.lines[stream])!r}"
                                     f" {''.join(self.lines['err'])!r}")
            self.lines[stream].append(line)
            if match(line):
                return line

    def signal(self, sig: int) -> None:
        self.p.send_signal(sig)

    def finish(self) -> tuple[int, str, str]:
        """Wait for the end: (exit status, all of stdout, all of stderr)."""
        self.p.wait(timeout=self.timeout)
        for t in self._pumps:
            t.join(timeout=self.timeout)
        for name, q in self._q.items():
            while (line := q.get()) is not None:
                self.lines[name].append(line)
            q.put(None)
        return self.p.returncode, "".join(self.lines["out"]), "".join(self.lines["err"])

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class OnTerminal:
    """nbemu on a pseudo-terminal that is the controlling terminal of its own
    session (setsid, then TIOCSCTTY on the slave, its stdin, stdout and stderr),
    so that nbemu is the terminal's foreground job: writing the VINTR character
    (Ctrl-C) to the master makes Linux's tty driver send SIGINT with si_code
    SI_KERNEL, as a terminal's Ctrl-C does -- unlike os.kill (SI_USER). Its
    output comes back as the terminal shows it, echo included ("^C"), with
    CR LF made LF."""

    def __init__(self, prog: Path | str, *args: str, opts: tuple[str, ...] = (),
                 timeout: float = 120) -> None:
        import fcntl
        import os
        import pty
        import termios
        self.master, slave = pty.openpty()

        def controlling_tty() -> None:          # (in the child, after setsid)
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.p = subprocess.Popen([sys.executable, "-m", "nbemu.emu.cli", *opts, str(prog), *args],
                                  cwd=REPO, stdin=slave, stdout=slave, stderr=slave,
                                  start_new_session=True, preexec_fn=controlling_tty)
        os.close(slave)
        self.timeout = timeout
        self.out = ""

    def _more(self, deadline: float) -> bool:
        """Read what the terminal shows next; False at its end (no writer left)."""
        import os
        import select
        if not select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))[0]:
            self.kill()
            raise AssertionError(f"nbemu on a terminal said nothing more in {self.timeout} s: "
                                 f"{self.out!r}")
        try:
            data = os.read(self.master, 4096)
        except OSError:                         # EIO: every slave descriptor is closed
            data = b""
        self.out += data.decode(errors="replace").replace("\r\n", "\n")
        return bool(data)

    def expect(self, text: str) -> None:
        """Wait until the terminal has shown text."""
        deadline = time.monotonic() + self.timeout
        while text not in self.out:
            if not self._more(deadline):
                raise AssertionError(f"nbemu ended before {text!r}: {self.out!r}")

    def write(self, data: bytes) -> None:
        import os
        os.write(self.master, data)

    def finish(self) -> tuple[int, str]:
        """Wait for the end of nbemu and of its output: (exit status, all it showed)."""
        import os
        deadline = time.monotonic() + self.timeout
        while self._more(deadline):
            pass
        self.p.wait(timeout=self.timeout)
        os.close(self.master)
        return self.p.returncode, self.out

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


# -- nbemu -g: the GDB stub (tests/test_gdb*.py) ---------------------------------------
FIXTURE = "gdb_threads"
WAIT_RE = re.compile(r"waiting for gdb on (?:port (\d+)|(\S+))")


class Nbemu:
    """nbemu -g under test: started, its port read from stderr."""

    def __init__(self, *args: str, spec: str = "0", opts: tuple[str, ...] = (),
                 fixture: str = FIXTURE, arch: str = "x86_64") -> None:
        prog = build_c(fixture, arch=arch)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nbemu.emu.cli", *opts, "-g", spec, str(prog), *args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = ""
        for _ in range(50):                 # (warnings may come first)
            more = self.proc.stderr.readline()
            line += more
            m = WAIT_RE.search(more)
            if m is not None or not more:
                break
        if m is None:
            self.proc.kill()
            raise AssertionError(f"no 'waiting for gdb' line: {line!r}")
        self.port = int(m.group(1)) if m.group(1) else None
        self.path = m.group(2)
        self.first_line = line

    def connect(self) -> "Client":
        if self.port is not None:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)    # as gdb does
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(self.path)
        return Client(s)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, self.first_line + err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


class Client:
    """A minimal remote-protocol client that checks every frame it receives."""

    def __init__(self, sock: socket.socket) -> None:
        self.s = sock
        self.buf = b""

    def raw(self, data: bytes) -> None:
        self.s.sendall(data)

    def send(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        self.raw(b"$" + payload + b"#%02x" % (sum(payload) & 0xFF))

    def _byte(self) -> int:
        while not self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        c, self.buf = self.buf[0], self.buf[1:]
        return c

    def read_ack(self) -> bytes:
        return bytes((self._byte(),))

    def reply(self) -> bytes:
        """The next packet (acks before it skipped), acknowledged, escapes undone."""
        while True:
            c = self._byte()
            if c == ord("$"):
                break
            assert c in b"+-", f"unexpected byte {c!r} between packets"
        body = bytearray()
        while (c := self._byte()) != ord("#"):
            body.append(c)
        cs = bytes((self._byte(), self._byte()))
        assert int(cs, 16) == sum(body) & 0xFF, "stub sent a bad checksum"
        self.raw(b"+")
        out = bytearray()
        esc = False
        for b in body:
            if esc:
                out.append(b ^ 0x20)
                esc = False
            elif b == 0x7D:
                esc = True
            else:
                out.append(b)
        return bytes(out)

    def ask(self, payload: bytes | str) -> bytes:
        self.send(payload)
        return self.reply()

    def close(self) -> None:
        self.s.close()


GDB_ARCH = {"x86_64": "i386:x86-64", "aarch64": "aarch64", "arm": "arm", "x86": "i386"}


@functools.lru_cache(maxsize=None)
def find_gdb(arch: str) -> tuple[str | None, str]:
    """(path of a gdb that debugs arch, or None and why not)."""
    found = []
    for name in ("gdb-multiarch", "gdb"):
        path = shutil.which(name)
        if path is None:
            continue
        found.append(name)
        r = subprocess.run([path, "-batch", "-nx", "-ex", f"set architecture {GDB_ARCH[arch]}"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0 and not r.stderr.strip():
            return path, ""
    if not found:
        return None, "neither gdb-multiarch nor gdb is installed (run tests/install_gdb.sh)"
    return None, f"{' and '.join(found)} cannot debug {GDB_ARCH[arch]} (install gdb-multiarch)"
