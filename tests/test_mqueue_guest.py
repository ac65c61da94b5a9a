"""fixtures/c/mqueue.c on every C port: POSIX message queues through raw
system calls (priorities, errnos, a receiver LWP woken by sends, a timed
receive that times out, notify registration). It checks itself and prints
PASS."""
from __future__ import annotations

import pytest

from fixtures.build import build_c
from tests.guest import run_nbemu
from tests.guest import ARCHES


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("opts", [("--ncpu", "4"), ("--ncpu", "1"),
                                  ("--deterministic", "--seed", "3")])
def test_mqueue(arch: str, opts: tuple[str, ...]) -> None:
    r = run_nbemu(build_c("mqueue", arch), opts=opts)
    assert "Traceback" not in r.stderr, r.stderr
    assert "unimplemented" not in r.stderr, r.stderr
    assert "FAIL" not in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)
    assert r.returncode == 0
