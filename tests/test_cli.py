"""Bad user input gets one clear line and a shell-like exit status, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.build import build_c

REPO = Path(__file__).resolve().parents[1]


def nbemu(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbemu.emu.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, **kw)


def _one_line(r: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_missing_file() -> None:
    r = nbemu("/nonexistent/prog")
    assert r.returncode == 127
    assert "No such file" in _one_line(r)


def test_not_elf(tmp_path: Path) -> None:
    f = tmp_path / "script"
    f.write_text("#!/bin/sh\necho hi\n")
    f.chmod(0o755)
    r = nbemu(str(f))
    assert r.returncode == 126
    assert "not an ELF" in _one_line(r)


def test_linux_elf_is_refused() -> None:
    r = nbemu(sys.executable)        # the host's python: a Linux ELF
    assert r.returncode == 126
    assert "not a NetBSD program" in _one_line(r)


def test_directory(tmp_path: Path) -> None:
    r = nbemu(str(tmp_path))
    assert r.returncode == 126
    _one_line(r)


def test_version_and_help() -> None:
    r = nbemu("--version")
    assert r.returncode == 0 and r.stdout.startswith("nbemu ")
    r = nbemu("--help")
    assert r.returncode == 0 and "--ncpu" in r.stdout and "--strace" in r.stdout


def test_exit_status_is_the_guests() -> None:
    r = nbemu(str(build_c("exit42")))
    assert r.returncode == 42, r.stderr


def test_strace_lines() -> None:
    r = nbemu("--strace", str(build_c("exit42")))
    assert r.returncode == 42
    assert "exit(42)" in r.stderr


def test_unsupported_arch_message(tmp_path: Path) -> None:
    # A NetBSD/mips ELF header (EM_MIPS = 8) with the NetBSD ident note.
    import struct
    note = struct.pack("<III", 7, 4, 1) + b"NetBSD\0\0" + struct.pack("<I", 1001000000)
    ehdr = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    ehdr += struct.pack("<HHIIIIIHHHHHH", 2, 8, 1, 0x1000, 52, 0, 0, 52, 32, 1, 0, 0, 0)
    phdr = struct.pack("<IIIIIIII", 4, 52 + 32, 0, 0, len(note), len(note), 4, 4)
    f = tmp_path / "mipsprog"
    f.write_bytes(ehdr + phdr + note)
    f.chmod(0o755)
    r = nbemu(str(f))
    assert r.returncode == 126
    line = _one_line(r)
    assert "mips" in line and "amd64" in line


@pytest.mark.parametrize("bad", [["--ncpu", "0", "x"], ["--root", "/nonexistent", "x"]])
def test_bad_options(bad: list[str]) -> None:
    r = nbemu(*bad)
    assert r.returncode == 2
    _one_line(r)


def _elf64_with(phdrs: list[tuple[int, bytes]], machine: int = 62) -> bytes:
    """An ELF64 little-endian executable whose program headers carry `phdrs`
    (type, payload) segments; payloads follow the headers in the file."""
    import struct
    n = len(phdrs)
    off = 64 + 56 * n
    head = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    head += struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0x401000, 64, 0, 0, 64, 56, n, 0, 0, 0)
    table, body = b"", b""
    for ptype, payload in phdrs:
        table += struct.pack("<IIQQQQQQ", ptype, 4, off + len(body), 0x400000 + len(body), 0,
                             len(payload), len(payload), 8)
        body += payload + bytes(-len(payload) % 8)
    return head + table + body


_NOTE = __import__("struct").pack("<III", 7, 4, 1) + b"NetBSD\0\0" + \
    __import__("struct").pack("<I", 1001000000)


def test_dynamic_netbsd_elf_without_its_interpreter(tmp_path: Path) -> None:
    # execve's ENOENT for a missing PT_INTERP: exit 127 as for a missing program.
    f = tmp_path / "dyn"
    f.write_bytes(_elf64_with([(4, _NOTE), (1, bytes(16)), (3, b"/usr/libexec/ld.elf_so\0")]))
    f.chmod(0o755)
    r = nbemu("--root", str(tmp_path), str(f))
    assert r.returncode == 127
    line = _one_line(r)
    assert "ld.elf_so" in line and "No such file" in line


def test_class_contradicting_machine(tmp_path: Path) -> None:
    # A 64-bit ELF that claims to be i386 (EM_386 = 3) is refused with a reason.
    f = tmp_path / "odd"
    f.write_bytes(_elf64_with([(4, _NOTE)], machine=3))
    f.chmod(0o755)
    r = nbemu(str(f))
    assert r.returncode == 126
    _one_line(r)


def test_truncated_elf(tmp_path: Path) -> None:
    f = tmp_path / "trunc"
    f.write_bytes(_elf64_with([(4, _NOTE)])[:40])
    f.chmod(0o755)
    r = nbemu(str(f))
    assert r.returncode == 126
    assert "truncated" in _one_line(r)


def test_stats_line() -> None:
    r = nbemu("--stats", str(build_c("exit42")))
    assert r.returncode == 42
    assert "nbemu: stats: 1 LWPs created" in r.stderr and "system calls" in r.stderr


def test_guest_starts_in_nbemus_cwd(tmp_path: Path) -> None:
    prog = str(build_c("pwd"))
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", prog], cwd=sub, capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0 and r.stdout.strip() == os.path.realpath(sub), r.stderr
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--root", str(tmp_path), prog],
                       cwd=sub, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0 and r.stdout.strip() == "/a/b", r.stderr


_PIE_C = r"""
static const char msg[] = "pie ok\n";
void _start(void) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(4), "D"(1), "S"(msg), "d"(sizeof msg - 1)
                     : "rcx", "r11", "memory");
    __asm__ volatile("syscall" :: "a"(1), "D"((long)(ret == 7 ? 0 : 1)) : "rcx", "r11", "memory");
    for (;;) ;
}
"""


def test_static_pie_is_placed_as_netbsd_does(tmp_path: Path) -> None:
    """A static PIE (ET_DYN, no PT_INTERP) runs, loaded where exec_elf.c's
    elf_placedynexec puts it with ASLR off: at max(largest PT_LOAD p_align, PAGE_SIZE)."""
    from fixtures.build import C_RT_DIR, ZIG_HOME, zig_command
    src = tmp_path / "pie.c"
    src.write_text(_PIE_C)
    exe = tmp_path / "pie"
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(ZIG_HOME / "global"),
               ZIG_LOCAL_CACHE_DIR=str(tmp_path / "zig-local"))
    zig = zig_command()
    for cmd in ([*zig, "cc", "-target", "x86_64-netbsd", "-fPIE", "-ffreestanding", "-O2", "-c",
                 str(src), "-o", str(tmp_path / "pie.o")],
                [*zig, "cc", "-target", "x86_64-netbsd", "-c", str(C_RT_DIR / "netbsd_note.S"),
                 "-o", str(tmp_path / "note.o")],
                [*zig, "ld.lld", "-pie", "--no-dynamic-linker", "-e", "_start",
                 str(tmp_path / "pie.o"), str(tmp_path / "note.o"), "-o", str(exe)]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
    from nbemu.guest.elf import ET_DYN, PT_LOAD, parse
    img = parse(exe.read_bytes())
    assert img.e_type == ET_DYN and img.interp is None
    align = max(ph.p_align for ph in img.phdrs if ph.p_type == PT_LOAD)
    r = nbemu("--strace=/dev/stderr", str(exe))
    assert r.returncode == 0 and r.stdout == "pie ok\n", r.stderr
    # write(1, &msg, 7): msg's link-time address plus the load offset
    from elftools.elf.elffile import ELFFile
    with open(exe, "rb") as f:
        msg = next(s["st_value"] for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()
                   if s.name == "msg")
    assert f"write(1, {max(align, 4096) + msg:#x}, 7) = 7" in r.stderr, r.stderr


def test_byte_order_contradicting_machine(tmp_path: Path) -> None:
    """A real big-endian NetBSD/armeb program (zig, armeb-netbsd-eabihf): NetBSD's
    earmv7hf port is little-endian, so the byte order contradicts the machine."""
    from fixtures.build import C_RT_DIR, ZIG_HOME, zig_command
    src = tmp_path / "loop.c"
    src.write_text("int x; void _start(void) { for (;;) x++; }\n")
    exe = tmp_path / "armeb"
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(ZIG_HOME / "global"),
               ZIG_LOCAL_CACHE_DIR=str(tmp_path / "zig-local"))
    zig, target = zig_command(), "armeb-netbsd-eabihf"
    for cmd in ([*zig, "cc", "-target", target, "-O2", "-ffreestanding", "-c", str(src), "-o",
                 str(tmp_path / "loop.o")],
                [*zig, "cc", "-target", target, "-c", str(C_RT_DIR / "netbsd_note.S"), "-o",
                 str(tmp_path / "note.o")],
                [*zig, "ld.lld", "-static", "-e", "_start", str(tmp_path / "loop.o"),
                 str(tmp_path / "note.o"), "-o", str(exe)]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
    assert exe.read_bytes()[5] == 2                      # EI_DATA: ELFDATA2MSB
    r = nbemu(str(exe))
    assert r.returncode == 126
    line = _one_line(r)
    assert "big-endian" in line and "earmv7hf" in line, line


def test_help_names_the_subcommands_and_every_architecture() -> None:
    """Issue 15, item 8: --help is where a new user looks first."""
    from nbemu.guest.arch import supported_names
    r = nbemu("--help")
    assert r.returncode == 0
    for sub in ("atf", "explore", "timeline"):
        assert f"nbemu {sub} " in r.stdout and f"\n  {sub} " in r.stdout, r.stdout
    for name in supported_names():
        assert f"NetBSD/{name}" in r.stdout, (name, r.stdout)


def test_bare_nbemu_says_program_is_missing_args_optional() -> None:
    r = nbemu()
    assert r.returncode == 2
    assert "nbemu [options] PROGRAM [ARGS...]" in r.stderr
    assert r.stderr.strip().splitlines()[-1] == "nbemu: PROGRAM is missing (nbemu --help for more)"
    assert "required" not in r.stderr and "Traceback" not in r.stderr


def test_bad_gdb_port_is_one_line_saying_it_once() -> None:
    r = nbemu("-g", "99999", str(build_c("hello_c")))
    assert r.returncode == 2
    line = _one_line(r)
    assert line == "nbemu: -g 99999: expected PORT (0-65535), HOST:PORT or unix:PATH", line


def _pathlib_at_start() -> bool:
    """Whether this venv's Python imports pathlib before any code of ours."""
    r = subprocess.run([sys.executable, "-c", "import sys; print('pathlib' in sys.modules)"],
                       capture_output=True, text=True, timeout=60, check=True)
    return r.stdout.strip() == "True"


def test_start_up_imports_only_what_a_run_needs() -> None:
    # (start-up cost, BENCHMARKS.md's start-up rows) modules that nbemu's start
    # used to pull in and a run does not need: unicorn's loader (importlib.resources,
    # inspect: engine_lib._import_unicorn), @dataclass (nbemu/plain.py), socket
    # (uipc_syscalls._sockets), tempfile (vfs_mount), shutil (cli._Formatter),
    # pathlib (engine_lib, native: os.path), and the first compile() of a string
    # (typing.ForwardRef: ~10M instructions)
    code = ("import sys, builtins\n"
            "seen = []\n"
            "real = builtins.compile\n"
            "def spy(src, name, mode, *a, **k):\n"
            "    if mode != 'exec':         # (not a module compiled from its source)\n"
            "        seen.append(src)\n"
            "    return real(src, name, mode, *a, **k)\n"
            "builtins.compile = spy\n"
            "import nbemu.emu.cli as c, nbemu.emu.boot\n"
            "c._parser().parse_args(['x'])\n"
            "heavy = ['importlib.resources', 'inspect', 'dataclasses', 'socket', 'tempfile',\n"
            "         'shutil', 'zipfile', 'ast']\n"
            # pathlib (and urllib.parse, ipaddress): unless this Python's start
            # imported it already (pip's default editable finder does; the
            # Makefile installs nbemu as a plain path)
            f"heavy += [] if {_pathlib_at_start()} else ['pathlib', 'urllib.parse', 'ipaddress']\n"
            "print(sorted(m for m in heavy if m in sys.modules), seen)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120, env={k: v for k, v in os.environ.items()
                                         if k != "PYTHONDONTWRITEBYTECODE"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[] []", r.stdout
