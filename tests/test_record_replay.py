"""nbemu --record LOG / --replay LOG (issue 7, item 4): a run recorded in the default
fast mode (host ticker preemption, host clock) replays exactly -- the same output,
exit status and schedule hash -- whatever the host's timing; a log that does not fit
the program, or is damaged, is refused or stops the replay with one clear line.

Every run is a real NetBSD program under nbemu in a subprocess (tests/guest.py)."""
from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbemu.emu.record import EXIT_DIVERGED, summary, walk
from fixtures.build import build_c, build_go
from tests.guest import run_nbemu

_HASH = re.compile(r"^nbemu: schedule ([0-9a-f]+) \((\d+) decisions\)$", re.M)


def _hash(stderr: str) -> str:
    m = _HASH.search(stderr)
    assert m, stderr
    return m.group(1)


def _record(prog: Path, log: Path, *args: str, opts: tuple[str, ...] = (),
            **kw) -> subprocess.CompletedProcess:
    r = run_nbemu(prog, *args, opts=("--record", str(log), "--sched-hash", *opts), **kw)
    assert "Traceback" not in r.stderr, r.stderr
    assert log.exists()
    return r


def _replay(prog: Path, log: Path, *args: str, opts: tuple[str, ...] = (), prefix=(),
            **kw) -> subprocess.CompletedProcess:
    argv = [*prefix, sys.executable, "-m", "nbemu.emu.cli", "--replay", str(log), "--sched-hash",
            *opts, str(prog), *args]
    kw.setdefault("stdin", subprocess.DEVNULL)
    r = subprocess.run(argv, cwd=Path(__file__).resolve().parents[1], capture_output=True,
                       text=True, timeout=300, **kw)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def _same(rec: subprocess.CompletedProcess, rep: subprocess.CompletedProcess) -> None:
    assert "diverged" not in rep.stderr, rep.stderr
    assert rep.stdout == rec.stdout
    assert rep.returncode == rec.returncode, rep.stderr
    assert _hash(rep.stderr) == _hash(rec.stderr)


def test_racy_outcome_replays(tmp_path: Path) -> None:
    """racy_rmw loses a different number of updates in each fast run (where the
    ticker cuts the turns); each recording replays its own count."""
    prog = build_c("racy_rmw")
    recs = []
    for i in range(2):
        log = tmp_path / f"racy{i}.log"
        rec = _record(prog, log, "100000")
        assert re.search(r"^counter \d+ of 200000$", rec.stdout, re.M), rec.stdout
        assert summary(str(log)).get("preempted", 0) > 10      # cut by the host ticker
        recs.append((log, rec))
    for log, rec in recs:
        _same(rec, _replay(prog, log, "100000"))


def test_threaded_c_replays_under_other_host_timing(tmp_path: Path) -> None:
    """stress_mutex (16 LWPs parking on a mutex, 2 vCPUs): fast-mode schedules
    differ run to run; the recorded one comes back on every replay, on an idle
    host, under CPU load from a busy process, and pinned to one host CPU."""
    prog = build_c("stress_mutex")
    log = tmp_path / "mutex.log"
    rec = _record(prog, log, "16", "200", opts=("--ncpu", "2"))
    assert rec.returncode == 0 and "PASS" in rec.stdout, rec.stdout + rec.stderr
    for _ in range(2):
        _same(rec, _replay(prog, log, "16", "200"))
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        _same(rec, _replay(prog, log, "16", "200"))
    finally:
        busy.kill()
        busy.wait()
    if shutil.which("taskset"):
        _same(rec, _replay(prog, log, "16", "200", prefix=("taskset", "-c", "0")))


@pytest.mark.parametrize("name,arch", [("tokenring", "amd64"), ("timers", "amd64"),
                                       ("tokenring", "arm64")])
def test_go_fast_mode_replays(tmp_path: Path, name: str, arch: str) -> None:
    """Go programs read the clock all the time and random bytes at start-up: both
    come from the log on replay, with the recorded schedule (on both architectures:
    aarch64 traps through the interrupt hook, the block counts are the same idea)."""
    prog = build_go(name, "netbsd", arch)
    log = tmp_path / f"{name}.log"
    rec = _record(prog, log)
    assert rec.returncode == 0, rec.stderr
    n = summary(str(log))
    assert n.get("monotonic", 0) > 50, n                  # clock readings
    assert n.get("input:read", 0) >= 1, n                 # /dev/urandom at start-up
    assert n.get("end") == 1, n
    for _ in range(2):
        _same(rec, _replay(prog, log))


def test_deterministic_recording_replays(tmp_path: Path) -> None:
    prog = build_go("tokenring")
    log = tmp_path / "det.log"
    rec = _record(prog, log, opts=("--deterministic", "--seed", "3"))
    _same(rec, _replay(prog, log))


def test_replay_does_not_read_stdin(tmp_path: Path) -> None:
    """Data the guest read from stdin is in the log: a replay with another stdin
    (or none) sees what the recorded run read."""
    prog = build_c("sysfuzz")
    log = tmp_path / "stdin.log"
    rec = _record(prog, log, input="20\n311\n20\n")
    assert "311 R" in rec.stdout and rec.returncode == 0, rec.stdout + rec.stderr
    assert summary(str(log)).get("input:read", 0) >= 1
    rep = _replay(prog, log, stdin=subprocess.DEVNULL)
    _same(rec, rep)
    p = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--replay", str(log), "--sched-hash",
                        str(prog)], input="311\n", capture_output=True, text=True, timeout=300)
    _same(rec, p)


def test_traces_and_timeline_do_not_consume_the_log(tmp_path: Path) -> None:
    """--trace and --timeline at replay time look at the run without asking the
    clock for anything the recording did not."""
    prog = build_go("tokenring")
    log = tmp_path / "tl.log"
    rec = _record(prog, log)
    tl = tmp_path / "tl.json"
    rep = _replay(prog, log, opts=("--trace", "sched", "--timeline", str(tl)))
    _same(rec, rep)
    assert tl.stat().st_size > 0


# -- refusals and divergence --------------------------------------------------------------------
@pytest.fixture(scope="module")
def racy_log(tmp_path_factory) -> tuple[Path, Path]:
    prog = build_c("racy_rmw")
    log = tmp_path_factory.mktemp("rr") / "racy.log"
    rec = _record(prog, log, "20000")
    assert rec.returncode in (0, 1), rec.stderr
    return prog, log


def _one_line(r: subprocess.CompletedProcess, pattern: str) -> None:
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("nbemu:") and
             "warning" not in ln and not ln.startswith("nbemu: schedule ")]
    assert len(lines) == 1 and re.search(pattern, lines[0]), r.stderr


def _body(log: Path) -> tuple[bytes, bytearray]:
    data = gzip.decompress(log.read_bytes())
    nl = data.index(b"\n") + 1
    return data[:nl], bytearray(data[nl:])


def test_truncated_or_corrupt_log_is_refused(racy_log, tmp_path: Path) -> None:
    prog, log = racy_log
    raw = log.read_bytes()
    cut = tmp_path / "cut.log"
    cut.write_bytes(raw[:len(raw) // 2])
    r = _replay(prog, cut, "20000")
    assert r.returncode == 2
    _one_line(r, r"truncated or corrupt")
    flip = tmp_path / "flip.log"
    bad = bytearray(raw)
    bad[len(bad) // 2] ^= 0x55
    flip.write_bytes(bytes(bad))
    r = _replay(prog, flip, "20000")
    assert r.returncode == 2
    _one_line(r, r"truncated or corrupt|not an nbemu record log")
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"hello\n")
    r = _replay(prog, junk, "20000")
    assert r.returncode == 2
    _one_line(r, r"truncated or corrupt|not an nbemu record log")
    r = _replay(prog, tmp_path / "missing.log", "20000")
    assert r.returncode == 2
    _one_line(r, r"cannot read")


def test_tampered_records_diverge(racy_log, tmp_path: Path) -> None:
    """A well-formed log whose records do not fit the run: one line, exit 124."""
    prog, log = racy_log
    head, body = _body(log)
    other = tmp_path / "lid.log"
    i = body.index(b"S")
    body2 = bytearray(body)
    body2[i + 3] ^= 1                                  # the first turn's lid
    other.write_bytes(gzip.compress(head + bytes(body2)))
    r = _replay(prog, other, "20000")
    assert r.returncode == EXIT_DIVERGED
    _one_line(r, r"replay diverged from .*the log runs lid \d+ on vCPU \d+")
    short = tmp_path / "short.log"
    short.write_bytes(gzip.compress(head + bytes(body[:len(body) // 2])))
    r = _replay(prog, short, "20000")
    assert r.returncode == EXIT_DIVERGED
    _one_line(r, r"replay diverged")
    noend = tmp_path / "noend.log"
    noend.write_bytes(gzip.compress(head + bytes(body[:-5])))   # the X record cut off
    r = _replay(prog, noend, "20000")
    assert r.returncode == EXIT_DIVERGED
    _one_line(r, r"replay diverged.*log ends")


def test_divergence_inside_a_system_call(tmp_path: Path) -> None:
    """A clock reading that the log has as a host input (and the reverse): the
    system call asking for it stops the replay with one line, not a crash report."""
    prog = build_go("timers")
    log = tmp_path / "timers.log"
    rec = _record(prog, log)
    assert rec.returncode == 0, rec.stderr
    head, body = _body(log)
    recs = list(walk(body))
    for tag, want in (("M", r"asked for a CLOCK_MONOTONIC reading, the log has a CLOCK_REALTIME"),
                      ("I", r"asked for host input 'read', the log has 'ready'")):
        at = next(off for off, t, _ in recs if t == tag)
        bad = bytearray(body)
        if tag == "M":
            bad[at] = ord("R")
        else:
            bad[at + 1] = 2                            # INPUT_KINDS[2]: "ready"
        other = tmp_path / f"bad{tag}.log"
        other.write_bytes(gzip.compress(head + bytes(bad)))
        r = _replay(prog, other)
        assert r.returncode == EXIT_DIVERGED, r.stderr
        _one_line(r, want)
        assert "internal error" not in r.stderr


def test_mismatched_program_args_or_options_are_refused(racy_log) -> None:
    prog, log = racy_log
    r = _replay(build_c("seedorder"), log, "20000")
    assert r.returncode == 2
    _one_line(r, r"recorded for another program .*refusing to replay")
    r = _replay(prog, log, "30000")
    assert r.returncode == 2
    _one_line(r, r"recorded with arguments \['20000'\].*refusing")
    r = _replay(prog, log, "20000", opts=("--ncpu", "2"))
    assert r.returncode == 2
    _one_line(r, r"recorded with --ncpu 4.*refusing")
    r = _replay(prog, log, "20000", opts=("--ncpu", "4"))       # the same as recorded: fine
    assert r.returncode in (0, 1) and "diverged" not in r.stderr, r.stderr
    r = run_nbemu(prog, "20000", opts=("--record", os.devnull, "--replay", str(log)))
    assert r.returncode == 2 and "not allowed with" in r.stderr, r.stderr


def test_help_documents_both_options() -> None:
    r = run_nbemu("--help", opts=())
    assert "--record LOG" in r.stdout and "--replay LOG" in r.stdout, r.stdout
