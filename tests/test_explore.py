"""nbemu explore: PCT and random schedules over racy C fixtures; the first failing
run is reported with a command that replays it (and the replay is checked)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from nbemu.emu.explore import Plan, PctPolicy, failure, Result
from fixtures.build import build_c
from tests.guest import ARCHES, REPO

# A fixed, small guest environment and argv[0]: runs do not depend on the host's.
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}
MAX_RUNS = 60


def _nbemu(*argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(ENV, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "nbemu.emu.cli", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _replay(cmd: str) -> subprocess.CompletedProcess:
    argv = shlex.split(cmd)
    assert argv[0] == "nbemu"
    return _nbemu(*argv[1:])


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name,expect", [
    ("racy_rmw", r"FAIL lost \d+ updates"),
    ("racy_order", r"config 0"),
])
def test_pct_finds_the_race_and_the_replay_reproduces_it(name: str, expect: str,
                                                         arch: str) -> None:
    prog = str(build_c(name, arch))
    r = _nbemu("explore", "--runs", str(MAX_RUNS), "--jobs", "2", "-0", name, prog)
    assert r.returncode == 1, (r.stdout, r.stderr)
    err = r.stderr
    assert "strategy pct (depth 3," in err
    m = re.search(r"run (\d+) of \d+ \(seed (\d+)\) FAILED: exit status 1", err)
    assert m, err
    assert int(m.group(1)) > 1, "the reference run (an ordinary schedule) must pass"
    assert re.search(expect, err), err
    cmd = err.strip().splitlines()[-1]
    assert cmd.startswith("replay: nbemu explore --replay " + m.group(2) + " --strategy pct")
    rep = _replay(cmd[len("replay: "):])
    assert rep.returncode == 1, (rep.stdout, rep.stderr)
    assert re.search(expect, rep.stdout), rep.stdout
    # ... and it is the same schedule every time
    rep2 = _replay(cmd[len("replay: "):])
    sched = [re.search(r"schedule (\w+)", x.stderr).group(1) for x in (rep, rep2)]
    assert sched[0] == sched[1] and rep.stdout == rep2.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_random_strategy_replays_with_plain_nbemu(arch: str) -> None:
    prog = str(build_c("racy_rmw", arch))
    r = _nbemu("explore", "--strategy", "random", "--runs", "40", "--seed", "1",
               "-0", "racy", prog, "2000")
    assert r.returncode == 1, (r.stdout, r.stderr)
    m = re.search(r"replay: (nbemu --deterministic --seed (\d+) -0 racy \S+ 2000)$", r.stderr)
    assert m, r.stderr
    rep = _replay(m.group(1))
    assert rep.returncode == 1 and "FAIL lost" in rep.stdout, (rep.stdout, rep.stderr)


@pytest.mark.parametrize("arch", ARCHES)
def test_no_failure_in_a_correct_program(arch: str) -> None:
    r = _nbemu("explore", "--runs", "6", "--jobs", "2", str(build_c("lwp_basic", arch)))
    assert r.returncode == 0, r.stderr
    assert re.search(r"no failure in 6 runs \(\d+ distinct schedules", r.stderr), r.stderr


@pytest.mark.parametrize("arch", ARCHES)
def test_deadlock_is_a_failure_of_the_reference_run(arch: str) -> None:
    r = _nbemu("explore", "--runs", "5", "--strategy", "random", "--seed", "9",
               str(build_c("deadlock_park", arch)))
    assert r.returncode == 1
    assert "run 1 of 5 (seed 9) FAILED: deadlock (exit 125)" in r.stderr
    assert 'parked in ___lwp_park60' in r.stderr         # the wait-for report, quoted
    assert re.search(r"replay: nbemu --deterministic --seed 9 \S+deadlock_park$", r.stderr)


def test_usage_errors() -> None:
    assert _nbemu("explore").returncode == 2
    r = _nbemu("explore", "--seed", "3", "--deterministic", str(build_c("exit42")))
    assert r.returncode == 2 and "explore's to choose" in r.stderr
    r = _nbemu("explore", "--replay", "3", str(build_c("exit42")))
    assert r.returncode == 2 and "--steps" in r.stderr
    assert _nbemu("explore", "/nonexistent/prog").returncode == 127


def test_failure_classification() -> None:
    ref = Result(1, 0, b"a\nb\n", b"")
    assert failure(Result(2, 0, b"a\nb\n", b""), ref) is None
    assert "line 2" in failure(Result(2, 0, b"a\nc\n", b""), ref)
    assert "deadlock" in failure(Result(2, 125, b"", b""), ref)
    assert "SIGSEGV" in failure(Result(2, 139, b"", b""), ref)
    assert "hang" in failure(Result(2, None, b"", b""), ref)
    assert failure(Result(2, 3, b"", b""), ref) == "exit status 3"


def test_pct_policy_unit() -> None:
    class Plat:
        stops = 0

        def request_stop(self) -> None:
            Plat.stops += 1

    class K:
        platform = Plat()
        strace = None
        sched_policy = None
    pol = PctPolicy(K(), seed=5, depth=3, steps=10)
    assert len(pol.change_points) == 2 and pol.change_points == sorted(pol.change_points)
    assert PctPolicy(K(), seed=5, depth=3, steps=10).change_points == pol.change_points

    class L:
        def __init__(self, lid: int) -> None:
            self.l_lid = lid
    a = L(1)
    assert pol.priority(a) >= 3                      # the high band: depth + [0, 1)
    for i in range(1, 11):
        pol.on_syscall(a, 0, (), 0, [0, 0])
        if i == pol.change_points[0]:
            assert pol.priority(a) == 2.5 and Plat.stops == 1
    assert pol.priority(a) == 1.5 and Plat.stops == 2  # the second change point: lower
    assert Plan("random", 3, 0, [], ["--ncpu", "2"], ["p", "x y"]).replay_command(4) == \
        "nbemu --deterministic --seed 4 --ncpu 2 p 'x y'"


def test_replay_takes_nbemu_options(tmp_path) -> None:
    out = tmp_path / "t.json"
    r = _nbemu("explore", "--replay", "2", "--strategy", "pct", "--steps", "8",
               "--timeline", str(out), "--ncpu", "2", str(build_c("racy_order")))
    assert r.returncode in (0, 1), r.stderr
    assert "replayed seed 2 (pct)" in r.stderr
    assert out.exists() and '"traceEvents"' in out.read_text()


def test_a_program_nbemu_cannot_run_gets_plain_nbemus_answer(tmp_path) -> None:
    """Issue 15, item 5: not a traceback and an 'internal error' run: one line, 126."""
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    for prog in (sys.executable, str(script)):
        r = _nbemu("explore", "--runs", "3", prog)
        plain = _nbemu(prog)
        assert r.returncode == plain.returncode == 126, (r.stderr, plain.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr == plain.stderr.replace("nbemu:", "nbemu explore:", 1)
        assert "replay" not in r.stderr


def test_verbose_prints_each_run_as_it_finishes_and_a_tty_gets_progress() -> None:
    """Issue 15, item 4: -v lines come before the summary; on a terminal a progress
    line (rewritten in place) shows which run is going."""
    import pty
    prog = str(build_c("lwp_basic"))
    r = _nbemu("explore", "--runs", "4", "-v", prog)
    lines = r.stderr.splitlines()
    seeds = [i for i, ln in enumerate(lines) if re.match(r"  seed \d+: exit 0, ", ln)]
    assert len(seeds) == 4 and seeds[-1] < len(lines) - 1, r.stderr
    assert lines[0].startswith("nbemu explore: strategy pct") and seeds[0] == 1, r.stderr
    assert "no failure in 4 runs" in lines[-1] and "\r" not in r.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "nbemu.emu.cli", "explore", "--runs", "3", prog],
                         cwd=REPO, env=dict(ENV, PYTHONPATH=str(REPO)),
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    tty_out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:                       # EIO: the child closed the terminal
            break
        if not chunk:
            break
        tty_out += chunk
    assert p.wait(timeout=300) == 0
    os.close(master)
    text = tty_out.decode()
    for n in (1, 2, 3):
        assert f"nbemu explore: run {n} of 3 (seed {n})" in text, text
    assert "\r\x1b[K" in text and "no failure in 3 runs" in text, text
