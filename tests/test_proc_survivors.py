"""Processes that outlive the first one (issue 11; nbemu/emu/survivors.py):
fixtures/c/proc_orphan.c forks, its parent exits 7 at once, and the child waits
for a FIFO that this test writes to only after nbemu has returned.

- A plain run returns the first process's status at once; the orphan runs on in
  the background (init adopted it: getppid() is 1) and does its work later, as
  on NetBSD. Its closing stdout/stderr ends the output nbemu's caller reads;
  one that keeps stdout still writes there after nbemu returned.
- --record waits for it, so the log covers it, and --replay repeats it without
  the FIFO's writer (the read comes from the log).
- The Python API ends it with the first process.
No step depends on host timing: each wait is for an event, with a deadline only
as a guard against a hang."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, REPO, OnTerminal

GUARD_S = 120            # a hang guard, never a measure


def _nbemu(*args: str) -> list[str]:
    return [sys.executable, "-m", "nbemu.emu.cli", *args]


def _write_fifo(fifo: Path, data: bytes, alive=lambda: True) -> None:
    """Write data once a reader holds the FIFO (a non-blocking open fails until then)."""
    deadline = time.monotonic() + GUARD_S
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert time.monotonic() < deadline, "nobody ever opened the FIFO for reading"
            assert alive(), "the reader is gone"
            time.sleep(0.01)
    os.write(fd, data)
    os.close(fd)


def _wait_for_file(path: Path, last_line: str) -> str:
    deadline = time.monotonic() + GUARD_S
    while True:
        if path.exists():
            text = path.read_text()
            if text.endswith(last_line + "\n"):
                return text
        assert time.monotonic() < deadline, f"{path} never got its {last_line!r} line"
        time.sleep(0.01)


def kill_survivors(tmp_path: Path) -> None:
    """After a failed test: end background nbemu processes still waiting for
    this test's FIFO (their command line names tmp_path)."""
    import signal
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(tmp_path).encode() in cmd and b"nbemu" in cmd:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def root(tmp_path: Path):
    os.mkfifo(tmp_path / "ff")
    yield tmp_path
    kill_survivors(tmp_path)


@pytest.mark.parametrize("arch", ARCHES)
def test_orphan_runs_on_after_nbemu_returns(root: Path, arch: str) -> None:
    r = subprocess.run(_nbemu("--root", str(root), str(build_c("proc_orphan", arch)),
                              "/ff", "/out"),
                       cwd=REPO, capture_output=True, text=True, timeout=GUARD_S)
    # returned: the orphan closed stdout and stderr, and nbemu did not wait for it
    assert (r.returncode, r.stdout, r.stderr) == (7, "parent forked\n", "")
    assert not (root / "out").exists()          # it is still waiting for the FIFO
    _write_fifo(root / "ff", b"hello")
    assert _wait_for_file(root / "out", "done") == "read hello\nppid 1\ndone\n"


def test_orphan_keeps_stdout(root: Path) -> None:
    """nbemu's status comes at the first process's exit, while a background job
    that kept stdout still writes to it afterwards, as a native one would."""
    p = subprocess.Popen(_nbemu("--root", str(root), str(build_c("proc_orphan")),
                                "/ff", "/out", "keep"),
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "parent forked\n"
        assert p.wait(timeout=GUARD_S) == 7
        _write_fifo(root / "ff", b"late")
        assert p.stdout.read() == "child done\n"    # EOF: the survivor's host process ended
        assert p.stderr.read() == ""
    finally:
        if p.poll() is None:
            p.kill()
    assert _wait_for_file(root / "out", "done") == "read late\nppid 1\ndone\n"


def _waiting_run(root: Path, data: str, *opts: str) -> None:
    """Run proc_orphan with opts under which nbemu waits for the orphan: it returns
    (status 7) only once the orphan has read data from the FIFO and exited."""
    p = subprocess.Popen(_nbemu(*opts, "--root", str(root), str(build_c("proc_orphan")),
                                "/ff", "/out"),
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _write_fifo(root / "ff", data.encode(), alive=lambda: p.poll() is None)
        out, err = p.communicate(timeout=GUARD_S)
    finally:
        if p.poll() is None:
            p.kill()
    assert (p.returncode, out) == (7, "parent forked\n"), err


def test_record_waits_for_the_orphan_and_replay_repeats_it(root: Path, tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    prog = str(build_c("proc_orphan"))
    _waiting_run(root, "logged", "--record", str(log))
    # nbemu returned only after the orphan's end: its file is complete already
    assert (root / "out").read_text() == "read logged\nppid 1\ndone\n"
    (root / "out").unlink()
    r = subprocess.run(_nbemu("--replay", str(log), "--root", str(root), prog, "/ff", "/out"),
                       cwd=REPO, capture_output=True, text=True, timeout=GUARD_S)
    assert (r.returncode, r.stdout) == (7, "parent forked\n"), r.stderr
    assert (root / "out").read_text() == "read logged\nppid 1\ndone\n"


def test_api_ends_the_orphan_with_the_first_process(root: Path) -> None:
    from nbemu.emu.api import Emulator
    emu = Emulator(str(build_c("proc_orphan")), ["/ff", "/out"], root=str(root))
    assert emu.run() == 7
    assert not (root / "out").exists()


def test_strace_waits_for_the_orphan(root: Path, tmp_path: Path) -> None:
    """--strace covers the whole process tree: the orphan's calls after the first
    process's exit are in the trace, down to its exit."""
    trace = tmp_path / "strace.txt"
    _waiting_run(root, "traced", f"--strace={trace}")
    lines = trace.read_text().splitlines()
    child = [ln for ln in lines if ln.startswith("101/")]
    assert any('open("/out"' in ln for ln in child), child
    assert "getppid() = 1" in " ".join(child)
    assert child[-1].startswith("101/101 exit(0)"), child[-3:]


def test_ctrl_c_ends_the_whole_job(root: Path) -> None:
    """The terminal's Ctrl-C (the tty driver's SIGINT; a kill(2) of nbemu
    reaches the first process only: tests/test_host_signals.py) reaches every
    process of the first one's group, as it reaches the foreground job: the
    child dies with its parent (nbemu exits 130) and nothing runs on in the
    background, holding the terminal."""
    t = OnTerminal(build_c("proc_orphan"), "/ff", "/out", "sigint", opts=("--root", str(root)),
                   timeout=GUARD_S)
    try:
        t.expect("child ready\n")
        t.write(b"\x03")                       # VINTR
        rc, out = t.finish()                    # the terminal's end: no survivor holds it
    finally:
        t.kill()
    assert rc == 130, out
    assert "FAIL" not in out, out
