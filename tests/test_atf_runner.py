"""`nbemu atf` end to end: NetBSD ATF programs (fixtures/atf, our atf_c_lite harness)
run under nbemu, one process per case; every outcome, bad input, the CLI and reports."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nbemu.emu.atf.runner import Config, Runner
from nbemu.emu.atf.suite import Entry
from fixtures.atf import build_atf

REPO = Path(__file__).resolve().parents[1]

BASIC = {
    "pass": "passed",
    "fail": "failed: atf_basic.c:34: 1 + 1 != 3: arithmetic is broken",
    "fail_checks": "failed: 2 checks failed; see output for more details",
    "skip_progs": "skipped: Required program 'nbemu-no-such-program' not found in PATH",
    "skip_body": "skipped: not today",
    "xfail": "expected_failure: PR 12345: atf_basic.c:78: 1 != 2 (1 != 2)",
    "xfail_but_pass": "failed: Test case was expecting a failure but none were raised",
    "expect_exit": "expected_exit(3): exits with 3",
    "expect_signal": "expected_signal(6): aborts",
    "workdir": "passed",
    "config": "passed",
    "cleanup": "passed",
}

BAD = {
    "no_result": "broken: Premature exit; test case exited with code 0",
    "empty_result": "broken: Empty test result or no new line",
    "unknown_status": "broken: Unknown test result 'succeeded'",
    "two_lines": "broken: Test result contains multiple lines: "
                 "passed<<NEWLINE>>failed: second thoughts",
    "no_reason": "broken: failed must be followed by ': <reason>'",
    "passed_but_exit_1":
        "broken: Passed test case should have reported success but exited with code 1",
    "failed_but_exit_0":
        "broken: Failed test case should have reported failure but exited with code 0",
    "bad_exit_arg": "broken: Invalid integer argument 'x' to 'expected_exit' test case result",
}


def run(paths, **kw):
    cfg = Config(**kw)
    return {(r.program, r.case): r for r in Runner(cfg).run([str(p) for p in paths])}


@pytest.fixture(scope="module")
def progs() -> dict[str, Path]:
    return {n: build_atf(n) for n in ("atf_basic", "atf_crash", "atf_threads", "atf_bad",
                                      "atf_badlist")}


def test_basic_outcomes(progs, tmp_path) -> None:
    marker = tmp_path / "cleanup-ran"
    res = run([progs["atf_basic"]], jobs=2,
              variables={"answer": "42", "cleanup_marker": str(marker)})
    got = {case: str(r.result) for (_, case), r in res.items()}
    assert got == BASIC
    # The cleanup part ran, in the body's work directory (it found the cookie).
    assert marker.read_text() == "cleaned\n"
    assert "cleanup ran" in res[("atf_basic", "cleanup")].stdout
    assert "*** Check failed: atf_basic.c:44: 1 == 2 not met" in \
        res[("atf_basic", "fail_checks")].stderr


def test_config_variable_missing_skips(progs) -> None:
    res = run([progs["atf_basic"]], variables={})
    assert str(res[("atf_basic", "config")].result) == \
        "skipped: Required configuration property 'answer' not defined"


def test_crashes_timeouts_deadlocks_threads(progs) -> None:
    res = run([progs["atf_crash"], progs["atf_threads"]], jobs=2)
    got = {k: str(r.result) for k, r in res.items()}
    assert got[("atf_crash", "segv")] == "broken: Premature exit; test case received signal 11"
    assert got[("atf_crash", "timeout")] == \
        "broken: Test case body timed out (after 2 s; nbemu killed)"
    assert got[("atf_crash", "deadlock")].startswith(
        "broken: Deadlock: every LWP is blocked forever and no timeout is pending "
        "(nbemu exit 125")
    assert "nbemu: deadlock" in res[("atf_crash", "deadlock")].stderr
    assert "SIGSEGV" in res[("atf_crash", "segv")].stderr
    assert got[("atf_crash", "ok")] == "passed"
    for case in ("create_wait", "park_pingpong", "detached"):
        assert got[("atf_threads", case)] == "passed", res[("atf_threads", case)].stderr
    # is.exclusive: atf_threads:detached ran alone, after every other case.
    excl = res[("atf_threads", "detached")]
    assert excl.metadata["is.exclusive"] == "true"
    assert all(r.ended <= excl.started for k, r in res.items() if k[1] != "detached")


def test_result_protocol_violations(progs) -> None:
    res = run([progs["atf_bad"]], jobs=2)
    assert {case: str(r.result) for (_, case), r in res.items()} == BAD


@pytest.mark.parametrize("variant, reason", [
    ("noident", "Invalid test case list: line 5: invalid test case definition; must be "
                "preceded by the identifier (got 'descr: a stanza without ident')"),
    ("header", "Invalid test case list: Invalid header for test case list; expecting "
               "Content-Type for application/X-atf-tp version 1, got 'Content-Type: "
               "application/X-atf-tp; version=\"2\"'"),
    ("unknown", "Invalid test case list: line 5: Unknown test case metadata property "
                "'require.moon' (test case 'a')"),
    ("exit", "Test program did not exit cleanly when listing its test cases "
             "(exited with code 1)"),
    ("crash", "Test program did not exit cleanly when listing its test cases "
              "(received signal 11)"),
])
def test_malformed_list(progs, monkeypatch, variant: str, reason: str) -> None:
    monkeypatch.setenv("ATF_BADLIST", variant)
    res = run([progs["atf_badlist"], progs["atf_threads"]])
    r = res[("atf_badlist", "__test_cases_list__")]
    assert r.result.status == "broken"
    assert r.result.reason.startswith(reason), r.result.reason
    # The other program's results are all there.
    assert sum(1 for (p, _) in res if p == "atf_threads") == 3


def test_not_netbsd_missing_and_directory(progs, tmp_path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    res = run([shutil.which("true") or "/bin/true", script, tmp_path / "missing",
               progs["atf_threads"]])
    true = res[("true", "__test_cases_list__")].result
    assert true.status == "broken"
    assert "not a NetBSD program (no .note.netbsd.ident note" in true.reason
    sh = res[("script.sh", "__test_cases_list__")].result
    assert sh.status == "broken" and "nbemu cannot run the test program" in sh.reason
    miss = res[("missing", "__test_cases_list__")].result
    assert miss.reason.startswith("Test program '") and miss.reason.endswith("does not exist")
    assert sum(1 for (p, _) in res if p == "atf_threads") == 3


def test_fork_server_and_plain_processes_agree(progs) -> None:
    def statuses(fork_server: bool) -> dict:
        r = Runner(Config(jobs=2, variables={"answer": "42"}, fork_server=fork_server))
        res = r.run([str(progs["atf_basic"]), str(progs["atf_crash"])],
                    lambda e, tc: tc.name != "timeout")
        return {(x.program, x.case): x.result.status for x in res}
    a = statuses(True)
    assert len(a) == 15 and a == statuses(False)


def test_guest_root(progs, tmp_path) -> None:
    """--root: work directories and the result file are placed inside the root."""
    root = tmp_path / "root"
    (root / "tmp").mkdir(parents=True)
    prog = root / "atf_threads"
    shutil.copy(progs["atf_threads"], prog)
    res = Runner(Config(nbemu_opts=["--root", str(root)])).run(
        [Entry(str(prog), "atf_threads")])
    assert [str(r.result) for r in res] == ["passed"] * 3
    assert list((root / "tmp").iterdir()) == []           # cleaned up


def suite_tree(tmp_path: Path, progs: dict[str, Path]) -> Path:
    top = tmp_path / "suite"
    (top / "sub").mkdir(parents=True)
    shutil.copy(progs["atf_basic"], top / "atf_basic")
    shutil.copy(progs["atf_crash"], top / "atf_crash")
    shutil.copy(progs["atf_threads"], top / "sub" / "atf_threads")
    (top / "Kyuafile").write_text('syntax(2)\ntest_suite("nbemu")\n'
                                  'atf_test_program{name="atf_basic"}\n'
                                  'atf_test_program{name="atf_crash"}\n'
                                  'include("sub/Kyuafile")\n')
    (top / "sub" / "Atffile").write_text(
        'Content-Type: application/X-atf-atffile; version="1"\n\ntp: atf_threads\n')
    (top / "sub" / "Kyuafile").write_text('syntax(2)\ntest_suite("nbemu")\n'
                                          'atf_test_program{name="atf_threads"}\n')
    return top


def test_cli_suite_reports_and_exit_status(progs, tmp_path) -> None:
    top = suite_tree(tmp_path, progs)
    junit, html = tmp_path / "out" / "junit.xml", tmp_path / "html"
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "atf", "-j", "2", "-v", "answer=42",
                        "--junit", str(junit), "--html", str(html), "--ncpu", "2",
                        "--timeout", "3", str(top)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    out = r.stdout
    assert "atf_basic:pass  ->  passed  [" in out
    assert "sub/atf_threads:park_pingpong  ->  passed  [" in out
    assert "===> Broken tests" in out and "===> Failed tests" in out
    assert "Test cases: 19 total, 2 skipped, 3 expected failures, 3 broken, 3 failed" in out
    assert "\r" not in out and "\r" not in r.stderr                 # no progress bar off a TTY
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "19" and root.get("errors") == "3"
    names = {(c.get("classname"), c.get("name")) for c in root.iter("testcase")}
    assert ("sub.atf_threads", "detached") in names
    page = (html / "index.html").read_text()
    assert "park_pingpong" in page and "Premature exit" in page


def test_cli_case_filter_and_list(progs) -> None:
    p = str(progs["atf_basic"])
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "atf", f"{p}:x*", f"{p}:pass"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1                  # xfail_but_pass fails
    lines = [ln.split("  ->  ")[0] for ln in r.stdout.splitlines() if "  ->  " in ln]
    assert sorted(set(lines)) == ["atf_basic:pass", "atf_basic:xfail", "atf_basic:xfail_but_pass"]
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "atf", "--list",
                        str(progs["atf_threads"])],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == \
        "atf_threads:create_wait  (_lwp_create four LWPs, _lwp_wait for each)"
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "atf", str(progs["atf_threads"])],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Test cases: 3 total" in r.stdout


def test_progress_bar_only_on_a_terminal(progs) -> None:
    import pty
    master, slave = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "atf", str(progs["atf_threads"])],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=slave, text=True,
                           timeout=300)
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    err = b"".join(chunks).decode()
    assert r.returncode == 0
    assert "\r\x1b[K[" in err and "] 3/3" in err
    assert "\r" not in r.stdout and "atf_threads:detached  ->  passed" in r.stdout


def test_launcher_cwd_and_signal(progs, tmp_path) -> None:
    """python -m nbemu.emu.atf.launch: the guest starts in the host cwd; a guest death by
    SIGABRT is this process's death by SIGABRT (as Kyua must see it)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), HOME=str(tmp_path), TMPDIR=str(tmp_path))
    env.pop("LANG", None)
    for k in [k for k in env if k.startswith("LC_")]:
        env.pop(k)
    res = tmp_path / "res"
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.atf.launch", str(progs["atf_basic"]),
                        "-r", str(res), "workdir"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, res.read_text()) == (0, "passed\n"), r.stderr
    assert (tmp_path / "scratch").exists()
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.atf.launch", str(progs["atf_basic"]),
                        "-r", str(res), "expect_signal"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -6 and res.read_text() == "expected_signal(6): aborts\n"
    assert "guest killed by signal 6" in r.stderr
