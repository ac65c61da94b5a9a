"""NetBSD/aarch64: NetBSD's own userland built for aarch64 (MACHINE=evbarm64 as this
2016 tree names the port, MACHINE_ARCH=aarch64: libc's and libpthread's aarch64
sources, the aarch64 csu, NetBSD's later aarch64/arm machine headers from the ziglang
package; fixtures.netbsd_userland's ARCHES says how and why) and NetBSD's
tests/lib/libpthread programs linked against it, run on nbemu's aarch64 port with
``nbemu atf`` at 1 and 4 vCPUs and under ``--deterministic``, and under the real
Kyua, reusing the case list and exclusions of tests/test_netbsd_atf_libpthread.py; and
the static hello and pthreads programs of tests/test_netbsd_userland.py.

Static only: this tree's aarch64 libc cannot be linked as a shared library (see
ARCHES["aarch64"]), so there is no ld.elf_so and no dynamic program.

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
from tests.test_netbsd_atf_libpthread import (RACY, SLOW, SLOW_DETERMINISTIC, Progs, _all,
                                              build_progs, run_atf)
from tests.test_netbsd_atf_libpthread import test_libpthread_atf_under_kyua as _under_kyua
from tests.test_netbsd_dynamic import HELLO_OUT, userland
from tests.test_netbsd_userland import PROGS, PTHREAD_OUT

pytestmark = pytest.mark.skipif(
    os.environ.get("NBEMU_NETBSD_AARCH64") != "1",
    reason="NetBSD/aarch64 userland tests are opt-in: set NBEMU_NETBSD_AARCH64=1 (a "
           "third cold userland build)")

EM_AARCH64 = 183

# Cases that fail because of the 2016 aarch64 sources themselves (NetBSD/aarch64 was
# not yet a running port then; NetBSD fixed these later), with the diagnosis.
EXPECTED_FAIL_AARCH64: dict[str, str] = {}


@pytest.fixture(scope="module")
def sysroot() -> Path:
    return userland("aarch64")


@pytest.fixture(scope="module")
def progs() -> Progs:
    return build_progs("static", "aarch64")


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
    them (machine -> aarch64, arm/), with the 2016 additions; no shared libraries."""
    lib = sysroot / "usr" / "lib"
    for name in ("crt0.o", "crti.o", "crtbeginT.o", "crtend.o", "crtn.o", "libc.a",
                 "libpthread.a", "libm.a", "libutil.a", "libatf-c.a"):
        assert (lib / name).is_file(), name
    inc = sysroot / "usr" / "include"
    assert os.readlink(inc / "machine") == "aarch64"
    for hdr in ("machine/mcontext.h", "arm/mcontext.h", "machine/types.h", "float.h"):
        assert (inc / hdr).exists(), hdr
    assert "__lwp_getprivate_fast" in (inc / "aarch64" / "mcontext.h").read_text()
    assert not (sysroot / "libexec" / "ld.elf_so").exists()
    assert not list((sysroot / "lib").glob("libc.so*"))


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


def test_aarch64_programs_are_aarch64(progs: Progs) -> None:
    for path in progs.values():
        img = parse(Path(path).read_bytes())
        assert img.e_machine == EM_AARCH64, path
        assert img.interp is None, path


def _check(verdicts: dict[str, str], wanted: list[str]) -> None:
    assert set(verdicts) == set(wanted), set(wanted) ^ set(verdicts)
    unexpected = {c: v for c, v in verdicts.items()
                  if (v != "passed") != (c in EXPECTED_FAIL_AARCH64)}
    assert not unexpected, unexpected


@pytest.mark.parametrize("ncpu", [1, 4])
def test_aarch64_libpthread_atf(progs: Progs, ncpu: int, tmp_path: Path) -> None:
    """Every case but the slow ones; the racy ones only on one vCPU."""
    racy = set(RACY) if ncpu > 1 else set()
    wanted = _all(SLOW | racy)
    _check(run_atf(progs, wanted, ("--ncpu", str(ncpu)), tmp_path), wanted)


def test_aarch64_libpthread_atf_deterministic(progs: Progs, tmp_path: Path) -> None:
    wanted = _all(SLOW | SLOW_DETERMINISTIC)
    _check(run_atf(progs, wanted, ("--deterministic", "--seed", "1"), tmp_path), wanted)


@pytest.mark.parametrize("ncpu", [1, 4])
def test_aarch64_libpthread_atf_under_kyua(progs: Progs, ncpu: int, tmp_path: Path) -> None:
    """The real Kyua through `nbemu atf --kyua-suite`'s wrappers, as on amd64: on one
    vCPU every case but the slow ones, on four the fast subset."""
    _under_kyua(progs, ncpu, tmp_path)
