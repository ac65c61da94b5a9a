"""Sockets in real guests: fixtures/c/sockpair.c (socketpair(AF_LOCAL) between two
LWPs, stream and datagram, non-blocking, errno) on every C port, and the Go
netecho fixture (TCP and unix-socket echo servers; its output is also compared
with the linux build in tests/test_go_guest.py) under --deterministic and
through --record / --replay."""
from __future__ import annotations

import pytest

from fixtures.build import build_c, build_go
from fixtures.expected import GO_OUTPUT
from tests.guest import ARCHES, run_nbemu


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("opts", [("--ncpu", "4"), ("--ncpu", "1"),
                                  ("--deterministic", "--seed", "3")])
def test_sockpair(arch: str, opts: tuple[str, ...]) -> None:
    r = run_nbemu(build_c("sockpair", arch), opts=opts)
    assert "Traceback" not in r.stderr, r.stderr
    assert "unimplemented" not in r.stderr, r.stderr
    assert "FAIL" not in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)
    assert r.returncode == 0


@pytest.mark.parametrize("goarch", ["amd64", "arm64"])
def test_netecho_deterministic(goarch: str) -> None:
    r = run_nbemu(build_go("netecho", "netbsd", goarch), opts=("--deterministic", "--seed", "5"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == GO_OUTPUT["netecho"]


def test_netecho_record_replay(tmp_path) -> None:
    prog = build_go("netecho")
    log = tmp_path / "netecho.log"
    r = run_nbemu(prog, opts=("--record", str(log)))
    assert r.returncode == 0, r.stderr
    assert r.stdout == GO_OUTPUT["netecho"]
    r2 = run_nbemu(prog, opts=("--replay", str(log)))
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == r.stdout
