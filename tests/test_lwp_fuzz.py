"""Bad input to every _lwp_* call from a live guest ends in a NetBSD errno, never in a
Python exception (issue 3, "Bad input").

Hypothesis generates batches of garbage calls -- wild lids (0, negative, huge, beyond
32 bits), negative and huge counts and lengths, unmapped / read-only / PROT_NONE /
straddling pointers, names without a NUL up to the end of a mapping, random clocks,
flags, signals and features -- and feeds each batch to one run of
fixtures/c/sysfuzz.c, which executes them as raw system calls and prints every
result.  The guest itself refuses what would legitimately end the process or stop
main for good (_lwp_exit, _lwp_suspend of main, _lwp_kill with a deadly signal), and
its watchdog LWP interrupts a call that blocks main too long (a park without a
timeout, a wait for an LWP that never exits), so a batch never hangs.

Each run is --deterministic with a drawn seed, so a failing example replays exactly.
"""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.build import build_c
from nbemu.syscalls.errno import Errno
from tests.guest import ARCHES, run_nbemu

U64 = 1 << 64
KNOWN_ERRNOS = {int(e) for e in Errno}

# -- argument strategies ----------------------------------------------------------


def _num(v: int) -> str:
    return hex(v % U64)


LIDS = st.one_of(
    st.sampled_from(["@self", "@worker", "@zombie", "0", "-1", "1", "9999", "0x7fffffff",
                     "-0x80000000", "0x100000000"]),
    st.integers(-200, 200).map(str),
    st.integers(-(1 << 31), (1 << 31) - 1).map(str),
    st.integers(0, U64 - 1).map(_num),
)
LIDS_NOT_SELF = LIDS.filter(lambda t: t != "@self")
# Pointers never take raw values that could land in the guest's own memory: only the
# never-mapped first page and non-user addresses (>= 2^47), besides the tokens.
PTRS = st.one_of(
    st.sampled_from(["0", "@buf", "@ro", "@end", "@none", "@unmapped", "@ts", "@lids"]),
    st.integers(0, 4095).map(str),
    st.integers(1 << 47, U64 - 1).map(_num),
)
TS_PTRS = st.sampled_from(["0", "@ts", "@ro", "@end", "@none", "@unmapped", "@buf"])
NAME_PTRS = st.sampled_from(["0", "@name", "@longname", "@nonul", "@ro", "@end", "@none",
                             "@unmapped", "@buf"])
UC_PTRS = st.sampled_from(["0", "@uc", "@uc", "@buf", "@ro", "@end", "@none", "@unmapped"])
COUNTS = st.one_of(
    st.sampled_from([0, 1, 2, 6, 1023, 1024, 1025, 4096, 1 << 31, 1 << 32, (1 << 32) + 1,
                     U64 - 1]),
    st.integers(0, 2000),
    st.integers(-(1 << 63), U64 - 1),
).map(_num)
INTS = st.one_of(st.integers(-5, 5), st.integers(-(1 << 31), (1 << 31) - 1),
                 st.integers(0, U64 - 1)).map(_num)
SIGNALS = st.one_of(
    st.sampled_from([0, -1, 16, 20, 23, 28, 29, 32, 64, 65, 1000, (1 << 31) - 1,
                     -(1 << 31), 9, 11, 15]),
    st.integers(64, 1 << 33),
    st.integers(-(1 << 40), -1),
).map(_num)
CLOCKS = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 5, -1, 0x20000000, 0x40000000, 0x20000000 | 9999,
                     0x40000000 | 1, 0x60000000]),
    st.integers(-(1 << 31), (1 << 31) - 1),
).map(_num)
PARK_FLAGS = st.one_of(st.sampled_from([0, 1, 2, 3, -1]),
                       st.integers(-(1 << 31), (1 << 31) - 1)).map(_num)
CREATE_FLAGS = st.one_of(st.sampled_from([0, 0x40, 0x80, 0xC0, 1, -1]),
                         st.integers(0, U64 - 1)).map(_num)
FEATURES = st.one_of(st.sampled_from([0, 1, 2, 3, 4, -1, 0x100]),
                     st.integers(-(1 << 31), (1 << 31) - 1)).map(_num)


def _call(num: int, *args: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*args).map(lambda a: " ".join([str(num), *a]))


CALLS = st.one_of(
    _call(309, UC_PTRS, CREATE_FLAGS, PTRS),                  # _lwp_create
    _call(311),                                               # _lwp_self
    _call(312, LIDS, PTRS),                                   # _lwp_wait
    _call(313, LIDS_NOT_SELF),                                # _lwp_suspend
    _call(314, LIDS),                                         # _lwp_continue
    _call(315, LIDS),                                         # _lwp_wakeup
    _call(316),                                               # _lwp_getprivate
    _call(317, st.one_of(PTRS, INTS)),                        # _lwp_setprivate
    _call(318, LIDS, SIGNALS),                                # _lwp_kill
    _call(319, LIDS),                                         # _lwp_detach
    _call(320, TS_PTRS, LIDS, INTS, INTS),                    # compat_50__lwp_park
    _call(321, LIDS, INTS),                                   # _lwp_unpark
    _call(322, st.one_of(PTRS, st.just("@lids")), COUNTS, INTS),  # _lwp_unpark_all
    _call(323, LIDS, NAME_PTRS),                              # _lwp_setname
    _call(324, LIDS, PTRS, COUNTS),                           # _lwp_getname
    _call(325, FEATURES, PTRS),                               # _lwp_ctl
    _call(434, TS_PTRS, LIDS, INTS, INTS),                    # compat_60__lwp_park
    _call(478, CLOCKS, PARK_FLAGS, TS_PTRS, LIDS, INTS, INTS),  # ___lwp_park60
)

_RESULT = re.compile(r"^(\d+|\?) (R [0-9a-f]+|E \d+|SKIP .*)$")


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(CALLS, min_size=10, max_size=40), ncpu=st.sampled_from([1, 4]),
       seed=st.integers(0, 1 << 16))
def test_garbage_lwp_calls_end_in_errnos(batch: list[str], ncpu: int, seed: int) -> None:
    stdin = "\n".join(batch) + "\n"
    r = run_nbemu(build_c("sysfuzz"), opts=("--ncpu", str(ncpu), "--deterministic",
                                            "--seed", str(seed)),
                  input=stdin, timeout=120)
    replay = f"replay: nbemu --ncpu {ncpu} --deterministic --seed {seed} sysfuzz <<EOF\n{stdin}EOF"
    assert "Traceback" not in r.stderr, f"{r.stderr}\n{replay}"
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}\n{replay}"
    lines = r.stdout.splitlines()
    assert lines[0].startswith("READY "), r.stdout
    assert lines[-1].startswith(f"DONE {len(batch)} "), f"{r.stdout}\n{replay}"
    results = lines[1:-1]
    assert len(results) == len(batch), f"{r.stdout}\n{replay}"
    for call, out in zip(batch, results):
        m = _RESULT.match(out)
        assert m, f"{call!r} -> {out!r}\n{replay}"
        assert out.split()[0] == call.split()[0], f"{call!r} -> {out!r}\n{replay}"
        if out.split()[1] == "E":
            errno = int(out.split()[2])
            assert errno in KNOWN_ERRNOS, f"{call!r} -> unknown errno {errno}\n{replay}"
        assert "bad" not in out, f"{call!r} -> {out!r}"


# The other ports: one fixed batch of bad calls through the same fixture (pointer
# arguments are the fixture's tokens only: the strategies above take raw pointers
# from beyond 2^47, which an ILP32 guest would truncate into its own memory).
FIXED_BATCH = [
    "309 @uc 0 @none", "309 @end 0 @buf", "309 @uc 0xc0 @ro", "311", "312 9999 @buf",
    "312 @zombie @end", "313 -1", "314 0x100000000", "315 @self", "316", "317 8",
    "316", "317 @buf", "318 @self 64", "318 9999 0", "319 @worker", "320 @ro 0 0 0",
    "321 -1 0", "322 @lids 0x100000001 0", "322 @end 5 0", "323 @self @nonul",
    "323 @self @longname", "324 @self @ro 16", "324 @self @end 64", "325 0x100 @buf",
    "325 1 @ro", "434 @unmapped 0 0 0", "478 0x60000000 0 @ts 0 0 0",
    "478 0 3 @ts 9999 0 0", "478 0 1 @end 0 0 0",
]


@pytest.mark.parametrize("arch", ARCHES)
def test_fixed_bad_batch_on_every_port(arch: str) -> None:
    stdin = "\n".join(FIXED_BATCH) + "\n"
    r = run_nbemu(build_c("sysfuzz", arch), opts=("--ncpu", "2", "--deterministic",
                                                  "--seed", "1"), input=stdin, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("READY ") and lines[-1].startswith(f"DONE {len(FIXED_BATCH)} ")
    for call, out in zip(FIXED_BATCH, lines[1:-1]):
        m = _RESULT.match(out)
        assert m and out.split()[0] == call.split()[0], (call, out)
        if out.split()[1] == "E":
            assert int(out.split()[2]) in KNOWN_ERRNOS, (call, out)
