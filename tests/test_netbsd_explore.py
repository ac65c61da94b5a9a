"""`nbemu explore` over NetBSD's own libpthread tests (t_mutex, t_cond, t_rwlock built
unmodified against NetBSD's libc/libpthread): a few PCT seeds per case here; the
few-hundred-seed run is `python -m bench.explore_libpthread` (BENCHMARKS.md).
Skips with the reason when ../shared/netbsd-src is not there."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.explore_libpthread import explore
from fixtures import netbsd_userland as nu


@pytest.fixture(scope="module")
def progs() -> dict[str, Path]:
    try:
        nu.netbsd_src()
        nu.check_host_tools()
    except (nu.NetBSDSourceMissing, nu.NetBSDToolMissing) as e:
        pytest.skip(str(e).splitlines()[0])
    from fixtures.netbsd.atf_progs import build_test_programs
    built = build_test_programs("tests/lib/libpthread")
    return {n: p.path for n, p in built.items() if p.path is not None}


# Short cases (a few hundred system calls each); the long ones are the bench's.
@pytest.mark.parametrize("prog,case", [("t_mutex", "mutex1"), ("t_cond", "signal_wait_race"),
                                       ("t_rwlock", "rwlock1")])
def test_explore_finds_no_failing_schedule(progs: dict[str, Path], prog: str,
                                           case: str) -> None:
    rc, text, _ = explore(progs[prog], case, runs=4, jobs=1, ncpu=2)
    assert rc == 0, (rc, text)
    assert "no failure in 4 runs" in text, text


def test_their_output_order_is_the_schedules_so_only_the_exit_status_counts(
        progs: dict[str, Path]) -> None:
    """mutex1's threads print in the order they run: compared with the reference
    run's stdout, some schedule differs (a 'failure' that is no bug), which is why
    the exploration above uses --ignore-output."""
    rc, text, _ = explore(progs["t_mutex"], "mutex1", runs=12, jobs=1, ncpu=2,
                          ignore_output=False)
    assert rc == 1 and "output differs from the reference run" in text, (rc, text)
