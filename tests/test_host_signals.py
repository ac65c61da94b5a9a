"""Signals sent to nbemu reach the guest as NetBSD signals (emu/hostsig.py):
handlers run (host SIGUSR1 arrives as NetBSD's 30), an idle sleep ends at once,
default actions kill the guest (exit 128+N), a spinning guest is ended by a
second SIGINT, and a recorded run replays its signals. Fixture: hostsig.c."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, REPO


def _start(prog: Path, mode: str, *opts: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "nbemu.emu.cli", *opts, str(prog), mode], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()              # the guest is running, its handlers installed
    assert line == "ready\n", (line, p.stderr.read() if p.stderr else "")
    return p


def _finish(p: subprocess.Popen) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=60)
    return p.returncode, out, err


@pytest.mark.parametrize("arch", ARCHES)
def test_handlers_run_in_order_and_sleep_is_interrupted(arch: str) -> None:
    p = _start(build_c("hostsig", arch), "handle")
    time.sleep(0.3)
    t0 = time.monotonic()
    # Apart enough for each to be taken before the next comes (pending together,
    # NetBSD would deliver the lowest number first).
    p.send_signal(signal.SIGUSR1)
    time.sleep(0.5)
    p.send_signal(signal.SIGWINCH)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    rc, out, err = _finish(p)
    assert rc == 0, err
    # host SIGUSR1 (10 on Linux) is NetBSD's 30; SIGWINCH 28 and SIGINT 2 agree
    assert out == "long sleep: EINTR\nsignal 30\nsignal 28\nsignal 2\n", (out, err)
    assert time.monotonic() - t0 < 20          # the 30 s sleep did not run out


def test_default_action_kills_with_128_plus_n() -> None:
    p = _start(build_c("hostsig"), "default")
    p.send_signal(signal.SIGTERM)
    rc, out, err = _finish(p)
    assert rc == 128 + 15 and "not killed" not in out
    assert "guest killed by signal 15 (SIGTERM)" in err


def test_first_sigint_ends_a_spinning_guest() -> None:
    """No system call, one LWP: the watchdog ends the turn, the default action
    kills the guest (tests/test_reliability.py: every port, SIGTERM, handlers)."""
    p = _start(build_c("hostsig"), "spin")
    p.send_signal(signal.SIGINT)
    rc, out, err = _finish(p)
    assert rc == 128 + signal.SIGINT
    assert "guest killed by signal 2 (SIGINT)" in err and "again" not in err, err


def test_second_sigint_ends_a_guest_that_blocks_it() -> None:
    """SIGINT blocked, one LWP spinning without system calls: the signal stays
    pending; the watchdog quits on the second SIGINT."""
    p = _start(build_c("sigspin"), "masked")
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    time.sleep(0.6)
    p.send_signal(signal.SIGINT)
    rc, out, err = _finish(p)
    assert rc == 128 + signal.SIGINT
    assert "SIGINT again" in err and err.count("\n") == 1, err


def test_signals_are_recorded_and_replayed(tmp_path: Path) -> None:
    log = tmp_path / "sig.log"
    prog = build_c("hostsig")
    p = _start(prog, "handle", "--record", str(log))
    time.sleep(0.3)
    p.send_signal(signal.SIGUSR1)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    rc, out, err = _finish(p)
    assert rc == 0, err
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--replay", str(log), str(prog), "handle"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ready\n" + out
