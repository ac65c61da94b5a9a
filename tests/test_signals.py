"""Signals (kern_sig.py, sys_sig.py): real NetBSD programs that install
handlers through __sigaction_sigtramp, take signals from kill, _lwp_kill, timers
and faults, and check what NetBSD guarantees; plus the default actions seen
from outside (exit status 128+N, crash report) and stop / continue.

Every fixture runs on every port (the trampoline per port is fixtures/c/rt/nbsig.h).
sig_basic and sig_fault check each port's own values, with the NetBSD source in
their comments: the return-value and PC registers of the ucontext
(_UC_MACHINE_INTRV / _UC_MACHINE_PC), the FP/SIMD register a handler clobbers and
setcontext restores (xmm7, v7, d7), frame alignment, si_code / si_trap / si_addr
of each fault (x86 T_* numbers, the aarch64 ESR, the arm FSR or instruction word),
SIGFPE only on x86 (no divide trap on aarch64 and arm), and on arm the EINVAL of
setcontext with _UC_FPU but not _UC_ARM_VFP. They are cheap: the whole ncpu and
--deterministic matrix runs on every port."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, OTHER_ARCHES, REPO, run_nbemu

SELF_CHECKING = ["sig_basic", "sig_lwp", "sig_fault"]
ARCH_FIXTURE = [(a, n) for a in ARCHES for n in SELF_CHECKING]


def _check_pass(r) -> None:
    assert "Traceback" not in r.stderr, r.stderr
    assert "FAIL" not in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("arch,name", ARCH_FIXTURE)
@pytest.mark.parametrize("ncpu", [1, 4])
def test_signal_fixture(name: str, ncpu: int, arch: str) -> None:
    _check_pass(run_nbemu(build_c(name, arch), opts=("--ncpu", str(ncpu)), timeout=120))


@pytest.mark.parametrize("arch,name", ARCH_FIXTURE)
def test_signal_fixture_deterministic(name: str, arch: str) -> None:
    _check_pass(run_nbemu(build_c(name, arch), opts=("--deterministic", "--seed", "5"),
                          timeout=120))


# mode -> (exit status, signal name in the last stderr line or None, crash report?)
DIE = {
    "segv_blocked": (139, "SIGSEGV", True),
    "segv_ignored": (139, "SIGSEGV", True),
    "ud2": (132, "SIGILL", True),
    "fpe": (136, "SIGFPE", True),
    "abort": (134, "SIGABRT", True),
    "term": (143, "SIGTERM", False),
    "kill": (137, "SIGKILL", False),
    "term_blocked": (143, "SIGTERM", False),
    "pipe": (141, "SIGPIPE", False),
    "pipe_ignored": (0, None, False),
    "alarm_spin": (142, "SIGALRM", False),
    "lwp_usr1": (158, "SIGUSR1", False),
    "bad_altstack": (132, "SIGILL", True),
}


# Integer division by zero does not trap on aarch64 and arm (sdiv/udiv and the EABI
# helpers give 0): NetBSD sends no SIGFPE there, the program goes on.
NO_DIVIDE_TRAP = {"aarch64", "arm"}


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("mode", sorted(DIE))
def test_default_action(mode: str, arch: str) -> None:
    status, signame, report = DIE[mode]
    if mode == "fpe" and arch in NO_DIVIDE_TRAP:
        status, signame, report = 0, None, False
    r = run_nbemu(build_c("sig_die", arch), mode, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == status, (r.stdout, r.stderr)
    assert r.stdout.startswith(f"mode {mode}\n")
    assert "handler ran" not in r.stdout          # the blocked/ignored handler never runs
    assert "survived" not in r.stdout or status == 0
    if signame is not None:
        assert f"guest killed by signal {status - 128} ({signame})" in r.stderr, r.stderr
    assert ("nbemu: crash:" in r.stderr) == report, r.stderr
    if report:
        assert "LWPs of pid" in r.stderr and "=>" in r.stderr     # LWP table, disassembly
    if mode == "term_blocked":
        assert "still alive" in r.stdout
    if mode == "pipe_ignored":
        assert "EPIPE" in r.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_fault_crash_report_names_the_fault(arch: str) -> None:
    r = run_nbemu(build_c("sig_die", arch), "segv_blocked", timeout=60)
    assert "nbemu: crash: lid" in r.stderr and "read of unmapped address 0x10" in r.stderr


def _proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
# Three configurations on amd64, 4 vCPUs on the other ports (CI time).
@pytest.mark.parametrize("arch,opts", [("x86_64", ("--ncpu", "4")), ("x86_64", ("--ncpu", "1")),
                                       ("x86_64", ("--deterministic", "--seed", "3"))]
                         + [(a, ("--ncpu", "4")) for a in OTHER_ARCHES])
def test_stop_and_continue(opts: tuple[str, ...], arch: str) -> None:
    """The guest stops itself twice (SIGSTOP from main, SIGTSTP from a spinning
    LWP); every LWP stops, so the process does, and so does nbemu, which the
    test continues with SIGCONT (the guest's SIGCONT handler runs)."""
    prog = build_c("sig_stop", arch)
    p = subprocess.Popen([sys.executable, "-m", "nbemu.emu.cli", *opts, str(prog)], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for cycle in range(2):
            deadline = time.monotonic() + 60
            while _proc_state(p.pid) != "T":
                assert p.poll() is None, p.communicate()
                assert time.monotonic() < deadline, f"no stop in cycle {cycle}"
                time.sleep(0.02)
            os.kill(p.pid, signal.SIGCONT)
            while _proc_state(p.pid) == "T" and time.monotonic() < deadline:
                time.sleep(0.01)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert "Traceback" not in err, err
    assert "FAIL" not in out, out
    assert out.rstrip().endswith("PASS"), (out, err)
    assert p.returncode == 0


@pytest.mark.parametrize("arch", ARCHES)
def test_deterministic_signals_repeat(arch: str) -> None:
    """Signals, timers and faults keep --deterministic runs identical."""
    runs = [run_nbemu(build_c(name, arch), opts=("--deterministic", "--seed", "9",
                                                 "--sched-hash"), timeout=120)
            for name in ("sig_lwp", "sig_lwp", "sig_basic", "sig_basic")]
    for r in runs:
        _check_pass(r)
    hashes = [[x for x in r.stderr.splitlines() if x.startswith("nbemu: schedule")]
              for r in runs]
    assert hashes[0] and hashes[0] == hashes[1] and hashes[2] == hashes[3]
