"""`pytest --nbemu-atf PATH`: each ATF case is a pytest item (failed/broken ->
failure, skipped -> skip, expected_* -> xfail), also under pytest-xdist."""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fixtures.atf import build_atf

REPO = Path(__file__).resolve().parents[1]


def plugin_installed() -> bool:
    return any(ep.name == "nbemu.emu.atf.pytest_plugin"
               for ep in importlib.metadata.entry_points(group="pytest11"))


def test_entry_point_declared() -> None:
    text = (REPO / "pyproject.toml").read_text()
    try:
        import tomllib                            # Python >= 3.11
    except ImportError:                           # 3.10: the plain text must do
        section = text.split("[project.entry-points.pytest11]", 1)[1].split("\n[", 1)[0]
        assert '"nbemu.emu.atf.pytest_plugin" = "nbemu.emu.atf.pytest_plugin"' in section
        return
    meta = tomllib.loads(text)
    # named as the module: `-p emu.atf.pytest_plugin` is then a no-op when installed
    assert meta["project"]["entry-points"]["pytest11"] == {
        "nbemu.emu.atf.pytest_plugin": "nbemu.emu.atf.pytest_plugin"}


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for tc in ET.parse(junit).getroot().iter("testcase"):
        name = f'{tc.get("classname")}::{tc.get("name")}'
        for tag in ("failure", "error", "skipped"):
            el = tc.find(tag)
            if el is not None:
                kind = tag if tag != "skipped" else (
                    "xfail" if el.get("type") == "pytest.xfail" else "skipped")
                out[name] = (kind, el.get("message") or "")
                break
        else:
            out[name] = ("passed", "")
    return out


@pytest.mark.parametrize("xdist", [False, True])
def test_pytest_collects_and_reports_atf_cases(tmp_path: Path, xdist: bool) -> None:
    src = tmp_path / "suite"
    src.mkdir()
    shutil.copy(build_atf("atf_basic"), src / "atf_basic")
    shutil.copy(build_atf("atf_threads"), src / "atf_threads")
    (src / "Atffile").write_text('Content-Type: application/X-atf-atffile; version="1"\n\n'
                                 "tp-glob: atf_*\n")
    crash = build_atf("atf_crash")
    junit = tmp_path / "out.xml"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
           "--nbemu-atf", str(src), "--nbemu-atf", f"{crash}:segv",
           "--nbemu-atf-var", "answer=42", "--nbemu-atf-opts", "--ncpu 2",
           f"--junitxml={junit}", "-o", "junit_family=xunit1"]
    if not plugin_installed():
        cmd[3:3] = ["-p", "nbemu.emu.atf.pytest_plugin"]
    if xdist:
        cmd += ["-n", "2"]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    got = outcomes(junit)
    assert len(got) == 12 + 3 + 1, got
    want = {
        "pass": "passed", "workdir": "passed", "config": "passed", "cleanup": "passed",
        "fail": "failure", "fail_checks": "failure", "xfail_but_pass": "failure",
        "skip_progs": "skipped", "skip_body": "skipped",
        "xfail": "xfail", "expect_exit": "xfail", "expect_signal": "xfail",
    }
    by_case = {k.split("::")[-1]: v for k, v in got.items()}
    for case, kind in want.items():
        assert by_case[case][0] == kind, (case, by_case[case])
    assert "Required program 'nbemu-no-such-program' not found in PATH" in \
        by_case["skip_progs"][1]
    assert by_case["fail"][1].startswith("ATF failed: atf_basic.c:34: 1 + 1 != 3")
    assert by_case["segv"][0] == "failure"
    assert "Premature exit; test case received signal 11" in by_case["segv"][1]
    for case in ("create_wait", "park_pingpong", "detached"):
        assert by_case[case][0] == "passed"
    assert "4 failed, 7 passed, 2 skipped, 3 xfailed" in r.stdout


def test_node_ids_round_trip_and_p_works_when_installed(tmp_path: Path) -> None:
    """Issue 15, item 7: the ids in pytest's summary, run from another directory,
    are taken back by pytest; `-p emu.atf.pytest_plugin` does not clash with the
    installed entry point."""
    import re
    eco = tmp_path / "eco"
    eco.mkdir()
    shutil.copy(build_atf("atf_basic"), eco / "atf_basic")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))

    def pytest_(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rf",
               "-p", "nbemu.emu.atf.pytest_plugin", *args]
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=600)

    r = pytest_("--nbemu-atf", str(eco / "atf_basic"))
    assert r.returncode == 1 and "already registered" not in r.stderr, r.stdout + r.stderr
    ids = re.findall(r"^FAILED (\S+) - ", r.stdout, re.M)
    assert "../eco/atf_basic::fail" in ids and len(ids) == 3, r.stdout
    again = pytest_(*ids)
    assert again.returncode == 1, again.stdout + again.stderr
    assert sorted(re.findall(r"^FAILED (\S+) - ", again.stdout, re.M)) == sorted(ids)
    assert "3 failed in" in again.stdout, again.stdout
    one = pytest_("../eco/atf_basic::pass")
    assert one.returncode == 0 and "1 passed" in one.stdout, one.stdout + one.stderr
