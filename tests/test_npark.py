"""The native park path (emu/npark.py, nbhook.c np_trap): _lwp_unpark and
___lwp_park60 without a timeout served without the Python kernel, on the ports
whose park arguments come in registers (amd64, aarch64, arm in ARM state; not
i386), and off wherever something must see every park. Fixtures:
npark_native.c, bench_pingpong.c."""
from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, Running, engine_env, needs_patched, run_nbemu

NATIVE_ARCHES = ["x86_64", "aarch64", "arm"]      # abi.npark_trap is set (not i386)
_SERVED = re.compile(r"\((\d+) park/unpark served natively\)")


def _served(stderr: str) -> int:
    m = _SERVED.search(stderr)
    return int(m.group(1)) if m else 0


@pytest.mark.parametrize("arch", ARCHES)
def test_hand_offs_keep_netbsd_semantics(arch: str) -> None:
    """A ring of three LWPs handing a token on with park's `unpark` argument,
    lc_curcpu after each switch, a remembered unpark (EALREADY), ESRCH, hand-offs
    under a 1 ms SIGALRM, per-LWP CPU time: the same answers with the path on
    (the default) and off (NBEMU_NATIVE_PARK=0)."""
    prog = build_c("npark_native", arch)
    on = run_nbemu(prog, opts=("--stats",), timeout=600)
    off = run_nbemu(prog, opts=("--stats",), timeout=600,
                    env=engine_env(NBEMU_NATIVE_PARK="0"))
    for r in (on, off):
        assert r.returncode == 0 and r.stdout.endswith("PASS\n"), r.stdout + r.stderr[-3000:]
        assert "FAIL" not in r.stdout
    assert _served(off.stderr) == 0, off.stderr


@needs_patched
@pytest.mark.parametrize("arch", NATIVE_ARCHES)
def test_the_path_serves_the_hand_offs(arch: str) -> None:
    """bench_pingpong: of its 4 system calls a round (an unpark and a park on each
    side), nearly all are served natively; the result is the same without."""
    prog = build_c("bench_pingpong", arch)
    r = run_nbemu(prog, "3000", opts=("--stats",))
    assert r.returncode == 0 and r.stdout == "3000\n", r.stdout + r.stderr
    assert _served(r.stderr) >= 4 * 3000 - 50, r.stderr
    r = run_nbemu(build_c("npark_native", arch), opts=("--stats",), timeout=600)
    assert r.returncode == 0 and _served(r.stderr) >= 3 * 3000 - 50, r.stderr


@needs_patched
@pytest.mark.parametrize("opts", [("--deterministic", "--seed", "3"), ("--trace", "syscall"),
                                  ("--timeline", "{tmp}/t.json"), ("--record", "{tmp}/r.log")],
                         ids=["deterministic", "trace", "timeline", "record"])
def test_off_where_every_park_must_be_seen(opts: tuple[str, ...], tmp_path: Path) -> None:
    """--deterministic (a seeded schedule of every switch), --trace (a line per
    system call), --timeline (every LWP's state over time) and --record (every
    turn) see every park: nothing is served natively, and the trace has a line
    for each of the 2 x 300 unparks."""
    opts = tuple(o.format(tmp=tmp_path) for o in opts)
    r = run_nbemu(build_c("bench_pingpong"), "300", opts=("--stats", *opts))
    assert r.returncode == 0 and r.stdout == "300\n", r.stderr[-3000:]
    assert _served(r.stderr) == 0, r.stderr[-3000:]
    if "--trace" in opts:
        assert len(re.findall(r"CALL +_lwp_unpark\(", r.stderr)) >= 600, r.stderr[-3000:]


@needs_patched
@pytest.mark.parametrize("arch", NATIVE_ARCHES)
def test_a_host_signal_ends_native_hand_offs(arch: str) -> None:
    """Two LWPs hand off natively with nothing else to run (no tick ends the
    turn): a host SIGUSR1 still reaches the guest's handler, and SIGTERM's
    default action still kills it (the watchdog's stop ends nb_run's loop)."""
    prog = build_c("npark_native", arch)
    g = Running(prog, "forever", timeout=120)
    g.expect("hopping\n")
    g.signal(signal.SIGUSR1)
    rc, out, err = g.finish()
    assert rc == 0 and out.endswith("got SIGUSR1\n"), out + err
    g = Running(prog, "forever", timeout=120)
    g.expect("hopping\n")
    g.signal(signal.SIGTERM)
    rc, out, err = g.finish()
    assert rc == 128 + signal.SIGTERM, out + err


@pytest.mark.parametrize("arch", NATIVE_ARCHES)
def test_a_ring_wider_than_the_paths_bookkeeping(arch: str) -> None:
    """300 LWPs hand a token round a ring 20 times with no other system call in
    between: more LWPs than the native path may touch between two syncs (256),
    so it hands calls to the kernel when its list is full (how often depends on
    how often a tick syncs it first). Every hand-off is made once, path on or off."""
    prog = build_c("npark_native", arch)
    for env in (engine_env(), engine_env(NBEMU_NATIVE_PARK="0")):
        r = run_nbemu(prog, "ring", "300", "20", opts=("--stats",), env=env, timeout=600)
        assert r.returncode == 0 and r.stdout.endswith("PASS\n"), r.stdout + r.stderr[-3000:]
        assert "FAIL" not in r.stdout
