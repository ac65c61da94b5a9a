"""ptrace(2) by a parent of a child it starts (fixtures/c/proc_ptrace.c):
PT_TRACE_ME and the SIGTRAP stop at exec seen by wait4, the stopped child's
memory (PT_READ_D, PT_WRITE_D, PT_IO), PT_CONTINUE with and without a signal,
PT_KILL, PT_ATTACH/PT_DETACH, a traced child's signals stopping it, and the
errnos of bad requests, on every port; and what a debugger asks: registers
and FPU registers, siginfo, the LWP walk, event masks and their stops (fork,
vfork, posix_spawn, LWP create/exit), PT_SYSCALL / PT_SYSCALLEMU, PT_STEP,
PT_SUSPEND/RESUME, PT_STOP, PT_SET_SIGPASS; and a resume of one LWP
(data = -lid) of a two-LWP tracee, which leaves the other stopped."""
from __future__ import annotations

import os

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, run_nbemu


def _check(r) -> None:
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "FAIL" not in r.stdout
    assert r.stdout.rstrip().endswith("PASS")


@pytest.mark.parametrize("arch", ARCHES)
def test_proc_ptrace(arch: str) -> None:
    prog = build_c("proc_ptrace", arch)
    _check(run_nbemu(prog, str(prog)))


def test_proc_ptrace_deterministic_ncpu4() -> None:
    prog = build_c("proc_ptrace", "x86_64")
    _check(run_nbemu(prog, str(prog), opts=("--deterministic", "--seed", "3", "--ncpu", "4")))


def test_proc_ptrace_deterministic_aarch64() -> None:
    prog = build_c("proc_ptrace", "aarch64")
    _check(run_nbemu(prog, str(prog), opts=("--deterministic", "--seed", "5", "--ncpu", "2")))


def test_go_syscall_exec_ptrace(tmp_path) -> None:
    """Go's own syscall test TestExecPtrace (SysProcAttr{Ptrace: true}: the
    child calls PT_TRACE_ME before exec, stops at exec, is killed). It looks up
    `sh` on PATH; the host's is a Linux program, so PATH starts with a folder
    whose `sh` is a NetBSD program (exit42: the test only starts and kills it)."""
    from bench.go_stdlib import build
    binary = build("syscall")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sh").symlink_to(build_c("exit42", "x86_64"))
    env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}")
    r = run_nbemu(binary, "-test.run", "^TestExecPtrace$", "-test.v", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "--- PASS: TestExecPtrace" in r.stdout, r.stdout[-3000:]
