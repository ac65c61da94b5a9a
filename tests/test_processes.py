"""Processes in one kernel: fork, vfork, wait4, execve (ELF and "#!"), exit
statuses, pipes and shared memory across processes, signals to children,
close-on-exec and execve's errnos (fixtures/c/proc_fork.c), on every port, at
1 and 4 vCPUs and under --deterministic (where the run repeats exactly)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures.build import build_c
from fixtures.expected import GO_OUTPUT
from tests.guest import ARCHES, run_nbemu


def _args(tmp_path: Path, arch: str) -> list[str]:
    """proc_fork's arguments: itself, exit42, a directory, a file without x bit,
    an executable file that is no program, a "#!" script naming exit42."""
    self, exit42 = build_c("proc_fork", arch), build_c("exit42", arch)
    noexec = tmp_path / "noexec"
    noexec.write_text("x")
    noexec.chmod(0o644)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\0garbage" * 16)
    garbage.chmod(0o755)
    script = tmp_path / "script"
    script.write_text(f"#!{exit42}\n")
    script.chmod(0o755)
    return [str(self), str(exit42), str(tmp_path), str(noexec), str(garbage), str(script)]


def _check(r) -> None:
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "FAIL" not in r.stdout
    assert r.stdout.rstrip().endswith("PASS")
    assert "echo: [a b] [c] ppid-known=1" in r.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_proc_fork(arch: str, tmp_path: Path) -> None:
    args = _args(tmp_path, arch)
    _check(run_nbemu(args[0], *args))


@pytest.mark.parametrize("ncpu", ["1", "2"])
def test_proc_fork_ncpu(ncpu: str, tmp_path: Path) -> None:
    args = _args(tmp_path, "x86_64")
    _check(run_nbemu(args[0], *args, opts=("--ncpu", ncpu)))


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_proc_fork_deterministic_repeats(arch: str, tmp_path: Path) -> None:
    args = _args(tmp_path, arch)
    opts = ("--deterministic", "--seed", "5", "--ncpu", "4", "--sched-hash")
    r1 = run_nbemu(args[0], *args, opts=opts)
    r2 = run_nbemu(args[0], *args, opts=opts)
    _check(r1)
    hashes = [line for line in (r1.stderr + r2.stderr).splitlines() if "schedule" in line]
    assert len(hashes) == 2 and hashes[0] == hashes[1], hashes
    assert r1.stdout == r2.stdout


def test_strace_names_each_process(tmp_path: Path) -> None:
    """--strace lines carry pid/lid: the children's calls appear under their pids."""
    args = _args(tmp_path, "x86_64")
    trace = tmp_path / "trace"
    r = run_nbemu(args[0], *args, opts=(f"--strace={trace}",))
    _check(r)
    pids = {line.split("/", 1)[0] for line in trace.read_text().splitlines() if "/" in line}
    assert "100" in pids and len(pids) > 10, sorted(pids)[:20]
    text = trace.read_text()
    assert " fork(" in text and " execve(" in text and "__wait450(" in text


def test_fork_bomb_ends_in_eagain(tmp_path: Path) -> None:
    """RLIMIT_NPROC caps the process count: fork gives EAGAIN, nothing breaks."""
    prog = build_c("proc_limits")
    r = run_nbemu(prog, opts=("--ncpu", "2"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.rstrip().endswith("PASS"), r.stdout[-2000:]


def test_deadlock_report_covers_every_process() -> None:
    r = run_nbemu(build_c("proc_deadlock"))
    assert r.returncode == 125, r.stderr[-2000:]
    assert "Wait-for report, pid 100" in r.stderr
    assert "Wait-for report, pid 101" in r.stderr
    assert "waits for a child to change state (children: pid 101 (proc_deadlock))" in r.stderr


def test_reports_name_an_exec_d_child_with_its_own_program_symbols() -> None:
    """After exec, a process's addresses are named from its new program (p_textvp),
    not from the first program's symbol table."""
    r = run_nbemu(build_c("proc_deadlock"), "exec", str(build_c("deadlock_park")))
    assert r.returncode == 125, r.stderr[-2000:]
    child = r.stderr[r.stderr.index("Wait-for report, pid 101"):]
    assert "hint 0x" in child and "<lock_a>" in child and "<lock_b>" in child, child
    assert "waits for a child to change state (children: pid 101 (deadlock_park))" \
        in r.stderr


OSEXEC_OUTPUT = GO_OUTPUT["osexec"]


def test_go_osexec_native_answer() -> None:
    """The known answer is what the linux/amd64 build prints natively."""
    import subprocess

    from fixtures.build import build_go
    r = subprocess.run([str(build_go("osexec", "linux", "amd64"))], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == OSEXEC_OUTPUT


@pytest.mark.parametrize("goarch,opts", [
    ("amd64", ("--ncpu", "4")), ("amd64", ("--ncpu", "1")),
    ("amd64", ("--deterministic", "--seed", "2")),
    ("arm64", ("--ncpu", "4")), ("arm64", ("--deterministic", "--seed", "2")),
    ("386", ("--ncpu", "2")), ("arm", ("--ncpu", "2")),
])
def test_go_osexec(goarch: str, opts: tuple[str, ...]) -> None:
    """Go's os/exec between NetBSD Go processes: pipelines, exit codes, Kill,
    a handled signal, Setpgid, a missing program."""
    from fixtures.build import build_go
    r = run_nbemu(build_go("osexec", "netbsd", goarch), opts=opts)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout == OSEXEC_OUTPUT
    assert "unimplemented" not in r.stderr, r.stderr


@pytest.mark.parametrize("arch", ARCHES)
def test_proc_pgrp(arch: str) -> None:
    """setpgid/getpgid/setsid/getsid across processes, EACCES after exec,
    kill(-pgid), SIGCHLD discarded while ignored by default, orphans reparented."""
    prog = build_c("proc_pgrp", arch)
    r = run_nbemu(prog, str(prog))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.rstrip().endswith("PASS") and "FAIL" not in r.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_posix_spawn(arch: str, tmp_path: Path) -> None:
    """posix_spawn with open/dup2/close/chdir actions and pgroup/sigmask
    attributes; errors returned as the call's value, the failed child exits 127."""
    prog = build_c("proc_spawn", arch)
    r = run_nbemu(prog, str(prog), str(tmp_path / "out"), str(tmp_path))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.rstrip().endswith("PASS") and "FAIL" not in r.stdout


def test_record_replay_across_processes(tmp_path: Path) -> None:
    """A fast-mode run of many processes replays exactly from its log."""
    args = _args(tmp_path, "x86_64")
    log = tmp_path / "run.log"
    r1 = run_nbemu(args[0], *args, opts=("--record", str(log)))
    _check(r1)
    r2 = run_nbemu(args[0], *args, opts=("--replay", str(log)))
    _check(r2)
    assert r1.stdout == r2.stdout


def test_stats_count_processes(tmp_path: Path) -> None:
    prog = build_c("proc_pgrp")
    r = run_nbemu(prog, str(prog), opts=("--stats",))
    assert r.returncode == 0, r.stderr
    assert "nbemu: stats: 9 processes (at most " in r.stderr, r.stderr[-500:]


@pytest.mark.parametrize("arch", ARCHES)
def test_exec_multi_lwp_enoexec_e2big_epipe(arch: str) -> None:
    """exec from a two-LWP process; a program of another port is ENOEXEC; argv
    beyond ARG_MAX is E2BIG; EPIPE once the last reader (a child) exited."""
    other = "aarch64" if arch != "aarch64" else "x86_64"
    prog = build_c("proc_exec2", arch)
    r = run_nbemu(prog, str(prog), str(build_c("exit42", other)))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "exec'd alone: 1" in r.stdout
    assert r.stdout.rstrip().endswith("PASS") and "FAIL" not in r.stdout


def test_timeline_has_a_process_row_per_process(tmp_path: Path) -> None:
    """--timeline: every guest process is a process of the trace (its LWPs
    below it), fork and exec are instant events."""
    import json
    prog = build_c("proc_pgrp")
    out = tmp_path / "tl.json"
    r = run_nbemu(prog, str(prog), opts=("--timeline", str(out)))
    assert r.returncode == 0, r.stderr
    events = json.loads(out.read_text())["traceEvents"]
    procs = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    assert procs[100] == "proc_pgrp (pid 100)"
    assert {101, 102, 103} <= set(procs), procs
    forks = [e for e in events if e.get("name") == "fork"]
    assert len(forks) == 8 and all(e["pid"] in procs for e in forks)
    execs = [e for e in events if e.get("name") == "exec"]
    assert execs and execs[0]["pid"] != 100
    tracks = {(e["pid"], e["tid"]) for e in events if e.get("ph") == "X" and e["pid"] in procs}
    assert (101, 101) in tracks and (100, 100) in tracks


@pytest.mark.parametrize("arch", ["x86_64", "arm"])
def test_child_fault_gets_a_crash_report(arch: str) -> None:
    """A child killed by a fault: its crash report (its registers, its code),
    the parent sees WIFSIGNALED(SIGSEGV) and nbemu exits with the parent's status."""
    r = run_nbemu(build_c("proc_crash", arch))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("PASS")
    assert "nbemu: crash: pid 101 lid 101: write of unmapped address 0x10" in r.stderr
    assert "LWPs of pid 101:" in r.stderr
    assert "nbemu: pid 101 killed by signal 11 (SIGSEGV)" in r.stderr


@pytest.mark.parametrize("arch", ARCHES)
def test_record_locks_between_processes(arch: str, tmp_path: Path) -> None:
    """fcntl locks (EAGAIN, F_GETLK's holder, F_SETLKW waits, close drops them,
    EDEADLK for a cycle) and flock (per open file) between processes."""
    r = run_nbemu(build_c("proc_lock", arch), str(tmp_path / "f"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.rstrip().endswith("PASS") and "FAIL" not in r.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_scm_rights(arch: str) -> None:
    """SCM_RIGHTS on AF_LOCAL sockets (fixtures/c/proc_scm.c): to a forked child
    and between LWPs, the port's CMSG_LEN/CMSG_SPACE, MSG_CMSG_CLOEXEC,
    MSG_CTRUNC with the files discarded, discard by read() and by the last
    close, datagrams, and the errnos of a bad control message."""
    r = run_nbemu(build_c("proc_scm", arch))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.rstrip().endswith("PASS") and "FAIL" not in r.stdout


def test_scm_rights_record_replay(tmp_path: Path) -> None:
    """The in-flight numbers are the kernel's: a replay (no host sockets) passes
    the same descriptors."""
    prog = build_c("proc_scm")
    log = tmp_path / "rec"
    r1 = run_nbemu(prog, opts=("--record", str(log)))
    r2 = run_nbemu(prog, opts=("--replay", str(log)))
    assert r1.stdout.rstrip().endswith("PASS"), r1.stdout[-2000:] + r1.stderr[-2000:]
    assert r2.stdout == r1.stdout, r2.stdout[-2000:] + r2.stderr[-2000:]


@pytest.mark.parametrize("arch", ["x86_64", "x86"])
def test_children_rusage(arch: str) -> None:
    """getrusage(RUSAGE_CHILDREN) is the sum of the reaped children's rusage (each
    with its own reaped children), wait6's wru_children what the child read, and
    WNOWAIT adds nothing (fixtures/c/proc_rusage.c)."""
    r = run_nbemu(build_c("proc_rusage", arch))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.rstrip().endswith("PASS") and "FAIL" not in r.stdout


@pytest.mark.parametrize("arch", ["x86_64", "arm"])
def test_controlling_terminal(arch: str) -> None:
    """Job control on a host pty (fixtures/c/proc_tty.c): TIOCSCTTY/TIOCGPGRP/
    TIOCSPGRP/TIOCGSID/TIOCNOTTY, SIGTTIN for a background read, SIGTTOU for a
    background termios change and (with TOSTOP) write, EIO for an orphaned group,
    SIGHUP+SIGCONT to an orphaned group with a stopped member, SIGHUP to the
    foreground group when the session leader exits. The pty's input holds the
    line the foreground job reads: no timing involved."""
    import pty
    master, slave = pty.openpty()
    try:
        os.write(master, b"line\n")
        r = run_nbemu(build_c("proc_tty", arch), os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.rstrip().endswith("PASS") and "FAIL" not in r.stdout


@pytest.mark.parametrize("arch", ["x86_64", "x86"])
def test_trailing_slash_on_new_names(arch: str, tmp_path: Path) -> None:
    """link/linkat/symlink/symlinkat/rename/renameat agree on a new name ending
    in "/", as NetBSD's namei: ENOENT when it does not exist (only mkdir and a
    directory's rename may make it), ENOTDIR for a file, EEXIST for a directory
    (fixtures/c/link_slash.c; Go's os.Root tests met link() making "new")."""
    r = run_nbemu(build_c("link_slash", arch), str(tmp_path))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.rstrip().endswith("PASS") and "FAIL" not in r.stdout
    assert sorted(os.listdir(tmp_path)) == ["dir2", "file", "new", "src"]
