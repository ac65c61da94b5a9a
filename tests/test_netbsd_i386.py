"""NetBSD/i386: the same NetBSD userland built for i386 (MACHINE=i386: libc's i386 arch
sources, the i386 csu, ld.elf_so's i386 relocations; fixtures.netbsd_userland) and
NetBSD's tests/lib/libpthread programs linked statically and dynamically against it,
run with ``nbemu atf`` (the dynamic ones under ``--root SYSROOT``) at 1 and 4 vCPUs
and under ``--deterministic``, and under the real Kyua: every case passes, as on amd64
(tests/test_netbsd_atf_libpthread.py, whose case list and exclusions this reuses); and
the dynamic hello, pthreads and dlopen programs of tests/test_netbsd_dynamic.py.

Opt-in: the i386 userland is a second cold build of libc & co. (see the README's
NetBSD userland section for its time), so these run when NBEMU_NETBSD_I386=1 is set.
Skips with the reason when ../shared/netbsd-src is not there."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbemu.guest.elf import parse
from tests.guest import run_nbemu
from tests.test_netbsd_atf_libpthread import (RACY, RACY_DYNAMIC, SLOW, SLOW_DETERMINISTIC, Progs,
                                              _all, _check, build_progs, run_atf)
from tests.test_netbsd_atf_libpthread import test_libpthread_atf_under_kyua as _under_kyua
from tests.test_netbsd_dynamic import (DLOPEN_OUT, GUEST_DIR, HELLO_OUT, _dynamic, _prog,
                                       userland)
from tests.test_netbsd_userland import PTHREAD_OUT

pytestmark = pytest.mark.skipif(
    os.environ.get("NBEMU_NETBSD_I386") != "1",
    reason="NetBSD/i386 userland tests are opt-in: set NBEMU_NETBSD_I386=1 (a second "
           "cold userland build)")


@pytest.fixture(scope="module", params=["static", "dynamic"])
def progs(request: pytest.FixtureRequest) -> Progs:
    return build_progs(request.param, "i386")


@pytest.fixture(scope="module")
def sysroot() -> Path:
    return userland("i386")


def test_i386_dynamic_hello(sysroot: Path) -> None:
    """libc.so.12's .init_array holds an R_386_32 against _libc_init, which binds to
    the executable's canonical PLT slot (relocbase 0): it ran as a call to 0 while
    ld.elf_so was miscompiled (fixtures.netbsd_userland's _RTLD_MK says how)."""
    prog = _prog(sysroot, "hello", ("c",), arch="i386")
    img = parse(prog.read_bytes())
    assert (img.e_machine, img.interp) == (3, "/libexec/ld.elf_so")
    assert _dynamic(prog)[1] == ["libc.so.12"]
    r = run_nbemu(prog, "arg1", opts=("--root", str(sysroot)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == HELLO_OUT
    assert "to stderr" in r.stderr


@pytest.mark.parametrize("opts", [("--ncpu", "1"), ("--ncpu", "4"),
                                  ("--deterministic", "--seed", "1")])
def test_i386_dynamic_pthreads(sysroot: Path, opts: tuple[str, ...]) -> None:
    prog = _prog(sysroot, "pthreads", ("pthread", "c"), arch="i386")
    assert _dynamic(prog)[1] == ["libpthread.so.1", "libc.so.12"]
    r = run_nbemu(prog, opts=("--root", str(sysroot), *opts))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == PTHREAD_OUT


def test_i386_dlopen(sysroot: Path) -> None:
    """dlopen + dlsym of a -fPIC .so (its constructor, an R_386_32 against libc's
    strlen, general-dynamic TLS through ___tls_get_addr), dlclose, dlerror."""
    _prog(sysroot, "plugin", ("c",), linkage="shared", out_name="plugin.so", arch="i386")
    prog = _prog(sysroot, "dlopen", ("c",), arch="i386")
    r = run_nbemu(prog, f"{GUEST_DIR}/plugin.so", opts=("--root", str(sysroot)))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == DLOPEN_OUT


def test_i386_programs_are_i386(progs: Progs) -> None:
    from nbemu.guest.elf import parse
    for path in progs.values():
        img = parse(Path(path).read_bytes())
        assert img.e_machine == 3, path                     # EM_386
        assert (img.interp is not None) == bool(progs.opts), path


@pytest.mark.parametrize("ncpu", [1, 4])
def test_i386_libpthread_atf(progs: Progs, ncpu: int, tmp_path: Path) -> None:
    racy = set(RACY) if ncpu > 1 else set()
    if progs.opts:
        racy |= set(RACY_DYNAMIC)
    wanted = _all(SLOW | racy)
    _check(run_atf(progs, wanted, ("--ncpu", str(ncpu)), tmp_path), wanted)


def test_i386_libpthread_atf_deterministic(progs: Progs, tmp_path: Path) -> None:
    wanted = _all(SLOW | SLOW_DETERMINISTIC)
    _check(run_atf(progs, wanted, ("--deterministic", "--seed", "1"), tmp_path), wanted)


@pytest.mark.parametrize("ncpu", [1, 4])
def test_i386_libpthread_atf_under_kyua(progs: Progs, ncpu: int, tmp_path: Path) -> None:
    """The real Kyua through `nbemu atf --kyua-suite`'s wrappers, as on amd64: static on
    one vCPU every case but the slow ones, else the fast subset (dynamic: --root)."""
    _under_kyua(progs, ncpu, tmp_path)
