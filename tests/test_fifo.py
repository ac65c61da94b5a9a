"""Opening a FIFO blocks only the opening LWP (issue 16 item 4):
fixtures/c/fifo_open.c under --root of a scratch directory. Two LWPs meet on a
FIFO (each side waiting for the other), O_NONBLOCK opens answer as NetBSD
(read side at once, write side ENXIO without a reader), a signal ends a lone
opener's wait with EINTR, a writer in another host process is met, and SIGINT
sent to nbemu ends a guest waiting in open()."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, REPO, run_nbemu


def _check(r) -> None:
    assert "Traceback" not in r.stderr, r.stderr
    assert "FAIL" not in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("PASS") and r.returncode == 0, (r.stdout, r.stderr)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("mode", ["pair", "intr"])
def test_fifo_open(tmp_path, arch: str, mode: str) -> None:
    _check(run_nbemu(build_c("fifo_open", arch), mode, opts=("--root", str(tmp_path)),
                     timeout=120))


def test_fifo_pair_deterministic(tmp_path) -> None:
    _check(run_nbemu(build_c("fifo_open"), "pair",
                     opts=("--deterministic", "--seed", "3", "--root", str(tmp_path)),
                     timeout=120))


def _start(tmp_path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nbemu.emu.cli", "--root", str(tmp_path),
                             str(build_c("fifo_open")), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_fifo_writer_in_another_process(tmp_path) -> None:
    os.mkfifo(tmp_path / "ext")
    p = _start(tmp_path, "ext", "/ext")
    try:
        # our non-blocking write open succeeds once the guest's reader holds the FIFO
        deadline = time.monotonic() + 60
        while True:
            try:
                fd = os.open(tmp_path / "ext", os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                assert time.monotonic() < deadline, "the guest never opened the FIFO"
                assert p.poll() is None, p.communicate()
                time.sleep(0.01)
        os.write(fd, b"from the host")
        os.close(fd)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert out == "got: from the host\n"


def test_sigint_ends_a_waiting_open(tmp_path) -> None:
    os.mkfifo(tmp_path / "lone")
    p = _start(tmp_path, "lone", "/lone")
    try:
        assert p.stdout.readline() == "opening\n"       # the guest is in (or at) open()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, (out, err)
    assert "open returned" not in out


@pytest.mark.parametrize("mode", ["pair", "intr"])
def test_fifo_record_replay(tmp_path, mode: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    log = tmp_path / "fifo.log"
    prog = build_c("fifo_open")
    r = run_nbemu(prog, mode, opts=("--record", str(log), "--root", str(root)), timeout=120)
    _check(r)
    for f in root.iterdir():                     # the replay makes its FIFOs again
        f.unlink()
    r2 = run_nbemu(prog, mode, opts=("--replay", str(log), "--root", str(root)), timeout=120)
    _check(r2)
    assert r2.stdout == r.stdout
