"""Go programs that depend on signals (os/signal, panics from faults,
asynchronous preemption by SIGURG) under nbemu, on every port: their output must
equal the same program built for linux/amd64 and run natively.  (Each port's
signal frame is what Go's sigtramp / sigreturn_tramp read: sendsig_siginfo of
its machdep / sig_machdep.c.)"""
from __future__ import annotations

import subprocess

import pytest

from fixtures.build import build_go
from fixtures.expected import GO_OUTPUT, comparable
from tests.guest import GOARCHES, OTHER_GOARCHES, run_nbemu

SIG_GO = ["signotify", "sigpanic", "sigpreempt"]


@pytest.mark.parametrize("goarch", GOARCHES)
@pytest.mark.parametrize("name", SIG_GO)
def test_signal_go_matches_linux(name: str, goarch: str) -> None:
    native = subprocess.run([str(build_go(name, "linux", "amd64"))], capture_output=True,
                            text=True, timeout=120)
    assert native.returncode == 0, native.stderr
    r = run_nbemu(build_go(name, "netbsd", goarch), opts=("--ncpu", "4"), timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    assert comparable(name, r.stdout) == comparable(name, native.stdout) == GO_OUTPUT[name]


# 1 and 2 vCPUs on amd64, 1 on the other ports (CI time).
@pytest.mark.parametrize("goarch,ncpu", [("amd64", 1), ("amd64", 2)]
                         + [(g, 1) for g in OTHER_GOARCHES])
def test_go_preemption_any_ncpu(ncpu: int, goarch: str) -> None:
    r = run_nbemu(build_go("sigpreempt", "netbsd", goarch), opts=("--ncpu", str(ncpu)),
                  timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == GO_OUTPUT["sigpreempt"]


@pytest.mark.parametrize("goarch", GOARCHES)
def test_go_preemption_deterministic(goarch: str) -> None:
    r = run_nbemu(build_go("sigpreempt", "netbsd", goarch),
                  opts=("--deterministic", "--seed", "2"), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == GO_OUTPUT["sigpreempt"]
