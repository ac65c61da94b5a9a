"""``python -S kyua_client.py SUITE_DIR [launch arguments]``: one Kyua test case, forked
from the suite's warm server (kyua_server.py) instead of a cold Python.

Run by path with ``-S`` and the standard library only, so it starts in ~15 ms.  It
connects to the suite's server (an abstract AF_UNIX name derived from SUITE_DIR, so
no socket file goes stale and no path is too long; started as ``python -m
nbemu.emu.atf.kyua_server NAME`` if nobody listens), sends its descriptors 0-2,
cwd, umask and environment, forwards
SIGTERM/SIGINT/SIGHUP/SIGQUIT to the child, and ends as the child ended.  If the
server cannot be reached it becomes ``python -m nbemu.emu.atf.launch`` itself, so a
case never fails because of the server.
"""
from __future__ import annotations

import array
import fcntl
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import time

IDLE_SECONDS = "60"          # the server ends after this long without cases
START_TIMEOUT = 60.0         # how long to wait for a new server's socket (a loaded host)


def server_name(suite_dir: str) -> str:
    """The suite's server address: Linux's abstract namespace (a leading NUL)."""
    digest = hashlib.sha256(os.path.realpath(suite_dir).encode()).hexdigest()[:24]
    return f"\0nbemu-kyua-{os.getuid()}-{digest}"


def _connect(path: str) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return s
    except OSError:
        s.close()
        return None


def _start_server(path: str) -> None:
    """A detached server (its own session, no terminal, stdio on /dev/null)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            # Nothing of Kyua's stays open in the server (its output pipes, the lock),
            # and it holds no case's work directory.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 1 << 16)
            os.chdir("/")
            os.execv(sys.executable, [sys.executable, "-m", "nbemu.emu.atf.kyua_server",
                                      path.replace("\0", "@", 1), IDLE_SECONDS])
        finally:
            os._exit(127)
    os.waitpid(pid, 0)


def connect_or_start(suite_dir: str) -> socket.socket | None:
    path = server_name(suite_dir)
    s = _connect(path)
    if s is not None:
        return s
    # One client starts the server; the others wait on the lock, then connect.
    with open(os.path.join(suite_dir, ".nbemu-forkserver.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        s = _connect(path)
        if s is not None:
            return s
        _start_server(path)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            s = _connect(path)
            if s is not None:
                return s
            time.sleep(0.02)
    return None


def _fallback(argv: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, "-m", "nbemu.emu.atf.launch", *argv])


def _die_as(status: int) -> int:
    """Exit as a wait status says: a signal death is raised on this process."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            import resource
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (ImportError, ValueError, OSError):
            pass
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70


def main(args: list[str]) -> int:
    if not args:
        print("usage: kyua_client.py SUITE_DIR [launch arguments]", file=sys.stderr)
        return 2
    suite_dir, argv = args[0], args[1:]
    if os.environ.get("NBEMU_ATF_FORKSERVER", "1") == "0":
        _fallback(argv)
    try:
        conn = connect_or_start(suite_dir)
    except OSError:
        conn = None
    if conn is None:
        _fallback(argv)
        return 70
    mask = os.umask(0)
    os.umask(mask)
    body = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ),
                       "umask": mask}).encode()
    msg = struct.pack(">I", len(body)) + body
    try:
        sent = conn.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     array.array("i", [0, 1, 2]))])
        conn.sendall(msg[sent:])
        reader = conn.makefile("rb")
        first = json.loads(reader.readline() or b"{}")
    except (OSError, ValueError):
        first = {}
    pid = first.get("pid")
    if not isinstance(pid, int):
        _fallback(argv)              # the server refused or died: run it cold
        return 70

    def forward(sig: int, _frame: object) -> None:
        try:
            os.killpg(pid, sig)
        except OSError:
            pass

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(s, forward)
    while True:
        try:
            line = reader.readline()
            break
        except InterruptedError:
            continue
    try:
        last = json.loads(line) if line else {}
    except ValueError:
        last = {}
    if "status" not in last:
        print("nbemu atf: the fork server lost this case", file=sys.stderr)
        return 70
    return _die_as(int(last["status"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
