"""Every errno path of sys_lwp.c, provoked by a guest program (issue 3, item 1).

Each fixture ``fixtures/c/lwp_errno_*.c`` covers a group of calls and prints one line
per check, ``ok <key>: <what>`` or ``FAIL <key>: <what> got X want Y``, in a fixed
order, then PASS (exit 0) or ``FAILED n checks`` (exit 1).  Expectations are NetBSD
10's (sys_lwp.c 1.84, kern_lwp.c 1.250, kern_sleepq.c 1.71, subr_time.c 1.34); every
check names in a comment the branch of the C function it covers.  lwp_basic,
lwp_park and efault (tests/test_c_guest.py) cover the rest.

Where nbemu still disagrees with NetBSD and the fix belongs outside sys_lwp.py, the
check's key is listed in KNOWN with the reason: the fixture test tolerates those
FAIL lines, and test_known_divergences_still_diverge fails once one is fixed.

The fixtures run on every port (tests/guest.py ARCHES); where NetBSD's ports differ
(cpu_mcontext_validate, cpu_lwp_setprivate's range check, ILP32 sizes) the fixture
has per-port expectations naming the NetBSD source.

Branches no guest can reach on nbemu (or reliably on NetBSD) are checked on the
kernel alone (tests/khelp.py): _lwp_wakeup's EBUSY (no system call sleeps
uninterruptibly) and _lwp_create's ENOMEM (u-area arena exhausted).
"""
from __future__ import annotations

import functools
import re
import struct

import pytest

from fixtures.build import build_c
from tests.guest import OTHER_ARCHES, run_nbemu

FIXTURES = ["lwp_errno_create", "lwp_errno_suspend", "lwp_errno_wakeup", "lwp_errno_wait",
            "lwp_errno_park", "lwp_errno_misc", "lwp_errno_exit", "lwp_errno_limits"]

# Checks where nbemu knowingly differs from NetBSD (xfail with the reason); none now.
KNOWN: dict[tuple[str, str], str] = {}

_LINE = re.compile(r"^(ok|FAIL) ([^:\n]+):", re.M)

# Every fixture on every port; 1 and 4 vCPUs on amd64, 4 on the others (CI time).
ARCH_NCPU = [("x86_64", 1), ("x86_64", 4)] + [(a, 4) for a in OTHER_ARCHES]


@functools.lru_cache(maxsize=None)
def _run(name: str, ncpu: int, arch: str = "x86_64") -> tuple[int, str, str, dict[str, bool]]:
    """(exit status, stdout, stderr, {key: every check with that key passed})."""
    r = run_nbemu(build_c(name, arch), opts=("--ncpu", str(ncpu)), timeout=180)
    results: dict[str, bool] = {}
    for verdict, key in _LINE.findall(r.stdout):
        results[key] = results.get(key, True) and verdict == "ok"
    return r.returncode, r.stdout, r.stderr, results


def _known(name: str) -> set[str]:
    return {key for (fix, key) in KNOWN if fix == name}


@pytest.mark.parametrize("arch,ncpu", ARCH_NCPU)
@pytest.mark.parametrize("name", [f for f in FIXTURES if f != "lwp_errno_exit"])
def test_errno_paths(name: str, ncpu: int, arch: str) -> None:
    rc, out, err, results = _run(name, ncpu, arch)
    assert "Traceback" not in err, err
    last = out.rstrip().splitlines()[-1] if out.strip() else ""
    assert last == "PASS" or last.startswith("FAILED"), (out[-2000:], err[-3000:])
    assert len(_LINE.findall(out)) >= 10, out      # it ran to the end
    failing = {k for k, ok in results.items() if not ok}
    unexpected = failing - _known(name)
    fail_lines = [ln for ln in out.splitlines() if ln.startswith("FAIL")]
    assert not unexpected, "\n".join(fail_lines)
    assert rc == (1 if failing else 0), (rc, err[-2000:])


def test_known_divergences_still_diverge() -> None:
    """Each KNOWN entry still fails on amd64 (a fixed one must leave the list);
    none now."""
    for (name, key), reason in KNOWN.items():
        _, out, _, results = _run(name, 1)
        assert results.get(key) is False, f"{name} {key} passes now: drop it ({reason})"


# -- _lwp_exit: the process ends with the last live LWP ------------------------------
@pytest.mark.parametrize("arch,ncpu", ARCH_NCPU)
def test_lwp_exit_last_lwp_exits_process_with_0(ncpu: int, arch: str) -> None:
    """lwp_exit(): the last live LWP (zombies do not count) calls exit1(l, 0, 0)."""
    for mode in ("alone", "with-zombie"):
        rc, out, err = _exit_run(mode, ncpu, arch)
        assert "Traceback" not in err, err
        assert rc == 0, (mode, out, err)
        assert "after _lwp_exit" not in out, out
        assert out.splitlines()[-1] == f"{mode}: calling _lwp_exit", out


@pytest.mark.parametrize("arch,ncpu", ARCH_NCPU)
def test_lwp_exit_not_last_lwp_lets_others_run(ncpu: int, arch: str) -> None:
    """lwp_exit() of one LWP among several: only that LWP ends; the process lives on
    until another LWP calls exit(3)."""
    rc, out, err = _exit_run("not-last", ncpu, arch)
    assert "Traceback" not in err, err
    assert rc == 3, (out, err)
    assert out.splitlines()[-2:] == ["not-last: calling _lwp_exit",
                                     "worker: main is gone (_lwp_kill == -ESRCH), exit(3)"], out


@functools.lru_cache(maxsize=None)
def _exit_run(mode: str, ncpu: int, arch: str) -> tuple[int, str, str]:
    r = run_nbemu(build_c("lwp_errno_exit", arch), mode, opts=("--ncpu", str(ncpu)),
                  timeout=120)
    return r.returncode, r.stdout, r.stderr


# -- branches no guest reaches: the kernel alone -------------------------------------
def test_wakeup_ebusy_for_uninterruptible_sleep() -> None:
    """sys__lwp_wakeup: a target in an uninterruptible sleep (no LW_SINTR) is EBUSY;
    LW_CANCELLED | LW_UNPARKED are set all the same and the sleep goes on."""
    from nbemu.syscalls.errno import Errno
    from nbemu.syscalls.kern_lwp import lwp_create, lwp_start
    from nbemu.syscalls.kern_sleepq import sleep_syncobj, sleepq_enqueue
    from nbemu.syscalls.lwp import LSONPROC, LSSLEEP, LwpFlag
    from tests.khelp import call, make_kernel

    k, l = make_kernel()
    p = l.l_proc
    t = lwp_create(k, l, p, 0)
    lwp_start(k, t, False)
    k.runq.sched_dequeue(t)               # put t on CPU 1, as if it ran there
    t.set_stat(LSONPROC)
    k.cpus[1].ci_curlwp = t
    t.l_cpu = k.cpus[1]
    sleepq_enqueue(k, t, ("test", "uninterruptible"), "biowait", sleep_syncobj, False)
    assert t.l_stat == LSSLEEP and not t.l_flag & LwpFlag.LW_SINTR
    err, _ = call(l, "_lwp_wakeup", t.l_lid)
    assert err == Errno.EBUSY
    assert t.l_stat == LSSLEEP
    assert t.l_flag & LwpFlag.LW_CANCELLED and t.l_flag & LwpFlag.LW_UNPARKED


def test_create_enomem_when_uarea_arena_exhausted() -> None:
    """do_lwp_create(): uvm_uarea_alloc() failing is ENOMEM (limits are EAGAIN)."""
    from nbemu.guest.arch.amd64 import ABI
    from nbemu.syscalls.errno import Errno
    from nbemu.syscalls.kern_lwp import UareaArena
    from tests.khelp import call, make_kernel, scratch

    k, l = make_kernel()
    va = scratch(l)
    vals = [0] * len(ABI.getmcontext_ids())
    uc = ABI.build_ucontext(vals, (0, 0, 0, 0), (0, 0, 4), None)
    assert l.l_proc.p_vmspace.copyout(uc, va) == 0
    k.uarea_arena = UareaArena(0, ABI.uspace)
    err, _ = call(l, "_lwp_create", va, 0, va + 0x8000)
    assert err == Errno.ENOMEM
    assert struct.unpack("<i", bytes(l.l_proc.p_vmspace.copyin(va + 0x8000, 4)))[0] == 0
