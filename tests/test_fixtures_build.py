"""The fixture builder: NetBSD ELF outputs, caching, locking, error reporting.

NetBSD binaries are only inspected here, never executed: on a Linux host their system
call numbers mean something else.  The linux/amd64 builds of the Go fixtures are run
natively to check the known answers in fixtures.expected.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from fixtures import build as fb
from fixtures import expected

GO_NAMES = fb.go_fixtures()
C_NAMES = fb.c_fixtures()
NETBSD_10_1 = 1001000000


def test_fixture_lists() -> None:
    assert set(GO_NAMES) >= {
        "hello",
        "demo",
        "tokenring",
        "lockthreads",
        "timers",
        "mutex",
        "pipeline",
    }
    assert set(C_NAMES) >= {
        "exit42",
        "hello_c",
        "lwp_basic",
        "lwp_park",
        "efault",
        "spin",
        "manylwp",
        "segv",
        "startup",
    }
    assert set(expected.GO_OUTPUT) == set(GO_NAMES)


# ------------------------------------------------------------------ ELF helpers


def netbsd_ident_notes(path: Path) -> list[tuple[str, int, bytes]]:
    """(name, type, desc) of every note in a .note.netbsd.ident section."""
    notes = []
    with open(path, "rb") as f:
        elf = ELFFile(f)
        sec = elf.get_section_by_name(".note.netbsd.ident")
        if sec is None:
            return []
        data = sec.data()
    off = 0
    while off + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, off)
        off += 12
        name = data[off : off + namesz].rstrip(b"\0").decode()
        off += (namesz + 3) & ~3
        desc = data[off : off + descsz]
        off += (descsz + 3) & ~3
        notes.append((name, ntype, desc))
    return notes


def check_netbsd_amd64_elf(path: Path) -> tuple[ELFFile, int]:
    """Assert ELF64 x86-64 executable with a NetBSD ident note; return the version."""
    assert path.is_file() and os.access(path, os.X_OK)
    with open(path, "rb") as f:
        elf = ELFFile(f)
        assert elf.elfclass == 64
        assert elf.little_endian
        assert elf["e_machine"] == "EM_X86_64"
        assert elf["e_type"] == "ET_EXEC"
        assert not any(s["p_type"] == "PT_INTERP" for s in elf.iter_segments()), "not static"
    notes = netbsd_ident_notes(path)
    assert len(notes) == 1, notes
    name, ntype, desc = notes[0]
    assert name == "NetBSD"
    assert ntype == 1  # NT_NETBSD_IDENT
    assert len(desc) == 4
    return elf, struct.unpack("<I", desc)[0]


# ------------------------------------------------------------------ Go


@pytest.mark.parametrize("name", GO_NAMES)
def test_go_netbsd_amd64(name: str) -> None:
    path = fb.build_go(name)
    assert path == fb.OUT_ROOT / "netbsd-amd64" / name
    _, version = check_netbsd_amd64_elf(path)
    assert version >= 700000000  # Go stamps 7.0
    with open(path, "rb") as f:
        assert ELFFile(f)["e_ident"]["EI_OSABI"] == "ELFOSABI_NETBSD"


def run_linux(name: str, args: list[str] | None = None, env: dict[str, str] | None = None) -> str:
    path = fb.build_go(name, "linux", "amd64")
    with open(path, "rb") as f:
        assert ELFFile(f).get_section_by_name(".note.netbsd.ident") is None
    full_env = {k: v for k, v in os.environ.items() if k != "NBEMU_GREETING"}
    full_env.update(env or {})
    proc = subprocess.run(
        [str(path), *(args or [])],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


@pytest.mark.parametrize("name", GO_NAMES)
def test_go_linux_native_output(name: str) -> None:
    out = run_linux(name, expected.GO_ARGS.get(name), expected.GO_ENV.get(name))
    assert expected.comparable(name, out) == expected.GO_OUTPUT[name]
    if name == "demo":
        first, second = out.splitlines()[:2]
        assert first == "goos=linux goarch=amd64"
        assert second.startswith("NumCPU=") and second.endswith(" GOMAXPROCS=4")


def test_go_hello_without_env() -> None:
    assert run_linux("hello") == 'hello, NetBSD\nargs: []\nNBEMU_GREETING unset\n'


# ------------------------------------------------------------------ C


@pytest.mark.parametrize("name", C_NAMES)
def test_c_netbsd_x86_64(name: str) -> None:
    path = fb.build_c(name)
    assert path == fb.OUT_ROOT / "netbsd-x86_64-c" / name
    _, version = check_netbsd_amd64_elf(path)
    assert version == NETBSD_10_1
    with open(path, "rb") as f:
        elf = ELFFile(f)
        assert elf.get_section_by_name(".dynamic") is None
        start = elf.get_section_by_name(".symtab").get_symbol_by_name("_start")
        assert start and elf["e_entry"] == start[0]["st_value"]


def test_c_unknown_arch_or_name() -> None:
    with pytest.raises(fb.FixtureBuildError, match="unknown C arch"):
        fb.build_c("exit42", "mips")
    with pytest.raises(fb.FixtureBuildError, match="no C fixture"):
        fb.build_c("no_such_fixture")
    with pytest.raises(fb.FixtureBuildError, match="no Go fixture"):
        fb.build_go("no_such_fixture")


# ------------------------------------------------------------------ caching


def test_warm_rebuild_is_cached() -> None:
    c_path = fb.build_c("exit42")
    go_path = fb.build_go("hello")
    c_mtime, go_mtime = c_path.stat().st_mtime_ns, go_path.stat().st_mtime_ns
    before = fb.build_count()
    for _ in range(3):
        assert fb.build_c("exit42") == c_path
        assert fb.build_go("hello") == go_path
    assert fb.build_count() == before, "a warm call ran the compiler"
    assert c_path.stat().st_mtime_ns == c_mtime
    assert go_path.stat().st_mtime_ns == go_mtime


def test_source_change_rebuilds(tmp_path: Path) -> None:
    src = tmp_path / "t.c"
    src.write_text('#include "nbrt.h"\nint main(int c, char **v, char **e) { return 3; }\n')
    before = fb.build_count()
    out = fb.build_c("t", src_dir=tmp_path)
    assert out == tmp_path / ".build" / "netbsd-x86_64-c" / "t"
    assert fb.build_count() == before + 1
    check_netbsd_amd64_elf(out)
    fb.build_c("t", src_dir=tmp_path)
    assert fb.build_count() == before + 1
    src.write_text(src.read_text() + "/* changed */\n")
    fb.build_c("t", src_dir=tmp_path)
    assert fb.build_count() == before + 2
    other = tmp_path / "elsewhere"
    assert fb.build_c("t", src_dir=tmp_path, out_dir=other) == other / "netbsd-x86_64-c" / "t"


def test_concurrent_builds_of_one_fixture(tmp_path: Path) -> None:
    """Several processes building the same (uncached) fixture: one compiles, the
    others wait on the lock and reuse its output."""
    (tmp_path / "race.c").write_text(
        '#include "nbrt.h"\nint main(int c, char **v, char **e) { return 7; }\n'
    )
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(fb.REPO_ROOT)!r})
        from fixtures import build as fb
        path = fb.build_c("race", src_dir={str(tmp_path)!r})
        print(path, fb.build_count())
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        path, count = out.split()
        results.append((path, int(count)))
    assert len({path for path, _ in results}) == 1
    assert sum(count for _, count in results) == 1, results
    check_netbsd_amd64_elf(Path(results[0][0]))
    leftovers = [p.name for p in Path(results[0][0]).parent.iterdir() if ".build." in p.name]
    assert leftovers == []


# ------------------------------------------------------------------ errors


def test_bad_c_source_raises(tmp_path: Path) -> None:
    (tmp_path / "bad.c").write_text(
        '#include "nbrt.h"\nint main(int c, char **v, char **e) { return no_such_symbol; }\n'
    )
    with pytest.raises(fb.FixtureBuildError) as info:
        fb.build_c("bad", src_dir=tmp_path)
    assert "no_such_symbol" in info.value.stderr
    assert "error" in info.value.stderr
    assert "no_such_symbol" in str(info.value)
    assert not (tmp_path / ".build" / "netbsd-x86_64-c" / "bad").exists()


def test_bad_c_link_raises(tmp_path: Path) -> None:
    (tmp_path / "nolink.c").write_text(
        '#include "nbrt.h"\nint missing_function(void);\n'
        "int main(int c, char **v, char **e) { return missing_function(); }\n"
    )
    with pytest.raises(fb.FixtureBuildError, match="missing_function"):
        fb.build_c("nolink", src_dir=tmp_path)


def test_bad_go_source_raises(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module badfixtures\n\ngo 1.27\n")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "main.go").write_text("package main\n\nfunc main() { noSuchFunc() }\n")
    with pytest.raises(fb.FixtureBuildError) as info:
        fb.build_go("bad", src_dir=tmp_path)
    assert "undefined: noSuchFunc" in info.value.stderr


# ------------------------------------------------------------------ command line


def test_cli_prebuilds_everything() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fixtures.build", "all"],
        cwd=fb.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    paths = [Path(line) for line in proc.stdout.splitlines()]
    assert {p.name for p in paths} == set(GO_NAMES) | set(C_NAMES)
    assert all(p.is_file() for p in paths)
