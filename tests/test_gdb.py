"""nbemu's GDB stub driven by a real gdb in batch mode (issue 7, item 1).

gdb-multiarch is preferred (tests/install_gdb.sh installs it), else the host's
gdb (x86-64 is all these tests need). Debian's gdb builds know no NetBSD OS ABI,
so each session starts with `set osabi none` (see emu/gdbstub.py)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.build import build_c
from tests.guest import FIXTURE, Nbemu, find_gdb


GDB, _WHY = find_gdb("x86_64")
pytestmark = pytest.mark.skipif(GDB is None, reason=_WHY)


def run_gdb(commands: list[str], *args: str, target: str | None = None,
            spec: str = "0", opts: tuple[str, ...] = (),
            arch: str = "x86_64", fixture: str = FIXTURE) -> tuple[str, int, str, str]:
    """Debug the fixture under nbemu -g with gdb -batch; (gdb output, nbemu exit
    status, nbemu stdout, nbemu stderr)."""
    gdb, why = find_gdb(arch)
    if gdb is None:
        pytest.skip(why)
    prog = build_c(fixture, arch=arch)
    n = Nbemu(*args, spec=spec, opts=opts, arch=arch, fixture=fixture)
    try:
        if target is None:
            target = f":{n.port}" if n.port is not None else n.path
        cmd = [gdb, "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
               "-ex", "set width 0", "-ex", "set osabi none", "-ex", f"file {prog}",
               "-ex", f"target remote {target}"]
        for c in commands:
            cmd += ["-ex", c]
        g = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        rc, out, err = n.finish(timeout=60)
    finally:
        n.kill()
    return g.stdout + g.stderr, rc, out, err


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "arm", "x86"])
def test_threads_breakpoint_backtrace_watchpoint_exit(arch: str) -> None:
    text, rc, out, err = run_gdb([
        "break worker_body", "continue",
        "info threads",
        "bt",
        "thread 1", "bt",
        "delete", "watch shared_value", "continue",
        "info threads",
        "delete", "continue"], arch=arch)
    assert re.search(r'Thread \d+ "worker-\d" hit Breakpoint 1, worker_body', text), text
    # every LWP, with its name and NetBSD state
    threads = re.findall(r'^\*?\s+(\d+)\s+Thread (?:\d+\.)?(\d+) "([^"]+)" \(([^)]*)\)', text, re.M)
    first = threads[:4]
    assert sorted(t[2] for t in first) == ["gdb-main", "worker-1", "worker-2", "worker-3"], text
    main = next(t for t in first if t[2] == "gdb-main")
    assert main[1] == "100" and main[3] == "sleeping on lwpwait", main
    assert all(re.match(r"(running|runnable) on vCPU \d|sleeping on \w+", t[3]) for t in first)
    # bt of the LWP at the breakpoint, then `thread 1` (main, blocked in _lwp_wait)
    assert re.search(r"#0\s+worker_body \(id=.*\n#1\s+0x[0-9a-f]+ in worker \(", text), text
    assert re.search(r"Switching to thread 1 \(Thread 100(\.100)?\)", text), text
    assert re.search(r"_lwp_wait \(.*\n(#\d.*\n)*?#\d\s+0x[0-9a-f]+ in main \(", text), text
    # the watchpoint fires in the LWP that writes, after the write
    assert re.search(r'Thread \d+ "worker-2" hit Hardware watchpoint 2: shared_value', text), text
    assert "Old value = 0" in text and "New value = 42" in text
    assert "exited with code 07" in text, text
    assert rc == 7 and "gdb_threads: done shared_value=42" in out, (rc, out, err)
    assert "Traceback" not in err + text


def test_step_next_finish_registers_and_memory() -> None:
    text, rc, out, err = run_gdb([
        "info registers rip", "stepi", "stepi", "info registers rip",
        "break main", "continue", "next", "next",
        "print shared_value", "set var shared_value = 5", "print shared_value",
        "print $fs_base", "x/2i $pc",
        "break store_shared", "continue", "finish",
        "print shared_value",
        "delete", "continue"])
    rips = re.findall(r"^rip\s+(0x[0-9a-f]+)\s", text, re.M)
    assert len(rips) == 2 and int(rips[1], 16) > int(rips[0], 16), text
    assert "Breakpoint 1, main (" in text, text
    assert "$1 = 0" in text and "$2 = 5" in text, text
    assert re.search(r"=> 0x[0-9a-f]+ <main\+\d+>:", text), text
    assert re.search(r'Thread \d+ "worker-2" hit Breakpoint 2, store_shared', text), text
    assert re.search(r"^worker \(arg=0x2\) at .*gdb_threads.c", text, re.M), text  # finish
    assert re.search(r"^\$4 = 42$", text, re.M), text
    assert "exited with code 07" in text and rc == 7, (text, err)


def test_i386_step_finish_registers_tls_x87_sse() -> None:
    """NetBSD/i386: eip moves by stepi, NetBSD's user selectors, the %gs base
    (the TLS base: written through the IA32_GS_BASE MSR, read back), an x87 and
    an SSE register written and read back, finish out of a breakpoint."""
    text, rc, out, err = run_gdb([
        "info registers eip", "stepi", "stepi", "info registers eip",
        "break main", "continue", "next",
        "print shared_value", "set var shared_value = 5", "print shared_value",
        "info registers cs ss ds es fs gs",
        "set $gs_base = 0x1234", "print/x $gs_base", "set $gs_base = 0",
        "set $st0 = 1.5", "print $st0",
        "set $xmm1.v4_int32[0] = 7", "print $xmm1.v4_int32",
        "x/2i $pc",
        "break store_shared", "continue", "finish",
        "print shared_value",
        "delete", "continue"], arch="x86")
    eips = re.findall(r"^eip\s+(0x[0-9a-f]+)\s", text, re.M)
    assert len(eips) == 2 and int(eips[1], 16) > int(eips[0], 16), text
    assert "Breakpoint 1, main (" in text, text
    assert "$1 = 0" in text and "$2 = 5" in text, text
    for seg, sel in (("cs", 0x17), ("ss", 0x1f), ("ds", 0x1f), ("es", 0x1f), ("fs", 0xab),
                     ("gs", 0xb3)):
        assert re.search(rf"^{seg}\s+{sel:#x}\s", text, re.M), (seg, text)
    assert "$3 = 0x1234" in text and "$4 = 1.5" in text and "$5 = {7, 0, 0, 0}" in text, text
    assert re.search(r"=> 0x[0-9a-f]+ <main\+\d+>:", text), text
    assert re.search(r'Thread \d+ "worker-2" hit Breakpoint 2, store_shared', text), text
    assert re.search(r"^worker \(arg=0x2\) at .*gdb_threads.c", text, re.M), text  # finish
    assert re.search(r"^\$6 = 42$", text, re.M), text
    assert "exited with code 07" in text and rc == 7, (text, err)


def test_unix_socket_through_a_pipe(tmp_path: Path) -> None:
    # gdb 13 cannot connect to a Unix socket by itself: relay through `target remote |`.
    relay = tmp_path / "relay.py"
    relay.write_text(
        "import os, socket, sys, threading\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "def up():\n"
        "    while (d := os.read(0, 65536)):\n"
        "        s.sendall(d)\n"
        "threading.Thread(target=up, daemon=True).start()\n"
        "while (d := s.recv(65536)):\n"
        "    os.write(1, d)\n")
    sock = tmp_path / "nbemu.sock"
    text, rc, out, err = run_gdb(["break worker_body", "continue", "info threads",
                                  "delete", "continue"],
                                 spec=f"unix:{sock}",
                                 target=f"| {sys.executable} {relay} {sock}")
    assert "hit Breakpoint 1, worker_body" in text and "gdb-main" in text, text
    assert "exited with code 07" in text and rc == 7, (text, err)


def test_signal_is_reported_then_kills() -> None:
    text, rc, out, err = run_gdb(["continue", "bt", "continue"], "segv")
    assert "Program received signal SIGSEGV" in text, text
    assert re.search(r"#0\s+(0x[0-9a-f]+ in )?main \(", text), text
    assert "Program terminated with signal SIGSEGV" in text, text
    assert rc == 139, err


def test_quitting_gdb_detaches_and_the_guest_finishes() -> None:
    text, rc, out, err = run_gdb(["break worker_body", "continue"])
    assert "hit Breakpoint 1" in text and "detached" in text, text
    assert rc == 7 and "done" in out and "gdb detached" in err, (rc, out, err)
