"""The real Kyua (Debian's `kyua` package) runs NetBSD ATF programs through the
wrappers of `nbemu atf --kyua-suite`; its results agree with nbemu's own runner
case by case.  CI installs kyua with emu/atf/install_kyua.sh."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nbemu.emu.atf.kyua import _stop_server
from nbemu.emu.atf.runner import Config, Runner
from fixtures.atf import build_atf

REPO = Path(__file__).resolve().parents[1]
KYUA = shutil.which("kyua")
pytestmark = pytest.mark.skipif(
    KYUA is None, reason="kyua is not installed (Debian: apt-get install kyua; "
                         "CI runs emu/atf/install_kyua.sh)")


def kyua_results(junit: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(classname, case) -> (Kyua's result category, reason) from report-junit."""
    out = {}
    for tc in ET.parse(junit).getroot().iter("testcase"):
        err = tc.find("system-err")
        err_text = err.text if err is not None and err.text else ""
        if tc.find("failure") is not None:
            status, reason = "failed", tc.find("failure").get("message")
        elif tc.find("error") is not None:
            status, reason = "broken", tc.find("error").get("message")
        elif tc.find("skipped") is not None:
            status, reason = "skipped", err_text.split("\n\n")[1] if "\n\n" in err_text else ""
        elif err_text.startswith("Expected failure result details"):
            status, reason = "expected_failure", err_text.split("\n\n")[1]
        else:
            status, reason = "passed", ""
        out[(tc.get("classname"), tc.get("name"))] = (status, reason)
    return out


def test_kyua_agrees_with_nbemu_atf(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for n in ("atf_basic", "atf_crash", "atf_bad", "atf_badlist"):
        shutil.copy(build_atf(n), src / n)
    shutil.copy(build_atf("atf_threads"), src / "sub" / "atf_threads")
    shutil.copy(shutil.which("true") or "/bin/true", src / "not_netbsd")
    (src / "Kyuafile").write_text(
        'syntax(2)\ntest_suite("nbemu")\n' +
        "".join(f'atf_test_program{{name="{n}"}}\n'
                for n in ("atf_basic", "atf_crash", "atf_bad", "atf_badlist", "not_netbsd")) +
        'include("sub/Kyuafile")\n')
    (src / "sub" / "Kyuafile").write_text(
        'syntax(2)\ntest_suite("nbemu")\natf_test_program{name="atf_threads"}\n')
    env = {k: v for k, v in os.environ.items() if k != "ATF_BADLIST"}

    suite = tmp_path / "kyua-suite"
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "atf", "--kyua-suite", str(suite),
                        "-j", "2", "-v", "answer=42", "--ncpu", "2", str(src)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (suite / "sub" / "atf_threads").is_file() and (suite / "kyua.conf").is_file()

    db = tmp_path / "results.db"
    junit = tmp_path / "kyua.xml"
    r = subprocess.run([KYUA, f"--config={suite / 'kyua.conf'}", "test",
                        f"--kyuafile={suite / 'Kyuafile'}", f"--results-file={db}"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    _stop_server(str(suite))                               # its fork server: done
    assert r.returncode == 1, (r.stdout, r.stderr)        # some cases fail on purpose
    r = subprocess.run([KYUA, "report-junit", f"--results-file={db}", f"--output={junit}"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    theirs = kyua_results(junit)

    cfg = Config(jobs=2, variables={"answer": "42"}, nbemu_opts=["--ncpu", "2"])
    old = os.environ.pop("ATF_BADLIST", None)
    try:
        mine_list = Runner(cfg).run([str(src)])
    finally:
        if old is not None:
            os.environ["ATF_BADLIST"] = old
    mine = {(x.program.replace("/", "."), x.case): (x.result.kyua, x.result.reason)
            for x in mine_list}

    assert set(theirs) == set(mine)
    assert len(mine) == 12 + 4 + 8 + 1 + 1 + 3
    disagree = {k: (theirs[k], mine[k]) for k in mine if theirs[k][0] != mine[k][0]}
    assert not disagree
    # Reasons agree too wherever the ATF interface alone decides them.
    for k in [("atf_basic", "fail"), ("atf_basic", "skip_progs"), ("atf_bad", "two_lines"),
              ("atf_bad", "passed_but_exit_1"), ("atf_crash", "segv"), ("atf_basic", "xfail")]:
        assert theirs[k][1] == mine[k][1], k
    assert theirs[("atf_crash", "timeout")][1] == "Test case body timed out"


def test_printed_kyua_commands_work_from_any_directory(tmp_path: Path) -> None:
    """Issue 15, item 2: `kyua report` as documented failed outside the suite's
    directory. Run exactly what `nbemu atf --kyua-suite` prints, from elsewhere."""
    import shlex
    suite = tmp_path / "suite"
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "atf", "--kyua-suite", str(suite),
                        str(build_atf("atf_threads"))],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cmds = {ln.split(":", 1)[0]: shlex.split(ln.split(":", 1)[1])
            for ln in r.stdout.splitlines() if ln.split(":", 1)[0] != "Kyua suite written"}
    assert set(cmds) == {"run it with", "report with", "JUnit XML with"}, r.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, HOME=str(tmp_path / "home"))      # Kyua's store is under HOME
    done = {}
    for what in ("run it with", "report with", "JUnit XML with"):
        argv = [KYUA if w == "kyua" else w for w in cmds[what]]
        done[what] = subprocess.run(argv, cwd=elsewhere, env=env, capture_output=True,
                                    text=True, timeout=300)
        if what == "run it with":
            _stop_server(str(suite))
        assert done[what].returncode == 0, (what, done[what].stdout, done[what].stderr)
    assert "3/3 passed" in done["run it with"].stdout
    assert "3 total" in done["report with"].stdout, done["report with"].stdout
    assert len(kyua_results(elsewhere / "report.xml")) == 3
