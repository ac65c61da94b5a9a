"""Signals sent to nbemu reach the guest as NetBSD signals (emu/hostsig.py):
handlers run (host SIGUSR1 arrives as NetBSD's 30), an idle sleep ends at once,
default actions kill the guest (exit 128+N), a spinning guest is ended by a
second SIGINT, and a recorded run replays its signals. A terminal's Ctrl-C
(si_code SI_KERNEL) reaches the first process's whole group, a kill(2) of
nbemu (SI_USER) the first process only. Fixture: hostsig.c."""
from __future__ import annotations

import gzip
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.build import build_c
from nbemu.emu import record
from tests.guest import ARCHES, REPO, OnTerminal, Running


def _start(prog: Path, mode: str, *opts: str) -> Running:
    g = Running(prog, mode, opts=opts, timeout=60)
    g.expect("ready\n")                     # the guest is running, its handlers installed
    return g


# --trace lwp's line for an LWP going to sleep in nanosleep: the handshake that the
# guest's long sleep began (a signal sent before it would not interrupt it).
_NANOSLEEPING = re.compile(r"SLEEP +nanoslp")
_HANDLE_OUT = "ready\nlong sleep: EINTR\nsignal 30\nsignal 28\nsignal 2\n"


def _handle(g: Running) -> tuple[int, str, str]:
    """SIGUSR1, SIGWINCH, SIGINT, each sent once the guest's next 30 s sleep
    began (so never pending together: NetBSD would deliver the lowest number
    first) and each ending that sleep at once."""
    for sig, line in ((signal.SIGUSR1, "signal 30\n"),   # host SIGUSR1 (10) is NetBSD's 30
                      (signal.SIGWINCH, "signal 28\n"), (signal.SIGINT, "signal 2\n")):
        g.expect(_NANOSLEEPING, "err")
        g.signal(sig)
        g.expect(line)
    return g.finish()


@pytest.mark.parametrize("arch", ARCHES)
def test_handlers_run_in_order_and_sleep_is_interrupted(arch: str) -> None:
    rc, out, err = _handle(_start(build_c("hostsig", arch), "handle", "--trace", "lwp"))
    assert rc == 0, err
    assert out == _HANDLE_OUT, (out, err)


def test_default_action_kills_with_128_plus_n() -> None:
    g = _start(build_c("hostsig"), "default")
    g.signal(signal.SIGTERM)
    rc, out, err = g.finish()
    assert rc == 128 + 15 and "not killed" not in out
    assert "guest killed by signal 15 (SIGTERM)" in err


def test_first_sigint_ends_a_spinning_guest() -> None:
    """No system call, one LWP: the watchdog ends the turn, the default action
    kills the guest (tests/test_reliability.py: every port, SIGTERM, handlers)."""
    g = _start(build_c("hostsig"), "spin")
    g.signal(signal.SIGINT)
    rc, out, err = g.finish()
    assert rc == 128 + signal.SIGINT
    assert "guest killed by signal 2 (SIGINT)" in err and "again" not in err, err


def test_second_sigint_ends_a_guest_that_blocks_it() -> None:
    """SIGINT blocked, one LWP spinning without system calls: the signal stays
    pending; the watchdog quits on the second SIGINT."""
    g = _start(build_c("hostsig"), "masked")     # (SIGINT blocked before "ready")
    # nbemu quits on a SIGINT that comes while an earlier one is still
    # undelivered and old enough (hostsig.FORCE_QUIT_AFTER_S): send until it does.
    while g.p.poll() is None:
        g.signal(signal.SIGINT)
        try:
            g.p.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            pass
    rc, out, err = g.finish()
    assert rc == 128 + signal.SIGINT
    assert "SIGINT again" in err and err.count("\n") == 1, err


def test_signals_are_recorded_and_replayed(tmp_path: Path) -> None:
    log = tmp_path / "sig.log"
    prog = build_c("hostsig")
    rc, out, err = _handle(_start(prog, "handle", "--trace", "lwp", "--record", str(log)))
    assert rc == 0, err
    assert out == _HANDLE_OUT, (out, err)
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--replay", str(log), str(prog), "handle"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == out


def test_a_signal_arriving_mid_turn_replays(tmp_path: Path) -> None:
    """The guest spins without system calls after "ready", so SIGINT cuts a
    turn in the middle; the recorded run posts it before the next turn, and
    the replay must post it there too -- not at a system call of the turn it
    cut (the log records which kind of delivery point it was)."""
    log = tmp_path / "catch.log"
    prog = build_c("hostsig")
    g = _start(prog, "catch", "--record", str(log))
    g.signal(signal.SIGINT)
    rc, out, err = g.finish()
    assert rc == 0, err
    assert out == "ready\ncaught 2\ncounters agree\n", (out, err)
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--replay", str(log), str(prog),
                        "catch"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == out


_JOB_KILLED = "ready\nchild got SIGINT: no\n"


def test_kill_of_nbemu_reaches_the_first_process_only() -> None:
    """kill(2) of nbemu's pid (si_code SI_USER) is a kill of one process: the
    first one, not its child in the same group."""
    g = _start(build_c("hostsig"), "job")
    g.signal(signal.SIGINT)
    rc, out, err = g.finish()
    assert rc == 0, err
    assert out == _JOB_KILLED, (out, err)


@pytest.mark.parametrize("arch", ["x86_64", "arm"])
def test_ctrl_c_on_the_terminal_reaches_the_whole_job(arch: str) -> None:
    """The terminal's Ctrl-C (the tty driver's SIGINT, si_code SI_KERNEL)
    reaches every process of the foreground job: the child too."""
    t = OnTerminal(build_c("hostsig", arch), "job", timeout=60)
    try:
        t.expect("ready\n")
        t.write(b"\x03")                       # VINTR
        rc, out = t.finish()
    finally:
        t.kill()
    assert rc == 0, out
    assert out.endswith("child got SIGINT: yes\n"), out
    assert "child got SIGINT: no" not in out, out


def _replay(log: Path, prog: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--replay", str(log), str(prog),
                           *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_who_sent_a_signal_is_recorded_and_replayed(tmp_path: Path) -> None:
    """The log says a process sent the SIGINT (version 3: the byte's 0x80 bit),
    and the replay posts it to the first process only, as the run did."""
    log = tmp_path / "job.log"
    prog = build_c("hostsig")
    g = _start(prog, "job", "--record", str(log))
    g.signal(signal.SIGINT)
    rc, out, err = g.finish()
    assert rc == 0 and out == _JOB_KILLED, (out, err)
    body = gzip.decompress(log.read_bytes()).split(b"\n", 1)[1]
    sigs = [body[at + 1] for at, tag, _ in record.walk(body) if tag in "Gg"]
    assert sigs == [2 | record.SENT_BY_PROCESS], sigs
    r = _replay(log, prog, "job")
    assert r.returncode == 0, r.stderr
    assert r.stdout == _JOB_KILLED


def _log(tmp_path: Path, version: int, body: bytes) -> Path:
    """A record log of that version and body (a header with only what a
    Replayer reads before replaying)."""
    h = {"format": record.FORMAT, "version": version, "cwd": str(tmp_path)}
    path = tmp_path / f"v{version}.log"
    path.write_bytes(gzip.compress(json.dumps(h).encode() + b"\n" + body))
    return path


def test_a_version_2_log_replays_its_signals_as_the_terminals(tmp_path: Path) -> None:
    """A version 2 log (before host signals said who sent them) replays as that
    nbemu ran: its byte is the signal, sent by the terminal (a SIGINT goes to
    the whole group); version 3 reads the sender bit; an unknown version is
    refused with a message."""
    body = b"g" + bytes((2,)) + b"G" + bytes((2 | record.SENT_BY_PROCESS,)) + (7).to_bytes(8, "little")
    v3 = record.Replayer(str(_log(tmp_path, 3, body)))
    assert v3.host_signals(at_turn=True) == [(2, False)]
    assert v3.host_signals(nsyscalls=7) == [(2, True)]
    body2 = b"g" + bytes((2,)) + b"G" + bytes((3,)) + (7).to_bytes(8, "little")
    v2 = record.Replayer(str(_log(tmp_path, 2, body2)))
    assert v2.host_signals(at_turn=True) == [(2, False)]
    assert v2.host_signals(nsyscalls=7) == [(3, False)]
    with pytest.raises(record.LogError, match="is a version 99 log; this nbemu replays "
                                              "versions 2, 3"):
        record.Replayer(str(_log(tmp_path, 99, body)))
