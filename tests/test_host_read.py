"""A blocking read of a host descriptor (nbemu's stdin, here a pipe the test
writes to late) blocks only the reading LWP: the others keep running, and a
signal ends the wait with EINTR or restarts it under SA_RESTART, as a tty or
pipe read does on NetBSD. Fixture: fixtures/c/stdin_wait.c."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, REPO


def _run_fed(prog: Path, mode: str, data: bytes, delay: float,
             opts: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run the fixture with a pipe as stdin that receives `data` after `delay` s."""
    p = subprocess.Popen([sys.executable, "-m", "emu.cli", *opts, str(prog), mode], cwd=REPO,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed() -> None:
        time.sleep(delay)
        try:
            assert p.stdin is not None
            p.stdin.write(data)
            p.stdin.close()
        except BrokenPipeError:
            pass
    t = threading.Thread(target=feed)
    t.start()
    # Not communicate(): it would close stdin before the late write.
    assert p.stdout is not None and p.stderr is not None
    errs: list[bytes] = []
    te = threading.Thread(target=lambda: errs.append(p.stderr.read()))   # type: ignore[union-attr]
    te.start()
    out = p.stdout.read()
    p.wait(timeout=120)
    t.join()
    te.join()
    err = errs[0] if errs else b""
    return subprocess.CompletedProcess(p.args, p.returncode, out.decode(), err.decode())


@pytest.mark.parametrize("arch", ARCHES)
def test_other_lwps_run_while_one_reads(arch: str) -> None:
    r = _run_fed(build_c("stdin_wait", arch), "read", b"hello\n", 0.5)
    assert r.returncode == 0, r.stderr
    assert "data: hello" in r.stdout and "ticks while blocked: yes" in r.stdout, r.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_signal_interrupts_a_blocked_read(arch: str) -> None:
    r = _run_fed(build_c("stdin_wait", arch), "intr", b"late\n", 1.5)
    assert r.returncode == 0, r.stderr
    assert "read: EINTR (alarms 1)" in r.stdout, r.stdout


def test_sa_restart_restarts_a_blocked_read() -> None:
    r = _run_fed(build_c("stdin_wait"), "restart", b"late\n", 0.8)
    assert r.returncode == 0, r.stderr
    assert "restarted: late" in r.stdout and "(alarms 1)" in r.stdout, r.stdout


def test_blocked_read_records_and_replays(tmp_path: Path) -> None:
    """The readiness polls and the data are host inputs: a replay gives the same
    output without a writer (its stdin is closed at once)."""
    log = tmp_path / "read.log"
    prog = build_c("stdin_wait")
    r1 = _run_fed(prog, "read", b"recorded\n", 0.4, opts=("--record", str(log)))
    assert r1.returncode == 0 and "data: recorded" in r1.stdout, r1.stderr
    r2 = subprocess.run([sys.executable, "-m", "emu.cli", "--replay", str(log), str(prog), "read"],
                        cwd=REPO, capture_output=True, text=True, timeout=120,
                        stdin=subprocess.DEVNULL)
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == r1.stdout
