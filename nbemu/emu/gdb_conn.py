"""The GDB remote serial protocol's transport: listening socket, packet framing,
checksums, acknowledgements, and the out-of-band interrupt byte.

A reader thread owns the receiving side of the socket for the whole session:
it splits the byte stream into events and queues them for the stub, which
runs on the emulator's thread. That is what lets Ctrl-C (a bare 0x03 byte)
reach a guest that is running: the reader calls `on_interrupt` at once, and
the stub turns that into an exact stop at the next block boundary.

Events (tuples, first item the kind):
    ("pkt", payload: bytes)  a well-formed packet, checksum verified, escapes undone
    ("bad", reason: str)     a packet with a bad checksum or malformed frame
                             (already answered with '-' in acknowledgement mode)
    ("long",)                a packet longer than MAX_PACKET (its bytes dropped)
    ("nak",)                 gdb asked for the last reply again ('-')
    ("intr",)                0x03
    ("eof",)                 gdb went away
Nothing gdb sends can raise out of the reader: every byte sequence maps to one
of these.
"""
from __future__ import annotations

import os
import queue
import socket
import sys
import threading
from typing import Callable

PACKET_SIZE = 0x4000          # advertised in qSupported (PacketSize): what gdb may send
MAX_PACKET = PACKET_SIZE + 64  # beyond this a packet is "too long" and dropped


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def escape(data: bytes) -> bytes:
    """Escape '#', '$', '}' and '*' (binary replies; harmless in text ones)."""
    if not any(c in data for c in b"#$}*"):
        return data
    out = bytearray()
    for c in data:
        if c in b"#$}*":
            out += bytes((0x7D, c ^ 0x20))
        else:
            out.append(c)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    if b"}" not in data:
        return data
    out = bytearray()
    it = iter(data)
    for c in it:
        if c == 0x7D:
            nxt = next(it, None)
            if nxt is None:
                break
            out.append(nxt ^ 0x20)
        else:
            out.append(c)
    return bytes(out)


def frame(payload: bytes) -> bytes:
    body = escape(payload)
    return b"$" + body + b"#" + b"%02x" % checksum(body)


def check_spec(spec: str) -> str | None:
    """Why `-g SPEC` is malformed (one phrase), or None."""
    if spec.startswith("unix:"):
        return None if spec[5:] else "unix: needs a path"
    port_s = spec.rpartition(":")[2]
    if not port_s.isdigit() or int(port_s) > 65535:
        return "expected PORT (0-65535), HOST:PORT or unix:PATH"
    return None


class Listener:
    """`-g PORT` (TCP, 127.0.0.1; PORT 0 picks a free one), `-g HOST:PORT`, or
    `-g unix:/path` (a Unix socket, created anew)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.unix_path: str | None = None
        why = check_spec(spec)
        if why is not None:
            raise ValueError(why)
        if spec.startswith("unix:"):
            path = spec[5:]
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            self.unix_path = path
            self.where = path
            self.gdb_target = f"| socat - UNIX-CONNECT:{path}"   # gdb 13 has no unix:
        else:
            host, _, port_s = spec.rpartition(":")
            host = host.strip("[]") or "127.0.0.1"
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, int(port_s)))
            self.port = s.getsockname()[1]
            self.where = f"port {self.port}"
            self.gdb_target = f"{spec.rpartition(':')[0]}:{self.port}"
        s.listen(1)
        self.sock = s

    def accept(self) -> socket.socket:
        conn, _ = self.sock.accept()
        if conn.family != socket.AF_UNIX:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        if self.unix_path is not None:
            try:
                os.unlink(self.unix_path)
            except OSError:
                pass


class Conn:
    """One gdb connection: a reader thread producing events, and send()."""

    def __init__(self, sock: socket.socket, on_interrupt: Callable[[], None],
                 on_eof: Callable[[], None]) -> None:
        self.sock = sock
        self.events: queue.Queue = queue.Queue()
        self.ack = True                 # until QStartNoAckMode
        self.closed = False
        self.last: bytes = b""          # last packet sent (for '-')
        self._send_lock = threading.Lock()
        self._on_interrupt = on_interrupt
        self._on_eof = on_eof
        self._reader = threading.Thread(target=self._read_loop, name="nbemu-gdb-reader",
                                        daemon=True)
        self._reader.start()

    # -- sending ----------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.closed:
            return
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def send(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            payload = payload.encode("latin-1")
        self.last = frame(payload)
        self._write(self.last)

    def resend(self) -> None:
        if self.last:
            self._write(self.last)

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def get(self, timeout: float | None = None):
        """The next event, or None after `timeout` seconds."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    # -- receiving (reader thread) --------------------------------------------
    def _read_loop(self) -> None:
        try:
            self._parse_stream()
        except Exception as e:           # never let gdb's bytes kill the emulator
            print(f"nbemu: gdb stub: reader stopped: {e!r}", file=sys.stderr)
        self.closed = True
        self.events.put(("eof",))
        self._on_eof()

    def _bytes(self):
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            yield from chunk

    def _parse_stream(self) -> None:
        it = self._bytes()
        for c in it:
            if c == 0x24:                           # '$'
                self._packet(it)
            elif c == 0x03:
                self.events.put(("intr",))
                self._on_interrupt()
            elif c == 0x2D:                         # '-'
                self.events.put(("nak",))
            # '+' and stray bytes between packets are ignored

    def _packet(self, it) -> None:
        body = bytearray()
        too_long = False
        for c in it:
            if c == 0x23:                           # '#'
                break
            if c == 0x24:                           # '$' inside a packet: restart it
                body.clear()
                too_long = False
                continue
            if len(body) < MAX_PACKET:
                body.append(c)
            else:
                too_long = True
        else:
            return                                  # EOF inside a packet
        cs = bytes(x for _, x in zip(range(2), it))
        if len(cs) < 2:
            return
        try:
            want = int(cs, 16)
        except ValueError:
            want = -1
        if too_long:
            if self.ack:
                self._write(b"+")
            self.events.put(("long",))
            return
        if want != checksum(body):
            if self.ack:
                self._write(b"-")
            self.events.put(("bad", f"checksum {cs!r}, computed {checksum(body):02x}"))
            return
        if self.ack:
            self._write(b"+")
        self.events.put(("pkt", unescape(bytes(body))))
