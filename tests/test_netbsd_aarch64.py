"""NetBSD/aarch64: NetBSD's own userland built for aarch64 (MACHINE=evbarm64 as this
2016 tree names the port, MACHINE_ARCH=aarch64: libc's, libpthread's and ld.elf_so's
aarch64 sources, the aarch64 csu, NetBSD's later aarch64/arm machine headers from the
ziglang package; fixtures.netbsd_userland's ARCHES says how and why, and which 2014
aarch64 sources are built from copies edited as NetBSD's later revisions do) and
NetBSD's tests/lib/libpthread programs linked against it statically and dynamically,
run on nbemu's aarch64 port with ``nbemu atf`` (the dynamic ones under ``--root
SYSROOT``) at 1 and 4 vCPUs and under ``--deterministic``, and under the real Kyua,
reusing the case list and exclusions of tests/test_netbsd_atf_libpthread.py; and the
hello and pthreads programs of tests/test_netbsd_userland.py (static) and
tests/test_netbsd_dynamic.py (dynamic: libc.so.12, libpthread.so.1, /libexec/ld.elf_so),
with its dlopen program.

Opt-in, as the i386 tests are: a third cold build of libc & co., so these run when
NBEMU_NETBSD_AARCH64=1 is set.  Skips with the reason when ../shared/netbsd-src is
not there."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures import netbsd_userland as nu
from nbemu.guest.elf import parse
from tests.guest import run_nbemu
from tests.test_netbsd_atf_libpthread import (RACY, RACY_DYNAMIC, SLOW, SLOW_DETERMINISTIC,
                                              Progs, _all, build_progs, run_atf)
from tests.test_netbsd_atf_libpthread import _check as _check_verdicts
from tests.test_netbsd_atf_libpthread import test_libpthread_atf_under_kyua as _under_kyua
from tests.test_netbsd_dynamic import (DLOPEN_OUT, GUEST_DIR, HELLO_OUT, _dynamic, _prog,
                                       userland)
from tests.test_netbsd_dynamic import \
    test_shared_libraries_installed_as_netbsd_does as _shared_layout
from tests.test_netbsd_userland import PROGS, PTHREAD_OUT

pytestmark = pytest.mark.skipif(
    os.environ.get("NBEMU_NETBSD_AARCH64") != "1",
    reason="NetBSD/aarch64 userland tests are opt-in: set NBEMU_NETBSD_AARCH64=1 (a "
           "third cold userland build)")

EM_AARCH64 = 183

# Cases that fail because of the 2016 aarch64 sources themselves (NetBSD/aarch64 was
# not yet a running port then; NetBSD fixed these later), with the diagnosis.
EXPECTED_FAIL_AARCH64: dict[str, str] = {}
# Dynamic linkage under --deterministic --seed 1: the interleaving that seed fixes on
# aarch64 is the losing one of RACY_DYNAMIC's race (seeds 2-6 pass): --strace shows the
# new thread's _lwp_exit() before main's pthread_detach(), which then reaps a zombie,
# so pthread_join() does not give EINVAL.  Real NetBSD allows the same order.
EXPECTED_FAIL_AARCH64_DYNAMIC_SEED1 = {
    "t_detach:pthread_detach": RACY_DYNAMIC["t_detach:pthread_detach"]}


@pytest.fixture(scope="module")
def sysroot() -> Path:
    return userland("aarch64")


@pytest.fixture(scope="module", params=["static", "dynamic"])
def progs(request: pytest.FixtureRequest) -> Progs:
    return build_progs(request.param, "aarch64")


def _static(sysroot: Path, name: str, libs: tuple[str, ...]) -> Path:
    out = nu.OUT_ROOT / "aarch64-progs" / name
    stamp = out.parent / f".{name}.stamp"
    key = (nu.OUT_ROOT / ".aarch64.stamp").read_text() + (PROGS / f"{name}.c").read_text()
    if not (out.is_file() and stamp.is_file() and stamp.read_text() == key):
        nu.link_program([PROGS / f"{name}.c"], out, arch="aarch64", libs=libs,
                        sysroot=sysroot)
        stamp.write_text(key)
    return out


def test_aarch64_sysroot_layout(sysroot: Path) -> None:
    """The static libraries and csu; the machine headers where `make includes` puts
    them (machine -> aarch64, arm/), with the 2016 additions."""
    lib = sysroot / "usr" / "lib"
    for name in ("crt0.o", "crti.o", "crtbeginT.o", "crtend.o", "crtn.o", "libc.a",
                 "libpthread.a", "libm.a", "libutil.a", "libatf-c.a"):
        assert (lib / name).is_file(), name
    inc = sysroot / "usr" / "include"
    assert os.readlink(inc / "machine") == "aarch64"
    for hdr in ("machine/mcontext.h", "arm/mcontext.h", "machine/types.h", "float.h"):
        assert (inc / hdr).exists(), hdr
    assert "__lwp_getprivate_fast" in (inc / "aarch64" / "mcontext.h").read_text()


def test_aarch64_shared_libraries(sysroot: Path) -> None:
    """libc.so.12 & co. and ld.elf_so, laid out as on amd64; ld.elf_so is aarch64 and
    carries the edited arch sources (NBEMU-BUILD.txt says so)."""
    _shared_layout(sysroot)
    for f in (sysroot / "libexec/ld.elf_so", sysroot / "lib/libc.so.12"):
        assert parse(f.read_bytes()).e_machine == EM_AARCH64, f
    notes = (sysroot / "usr/lib/NBEMU-BUILD.txt").read_text()
    for src in ("sigsetjmp.S", "mdreloc.c", "rtld_start.S"):
        assert f"nbemu-{src}" in notes, src


@pytest.mark.parametrize("ncpu", [1, 4])
def test_aarch64_static_hello(sysroot: Path, ncpu: int) -> None:
    prog = _static(sysroot, "hello", ("c",))
    assert parse(prog.read_bytes()).e_machine == EM_AARCH64
    r = run_nbemu(prog, "arg1", opts=("--ncpu", str(ncpu)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == HELLO_OUT
    assert "to stderr" in r.stderr


@pytest.mark.parametrize("opts", [("--ncpu", "1"), ("--ncpu", "4"),
                                  ("--deterministic", "--seed", "1")])
def test_aarch64_static_pthreads(sysroot: Path, opts: tuple[str, ...]) -> None:
    r = run_nbemu(_static(sysroot, "pthreads", ("pthread", "c")), opts=opts)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == PTHREAD_OUT


@pytest.mark.parametrize("ncpu", [1, 4])
def test_aarch64_dynamic_hello(sysroot: Path, ncpu: int) -> None:
    """ld.elf_so maps libc.so.12, relocates (RELA), binds printf's PLT slot lazily
    through _rtld_bind_start with a double in d0, which must survive the binding."""
    prog = _prog(sysroot, "hello", ("c",), arch="aarch64")
    img = parse(prog.read_bytes())
    assert (img.e_machine, img.interp) == (EM_AARCH64, "/libexec/ld.elf_so")
    assert _dynamic(prog)[1] == ["libc.so.12"]
    r = run_nbemu(prog, "arg1", opts=("--root", str(sysroot), "--ncpu", str(ncpu)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == HELLO_OUT
    assert "to stderr" in r.stderr


@pytest.mark.parametrize("opts", [("--ncpu", "1"), ("--ncpu", "4"),
                                  ("--deterministic", "--seed", "1")])
def test_aarch64_dynamic_pthreads(sysroot: Path, opts: tuple[str, ...]) -> None:
    prog = _prog(sysroot, "pthreads", ("pthread", "c"), arch="aarch64")
    assert _dynamic(prog)[1] == ["libpthread.so.1", "libc.so.12"]
    r = run_nbemu(prog, opts=("--root", str(sysroot), *opts))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == PTHREAD_OUT


def test_aarch64_dlopen(sysroot: Path) -> None:
    """dlopen + dlsym of a -fPIC .so (its constructor, a GLOB_DAT/JUMP_SLOT against
    libc's strlen, __thread through an R_AARCH64_TLSDESC descriptor), dlclose,
    dlerror."""
    so = _prog(sysroot, "plugin", ("c",), linkage="shared", out_name="plugin.so",
               arch="aarch64")
    from elftools.elf.elffile import ELFFile
    with open(so, "rb") as f:
        rela = ELFFile(f).get_section_by_name(".rela.dyn")
        assert any(r["r_info_type"] == 1031 for r in rela.iter_relocations())  # TLSDESC
    prog = _prog(sysroot, "dlopen", ("c",), arch="aarch64")
    r = run_nbemu(prog, f"{GUEST_DIR}/plugin.so", opts=("--root", str(sysroot)))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == DLOPEN_OUT


def test_aarch64_programs_are_aarch64(progs: Progs) -> None:
    for path in progs.values():
        img = parse(Path(path).read_bytes())
        assert img.e_machine == EM_AARCH64, path
        assert (img.interp is not None) == bool(progs.opts), path


def _check(verdicts: dict[str, str], wanted: list[str],
           expected_fail: dict[str, str] = EXPECTED_FAIL_AARCH64) -> None:
    _check_verdicts(verdicts, wanted, expected_fail)


@pytest.mark.parametrize("ncpu", [1, 4])
def test_aarch64_libpthread_atf(progs: Progs, ncpu: int, tmp_path: Path) -> None:
    """Every case but the slow ones; the racy ones only on one vCPU (dynamic: only
    under --deterministic)."""
    racy = set(RACY) if ncpu > 1 else set()
    if progs.opts:
        racy |= set(RACY_DYNAMIC)
    wanted = _all(SLOW | racy)
    _check(run_atf(progs, wanted, ("--ncpu", str(ncpu)), tmp_path), wanted)


def test_aarch64_libpthread_atf_deterministic(progs: Progs, tmp_path: Path) -> None:
    wanted = _all(SLOW | SLOW_DETERMINISTIC)
    expected = {**EXPECTED_FAIL_AARCH64,
                **(EXPECTED_FAIL_AARCH64_DYNAMIC_SEED1 if progs.opts else {})}
    _check(run_atf(progs, wanted, ("--deterministic", "--seed", "1"), tmp_path), wanted,
           expected)


@pytest.mark.parametrize("ncpu", [1, 4])
def test_aarch64_libpthread_atf_under_kyua(progs: Progs, ncpu: int, tmp_path: Path) -> None:
    """The real Kyua through `nbemu atf --kyua-suite`'s wrappers, as on amd64: static
    on one vCPU every case but the slow ones, else the fast subset (dynamic: --root)."""
    _under_kyua(progs, ncpu, tmp_path)
