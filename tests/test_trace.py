"""--trace=CLASSES: kdump-like event lines on stderr (emu/trace.py)."""
from __future__ import annotations

import re

import pytest

from nbemu.emu.boot import Options, Session
from nbemu.emu.trace import SyscallHooks, add_syscall_hook, parse_classes, remove_syscall_hook
from fixtures.build import build_c
from tests.guest import ARCHES, run_nbemu

LINE = re.compile(r"^\s*(\d+)/(\d+)\s+(\S+)\s+(\d+\.\d{9}) (\w+)\s+(.*)$")


def _lines(stderr: str) -> list[tuple]:
    return [m.groups() for m in map(LINE.match, stderr.splitlines()) if m]


@pytest.mark.parametrize("arch", ARCHES)
def test_all_classes_on_a_threaded_program(arch: str) -> None:
    r = run_nbemu(build_c("lwp_park", arch), opts=("--deterministic", "--seed", "2", "--trace=all"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith("PASS")
    assert "time: CLOCK_MONOTONIC (virtual)" in r.stderr
    ls = _lines(r.stderr)
    kinds = {x[4] for x in ls}
    assert {"CALL", "CREATE", "ENQUEUE", "RUN", "PARK", "UNPARK", "WAKEUP", "EXIT",
            "SLEEP", "PEXIT"} <= kinds, kinds
    # times never go backwards
    ts = [float(x[3]) for x in ls]
    assert ts == sorted(ts)
    text = "\n".join(" ".join(x) for x in ls)
    assert re.search(r"RUN cpu \d", text)
    assert re.search(r"CREATE by lid 100", text)
    # the park hint of a parker is a static variable of main: named by its symbol
    assert re.search(r"PARK hint 0x[0-9a-f]+ <main\.p1\+0x4>", text), text
    assert re.search(r"UNPARK by lid 100, hint 0x[0-9a-f]+ <main\.p1\+0x4>", text)
    assert re.search(r"WAKEUP by lid 100", text)        # the unparker
    assert re.search(r"WAKEUP timeout", text)            # a park timeout
    assert re.search(r"SLEEP lwpwait on p_lwpcv\.100 \(for lid \d+\)", text)
    assert re.search(r"CALL ___lwp_park60\(.*\) = -1 ETIMEDOUT \(60\)", text)
    assert re.search(r"PEXIT status 0", text)


@pytest.mark.parametrize("arch", ARCHES)
def test_classes_select_events(arch: str) -> None:
    r = run_nbemu(build_c("lwp_park", arch), opts=("--deterministic", "--trace=sched"))
    kinds = {x[4] for x in _lines(r.stderr)}
    assert kinds and kinds <= {"ENQUEUE", "RUN", "PREEMPT", "YIELD", "MIGRATE"}, kinds
    r = run_nbemu(build_c("hello_c", arch), opts=("--trace=syscall",))
    kinds = {x[4] for x in _lines(r.stderr)}
    assert kinds == {"CALL"}
    assert re.search(r'CALL\s+write\(1, 0x[0-9a-f]+, \d+\) = \d+', r.stderr)


@pytest.mark.parametrize("arch", ARCHES)
def test_trace_and_strace_share_the_syscall_slot(arch: str) -> None:
    r = run_nbemu(build_c("hello_c", arch), opts=("--strace", "--trace=syscall"))
    assert r.returncode == 0
    assert re.search(r"^\d+/\d+ write\(1, ", r.stderr, re.M)            # --strace
    assert re.search(r"^\s+\d+/\d+\s+\S+\s+[\d.]+ CALL\s+write\(1, ", r.stderr, re.M)


@pytest.mark.parametrize("arch", ARCHES)
def test_signal_class(arch: str) -> None:
    r = run_nbemu(build_c("segv", arch), opts=("--trace=signal",))
    assert r.returncode == 139
    assert re.search(r"SIGNAL\s+SIGSEGV \(11\)", r.stderr), r.stderr


def test_bad_class_is_a_usage_error() -> None:
    r = run_nbemu(build_c("exit42"), opts=("--trace=bogus",))
    assert r.returncode == 2
    assert "unknown trace class 'bogus'" in r.stderr
    with pytest.raises(ValueError):
        parse_classes("lwp,nope")
    assert parse_classes("all") == {"syscall", "lwp", "sched", "signal"}
    assert parse_classes("LWP, sched") == {"lwp", "sched"}


def test_nothing_listens_unless_asked() -> None:
    s = Session(str(build_c("exit42")), [], Options())
    assert s.kernel.listeners == [] and s.kernel.strace is None


def test_syscall_hook_chain() -> None:
    class K:
        strace = None
    k = K()
    calls = []
    a = lambda *x: calls.append("a")    # noqa: E731
    b = lambda *x: calls.append("b")    # noqa: E731
    add_syscall_hook(k, a)
    assert k.strace is a
    add_syscall_hook(k, b)
    assert isinstance(k.strace, SyscallHooks)
    k.strace(None, 0, (), 0, [0, 0])
    assert calls == ["a", "b"]
    remove_syscall_hook(k, a)
    remove_syscall_hook(k, b)
    assert k.strace is None
