"""check_exec() and the cost of loading (issue 16, items 5 and 6): what is not a
regular file we may execute is refused with 126 and one line, as NetBSD's execve
refuses it (EACCES) -- without reading it (a FIFO or /dev/zero used to hang or
eat host memory) -- and a large bss costs no host memory before it is touched."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.build import build_c
from fixtures.elf_corpus import PT_LOAD, _Elf
from tests.guest import REPO, run_nbemu


def _one_line(r: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbemu: "), r.stderr
    return lines[0]


@pytest.mark.parametrize("mode", [0o644, 0o000, 0o600, 0o666])
def test_no_execute_permission_is_eacces(tmp_path: Path, mode: int) -> None:
    # VOP_ACCESS(VEXEC): NetBSD requires an execute bit, even from root.
    prog = tmp_path / "prog"
    shutil.copy(build_c("exit42"), prog)
    prog.chmod(mode)
    r = run_nbemu(prog, timeout=60)
    assert r.returncode == 126
    assert "Permission denied" in _one_line(r)


def test_one_execute_bit_is_enough(tmp_path: Path) -> None:
    prog = tmp_path / "prog"
    shutil.copy(build_c("exit42"), prog)
    prog.chmod(0o700 if os.getuid() != 0 else 0o001)
    r = run_nbemu(prog, timeout=60)
    assert r.returncode == 42, r.stderr


def test_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o755)
    r = run_nbemu(fifo, timeout=60)          # opening it for reading would block forever
    assert r.returncode == 126
    assert "not a regular file" in _one_line(r)


def test_dev_zero_is_refused_without_reading_it() -> None:
    r = run_nbemu("/dev/zero", timeout=60)   # reading it all would never end
    assert r.returncode == 126
    assert "not a regular file" in _one_line(r)


def test_symlink_to_nowhere_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    r = run_nbemu(tmp_path / "dangling", timeout=60)
    assert r.returncode == 127
    assert "No such file" in _one_line(r)


def _with_bss(tmp_path: Path, arch: str, size: int) -> Path:
    """exit42 whose data segment (all bss) is `size` bytes."""
    e = _Elf(build_c("exit42", arch).read_bytes())
    data = e.index(PT_LOAD, 6)
    prog = tmp_path / f"bss_{arch}"
    prog.write_bytes(e.with_(("p_memsz", data, size)))
    prog.chmod(0o755)
    return prog


def _maxrss_kib(prog: Path) -> tuple[int, int]:
    """(exit status, peak resident set of the nbemu process in KiB)."""
    p = subprocess.Popen([sys.executable, "-m", "nbemu.emu.cli", str(prog)], cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, ru.ru_maxrss


@pytest.mark.parametrize("arch,size", [("x86_64", 250 << 20), ("aarch64", 3 << 30)])
def test_large_bss_costs_no_host_memory(tmp_path: Path, arch: str, size: int) -> None:
    # Within the port's data limit (DFLDSIZ: 256 MB on amd64, 4 GB on aarch64) the
    # program runs; its bss is mapped, not written: nbemu's peak RSS stays far below it.
    base_rc, base = _maxrss_kib(build_c("exit42", arch))
    rc, rss = _maxrss_kib(_with_bss(tmp_path, arch, size))
    assert (base_rc, rc) == (42, 42)
    assert rss - base < 64 * 1024, (base, rss)


def test_bss_beyond_the_data_limit_is_enomem(tmp_path: Path) -> None:
    # kern_exec.c: ep_dsize > RLIMIT_DATA is ENOMEM, before anything is mapped
    # (a 2^40-byte bss used to be mapped page by page, for ever).
    for size in (4 << 30, 1 << 40):
        r = run_nbemu(_with_bss(tmp_path, "x86_64", size), timeout=60)
        assert r.returncode == 126
        assert "Cannot allocate memory" in _one_line(r)
