"""The fork server of a Kyua suite: one warm process per suite directory.

Kyua starts every test case as a new process (the wrapper script that
``nbemu atf --kyua-suite`` writes), so without help each case pays Python's start-up
and the import of unicorn and the kernel (~0.35 s of CPU).  The wrappers run
``kyua_client.py`` instead, a standard-library-only script that connects to this
server (starting it on first use) and hands over
its standard descriptors, cwd, umask and environment over an abstract AF_UNIX
socket (a name, no file: ``@`` on the command line stands for the leading NUL); the server forks a child that
becomes ``python -m nbemu.emu.atf.launch ARGV`` (forkserver._child), and the client
ends exactly as that child does (exit status, or death by the same signal).

Protocol, per connection: the client sends a 4-byte big-endian length, then that
many bytes of JSON ``{"argv": [...], "cwd": "...", "env": {...}, "umask": N}``, with
its descriptors 0, 1 and 2 attached (SCM_RIGHTS) to the first bytes.  The server
answers JSON lines: ``{"pid": N}`` when the child runs, ``{"status": S}`` (a wait
status) when it has ended, or ``{"error": "..."}``.  ``{"quit": true}`` asks the
server to stop accepting and end when its children have.

Kyua ends a case that overran its timeout by killing the wrapper's process group:
the client dies, its connection closes, and the server kills the child's process
group then (the child is a session leader, so its pgid is its pid).  The server
ends by itself after ``idle`` seconds without children or clients.
"""
from __future__ import annotations

import array
import json
import os
import selectors
import signal
import socket
import struct
import time

from .forkserver import _child, _preload, fork_case, reaped

_MAX_REQUEST = 8 << 20               # bytes of JSON: argv + environment


def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    """The request and the descriptors that came with it (ValueError if malformed)."""
    fds = array.array("i")
    msg, anc, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    try:
        if len(msg) < 4:
            raise ValueError("short request")
        (n,) = struct.unpack(">I", msg[:4])
        if n > _MAX_REQUEST:
            raise ValueError("request too large")
        body = msg[4:]
        conn.settimeout(10.0)          # the client sends it all at once
        while len(body) < n:
            chunk = conn.recv(min(1 << 20, n - len(body)))
            if not chunk:
                raise ValueError("truncated request")
            body += chunk
        req = json.loads(body[:n])
        if not isinstance(req, dict):
            raise ValueError("request is not an object")
        return req, list(fds)
    except (ValueError, OSError):
        for fd in fds:
            os.close(fd)
        raise


def _send(conn: socket.socket, obj: dict) -> None:
    try:
        conn.sendall((json.dumps(obj) + "\n").encode())
    except OSError:
        pass                           # the client is gone: nothing to tell


def serve_unix(path: str, idle: float = 60.0) -> int:
    """Listen on ``path`` until idle; 0, or 1 if another server already listens."""
    if path.startswith("@"):
        path = "\0" + path[1:]
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lsock.bind(path)
    except OSError:
        return 1                       # another server has the name: clients use it
    lsock.listen(64)
    _preload()
    rpipe, wpipe = os.pipe()
    for fd in (rpipe, wpipe):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wpipe)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    for s in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(s, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, "listen")
    sel.register(rpipe, selectors.EVENT_READ, "sig")
    children: dict[int, socket.socket] = {}       # pid -> its client's connection
    by_conn: dict[socket.socket, int] = {}
    accepting = True
    last_busy = time.monotonic()

    def stop_accepting() -> None:
        nonlocal accepting
        if accepting:
            accepting = False
            sel.unregister(lsock)

    def keep_fds() -> tuple[int, ...]:
        return (lsock.fileno(), rpipe, wpipe, *(c.fileno() for c in by_conn))

    def reap() -> None:
        for conn, st in reaped(children):
            by_conn.pop(conn, None)
            _send(conn, {"status": st})
            if _registered(sel, conn):
                sel.unregister(conn)
            conn.close()

    def start(conn: socket.socket) -> None:
        try:
            req, fds = _read_request(conn)
        except (ValueError, OSError) as e:
            _send(conn, {"error": f"bad request: {e}"})
            conn.close()
            return
        try:
            if req.get("quit"):
                stop_accepting()
                conn.close()
                return
            if len(fds) != 3 or not isinstance(req.get("argv"), list):
                _send(conn, {"error": "a request carries argv and descriptors 0, 1, 2"})
                conn.close()
                return
            try:
                pid, ready = fork_case()
            except OSError as e:
                _send(conn, {"error": f"fork: {e}"})
                conn.close()
                return
            if pid == 0:
                sel.close()
                _child(req, (*keep_fds(), conn.fileno()), (fds[0], fds[1], fds[2]), ready)
            children[pid] = conn
            by_conn[conn] = pid
            sel.register(conn, selectors.EVENT_READ, "client")
            _send(conn, {"pid": pid})
        finally:
            for fd in fds:
                os.close(fd)

    try:
        while accepting or children:
            for key, _ in sel.select(timeout=1.0):
                if key.data == "sig":
                    try:
                        while os.read(rpipe, 512):
                            pass
                    except BlockingIOError:
                        pass
                elif key.data == "listen":
                    try:
                        conn, _ = lsock.accept()
                    except OSError:
                        continue
                    conn.setblocking(True)
                    start(conn)
                else:
                    # A client's connection is readable only when it closes: the
                    # client died (Kyua's timeout kill), so its child goes too.
                    conn = key.fileobj
                    assert isinstance(conn, socket.socket)
                    pid = by_conn.get(conn)
                    if pid is not None and not conn.recv(1, socket.MSG_PEEK):
                        try:
                            os.killpg(pid, signal.SIGKILL)
                        except OSError:
                            pass
                        sel.unregister(conn)
            reap()
            if children or by_conn:
                last_busy = time.monotonic()
            elif time.monotonic() - last_busy > idle:
                break
    finally:
        lsock.close()
    return 0


def _registered(sel: selectors.BaseSelector, conn: socket.socket) -> bool:
    try:
        sel.get_key(conn)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    # python -m nbemu.emu.atf.kyua_server @NAME [IDLE_SECONDS] (started by kyua_client.py)
    import sys
    sys.exit(serve_unix(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60.0))
