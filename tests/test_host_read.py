"""A blocking read of a host descriptor (nbemu's stdin, here a pipe the test
writes to late) blocks only the reading LWP: the others keep running, and a
signal ends the wait with EINTR or restarts it under SA_RESTART, as a tty or
pipe read does on NetBSD. Fixture: fixtures/c/stdin_wait.c."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, REPO


def _run_fed(prog: Path, mode: str, data: bytes, cue: bytes | None,
             opts: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run the fixture with a pipe as stdin that receives `data` once the guest
    printed the line `cue` on stderr (a handshake: "ticked" / "alarm"), or at
    once without a cue. No host timing: on a loaded machine the cue just comes
    later (a guest that never gives it fails after the 120 s safety limit)."""
    p = subprocess.Popen([sys.executable, "-m", "nbemu.emu.cli", *opts, str(prog), mode], cwd=REPO,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cued = threading.Event()
    errs: list[bytes] = []

    def read_err() -> None:
        assert p.stderr is not None
        for line in p.stderr:
            errs.append(line)
            if cue is not None and line.strip() == cue:
                cued.set()
        cued.set()                         # (the guest ended: let the feeder go)

    def feed() -> None:
        if cue is not None:
            cued.wait(timeout=120)
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
    te = threading.Thread(target=read_err)
    te.start()
    out = p.stdout.read()
    p.wait(timeout=120)
    t.join()
    te.join()
    err = b"".join(errs)
    return subprocess.CompletedProcess(p.args, p.returncode, out.decode(), err.decode())


@pytest.mark.parametrize("arch", ARCHES)
def test_other_lwps_run_while_one_reads(arch: str) -> None:
    r = _run_fed(build_c("stdin_wait", arch), "read", b"hello\n", b"ticked")
    assert r.returncode == 0, r.stderr
    assert "data: hello" in r.stdout and "ticks while blocked: yes" in r.stdout, r.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_signal_interrupts_a_blocked_read(arch: str) -> None:
    r = _run_fed(build_c("stdin_wait", arch), "intr", b"late\n", b"alarm")
    assert r.returncode == 0, r.stderr
    assert "read: EINTR (alarms 1)" in r.stdout, r.stdout


def test_sa_restart_restarts_a_blocked_read() -> None:
    r = _run_fed(build_c("stdin_wait"), "restart", b"late\n", b"alarm")
    assert r.returncode == 0, r.stderr
    assert "restarted: late" in r.stdout and "(alarms 1)" in r.stdout, r.stdout


def test_blocked_read_records_and_replays(tmp_path: Path) -> None:
    """The readiness polls and the data are host inputs: a replay gives the same
    output without a writer (its stdin is closed at once)."""
    log = tmp_path / "read.log"
    prog = build_c("stdin_wait")
    r1 = _run_fed(prog, "read", b"recorded\n", b"ticked", opts=("--record", str(log)))
    assert r1.returncode == 0 and "data: recorded" in r1.stdout, r1.stderr
    r2 = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--replay", str(log), str(prog), "read"],
                        cwd=REPO, capture_output=True, text=True, timeout=120,
                        stdin=subprocess.DEVNULL)
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == r1.stdout
