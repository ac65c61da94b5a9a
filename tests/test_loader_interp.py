"""PT_INTERP (issue 11/12): a dynamically linked program is loaded as NetBSD's
exec_elf.c loads it -- the program's segments (at a base when it is a PIE), the
interpreter named by PT_INTERP, looked up inside the guest root (--root), at a
topdown base address, entered at its entry point with AT_BASE, AT_PHDR, AT_PHNUM,
AT_PHENT and AT_ENTRY describing the program. The interpreter here is a stand-in
(fixtures/c/interp/fake_ld_x86_64.c) that prints its auxv and jumps to the program.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from fixtures.build import C_RT_DIR, FIXTURES_DIR, ZIG_HOME, zig_command
from nbemu.guest.elf import ET_DYN, ET_EXEC, PT_PHDR, parse
from tests.guest import run_nbemu

SRC = FIXTURES_DIR / "c" / "interp"
TARGET = "x86_64-netbsd"
USRSTACK, MAXSSIZ = 0x7F7FFFFFF000, 128 << 20     # amd64


def _zig(tmp: Path, *args: str) -> None:
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(ZIG_HOME / "global"),
               ZIG_LOCAL_CACHE_DIR=str(tmp / "zig-local"))
    r = subprocess.run([*zig_command(), *args], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("interp")
    root = d / "root"
    (root / "libexec").mkdir(parents=True)
    ld = root / "libexec" / "ld.elf_so"
    _zig(d, "cc", "-target", TARGET, "-ffreestanding", "-fPIC", "-fvisibility=hidden",
         "-fno-stack-protector", "-O2", "-c", str(SRC / "fake_ld_x86_64.c"), "-o", str(d / "ld.o"))
    _zig(d, "ld.lld", "-shared", "-Bsymbolic", "-e", "_start", "--build-id=none", "-o", str(ld),
         str(d / "ld.o"))
    _zig(d, "cc", "-target", TARGET, "-ffreestanding", "-fPIE", "-fno-stack-protector", "-O2",
         "-c", str(SRC / "dynprog_x86_64.c"), "-o", str(d / "prog.o"))
    _zig(d, "cc", "-target", TARGET, "-c", str(C_RT_DIR / "netbsd_note.S"), "-o", str(d / "note.o"))
    out = {"root": root, "ld": ld}
    for name, extra in (("exec", []), ("pie", ["-pie"])):
        _zig(d, "ld.lld", *extra, "-e", "_start", "--dynamic-linker=/libexec/ld.elf_so",
             "--build-id=none", "-o", str(d / name), str(d / "prog.o"), str(d / "note.o"))
        out[name] = d / name
    for p in out.values():
        if p.is_file():
            p.chmod(0o755)
    return out


def _auxv(line: str) -> dict[str, int]:
    assert line.startswith("interp: "), line
    return {k: int(v, 16) for k, v in re.findall(r"(\w+)=(0x[0-9a-f]+)", line)}


@pytest.mark.parametrize("kind", ["exec", "pie"])
def test_interpreter_gets_the_program_and_runs_it(built: dict[str, Path], kind: str) -> None:
    prog = built[kind]
    img = parse(prog.read_bytes())
    assert img.interp == "/libexec/ld.elf_so"
    assert img.e_type == (ET_EXEC if kind == "exec" else ET_DYN)
    bias = 0x1000 if kind == "pie" else 0            # elf_placedynexec: max(align, page)
    r = run_nbemu(prog, opts=("--root", str(built["root"])), timeout=120)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    a = _auxv(first)
    assert second == "main ok"
    phdr = next(ph.p_vaddr for ph in img.phdrs if ph.p_type == PT_PHDR)
    assert a["entry"] == img.e_entry + bias
    assert a["phdr"] == phdr + bias and a["phdr0type"] == PT_PHDR
    assert a["phnum"] == len(img.phdrs) and a["phent"] == 56
    # The interpreter runs at AT_BASE (its _start at its link-time offset from there),
    # topdown below the stack's reservation, as an mmap(0, size) would be placed.
    ld = parse(built["ld"].read_bytes())
    assert a["start"] == a["base"] + ld.e_entry
    assert a["base"] % 0x1000 == 0 and a["base"] < USRSTACK - MAXSSIZ
    assert a["base"] > USRSTACK - MAXSSIZ - (1 << 20)


def test_zig_libc_program_reaches_its_interpreter(built: dict[str, Path], tmp_path: Path) -> None:
    # A program linked against NetBSD's libc by zig asks for /libexec/ld.elf_so too.
    src = tmp_path / "hello.c"
    src.write_text('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n')
    _zig(tmp_path, "cc", "-target", TARGET, str(src), "-o", str(tmp_path / "hello"))
    prog = tmp_path / "hello"
    img = parse(prog.read_bytes())
    assert img.interp == "/libexec/ld.elf_so"
    r = run_nbemu(prog, "stop", opts=("--root", str(built["root"])), timeout=120)
    assert r.returncode == 0, r.stderr
    a = _auxv(r.stdout.splitlines()[0])
    assert a["entry"] == img.e_entry and a["phnum"] == len(img.phdrs)


def test_missing_interpreter_is_127(built: dict[str, Path], tmp_path: Path) -> None:
    # execve's ENOENT: exit 127 and one line, as for a missing program.
    r = run_nbemu(built["exec"], opts=("--root", str(tmp_path)), timeout=60)
    assert r.returncode == 127
    assert r.stderr.splitlines() == [
        "nbemu: interpreter /libexec/ld.elf_so: No such file or directory"], r.stderr


def test_interpreter_without_execute_permission_is_126(built: dict[str, Path],
                                                     tmp_path: Path) -> None:
    (tmp_path / "libexec").mkdir()
    ld = tmp_path / "libexec" / "ld.elf_so"
    ld.write_bytes(built["ld"].read_bytes())
    ld.chmod(0o644)
    r = run_nbemu(built["exec"], opts=("--root", str(tmp_path)), timeout=60)
    assert r.returncode == 126 and "Permission denied" in r.stderr, r.stderr


def test_interpreter_symlink_stays_in_the_root(built: dict[str, Path], tmp_path: Path) -> None:
    # /libexec/ld.elf_so -> /../../../elsewhere: resolved inside the guest root.
    (tmp_path / "libexec").mkdir()
    (tmp_path / "libexec" / "ld.elf_so").symlink_to("/../../../../../.." + str(built["ld"]))
    r = run_nbemu(built["exec"], opts=("--root", str(tmp_path)), timeout=60)
    assert r.returncode == 127, r.stderr
