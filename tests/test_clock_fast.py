"""__clock_gettime50 served by the native trap's fast path on amd64
(emu/native/nbhook.c, emu/machine.Machine._fast_clock_window) and by the kernel:
fixtures/c/clock_fast.c checks the clocks' order across both, EFAULT for read-only
and unmapped timespecs (also right after fast calls, and after an mprotect), the
kernel's answers for other clocks, and a forked child's fast calls into its own
copy of a page -- on every port (only amd64 has the fast path)."""
from __future__ import annotations

import io

import pytest

from fixtures.build import build_c
from nbemu.emu.api import Emulator
from tests.guest import ARCHES, run_nbemu


def _check(r) -> None:
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "FAIL" not in r.stdout
    assert r.stdout.rstrip().endswith("PASS")


@pytest.mark.parametrize("arch", ARCHES)
def test_clock_fast(arch: str) -> None:
    _check(run_nbemu(build_c("clock_fast", arch)))


def test_clock_fast_ncpu4_and_traced(tmp_path) -> None:
    prog = build_c("clock_fast", "x86_64")
    _check(run_nbemu(prog, opts=("--ncpu", "4")))
    _check(run_nbemu(prog, opts=(f"--strace={tmp_path / 'trace'}",)))    # the kernel only
    assert (tmp_path / "trace").read_text().count("__clock_gettime50") > 6000


def _served_fast(capfd, **options) -> int:
    """System calls the fast path served in one run of clock_fast (the kernel
    counts the others in its clock's `syscalls`)."""
    emu = Emulator(build_c("clock_fast", "x86_64"), **options)
    assert emu.run() == 0
    assert capfd.readouterr().out.rstrip().endswith("PASS")
    return emu.kernel.nsyscalls - emu.kernel.clock.syscalls


def test_fast_path_is_taken_only_when_nothing_watches(capfd) -> None:
    assert _served_fast(capfd) > 3000          # most of ordered()'s 6000 reads
    assert _served_fast(capfd, strace=io.StringIO()) == 0
    assert _served_fast(capfd, deterministic=True) == 0


def test_a_timed_wait_keeps_the_fast_path(capfd) -> None:
    """A timed wait polls the clock between parks that time out at once (NetBSD's
    t_cond cond_timedwait_race makes 640,000 of each): the parks leave the fast
    path's window open (nbhook.c nb_fc_keep), so nearly all of clock_fast
    timedwait's 2000 clock reads are served natively -- none were before."""
    emu = Emulator(build_c("clock_fast", "x86_64"), ["timedwait"])
    assert emu.run() == 0
    assert capfd.readouterr().out.rstrip().endswith("PASS")
    served = emu.kernel.nsyscalls - emu.kernel.clock.syscalls
    assert 1900 <= served < 2000, served


@pytest.mark.parametrize("ncpu", [1, 2])
def test_go_timer_churn(ncpu: int) -> None:
    """Go's runtime reads the clock before every timer: fixtures/go/timerchurn
    (time.TestLongAdjustTimers' loop) with most of its clock reads served fast."""
    from fixtures.build import build_go
    from fixtures.expected import GO_OUTPUT
    r = run_nbemu(build_go("timerchurn"), opts=("--ncpu", str(ncpu)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == GO_OUTPUT["timerchurn"]
