"""The README's gdb recipe, run exactly as written, on a Go program (issue 15, item 1).

Go marks its ELF as NetBSD's, which Debian's gdb cannot handle: with the file
loaded before `set osabi none` pointers were cut to 32 bits and `bt` showed a
bogus frame. The README's command must give 64-bit pointers and a sane `bt`,
and so must the documented `-iex` form for a local file."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.build import build_go
from tests.guest import REPO, WAIT_RE, find_gdb

GDB, _WHY = find_gdb("x86_64")
pytestmark = pytest.mark.skipif(GDB is None, reason=_WHY)

# What the test asks gdb once connected (appended to the README's gdb command).
PROBE = ["-batch", "-nx", "-ex", "break main.countPrimes", "-ex", "continue", "-ex", "bt",
         "-ex", "kill"]


def readme_gdb_commands() -> tuple[list[str], list[str]]:
    """The nbemu and gdb command lines of the README's "Debugging with gdb" block."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Debugging with gdb", 1)[1]
    block = section.split("```", 2)[1]
    lines = [ln.split("#", 1)[0].strip() for ln in block.strip().splitlines()]
    nbemu_line, gdb_line = [ln for ln in lines if ln]
    return shlex.split(nbemu_line.rstrip("&")), shlex.split(gdb_line)


def readme_iex_command() -> list[str]:
    """The README's form for gdb loading a local file itself."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"`(gdb-multiarch -iex [^`]+)`", text)
    assert m is not None, "README gives no -iex command"
    return shlex.split(m.group(1))


def _debug(gdb_cmd: list[str], nbemu_cmd: list[str], prog: Path) -> str:
    """Start nbemu as the README says (port 0, then the real one substituted),
    run gdb's command with PROBE after it; gdb's output."""
    assert nbemu_cmd[:2] == ["nbemu", "-g"] and nbemu_cmd[3] == "./prog", nbemu_cmd
    port_word = nbemu_cmd[2]
    argv = [sys.executable, "-m", "nbemu.emu.cli", "-g", "0", str(prog), *nbemu_cmd[4:]]
    n = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert n.stderr is not None
        m = WAIT_RE.search(n.stderr.readline())
        assert m is not None and m.group(1), "nbemu -g printed no port"
        port = m.group(1)
        cmd = [GDB if w == "gdb-multiarch" else
               str(prog) if w == "./prog" else w.replace(port_word, port) for w in gdb_cmd]
        g = subprocess.run(cmd + PROBE, capture_output=True, text=True, timeout=180)
        n.communicate(timeout=60)
    finally:
        if n.poll() is None:
            n.kill()
            n.communicate()
    return g.stdout + g.stderr


def _check(text: str) -> None:
    m = re.search(r"hit Breakpoint 1, main\.countPrimes \(index=\d+, out=(0x[0-9a-f]+), "
                  r"wg=(0x[0-9a-f]+)\)", text)
    assert m is not None, text
    # Go's heap is above 4 GiB under nbemu: a 32-bit view would cut these pointers
    assert int(m.group(1), 16) > 0xffffffff and int(m.group(2), 16) > 0xffffffff, text
    assert re.search(r"^#1\s+0x[0-9a-f]+ in main\.main\.gowrap1 \(\)", text, re.M), text
    assert re.search(r"^#2\s+0x[0-9a-f]+ in runtime\.goexit \(\)", text, re.M), text
    assert "rejected target-supplied description" not in text, text


def test_readme_gdb_command_on_a_go_program() -> None:
    prog = build_go("demo")
    nbemu_cmd, gdb_cmd = readme_gdb_commands()
    assert gdb_cmd[0] == "gdb-multiarch", gdb_cmd
    _check(_debug(gdb_cmd, nbemu_cmd, prog))


def test_readme_iex_command_with_a_local_file() -> None:
    prog = build_go("demo")
    nbemu_cmd, _ = readme_gdb_commands()
    _check(_debug(readme_iex_command(), nbemu_cmd, prog))


def test_gdb_view_hides_netbsd_markers_only() -> None:
    from nbemu.emu.gdb_hostio import _shstrtab_range, gdb_view
    from fixtures.build import build_c
    for prog in (build_go("demo"), build_c("hello_c")):
        data = prog.read_bytes()
        view = gdb_view(data)
        lo, hi = _shstrtab_range(data)
        assert len(view) == len(data) and view[7] == 0, prog
        assert b".note.netbsd.ident" in data[lo:hi] and b".note.netbsd.ident" not in view
        diff = [i for i in range(len(data)) if data[i] != view[i]]
        assert all(i == 7 or lo <= i < hi for i in diff), (prog, diff)
