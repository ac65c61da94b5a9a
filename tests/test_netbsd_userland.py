"""NetBSD's own libc and libpthread (built from ../shared/netbsd-src by
fixtures.netbsd_userland), statically linked into small programs run under nbemu.

Skips with the reason when the NetBSD sources are not there (a user's clone)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.build import FixtureBuildError
from fixtures import netbsd_userland as nu
from tests.guest import run_nbemu

PROGS = Path(__file__).resolve().parents[1] / "fixtures" / "netbsd" / "progs"


@pytest.fixture(scope="module")
def sysroot() -> Path:
    try:
        nu.netbsd_src()
        nu.check_host_tools()
    except (nu.NetBSDSourceMissing, nu.NetBSDToolMissing) as e:
        pytest.skip(str(e).splitlines()[0])
    return nu.build_userland("amd64")


def _prog(sysroot: Path, name: str, libs: tuple[str, ...]) -> Path:
    out = nu.OUT_ROOT / "amd64-progs" / name
    stamp = out.parent / f".{name}.stamp"
    key = (nu.OUT_ROOT / ".amd64.stamp").read_text() + (PROGS / f"{name}.c").read_text()
    if not (out.is_file() and stamp.is_file() and stamp.read_text() == key):
        nu.link_program([PROGS / f"{name}.c"], out, libs=libs, sysroot=sysroot)
        stamp.write_text(key)
    return out


def test_sysroot_layout(sysroot: Path) -> None:
    lib = sysroot / "usr" / "lib"
    for name in ("crt0.o", "crti.o", "crtbegin.o", "crtend.o", "crtn.o", "libc.a",
                 "libpthread.a", "libm.a", "libutil.a"):
        assert (lib / name).is_file(), name
    for hdr in ("stdio.h", "pthread.h", "sys/lwp.h", "machine/types.h", "x86/cpu.h"):
        assert (sysroot / "usr" / "include" / hdr).exists(), hdr


def test_missing_source_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NBEMU_NETBSD_SRC", str(tmp_path / "nowhere"))
    with pytest.raises(nu.NetBSDSourceMissing, match="NBEMU_NETBSD_SRC"):
        nu.netbsd_src()
    (tmp_path / "src").mkdir()
    monkeypatch.setenv("NBEMU_NETBSD_SRC", str(tmp_path / "src"))
    with pytest.raises(nu.NetBSDSourceMissing, match="lacks share/mk/bsd.lib.mk"):
        nu.netbsd_src()


@pytest.mark.parametrize("ncpu", [1, 4])
def test_static_hello(sysroot: Path, ncpu: int) -> None:
    r = run_nbemu(_prog(sysroot, "hello", ("c",)), "arg1", opts=("--ncpu", str(ncpu)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "hello from NetBSD libc",
        "malloc'd 80800 bytes in 100 blocks",
        "argc=2 argv[1]=arg1  3.14 beef",
    ]
    assert "to stderr" in r.stderr


PTHREAD_OUT = ["counter=16000 (want 16000)", "turns=400 out-of-order=0",
               "join sum=280 (want 280)"]


@pytest.mark.parametrize("ncpu", [1, 4])
def test_static_pthreads(sysroot: Path, ncpu: int) -> None:
    r = run_nbemu(_prog(sysroot, "pthreads", ("pthread", "c")), opts=("--ncpu", str(ncpu)))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == PTHREAD_OUT


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_static_pthreads_deterministic(sysroot: Path, seed: int) -> None:
    prog = _prog(sysroot, "pthreads", ("pthread", "c"))
    outs = set()
    for _ in range(2):
        r = run_nbemu(prog, opts=("--deterministic", "--seed", str(seed), "--sched-hash"))
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert r.stdout.splitlines() == PTHREAD_OUT
        outs.add(tuple(x for x in r.stderr.splitlines() if "sched" in x))
    assert len(outs) == 1


def test_missing_host_tool_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nu.shutil, "which", lambda name: None if name == "rpcgen" else name)
    with pytest.raises(nu.NetBSDToolMissing, match=r"host tools rpcgen .*install_tools\.sh"):
        nu.check_host_tools()
