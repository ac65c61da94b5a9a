"""gdb on a dynamically linked NetBSD program (issue 12): the stub lists ld.elf_so's
shared objects to gdb (qXfer:libraries:read, read from r_debug in guest memory), gdb
reads them through the stub, a breakpoint in libpthread set before ld.elf_so has loaded
it resolves when it loads (a `library` stop at _rtld_debug_state), and `info threads`
shows the names pthread_setname_np gave.  Skips without gdb or ../shared/netbsd-src."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import netbsd_userland as nu
from tests.guest import REPO

PROGS = REPO / "fixtures" / "netbsd" / "progs"
GDB = shutil.which("gdb-multiarch") or shutil.which("gdb")
pytestmark = pytest.mark.skipif(GDB is None, reason="neither gdb-multiarch nor gdb is "
                                "installed (run tests/install_gdb.sh)")


@pytest.fixture(scope="module")
def program() -> tuple[Path, Path]:
    try:
        nu.netbsd_src()
        nu.check_host_tools()
    except (nu.NetBSDSourceMissing, nu.NetBSDToolMissing) as e:
        pytest.skip(str(e).splitlines()[0])
    root = nu.build_userland("amd64")
    out = root / "usr" / "tests" / "nbemu" / "gdb_threads"
    nu.link_program([PROGS / "gdb_threads.c"], out, libs=("pthread", "c"), sysroot=root,
                    linkage="dynamic")
    return root, out


def _gdb(root: Path, prog: Path, commands: list[str], *args: str) -> tuple[str, int, str]:
    """nbemu -g 0 under gdb -batch: (gdb's output, nbemu's status, nbemu's stdout)."""
    p = subprocess.Popen([sys.executable, "-m", "nbemu.emu.cli", "--root", str(root),
                          "--ncpu", "2", "-g", "0", str(prog), *args], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr is not None
        line = p.stderr.readline()                  # "nbemu: waiting for gdb on port N ..."
        m = re.search(r"port (\d+)", line)
        assert m, line
        cmd = [GDB, "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
               "-ex", "set width 0", "-ex", f"target remote :{m.group(1)}"]
        for c in commands:
            cmd += ["-ex", c]
        g = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        out, _err = p.communicate(timeout=120)
    finally:
        p.kill()
    return g.stdout + g.stderr, p.returncode, out


def test_shared_libraries_pending_breakpoint_and_thread_names(program) -> None:
    root, prog = program
    text, rc, out = _gdb(root, prog, [
        "set breakpoint pending on",
        "break pthread_mutex_lock",        # libpthread is not loaded yet: pending
        "continue",
        "info sharedlibrary",
        "delete",
        "break worker_body",
        "continue",
        "info threads",
        "bt",
        "delete",
        "continue"])
    assert 'Breakpoint 1 (pthread_mutex_lock) pending.' in text, text
    assert re.search(r"Breakpoint 1, 0x[0-9a-f]+ in pthread_mutex_lock \(\) from "
                     r"target:\S+/usr/lib/libpthread\.so\.1", text), text
    for lib in ("/usr/lib/libpthread.so.1", "/lib/libc.so.12", "/libexec/ld.elf_so"):
        assert re.search(r"0x[0-9a-f]+\s+0x[0-9a-f]+\s+Yes.*target:\S*" + re.escape(lib),
                         text), (lib, text)
    assert re.search(r'Thread \d+ "worker-[12]" hit Breakpoint 2(\.\d+)?, worker_body', text), text
    assert re.search(r'Thread (\d+\.)?\d+ "worker-[12]"', text.split("info threads")[-1]
                     if "info threads" in text else text), text
    assert rc == 0 and out.strip() == "shared=3", (rc, out, text)


def test_follow_fork_child_into_an_exec_of_a_dynamic_program(program) -> None:
    """A dynamic parent forks; gdb follows the child into its exec of the dynamic
    gdb_threads: the new program's shared objects are listed (read from the
    child's memory), a pending breakpoint in libpthread resolves when the child's
    ld.elf_so loads it, and the parent reaps the child."""
    root, threads = program
    spawn = threads.parent / "gdb_spawn"
    nu.link_program([PROGS / "gdb_spawn.c"], spawn, libs=("c",), sysroot=root,
                    linkage="dynamic")
    text, rc, out = _gdb(root, spawn, [
        "set follow-fork-mode child", "catch exec", "set breakpoint pending on",
        "continue", "break pthread_mutex_lock", "continue", "info sharedlibrary",
        "bt 2", "delete", "continue"], "/usr/tests/nbemu/gdb_threads")
    assert re.search(r"process (\d+) is executing new program: \S*/usr/tests/nbemu/gdb_threads",
                     text), text
    assert re.search(r"hit Breakpoint 2(\.\d+)?, [^\n]*pthread_mutex_lock", text), text
    # info sharedlibrary: the new program's objects, read from the child's memory
    for lib in ("usr/lib/libpthread.so.1", "usr/lib/libc.so.12", "libexec/ld.elf_so"):
        assert re.search(rf"^0x[0-9a-f]+\s+0x[0-9a-f]+\s+Yes.*/{lib}$", text, re.M), (lib, text)
    assert re.search(r"#0\s+0x[0-9a-f]+ in pthread_mutex_lock \(\) from \S*libpthread", text), text
    assert re.search(r"\[Inferior 2 \(process \d+\) exited normally\]", text), text
    assert rc == 0 and "shared=3" in out and "gdb_spawn: child exited 0" in out, (rc, out, text)
