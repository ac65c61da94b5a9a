"""A fork server: start nbemu processes without paying Python's start-up each time.

Starting ``python -m nbemu.emu.atf.launch`` costs ~0.25 s before the guest runs its first
instruction (interpreter, then importing unicorn, capstone and the kernel modules);
an ATF suite pays it once per test case.  The fork server is one process that has
imported all that once; for each request it forks a child that becomes exactly
the process ``python -m nbemu.emu.atf.launch ARGV`` would have been: its own session and
process group, the requested cwd, environment, stdout and stderr files, stdin from
/dev/null, default signal dispositions.  The parent (the runner) still enforces
timeouts by killing the child's process group, and gets the child's wait status.

Protocol (JSON lines; requests on the server's stdin, replies on its stdout):

    -> {"id": 7, "argv": [...], "cwd": "...", "env": {...}, "stdout": "...", "stderr": "..."}
    <- {"id": 7, "pid": 12345}                 or {"id": 7, "error": "..."}
    <- {"id": 7, "status": <wait status>}      when the child has ended

The server is single-threaded (fork and threads do not mix): it waits on its
request pipe and on a SIGCHLD self-pipe.  It exits when its stdin closes.  If it
cannot start or dies, :class:`ForkServer` reports it and the runner falls back to
plain subprocesses.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
from typing import Iterator, TypeVar


# ---------------------------------------------------------------- server side



T = TypeVar("T")


def reaped(children: dict[int, T]) -> Iterator[tuple[T, int]]:
    """(what children held for it, wait status) of each child that has ended,
    without blocking; popped from children (pid -> anything)."""
    while children:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in children:
            yield children.pop(pid), st

def fork_case() -> tuple[int, int]:
    """os.fork() for a case: (pid, -1) in the parent, (0, ready) in the child.
    The parent returns only once the child leads its own process group
    (os.setsid, _child's first step; the child then closes `ready`), so a
    killpg of the pid the server reports always reaches the case. (Without the
    wait, a client killed at once -- Kyua's timeout kill -- had its case's
    killpg fail with ESRCH, and the case ran on, holding the client's output.)"""
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        raise
    if pid == 0:
        os.close(r)
        return 0, w
    os.close(w)
    try:
        while os.read(r, 1):            # EOF: the child closed it (setsid done) or died
            pass
    finally:
        os.close(r)
    return pid, -1


def _child(req: dict, keep: tuple[int, ...], stdio: tuple[int, int, int] | None = None,
           ready: int = -1) -> None:
    """In the forked child (fork_case's, `ready` its handshake): become the nbemu
    process of the request; never returns.

    Its standard files are ``stdio`` (descriptors received from a client), else
    /dev/null and the request's ``stdout``/``stderr`` paths."""
    status = 70
    try:
        os.setsid()
        if ready >= 0:
            os.close(ready)             # (fork_case's parent goes on)
        for fd in keep:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        for s in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(s, signal.SIG_DFL)
        if stdio is None:
            stdio = (os.open(os.devnull, os.O_RDONLY),
                     os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
                     os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        for target, fd in enumerate(stdio):
            if fd != target:
                os.dup2(fd, target)
        for fd in set(stdio):
            if fd > 2:
                os.close(fd)
        if "umask" in req:
            os.umask(int(req["umask"]))
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.argv = ["nbemu", *req["argv"]]
        from nbemu.emu.atf import launch
        status = launch.main(list(req["argv"]))
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:                            # noqa: BLE001
        try:
            os.write(2, f"nbemu atf fork server: {type(e).__name__}: {e}\n".encode())
        except OSError:
            pass
        status = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:                                 # noqa: BLE001
            pass
        os._exit(status if isinstance(status, int) and 0 <= status < 256 else 70)


def _preload() -> None:
    """Import what every child needs, once."""
    import nbemu.emu.atf.launch  # noqa: F401
    import nbemu.emu.boot  # noqa: F401
    import nbemu.emu.cli  # noqa: F401
    import nbemu.guest.exec_elf  # noqa: F401
    import importlib

    from nbemu.syscalls import LAZY_MODULES
    for m in LAZY_MODULES:              # (a process's start leaves them to their first call)
        importlib.import_module(f"nbemu.syscalls.{m}")
    try:
        import nbemu.emu.crash  # noqa: F401
        import nbemu.emu.strace  # noqa: F401
    except ImportError:
        pass


def serve() -> int:
    _preload()
    req_fd = os.dup(0)
    resp_fd = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    rpipe, wpipe = os.pipe()
    os.set_blocking(wpipe, False)
    os.set_blocking(rpipe, False)
    signal.set_wakeup_fd(wpipe)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)          # the runner decides
    children: dict[int, int] = {}                         # pid -> request id

    def send(obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode()
        while data:
            n = os.write(resp_fd, data)
            data = data[n:]

    def reap() -> None:
        for rid, st in reaped(children):
            send({"id": rid, "status": st})

    sel = selectors.DefaultSelector()
    sel.register(req_fd, selectors.EVENT_READ, "req")
    sel.register(rpipe, selectors.EVENT_READ, "sig")
    buf = b""
    eof = False
    while not eof or children:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "sig":
                try:
                    while os.read(rpipe, 512):
                        pass
                except BlockingIOError:
                    pass
                continue
            chunk = os.read(req_fd, 65536)
            if not chunk:
                eof = True
                sel.unregister(req_fd)
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    req = json.loads(line)
                    rid = req["id"]
                except (ValueError, KeyError, TypeError):
                    continue
                try:
                    pid, ready = fork_case()
                except OSError as e:
                    send({"id": rid, "error": f"fork: {e}"})
                    continue
                if pid == 0:
                    sel.close()
                    _child(req, (req_fd, resp_fd, rpipe, wpipe), ready=ready)
                children[pid] = rid
                send({"id": rid, "pid": pid})
        reap()
    return 0


# ---------------------------------------------------------------- client side


class ForkServerError(RuntimeError):
    pass


class _Pending:
    def __init__(self) -> None:
        self.pid: int | None = None
        self.status: int | None = None
        self.error: str | None = None
        self.started = threading.Event()
        self.ended = threading.Event()


class ForkServer:
    """The runner's handle on a fork server process (thread-safe)."""

    def __init__(self, python: str, env: dict[str, str], cwd: str) -> None:
        self.proc = subprocess.Popen([python, "-m", "nbemu.emu.atf.forkserver"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self._lock = threading.Lock()
        self._next = 0
        self._pending: dict[int, _Pending] = {}
        self._dead = False
        self._reader = threading.Thread(target=self._read, name="atf-forkserver", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
                p = self._pending[msg["id"]]
            except (ValueError, KeyError, TypeError):
                continue
            if "pid" in msg:
                p.pid = msg["pid"]
                p.started.set()
            elif "error" in msg:
                p.error = msg["error"]
                p.started.set()
                p.ended.set()
            elif "status" in msg:
                p.status = msg["status"]
                p.ended.set()
        with self._lock:
            self._dead = True
            pending = list(self._pending.values())
        for p in pending:
            if p.error is None and p.status is None:
                p.error = "the fork server died"
            p.started.set()
            p.ended.set()

    @property
    def alive(self) -> bool:
        return not self._dead and self.proc.poll() is None

    def spawn(self, argv: list[str], cwd: str, env: dict[str, str], stdout: str,
              stderr: str) -> tuple[int, _Pending]:
        """Start a child; (pid, handle).  ForkServerError if the server cannot."""
        with self._lock:
            if self._dead:
                raise ForkServerError("the fork server is not running")
            self._next += 1
            rid = self._next
            p = self._pending[rid] = _Pending()
            data = json.dumps({"id": rid, "argv": argv, "cwd": cwd, "env": env,
                               "stdout": stdout, "stderr": stderr}) + "\n"
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(data.encode())
                self.proc.stdin.flush()
            except (OSError, ValueError) as e:
                self._pending.pop(rid, None)
                raise ForkServerError(f"the fork server is gone: {e}") from None
        p.started.wait()
        if p.pid is None:
            with self._lock:
                self._pending.pop(rid, None)
            raise ForkServerError(p.error or "fork failed")
        return p.pid, p

    def wait(self, p: _Pending, timeout: float | None) -> int | None:
        """The child's wait status, or None if it is still running after timeout."""
        if not p.ended.wait(timeout):
            return None
        if p.status is None:
            raise ForkServerError(p.error or "lost the child's status")
        with self._lock:
            for k, v in list(self._pending.items()):
                if v is p:
                    del self._pending[k]
        return p.status

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    sys.exit(serve())
