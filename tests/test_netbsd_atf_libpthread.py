"""NetBSD's own tests/lib/libpthread ATF programs, built unmodified and linked statically
and dynamically against NetBSD's libc/libpthread/libatf-c (fixtures.netbsd_userland;
the dynamic ones run with ld.elf_so and the shared libraries under ``--root SYSROOT``),
run with ``nbemu atf``: every test runs once per linkage.  Every case that passes today is asserted to pass; the known failures
would be strict xfails with their diagnosed cause (EXPECTED_FAIL: none today).

Skips with the reason when ../shared/netbsd-src is not there."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fixtures import netbsd_userland as nu
from tests.guest import REPO

# program -> its test cases (tests/lib/libpthread of NetBSD-current 2015-10).
CASES: dict[str, list[str]] = {
    "t_barrier": ["barrier"],
    "t_cond": ["signal_delay_wait", "signal_before_unlock", "signal_before_unlock_static_init",
               "signal_wait_race", "cond_timedwait_race", "broadcast", "bogus_timedwaits",
               "destroy_after_cancel"],
    "t_condwait": ["cond_wait_real", "cond_wait_mono"],
    "t_detach": ["pthread_detach"],
    "t_equal": ["pthread_equal"],
    "t_fork": ["fork"],
    "t_fpu": ["fpu"],
    "t_join": ["pthread_join"],
    "t_kill": ["simple"],
    "t_mutex": ["mutex1", "mutex2", "mutex3", "mutex4"],
    "t_name": ["name"],
    "t_once": ["once1", "once2", "once3"],
    "t_preempt": ["preempt1"],
    "t_rwlock": ["rwlock1", "rwlock_static"],
    "t_sem": ["named", "unnamed", "before_start_no_threads", "before_start_one_thread"],
    "t_siglongjmp": ["siglongjmp1"],
    "t_sigmask": ["upcalls_not_started", "before_threads", "respected_while_running",
                  "incorrect_mask_bug"],
    "t_sigsuspend": ["sigsuspend"],
    "t_sleep": ["sleep1"],
    "t_swapcontext": ["swapcontext1"],
}
# Programs of the Makefile's TESTS_C that cannot be built from the source subset.
NOT_BUILT: dict[str, str] = {}
# Programs built with a stand-in for a library the subset lacks (atf_progs.py's
# MISSING_LIB_COVERED_BY): t_sem's -lrt; its sem_* come from libpthread's own sem.c.
LIB_STAND_INS = {"t_sem": "-lrt dropped"}

# Known failures, with the diagnosed cause: none since fork(2) exists (t_fork:fork
# passes: the child's pthread state after fork, the parent's wait).
EXPECTED_FAIL: dict[str, str] = {}
# Cases whose outcome depends on an interleaving that real NetBSD allows too: run only
# where the result is fixed (one vCPU, or the named deterministic seeds).
RACY: dict[str, str] = {
    "t_detach:pthread_detach": (
        "the test's own race: func() returns at once, so on >1 CPU the thread may be a "
        "zombie before pthread_detach(), which then reaps it, and pthread_join() gives "
        "ESRCH instead of the EINVAL the test wants (libpthread's pthread.c of 2016)"),
}
# Dynamic linkage only: races of the 2016 userland that its run-time linker opens (its
# lazy binding), run only under --deterministic, where the seed fixes the outcome.
RACY_DYNAMIC: dict[str, str] = {
    "t_detach:pthread_detach": RACY["t_detach:pthread_detach"] + "; dynamically linked "
    "the window opens on one vCPU too: main's first pthread_detach() call binds the "
    "symbol through ld.elf_so (_rtld_bind, a longer path) while the new thread runs",
    "t_fork:fork": (
        "ld.elf_so of 2016 is not fork-safe: when fork() happens while the other thread "
        "is inside _rtld_bind (its first call of sleep() is bound lazily) holding "
        "_rtld_mutex, the child inherits the lock held by a thread it does not have and "
        "parks on it forever in its own first lazy binding (exit): nbemu's wait-for "
        "report shows the child parked on &_rtld_mutex.  libc's fork() of that age does "
        "not take the run-time linker's lock around __fork()"),
}
# Long cases (tens of seconds under emulation) run in one configuration only.
SLOW = {"t_mutex:mutex2", "t_mutex:mutex3", "t_cond:cond_timedwait_race"}
# Long under --deterministic only: 500 rounds of a 5 ms ITIMER_REAL, waited for by
# spinning on sem_trywait(); the virtual clock advances by the guest's own work, so
# each case is ~25 s of spinning there (5 s in fast mode, where they run).
SLOW_DETERMINISTIC = {"t_sem:before_start_no_threads", "t_sem:before_start_one_thread"}


class Progs(dict):
    """program name -> path, and the nbemu options that run them (``--root`` for the
    dynamic ones: ld.elf_so and the shared libraries are the sysroot's)."""
    opts: tuple[str, ...] = ()


def build_progs(linkage: str, arch: str = "amd64") -> Progs:
    """The test programs of one linkage and port (skips without the sources)."""
    try:
        nu.netbsd_src()
        nu.check_host_tools()
    except (nu.NetBSDSourceMissing, nu.NetBSDToolMissing) as e:
        pytest.skip(str(e).splitlines()[0])
    from fixtures.netbsd.atf_progs import build_test_programs

    built = build_test_programs("tests/lib/libpthread", arch=arch, linkage=linkage)
    for name, reason in NOT_BUILT.items():
        assert built[name].path is None and "lib" in built[name].reason
    missing = {n: p.reason for n, p in built.items() if p.path is None and n not in NOT_BUILT}
    assert not missing, missing
    assert {n: p.note.split(" (")[0] for n, p in built.items() if p.note} == LIB_STAND_INS
    assert set(CASES) == {n for n, p in built.items() if p.path is not None}
    out = Progs((n, p.path) for n, p in built.items() if p.path is not None)
    if linkage == "dynamic":
        out.opts = ("--root", str(nu.build_userland(arch)))
    return out


@pytest.fixture(scope="module", params=["static", "dynamic"])
def progs(request: pytest.FixtureRequest) -> Progs:
    return build_progs(request.param)


def run_atf(progs: Progs, cases: list[str], opts: tuple[str, ...],
            tmp_path: Path) -> dict[str, str]:
    """Run program:case selections with ``nbemu atf``; return {prog:case: verdict}."""
    junit = tmp_path / "report.xml"
    args = [f"{progs[c.split(':')[0]]}:{c.split(':')[1]}" for c in cases]
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "atf", "-j", "2", "--timeout", "300",
                        "--junit", str(junit), *progs.opts, *opts, *args], cwd=REPO,
                       capture_output=True, text=True, timeout=1800)
    assert "Traceback" not in r.stderr, r.stderr
    verdicts: dict[str, str] = {}
    for tc in ET.parse(junit).getroot().iter("testcase"):
        prog = tc.get("classname", "").rsplit(".", 1)[-1].rsplit("/", 1)[-1]
        name = f"{prog}:{tc.get('name')}"
        if tc.find("failure") is not None:
            verdicts[name] = "failed: " + tc.find("failure").get("message", "")
        elif tc.find("error") is not None:
            verdicts[name] = "broken: " + tc.find("error").get("message", "")
        elif tc.find("skipped") is not None:
            verdicts[name] = "skipped: " + tc.find("skipped").get("message", "")
        else:
            prop = tc.find("properties/property[@name='atf.result']")
            verdicts[name] = prop.get("value", "passed") if prop is not None else "passed"
    return verdicts


def _all(exclude: set[str]) -> list[str]:
    return [f"{p}:{c}" for p, cs in CASES.items() for c in cs if f"{p}:{c}" not in exclude]


def _check(verdicts: dict[str, str], wanted: list[str],
           expected_fail: dict[str, str] | None = None) -> None:
    """Every wanted case has a verdict; it failed exactly when expected_fail
    (default: EXPECTED_FAIL) names it."""
    if expected_fail is None:
        expected_fail = EXPECTED_FAIL
    assert set(verdicts) == set(wanted), set(wanted) ^ set(verdicts)
    unexpected = {c: v for c, v in verdicts.items()
                  if (v != "passed") != (c in expected_fail)}
    assert not unexpected, unexpected


@pytest.mark.parametrize("ncpu", [1, 4])
def test_libpthread_atf(progs: Progs, ncpu: int, tmp_path: Path) -> None:
    """Every case but the slow ones; the racy ones only on one vCPU (dynamic: only
    under --deterministic)."""
    racy = set(RACY) if ncpu > 1 else set()
    if progs.opts:
        racy |= set(RACY_DYNAMIC)
    wanted = _all(SLOW | racy)
    _check(run_atf(progs, wanted, ("--ncpu", str(ncpu)), tmp_path), wanted)


@pytest.mark.parametrize("seed", [1, 2])
def test_libpthread_atf_deterministic(progs: Progs, seed: int,
                                      tmp_path: Path) -> None:
    wanted = _all(SLOW | SLOW_DETERMINISTIC)
    _check(run_atf(progs, wanted, ("--deterministic", "--seed", str(seed)), tmp_path), wanted)


def test_libpthread_atf_slow_cases(progs: Progs, tmp_path: Path) -> None:
    """mutex2/mutex3 (many contended lock hand-offs) and cond_timedwait_race (64 threads x
    10,000 timed waits already expired: ~2 million system calls), once, on one vCPU, in
    the static linkage only: ~3 minutes each time, and the dynamic programs run the
    same libpthread code on the same kernel paths (they pass too: run them with
    `nbemu atf --root SYSROOT`)."""
    if progs.opts:
        pytest.skip("the slow cases run once, statically linked (suite time)")
    wanted = sorted(SLOW)
    _check(run_atf(progs, wanted, ("--ncpu", "1"), tmp_path), wanted)


# Under Kyua beyond the first configuration (static, one vCPU: every case but the slow
# ones): a fast subset, which still starts a dynamic program per case through the
# binds of the Kyua wrappers (ld.elf_so and libraries from --root SYSROOT).
KYUA_SUBSET = ["t_join:pthread_join", "t_once:once1", "t_once:once2", "t_once:once3",
               "t_name:name", "t_equal:pthread_equal", "t_mutex:mutex1",
               "t_cond:signal_delay_wait", "t_sigmask:before_threads"]


@pytest.mark.parametrize("ncpu", [1, 4])
def test_libpthread_atf_under_kyua(progs: Progs, ncpu: int, tmp_path: Path) -> None:
    """The real Kyua runs the cases through the wrappers of `nbemu atf --kyua-suite`;
    every one passes, and agrees with `nbemu atf`.  The dynamic programs run with
    --root SYSROOT: the wrappers bind the host folders Kyua names (the program's, the
    case's work and control directories) into that root."""
    import shutil

    kyua = shutil.which("kyua")
    if kyua is None:
        pytest.skip("kyua is not installed (Debian: apt-get install kyua; CI runs "
                    "emu/atf/install_kyua.sh)")
    suite = tmp_path / "suite"
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "atf", "--kyua-suite", str(suite),
                        "--ncpu", str(ncpu), *progs.opts, *map(str, progs.values())],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    wanted = _all(SLOW) if ncpu == 1 and not progs.opts else KYUA_SUBSET
    db, junit = tmp_path / "results.db", tmp_path / "kyua.xml"
    try:
        r = subprocess.run([kyua, f"--config={suite / 'kyua.conf'}", "test",
                            f"--kyuafile={suite / 'Kyuafile'}", f"--results-file={db}",
                            *wanted], cwd=tmp_path, capture_output=True, text=True,
                           timeout=1800, env={**os.environ, "HOME": str(tmp_path)})
    finally:
        from nbemu.emu.atf.kyua import _stop_server
        _stop_server(str(suite))
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-2000:])
    r = subprocess.run([kyua, "report-junit", f"--results-file={db}", f"--output={junit}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    got = {f"{tc.get('classname').rsplit('.', 1)[-1]}:{tc.get('name')}":
           "passed" if not list(tc.iter("failure")) + list(tc.iter("error")) else "not passed"
           for tc in ET.parse(junit).getroot().iter("testcase")}
    assert got == dict.fromkeys(wanted, "passed")
    if wanted is KYUA_SUBSET:            # and nbemu's own runner says the same
        mine = run_atf(progs, wanted, ("--ncpu", str(ncpu)), tmp_path)
        assert mine == dict.fromkeys(wanted, "passed")
