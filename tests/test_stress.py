"""Stress fixtures built on fixtures/c/rt/nbthread.{h,c} (mutex over park/unpark,
condition variables woken with _lwp_unpark_all, barriers, join via _lwp_wait,
suspend/continue), run on 1, 2, 4 and 8 vCPUs in the default mode and under
--deterministic with several seeds.  Each fixture checks its own invariants and
prints PASS only if they all held (see the comment at the top of each .c file).

Sizes are the fixtures' defaults: 64 LWPs x 100 increments on one mutex, 4 producers
x 500 items / 4 consumers over a 4-slot ring, 16 LWPs x 50 barrier rounds, 8 workers
x 20 suspend rounds.  One run takes ~0.3 s; the file ~15 s with -n 2.

Every port runs every fixture: the whole ncpu / seed matrix on amd64, one cell of it
(4 vCPUs; 4 vCPUs with seed 3) on the other ports, to bound CI time.
"""
from __future__ import annotations

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, OTHER_ARCHES, run_nbemu

STRESS = ["stress_mutex", "stress_pc", "stress_barrier", "stress_suspend"]


def _check(r, what: str) -> None:
    assert "Traceback" not in r.stderr, (what, r.stderr)
    assert "FAIL" not in r.stdout, (what, r.stdout)
    assert r.returncode == 0, (what, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert r.stdout.rstrip().endswith("PASS"), (what, r.stdout[-2000:])


@pytest.mark.parametrize("arch,ncpu", [("x86_64", n) for n in (1, 2, 4, 8)]
                         + [(a, 4) for a in OTHER_ARCHES])
@pytest.mark.parametrize("name", STRESS)
def test_stress_default_mode(name: str, ncpu: int, arch: str) -> None:
    r = run_nbemu(build_c(name, arch), opts=("--ncpu", str(ncpu)), timeout=120)
    _check(r, f"{name} --ncpu {ncpu} ({arch})")


@pytest.mark.parametrize("arch,ncpu,seed",
                         [("x86_64", n, s) for n, s in [(1, 11), (2, 1), (2, 2), (4, 3),
                                                        (8, 1), (8, 2)]]
                         + [(a, 4, 3) for a in OTHER_ARCHES])
@pytest.mark.parametrize("name", STRESS)
def test_stress_deterministic(name: str, ncpu: int, seed: int, arch: str) -> None:
    r = run_nbemu(build_c(name, arch), opts=("--ncpu", str(ncpu), "--deterministic",
                                             "--seed", str(seed)), timeout=120)
    _check(r, f"{name} --ncpu {ncpu} --seed {seed} ({arch})")


@pytest.mark.parametrize("arch", ARCHES)
def test_stress_deterministic_replays(arch: str) -> None:
    """Same seed, same schedule and same output (park counters included)."""
    outs = set()
    for _ in range(2):
        r = run_nbemu(build_c("stress_pc", arch), opts=("--ncpu", "4", "--deterministic",
                                                  "--seed", "5", "--sched-hash"))
        _check(r, "stress_pc replay")
        sched = tuple(x for x in r.stderr.splitlines() if "schedule" in x)
        assert sched, r.stderr
        outs.add((r.stdout, sched))
    assert len(outs) == 1, outs


@pytest.mark.parametrize("arch", ARCHES)
def test_stress_mutex_small_sizes_by_argument(arch: str) -> None:
    """The size arguments are honoured (the table of test_stress uses defaults)."""
    r = run_nbemu(build_c("stress_mutex", arch), "3", "7", opts=("--ncpu", "2"))
    _check(r, "stress_mutex 3 7")
    assert "3 LWPs x 7 increments" in r.stdout
    assert "ok counter" in r.stdout
