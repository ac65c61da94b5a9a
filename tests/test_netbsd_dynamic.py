"""Dynamically linked programs on NetBSD's own shared libraries and run-time linker
(libc.so.12, libpthread.so.1, /libexec/ld.elf_so built from ../shared/netbsd-src by
fixtures.netbsd_userland), run under nbemu with ``--root SYSROOT``: the kernel loads the
program and its PT_INTERP, ld.elf_so maps libc.so.12 & co. with mmap(2), relocates,
sets up TLS (_lwp_setprivate) and calls main.

Skips with the reason when the NetBSD sources are not there (a user's clone)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import netbsd_userland as nu
from nbemu.guest.elf import parse
from tests.guest import run_nbemu
from tests.test_netbsd_userland import PTHREAD_OUT

PROGS = Path(__file__).resolve().parents[1] / "fixtures" / "netbsd" / "progs"
GUEST_DIR = "/usr/tests/nbemu"
# hello.c's stdout with the argument "arg1"; dlopen.c's with plugin.so.
HELLO_OUT = ["hello from NetBSD libc", "malloc'd 80800 bytes in 100 blocks",
             "argc=2 argv[1]=arg1  3.14 beef"]
DLOPEN_OUT = ["plugin_add(2, 3)=5 ctor_ran=1", "tls 41 42", "missing=0x0",
              "second dlopen failed as it should"]


def _dynamic(path: Path) -> tuple[str | None, list[str]]:
    """DT_SONAME and the DT_NEEDED list of an ELF object (pyelftools)."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            if isinstance(sec, DynamicSection):
                tags = list(sec.iter_tags())
                soname = next((t.soname for t in tags if t.entry.d_tag == "DT_SONAME"), None)
                return soname, [t.needed for t in tags if t.entry.d_tag == "DT_NEEDED"]
    return None, []


def userland(arch: str) -> Path:
    """The sysroot of ``arch`` (built when not cached); skips without the sources."""
    try:
        nu.netbsd_src()
        nu.check_host_tools()
    except (nu.NetBSDSourceMissing, nu.NetBSDToolMissing) as e:
        pytest.skip(str(e).splitlines()[0])
    return nu.build_userland(arch)


@pytest.fixture(scope="module")
def sysroot() -> Path:
    return userland("amd64")


def _prog(sysroot: Path, name: str, libs: tuple[str, ...], linkage: str = "dynamic",
          out_name: str | None = None, arch: str = "amd64") -> Path:
    """Built into the sysroot's /usr/tests/nbemu (guest path GUEST_DIR/<name>)."""
    out = sysroot / GUEST_DIR.lstrip("/") / (out_name or name)
    stamp = out.parent / f".{out.name}.stamp"
    key = ((nu.OUT_ROOT / f".{arch}.stamp").read_text() + (PROGS / f"{name}.c").read_text()
           + repr(libs))
    if not (out.is_file() and stamp.is_file() and stamp.read_text() == key):
        nu.link_program([PROGS / f"{name}.c"], out, arch=arch, libs=libs, sysroot=sysroot,
                        linkage=linkage)
        stamp.write_text(key)
    return out


def test_shared_libraries_installed_as_netbsd_does(sysroot: Path) -> None:
    """libc/libm/libutil in /lib (MKDYNAMICROOT), libpthread/libatf-c in /usr/lib, the
    .so.MAJOR and .so links, ld.elf_so in /libexec with /usr/libexec's symlink."""
    for d, full, soname in (("lib", "libc.so.12.203", "libc.so.12"),
                            ("lib", "libm.so.0.11", "libm.so.0"),
                            ("lib", "libutil.so.7.24", "libutil.so.7"),
                            ("usr/lib", "libpthread.so.1.3", "libpthread.so.1"),
                            ("usr/lib", "libatf-c.so.0.0", "libatf-c.so.0")):
        f = sysroot / d / full
        assert f.is_file(), f
        assert (sysroot / d / soname).resolve() == f.resolve()
        assert (sysroot / "usr/lib" / (soname.rsplit(".", 1)[0])).resolve() == f.resolve()
        assert _dynamic(f)[0] == soname
    rtld = sysroot / "libexec" / "ld.elf_so"
    assert rtld.is_file()
    assert (sysroot / "usr/libexec/ld.elf_so").is_symlink()
    assert parse(rtld.read_bytes()).interp is None


def test_dynamic_hello(sysroot: Path) -> None:
    prog = _prog(sysroot, "hello", ("c",))
    img = parse(prog.read_bytes())
    assert img.interp == "/libexec/ld.elf_so"
    assert _dynamic(prog)[1] == ["libc.so.12"]
    r = run_nbemu(prog, "arg1", opts=("--root", str(sysroot)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == HELLO_OUT
    assert "to stderr" in r.stderr


@pytest.mark.parametrize("ncpu", [1, 4])
def test_dynamic_pthreads(sysroot: Path, ncpu: int) -> None:
    prog = _prog(sysroot, "pthreads", ("pthread", "c"))
    assert _dynamic(prog)[1] == ["libpthread.so.1", "libc.so.12"]
    r = run_nbemu(prog, opts=("--root", str(sysroot), "--ncpu", str(ncpu)))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == PTHREAD_OUT


@pytest.mark.parametrize("seed", [1, 2])
def test_dynamic_pthreads_deterministic(sysroot: Path, seed: int) -> None:
    prog = _prog(sysroot, "pthreads", ("pthread", "c"))
    r = run_nbemu(prog, opts=("--root", str(sysroot), "--deterministic", "--seed", str(seed)))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == PTHREAD_OUT


def test_dlopen(sysroot: Path) -> None:
    """dlopen a small .so (constructor through DT_INIT_ARRAY, a relocation against
    libc, dynamic TLS through __tls_get_addr), dlsym, call, dlclose; dlerror for a
    missing object."""
    _prog(sysroot, "plugin", ("c",), linkage="shared", out_name="plugin.so")
    prog = _prog(sysroot, "dlopen", ("c",))
    r = run_nbemu(prog, f"{GUEST_DIR}/plugin.so", opts=("--root", str(sysroot)))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == DLOPEN_OUT
