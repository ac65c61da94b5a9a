"""Deadlock detection: every LWP blocked with no timeout pending -> exit 125 and a
wait-for report (names, what each LWP waits on with ELF symbols, wait-for cycles and
chains, last system calls, backtraces)."""
from __future__ import annotations

import re

import pytest

from nbemu.emu.crash import Symbols, _chains, _cycles
from fixtures.build import build_c
from tests.guest import ARCHES, run_nbemu


def _report(name: str, *opts: str, arch: str = "x86_64"):
    r = run_nbemu(build_c(name, arch), opts=opts, timeout=120)
    assert r.returncode == 125, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert "deadlock" in r.stderr
    return r


@pytest.mark.parametrize("arch", ARCHES)
def test_two_lwps_parked_forever(arch: str) -> None:
    r = _report("deadlock_park", arch=arch)
    err = r.stderr
    # Each LWP by name, what it waits on, with the nearest ELF symbol of the hint.
    assert re.search(r'lid \d+ "alice"\s+parked in ___lwp_park60, hint 0x[0-9a-f]+ <lock_b>', err), err
    assert re.search(r'lid \d+ "bob"\s+parked in ___lwp_park60, hint 0x[0-9a-f]+ <lock_a>', err), err
    assert re.search(r'lid 100 "main"\s+in _lwp_wait for lid \d+ "alice"', err), err
    # Last system calls (recorded by the kernel for every LWP, no --strace needed).
    assert re.search(r'lid \d+ "alice":.*\n  last system calls: .*_lwp_setname.*'
                     r'___lwp_park60 \(blocked\)', err), err
    # Backtraces through the runtime's wrapper into the program's function.
    bt = err.split('"bob": ', 1)[1]
    assert "#0" in bt and "in ___lwp_park60" in bt and "in take_both" in bt, err
    main_bt = err.split('lid 100 "main": ', 1)[1]
    assert re.search(r"in _lwp_wait\+0x[0-9a-f]+\n.*in main\+", main_bt), err
    assert "_start" in main_bt


@pytest.mark.parametrize("arch", ARCHES)
def test_lwp_wait_cycle(arch: str) -> None:
    r = _report("deadlock_join", arch=arch)
    err = r.stderr
    assert re.search(r'cycle: lid (\d+) "first" -> lid \d+ "second" -> lid \d+ "third" '
                     r'-> lid \1 "first"', err), err
    assert re.search(r'"main"\s+parked in ___lwp_park60, hint 0x[0-9a-f]+ <done>', err), err
    assert re.search(r'"first"\s+in _lwp_wait for lid \d+ "second": waits for it to exit', err)
    assert re.search(r'"third"\s+in _lwp_wait for lid \d+ "first": waits for it to exit', err)
    assert "in join_next" in err


def test_report_uses_strace_lines_when_tracing() -> None:
    r = _report("deadlock_park", "--strace=/dev/null")
    assert re.search(r"last system calls: .*_lwp_setname=0", r.stderr), r.stderr


@pytest.mark.parametrize("arch", ARCHES)
def test_deterministic_deadlock_report_is_stable(arch: str) -> None:
    a = _report("deadlock_join", "--deterministic", "--seed", "3", arch=arch)
    b = _report("deadlock_join", "--deterministic", "--seed", "3", arch=arch)
    assert a.stderr == b.stderr


def test_wait_for_graph_helpers() -> None:
    assert _cycles({1: [2], 2: [3], 3: [1], 4: [1]}) == [[1, 2, 3]]
    assert _cycles({1: [2], 2: [1], 3: [3]}) == [[1, 2], [3]]
    assert _cycles({1: [2], 2: []}) == []
    assert _chains({1: [2], 2: [3], 3: []}) == [[1, 2, 3]]
    assert _chains({1: [2], 2: []}) == []          # one edge: the summary line says it


@pytest.mark.parametrize("arch", ARCHES)
def test_symbols_of_a_fixture(arch: str) -> None:
    data = build_c("deadlock_park", arch).read_bytes()
    sym = Symbols(data)
    a = sym.address("lock_a")
    assert a is not None
    assert sym.name(a) == "lock_a"
    assert sym.describe(a) == f"{a:#x} <lock_a>"
    assert sym.name(sym.address("take_both") + 3) == "take_both+0x3"
    assert sym.name(0x10) is None
    assert Symbols(None).name(a) is None and Symbols(b"not an elf").name(a) is None
