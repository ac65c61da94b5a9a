"""Issue 16's reliability findings, each a test that failed before its fix: a jump
to address 0, the lwpctl page unmapped by the process, a host signal to a guest
that spins without system calls."""
from __future__ import annotations

import struct

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, run_nbemu
from nbemu.syscalls.kern_lwp import lwpctl_write
from tests.khelp import call, make_kernel, scratch


# -- item 3: a jump to 0 faults ------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHES)
def test_jump_to_zero_is_sigsegv(arch: str) -> None:
    # uc_emu_start(pc, until=0) took 0 as the stop address: the jump ended the turn
    # without a fault and the host spun forever.
    r = run_nbemu(build_c("jump0", arch), timeout=60)
    assert r.stdout == "jump0: calling 0\n"
    assert r.returncode == 139, r.stderr
    assert "SIGSEGV" in r.stderr and "Traceback" not in r.stderr


# -- item 2: the lwpctl page unmapped by the process -----------------------------------------
@pytest.mark.parametrize("arch", ARCHES)
def test_lwpctl_page_unmapped_then_sleep(arch: str) -> None:
    r = run_nbemu(build_c("lwpctl_unmap", arch), timeout=60)
    assert "FAIL" not in r.stdout, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("PASS") and r.returncode == 0, r.stderr


def test_lwpctl_kernel_view_outlives_munmap() -> None:
    # The kernel writes lc_curcpu through its own view of the page: after munmap
    # of the process's view a switch must neither crash nor write to whatever the
    # process maps there next.
    k, l = make_kernel(ncpu=1)
    ci = k.cpus[0]
    buf = scratch(l)
    assert call(l, "_lwp_ctl", 0x1, buf)[0] == 0
    vm = l.l_proc.p_vmspace
    lc = int.from_bytes(vm.copyin(buf, 8), "little")
    page = lc & ~(vm.page - 1)
    assert call(l, "munmap", page, vm.page)[0] == 0
    lwpctl_write(l, -1)                       # what every switch does
    vm.map_anon(page, vm.page, 3)             # the process's own page at that address
    lwpctl_write(l, ci.ci_index)
    assert vm.copyin(page, vm.page) == bytes(vm.page)
    assert call(l, "_lwp_ctl", 0x1, buf)[0] == 0
    assert int.from_bytes(vm.copyin(buf, 8), "little") == lc
    kview = l.l_proc.p_lwpctl_pages[page]
    assert struct.unpack_from("<ii", kview, lc - page)[0] == ci.ci_index


# -- item 7: a host signal reaches a guest spinning without system calls -----------------------
def _spin_then_signal(arch: str, mode: str, sig: int) -> tuple[int, str, str]:
    import subprocess
    import sys
    from tests.guest import REPO
    p = subprocess.Popen([sys.executable, "-m", "nbemu.emu.cli", str(build_c("hostsig", arch)), mode],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        line = p.stdout.readline()          # handshake: the guest runs (and spins next)
        assert line == "ready\n", (line, p.stderr.read() if p.stderr else "")
        p.send_signal(sig)                  # once: the first signal must do
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out, err


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_first_signal_kills_a_spinning_guest(arch: str, sig: str) -> None:
    import signal
    n = getattr(signal, sig)
    rc, out, err = _spin_then_signal(arch, "spin", n)
    assert rc == 128 + n, err
    assert f"guest killed by signal {n} ({sig})" in err and "again" not in err, err


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_first_signal_runs_the_handler_of_a_spinning_guest(arch: str, sig: str) -> None:
    import signal
    n = getattr(signal, sig)
    rc, out, err = _spin_then_signal(arch, "catch", n)
    assert (rc, out) == (0, f"caught {n}\ncounters agree\n"), err


# -- item 8: topdown findspace skips the fully mapped top of the mmap area -----------------
def test_topdown_findspace_fills_holes_and_skips_full_runs() -> None:
    # The cursor that lets findspace jump over [_td_lo, top) must never hide a
    # hole: after munmap the hole is found again, as a walk over every entry would.
    from nbemu.guest.arch.amd64 import ABI
    from nbemu.syscalls.uvm_map import NullPmap, VmMap
    from nbemu.syscalls.uvm_mmap import _default_addr
    vm = VmMap(NullPmap(), 4096, 0x10000, ABI.vm_maxuser_address)
    vm.usrstack, vm.maxssiz = ABI.usrstack, ABI.maxssiz
    top = ABI.usrstack - ABI.maxssiz
    got = []
    for _ in range(200):
        va = vm.findspace(_default_addr(vm, 4096), 4096, 4096, topdown=True)
        vm.map_anon(va, 4096, 3)
        got.append(va)
    assert got == [top - 4096 * (i + 1) for i in range(200)]
    assert vm._td_lo == got[-1]                      # the run is known to be full
    vm.unmap(got[50], got[50] + 4096)                # a hole in the middle
    assert vm.findspace(_default_addr(vm, 4096), 4096, 4096, topdown=True) == got[50]
    big = vm.findspace(_default_addr(vm, 8192), 8192, 4096, topdown=True)
    assert big == got[-1] - 8192                     # the hole is too small for 2 pages
