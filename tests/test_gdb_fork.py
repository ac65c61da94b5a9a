"""gdb across fork, vfork and exec (emu/gdbstub.py's multiprocess support).

A real gdb drives fixtures/c/gdb_fork.c (a parent and its child; its exec and
vfork modes run gdb_threads in the child) under `nbemu -g`: follow-fork-mode
child with a breakpoint in the child, a parent's breakpoint that must not stop
the child it detached, detach-on-fork off with both inferiors run to their
exit, catch fork/vfork/exec with the new image's symbols; and the protocol
itself (p<pid>.<lid> ids, fork and exit replies, D;pid) spoken directly."""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

import pytest

from fixtures.build import build_c
from tests import test_gdb
from tests.guest import Client, Nbemu, find_gdb

GDB, _WHY = find_gdb("x86_64")
pytestmark = pytest.mark.skipif(GDB is None, reason=_WHY)


def run_gdb(commands: list[str], *args: str, opts: tuple[str, ...] = (),
            arch: str = "x86_64") -> tuple[str, int, str, str]:
    """Debug gdb_fork under nbemu -g with gdb -batch: (gdb's output, nbemu's exit
    status, nbemu's stdout, nbemu's stderr). "THREADS" in args: gdb_threads' path."""
    args = tuple(str(build_c("gdb_threads", arch=arch)) if a == "THREADS" else a for a in args)
    return test_gdb.run_gdb(commands, *args, opts=opts, arch=arch, fixture="gdb_fork")


@contextmanager
def stub(*args: str) -> Iterator[tuple[Nbemu, Client]]:
    """gdb_fork under nbemu -g, and a connection to its stub."""
    n = Nbemu(*args, fixture="gdb_fork")
    try:
        yield n, n.connect()
    finally:
        n.kill()


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "x86", "arm"])
def test_follow_fork_child_stops_at_a_breakpoint_in_the_child(arch: str) -> None:
    text, rc, out, err = run_gdb([
        "set follow-fork-mode child", "break child_body", "continue",
        "info inferiors", "bt 1", "finish", "print child_value", "continue"], arch=arch)
    assert re.search(r"Attaching after Thread 100\.100 fork to child Thread (\d+)\.\1", text), text
    child = re.search(r"\[New inferior 2 \(process (\d+)\)\]", text).group(1)
    assert "[Detaching after fork from parent process 100]" in text, text
    assert re.search(r"hit Breakpoint 1, child_body \(v=(v@entry=)?3\)", text), text
    assert re.search(rf"^\* 2\s+process {child}\s", text, re.M), text   # info inferiors
    assert re.search(r"^\$1 = 3$", text, re.M), text                    # after finish
    assert f"[Inferior 2 (process {child}) exited with code 03]" in text, text
    # the parent, detached, ran on: it reaped the child and exited 7
    assert rc == 7 and "gdb_fork: child reaped exited 3" in out, (rc, out, err)
    assert "Traceback" not in err + text


def test_a_parent_breakpoint_does_not_stop_the_detached_child() -> None:
    """common_body is called by both; gdb detaches the child at the fork (after
    removing the breakpoint copies from it): only the parent stops there."""
    text, rc, out, err = run_gdb(["break common_body", "continue", "continue"])
    assert re.search(r"\[Detaching after fork from child process \d+\]", text), text
    hits = re.findall(r"Breakpoint 1, common_body \(who=0x[0-9a-f]+ \"(\w+)\"\)", text)
    assert hits == ["parent"], text
    assert "[Inferior 1 (process 100) exited with code 07]" in text, text
    assert "child: common" in out and "child reaped exited 3" in out and rc == 7, (rc, out)


def _two_inferiors(opts: tuple[str, ...] = ()) -> tuple[str, int, str, str]:
    return run_gdb([
        "set detach-on-fork off", "set schedule-multiple on",
        "break child_body", "continue",
        "info inferiors", "delete",
        "continue",                         # the child exits; the parent stops with it
        "inferior 1", "continue"], opts=opts)


def test_detach_on_fork_off_runs_both_inferiors_to_their_exit() -> None:
    text, rc, out, err = _two_inferiors()
    child = re.search(r"\[New inferior 2 \(process (\d+)\)\]", text).group(1)
    assert re.search(r"Thread 2\.1 hit Breakpoint 1(\.\d+)?, child_body", text), text
    # both processes are gdb's inferiors at once
    assert re.search(r"^\s+1\s+process 100\s", text, re.M), text
    assert re.search(rf"^\* 2\s+process {child}\s", text, re.M), text
    assert f"[Inferior 2 (process {child}) exited with code 03]" in text, text
    assert "[Inferior 1 (process 100) exited with code 07]" in text, text
    assert rc == 7 and "child reaped exited 3" in out, (rc, out, err)


def test_two_inferiors_are_stopped_and_resumed_deterministically() -> None:
    """Under --deterministic the whole session (stops, which process hits
    what, the LWPs' states) is the same every time."""
    def norm(t: str) -> str:
        return re.sub(r"remote :\d+", "remote :PORT", t)
    runs = [_two_inferiors(("--deterministic", "--seed", "3")) for _ in range(2)]
    assert runs[0][1] == runs[1][1] == 7, runs
    assert norm(runs[0][0]) == norm(runs[1][0]), runs
    assert runs[0][2] == runs[1][2], runs


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_catch_fork_and_exec_with_the_new_image_symbols(arch: str) -> None:
    text, rc, out, err = run_gdb([
        "set follow-fork-mode child", "catch fork", "catch exec", "continue", "continue",
        "info inferiors", "break worker_body", "continue", "bt 2", "delete", "continue"],
        "exec", "THREADS", arch=arch)
    assert re.search(r"Catchpoint 1 \(forked process (\d+)\)", text), text
    assert re.search(r"process \d+ is executing new program: \S*/gdb_threads", text), text
    assert re.search(r"hit Catchpoint 2 \(exec'd \S*/gdb_threads\)", text), text
    assert re.search(r"^\* 2\s+process \d+\s.*\S*/gdb_threads", text, re.M), text
    # worker_body exists only in the new image; it stops a named LWP of the child
    assert re.search(r'Thread 2\.\d+ "worker-\d" hit Breakpoint 3, worker_body', text), text
    assert re.search(r"#1\s+0x[0-9a-f]+ in worker \(arg=", text), text
    assert re.search(r"\[Inferior 2 \(process \d+\) exited with code 07\]", text), text
    assert rc == 7 and "child reaped exited 7" in out and "shared_value=42" in out, (rc, out)


def test_catch_vfork_then_vforkdone() -> None:
    text, rc, out, err = run_gdb(["catch vfork", "continue", "continue"], "vfork", "THREADS")
    assert re.search(r"Catchpoint 1 \(vforked process \d+\)", text), text
    assert re.search(r"\[Detaching after vfork from child process \d+\]", text), text
    assert "[Inferior 1 (process 100) exited with code 07]" in text, text
    assert rc == 7 and "child reaped exited 7" in out, (rc, out, err)


def test_protocol_fork_event_pid_threads_and_detach() -> None:
    """The packets themselves: multiprocess ids, the fork stop reply, both
    processes' threads and memory, D;pid of the child, W with process:pid."""
    with stub() as (n, c):
        sup = c.ask("qSupported:multiprocess+;fork-events+;vfork-events+;exec-events+").decode()
        for feat in ("multiprocess+", "fork-events+", "vfork-events+", "exec-events+"):
            assert f";{feat}" in sup, sup
        assert c.ask("?") == b"T05thread:p64.64;"
        assert c.ask("qfThreadInfo") == b"mp64.64" and c.ask("qsThreadInfo") == b"l"
        assert c.ask("qC") == b"QCp64.64"
        c.send("vCont;c")
        stop = c.reply().decode()
        m = re.fullmatch(r"T05fork:p([0-9a-f]+)\.\1;thread:p64\.64;", stop)
        assert m, stop
        child = m.group(1)
        assert c.ask("qfThreadInfo") == f"mp64.64,p{child}.{child}".encode()
        assert c.ask(f"qXfer:exec-file:read:{child}:0,fff")[:1] == b"l"
        # each process's memory: the fork return registers differ (pid vs 0)
        assert c.ask(f"Hgp{child}.0") == b"OK" and c.ask("p0") == b"0" * 16
        assert c.ask("Hgp64.0") == b"OK"
        assert c.ask("p0") == int(child, 16).to_bytes(8, "little").hex().encode()
        assert c.ask("Hgp999.0") == b"E02"
        assert c.ask(f"D;{child}") == b"OK"
        assert c.ask("qfThreadInfo") == b"mp64.64"
        c.send("vCont;c")
        assert c.reply() == b"W07;process:64"
        rc, out, err = n.finish()
    assert rc == 7 and "child reaped exited 3" in out, (rc, out, err)


def test_without_fork_events_the_child_runs_unseen() -> None:
    with stub() as (n, c):
        assert "fork-events" not in c.ask("qSupported:multiprocess+").decode()
        c.send("vCont;c")
        assert c.reply() == b"W07;process:64"
        rc, out, err = n.finish()
    assert rc == 7 and "child reaped exited 3" in out, (rc, out, err)


@pytest.mark.parametrize("how", ["detach", "kill"])
def test_detach_or_kill_one_of_two_inferiors(how: str) -> None:
    """`detach inferior 2` (D;pid) lets the child run on alone; `kill inferiors
    2` (vKill;pid) kills it (its parent sees it die); gdb goes on with the parent."""
    text, rc, out, err = run_gdb([
        "set detach-on-fork off", "set schedule-multiple on", "break child_body", "continue",
        "detach inferior 2" if how == "detach" else "kill inferiors 2",
        "inferior 1", "continue"])
    assert re.search(r"Thread 2\.1 hit Breakpoint 1(\.\d+)?, child_body", text), text
    assert "[Inferior 1 (process 100) exited with code 0" in text, text
    if how == "detach":
        assert re.search(r"\[Inferior 2 \(process \d+\) detached\]", text), text
        assert "child: body 3" in out and "child reaped exited 3" in out and rc == 7, (rc, out)
    else:
        assert "child: body" not in out and "child reaped exited 0" in out and rc == 1, (rc, out)
    assert "Traceback" not in err + text


def test_a_watchpoint_set_before_fork_fires_in_the_followed_child() -> None:
    text, rc, out, err = run_gdb([
        "break main", "continue", "set follow-fork-mode child", "watch child_value",
        "continue", "continue"])
    assert re.search(r"Thread 2\.1 hit Hardware watchpoint 2: child_value", text), text
    assert "Old value = 0" in text and "New value = 3" in text, text
    assert re.search(r"\[Inferior 2 \(process \d+\) exited with code 03\]", text), text
    assert rc == 7 and "child reaped exited 3" in out, (rc, out, err)


def test_exec_of_the_debugged_process_loads_the_new_program() -> None:
    """No fork: the first process execs gdb_threads; gdb reads the new program
    through the stub, re-sets `break main` in it and stops in its LWPs."""
    text, rc, out, err = run_gdb([
        "break main", "continue", "continue", "break worker_body", "continue",
        "info inferiors", "delete", "continue"], "execself", "THREADS")
    assert re.search(r"Breakpoint 1, main \(argc=3,", text), text           # gdb_fork's
    assert re.search(r"process 100 is executing new program: \S*/gdb_threads", text), text
    assert re.search(r"Breakpoint 1, main \(argc=1,", text), text           # gdb_threads'
    assert re.search(r'Thread \d+ "worker-\d" hit Breakpoint 2, worker_body', text), text
    assert re.search(r"^\* 1\s+process 100\s.*/gdb_threads", text, re.M), text
    assert "[Inferior 1 (process 100) exited with code 07]" in text, text
    assert rc == 7 and "shared_value=42" in out, (rc, out, err)


def test_ctrl_c_stops_a_child_spinning_on_its_own_engine() -> None:
    """The child's engine gets the block hook at the fork, so 0x03 stops a child
    that makes no system call (its parent, detached, sleeps in wait4)."""
    from elftools.elf.elffile import ELFFile
    with open(build_c("gdb_fork"), "rb") as f:
        spin = next(s["st_value"] for s in ELFFile(f).get_section_by_name(".symtab")
                    .iter_symbols() if s.name == "spin_count")
    with stub("spin") as (n, c):
        c.ask("qSupported:multiprocess+;fork-events+")
        c.send("vCont;c")
        child = re.fullmatch(r"T05fork:p([0-9a-f]+)\.\1;thread:p64\.64;",
                             c.reply().decode()).group(1)
        assert c.ask("D;64") == b"OK"             # follow the child: the parent runs alone
        assert c.ask(f"Hgp{child}.0") == b"OK"
        # Interrupt until the child has spun (no sleep: on a loaded host the
        # 0x03 may come before its first round).
        spun = 0
        while not spun:
            c.send("vCont;c")
            c.raw(b"\x03")
            stop = c.reply().decode()
            assert stop == f"T02thread:p{child}.{child};", stop
            spun = int.from_bytes(bytes.fromhex(c.ask(f"m{spin:x},8").decode()), "little")
        assert c.ask(f"vKill;{child}") == b"OK"   # the child only: its parent reaps it
        rc, out, err = n.finish()
    assert rc == 1 and "child reaped exited 0" in out, (rc, out, err)
    assert "Traceback" not in err, err
