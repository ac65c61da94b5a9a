"""Signals (kern_sig.py, sys_sig.py): real NetBSD/amd64 programs that install
handlers through __sigaction_sigtramp, take signals from kill, _lwp_kill, timers
and faults, and check what NetBSD guarantees; plus the default actions seen
from outside (exit status 128+N, crash report)."""
from __future__ import annotations

import pytest

from fixtures.build import build_c
from tests.guest import run_nbemu

SELF_CHECKING = ["sig_basic"]


def _check_pass(r) -> None:
    assert "Traceback" not in r.stderr, r.stderr
    assert "FAIL" not in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", SELF_CHECKING)
@pytest.mark.parametrize("ncpu", [1, 4])
def test_signal_fixture(name: str, ncpu: int) -> None:
    _check_pass(run_nbemu(build_c(name), opts=("--ncpu", str(ncpu)), timeout=120))


@pytest.mark.parametrize("name", SELF_CHECKING)
def test_signal_fixture_deterministic(name: str) -> None:
    _check_pass(run_nbemu(build_c(name), opts=("--deterministic", "--seed", "5"), timeout=120))
