"""Go programs that depend on signals (os/signal, panics from faults,
asynchronous preemption by SIGURG) under nbemu: their output must equal the
same program built for linux/amd64 and run natively."""
from __future__ import annotations

import subprocess

import pytest

from fixtures.build import build_go
from fixtures.expected import GO_OUTPUT, comparable
from tests.guest import run_nbemu

SIG_GO = ["signotify", "sigpanic", "sigpreempt"]


@pytest.mark.parametrize("name", SIG_GO)
def test_signal_go_matches_linux(name: str) -> None:
    native = subprocess.run([str(build_go(name, "linux", "amd64"))], capture_output=True,
                            text=True, timeout=120)
    assert native.returncode == 0, native.stderr
    r = run_nbemu(build_go(name), opts=("--ncpu", "4"), timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    assert comparable(name, r.stdout) == comparable(name, native.stdout) == GO_OUTPUT[name]


@pytest.mark.parametrize("ncpu", [1, 2])
def test_go_preemption_any_ncpu(ncpu: int) -> None:
    r = run_nbemu(build_go("sigpreempt"), opts=("--ncpu", str(ncpu)), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == GO_OUTPUT["sigpreempt"]


def test_go_preemption_deterministic() -> None:
    r = run_nbemu(build_go("sigpreempt"), opts=("--deterministic", "--seed", "2"), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == GO_OUTPUT["sigpreempt"]
