"""The ATF test-program interface in pure Python (no emulator): -l parsing, result
files, Kyua's cross-check with the exit status, requirements, suite files, reports."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from nbemu.emu.atf.launch import guest_cwd
from nbemu.emu.atf.report import html_report, junit_xml, summary
from nbemu.emu.atf.runner import CaseResult, Config, Program, Runner
from nbemu.emu.atf.suite import Entry, discover
from nbemu.emu.atf.tp import (HEADER, FormatError, ProcStatus, Result, TestCase, calculate_result,
                        parse_bytes, parse_list, parse_result)

OK = ProcStatus(exitcode=0)
EXIT1 = ProcStatus(exitcode=1)


def lst(*stanzas: str) -> str:
    return HEADER + "\n\n" + "\n\n".join(stanzas) + "\n"


# ---------------------------------------------------------------- -l


def test_parse_list_good() -> None:
    cases = parse_list(lst("ident: a\ndescr: first: with colon\nhas.cleanup: true\ntimeout: 5",
                           "ident: b\nrequire.progs: /bin/sh cc\nrequire.memory: 1m\n"
                           "is.exclusive: true\nX-custom: anything\nexecenv: host",
                           "ident: c"))
    assert [c.name for c in cases] == ["a", "b", "c"]
    a, b, c = cases
    assert a.description == "first: with colon" and a.has_cleanup and a.timeout == 5.0
    assert b.required_progs == ["/bin/sh", "cc"] and b.required_memory == 1 << 20
    assert b.is_exclusive and b.metadata["X-custom"] == "anything"
    assert c.timeout == 300.0 and not c.has_cleanup
    assert TestCase("z", {"timeout": "0"}).timeout is None


@pytest.mark.parametrize("text, message", [
    ("", "Invalid header for test case list; expecting Content-Type"),
    ('Content-Type: application/X-atf-tp; version="2"\n\nident: a\n',
     "got 'Content-Type: application/X-atf-tp; version=\"2\"'"),
    (HEADER + "\nident: a\n", "expecting a blank line, got 'ident: a'"),
    (HEADER + "\n\n", "No test cases"),
    (lst("descr: x"), "must be preceded by the identifier"),
    (lst("ident: a\n\ndescr: x"), "must be preceded by the identifier"),
    (lst("ident: a\nrequire.moon: full"), "Unknown test case metadata property 'require.moon'"),
    (lst("ident: a\ntimeout: soon"), "'soon' is not a number of seconds"),
    (lst("ident: a\nhas.cleanup: maybe"), "'maybe' is not a boolean"),
    (lst("ident: a\nrequire.user: bob"), "Invalid value for property 'require.user'"),
    (lst("ident: a\nrequire.memory: lots"), "Invalid bytes quantity 'lots'"),
    (lst("ident: a\nrequire.files: relative/file"), "relative path 'relative/file'"),
    (lst("ident: a\ndescr: x\ndescr: y"), "duplicate value for property descr"),
    (lst("ident: a", "ident: a"), "duplicate test case 'a'"),
    (lst("ident: a\nno colon here"), "expecting a line of the form 'name: value'"),
    (lst("ident: "), "must be preceded by the identifier"),
])
def test_parse_list_errors(text: str, message: str) -> None:
    with pytest.raises(FormatError) as e:
        parse_list(text)
    assert message in str(e.value)


def test_parse_bytes() -> None:
    assert parse_bytes("1024") == 1024
    assert parse_bytes("2k") == 2048 and parse_bytes("1G") == 1 << 30
    assert parse_bytes("1.5m") == 3 << 19


# ---------------------------------------------------------------- result files


@pytest.mark.parametrize("text, status, reason, arg", [
    ("passed\n", "passed", None, None),
    ("failed: it broke\n", "failed", "it broke", None),
    ("skipped: no: colons: matter\n", "skipped", "no: colons: matter", None),
    ("expected_failure: PR 1\n", "expected_failure", "PR 1", None),
    ("expected_exit(3): x\n", "expected_exit", "x", 3),
    ("expected_exit: any code\n", "expected_exit", "any code", None),
    ("expected_signal(11): segv\n", "expected_signal", "segv", 11),
    ("expected_timeout: hangs\n", "expected_timeout", "hangs", None),
    ("expected_death: dies\n", "expected_death", "dies", None),
    ("broken: by itself\n", "broken", "by itself", None),
])
def test_parse_result(text: str, status: str, reason: str | None, arg: int | None) -> None:
    r = parse_result(text)
    assert (r.status, r.reason, r.arg) == (status, reason, arg)


@pytest.mark.parametrize("text, message", [
    ("", "Empty test result or no new line"),
    ("passed", "Empty test result or no new line"),
    ("passed\nfailed: x\n", "Test result contains multiple lines: passed<<NEWLINE>>failed: x"),
    ("succeeded: yes\n", "Unknown test result 'succeeded'"),
    ("Passed\n", "Unknown test result 'Passed'"),
    ("passed: why\n", "passed cannot have a reason"),
    ("failed\n", "failed must be followed by ': <reason>'"),
    ("skipped:\n", "skipped must be followed by ': <reason>'"),
    ("expected_exit(x): r\n", "Invalid integer argument 'x' to 'expected_exit'"),
    ("expected_signal\n", "Invalid format for 'expected_signal' test case result"),
])
def test_parse_result_errors(text: str, message: str) -> None:
    with pytest.raises(FormatError) as e:
        parse_result(text)
    assert message in str(e.value)


SIG6 = ProcStatus(signal=6)
SIG11 = ProcStatus(signal=11)


@pytest.mark.parametrize("body, text, want", [
    (OK, "passed\n", "passed"),
    (EXIT1, "passed\n",
     "broken: Passed test case should have reported success but exited with code 1"),
    (EXIT1, "failed: x\n", "failed: x"),
    (OK, "failed: x\n",
     "broken: Failed test case should have reported failure but exited with code 0"),
    (OK, "skipped: x\n", "skipped: x"),
    (SIG11, "skipped: x\n",
     "broken: Skipped test case should have reported success but received signal 11"),
    (OK, "expected_failure: x\n", "expected_failure: x"),
    (EXIT1, "expected_failure: x\n",
     "broken: Expected failure should have reported success but exited with code 1"),
    (ProcStatus(exitcode=3), "expected_exit(3): x\n", "expected_exit(3): x"),
    (ProcStatus(exitcode=4), "expected_exit(3): x\n",
     "failed: Test case expected to exit with code 3 but got code 4"),
    (ProcStatus(exitcode=4), "expected_exit: x\n", "expected_exit: x"),
    (SIG6, "expected_exit: x\n", "broken: Expected clean exit but received signal 6"),
    (SIG6, "expected_signal(6): x\n", "expected_signal(6): x"),
    (SIG11, "expected_signal(6): x\n",
     "failed: Test case expected to receive signal 6 but got 11"),
    (OK, "expected_signal: x\n", "broken: Expected signal but exited with code 0"),
    (SIG11, "expected_death: x\n", "expected_death: x"),
    (OK, "expected_timeout: x\n", "broken: Expected timeout but exited with code 0"),
    (None, "expected_timeout: x\n", "expected_timeout: x"),
    (None, "passed\n", "broken: Test case body timed out"),
    (None, None, "broken: Test case body timed out"),
    (OK, None, "broken: Premature exit; test case exited with code 0"),
    (SIG11, None, "broken: Premature exit; test case received signal 11"),
    (OK, "", "broken: Empty test result or no new line"),
    (OK, "broken: self-reported\n", "broken: self-reported"),
])
def test_calculate_result(body, text, want: str) -> None:
    assert str(calculate_result(body, True, text)) == want


def test_cleanup_status_counts_only_for_good_results() -> None:
    assert str(calculate_result(OK, EXIT1, "passed\n")).startswith(
        "broken: Test case cleanup did not terminate successfully")
    assert str(calculate_result(OK, None, "passed\n")) == "broken: Test case cleanup timed out"
    assert str(calculate_result(EXIT1, EXIT1, "failed: x\n")) == "failed: x"
    assert str(calculate_result(OK, OK, "skipped: y\n")) == "skipped: y"


def test_kyua_view_of_results() -> None:
    assert Result("expected_signal", "x", 6).kyua == "expected_failure"
    assert Result("expected_signal", "x", 6).good
    assert not Result("broken", "x").good and not Result("failed", "x").good


# ---------------------------------------------------------------- requirements


def _prog() -> Program:
    return Program(Entry("/nonexistent/t", "t"), machine="amd64", arch="x86_64")


@pytest.mark.parametrize("md, want", [
    ({}, None),
    ({"require.arch": "x86_64 aarch64"}, None),
    ({"require.arch": "sparc64"}, "Current architecture 'x86_64' not supported"),
    ({"require.machine": "amd64"}, None),
    ({"require.machine": "evbarm"}, "Current platform 'amd64' not supported"),
    ({"require.config": "answer"}, None),
    ({"require.config": "question"}, "Required configuration property 'question' not defined"),
    ({"require.files": "/"}, None),
    ({"require.files": "/nbemu/no/such/file"}, "Required file '/nbemu/no/such/file' not found"),
    ({"require.progs": "sh"}, None),
    ({"require.progs": "nbemu-no-such-prog"},
     "Required program 'nbemu-no-such-prog' not found in PATH"),
    ({"require.progs": "/nbemu/nope"}, "Required program '/nbemu/nope' not found"),
    ({"require.memory": "1m"}, None),
    ({"require.memory": "1t"}, "Requires 1099511627776 bytes of physical memory but only"),
    ({"require.diskspace": "1k"}, None),
    ({"execenv": "jail"}, "'jail' execenv is not supported"),
    ({"require.kmods": "zfs"}, "Required kernel module 'zfs' not loaded"),
])
def test_requirements(tmp_path, md: dict, want: str | None) -> None:
    r = Runner(Config(variables={"answer": "42"}))
    got = r.check_requirements(_prog(), TestCase("c", md), str(tmp_path))
    if want is None:
        assert got is None
    else:
        assert got is not None and got.startswith(want), got


def test_require_user() -> None:
    r = Runner(Config())
    root = os.geteuid() == 0
    got = r.check_requirements(_prog(), TestCase("c", {"require.user": "root"}), "/")
    assert got == (None if root else "Requires root privileges")
    got = r.check_requirements(_prog(), TestCase("c", {"require.user": "unprivileged"}), "/")
    assert (got is not None) == root
    r2 = Runner(Config(variables={"unprivileged-user": "nobody"}))
    assert r2.check_requirements(_prog(), TestCase("c", {"require.user": "unprivileged"}),
                                 "/") is None


def test_requirements_inside_guest_root(tmp_path) -> None:
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "guesttool"
    tool.write_text("")
    tool.chmod(0o755)
    r = Runner(Config(nbemu_opts=["--root", str(tmp_path), "-E", "PATH=/bin"]))
    assert r.check_requirements(_prog(), TestCase("c", {"require.progs": "guesttool"}),
                                str(tmp_path)) is None
    assert r.check_requirements(_prog(), TestCase("c", {"require.files": "/bin/guesttool"}),
                                str(tmp_path)) is None
    # /bin/sh is the host's, not the guest's.
    assert r.check_requirements(_prog(), TestCase("c", {"require.progs": "sh"}),
                                str(tmp_path)) == "Required program 'sh' not found in PATH"


def test_guest_cwd(tmp_path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert guest_cwd("/", str(tmp_path)) == os.path.realpath(tmp_path)
    assert guest_cwd(str(tmp_path), str(tmp_path / "a" / "b")) == "/a/b"
    assert guest_cwd(str(tmp_path), str(tmp_path)) == "/"
    assert guest_cwd(str(tmp_path / "a"), "/") == "/"          # outside the root


# ---------------------------------------------------------------- suite files


def _touch(p) -> str:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("")
    return str(p)


def test_kyuafile_tree(tmp_path) -> None:
    _touch(tmp_path / "t_a")
    _touch(tmp_path / "sub" / "t_b")
    (tmp_path / "Kyuafile").write_text(
        '-- a comment\nsyntax(2)\ntest_suite("NetBSD")\n'
        'atf_test_program{name="t_a"}  -- trailing comment\n'
        "plain_test_program{name='t_plain'}\n"
        'include("sub/Kyuafile")\n')
    (tmp_path / "sub" / "Kyuafile").write_text(
        'syntax(2)\ntest_suite("NetBSD")\natf_test_program{name = "t_b", timeout = 10}\n'
        'for i = 1, 2 do end\n')
    es = discover(str(tmp_path))
    assert [(e.name, e.interface, e.error is None) for e in es] == [
        ("t_a", "atf", True), ("t_plain", "plain", True), ("sub/t_b", "atf", True),
        ("sub/Kyuafile", "atf", False)]
    assert all(e.suite == "NetBSD" for e in es[:3])
    assert "unsupported Kyuafile construct" in es[3].error and "line 4" in es[3].error


def test_atffile_tree(tmp_path) -> None:
    _touch(tmp_path / "t_one")
    _touch(tmp_path / "t_two")
    _touch(tmp_path / "d" / "t_three")
    (tmp_path / "Atffile").write_text(
        'Content-Type: application/X-atf-atffile; version="1"\n\n'
        "prop: test-suite = mine\n\ntp: d\ntp-glob: t_*\n")
    (tmp_path / "d" / "Atffile").write_text(
        'Content-Type: application/X-atf-atffile; version="1"\n\ntp: t_three\n')
    assert [e.name for e in discover(str(tmp_path))] == ["d/t_three", "t_one", "t_two"]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "Atffile").write_text("not an atffile\n")
    assert "invalid Atffile header" in discover(str(bad))[0].error
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no Kyuafile or Atffile" in discover(str(empty))[0].error


# ---------------------------------------------------------------- reports


def _results() -> list[CaseResult]:
    return [
        CaseResult("sub/t", "/x/sub/t", "ok", Result("passed"), 0.5, "out\n", ""),
        CaseResult("sub/t", "/x/sub/t", "bad", Result("failed", "1 != 2 <&>"), 0.25),
        CaseResult("sub/t", "/x/sub/t", "br", Result("broken", "Premature exit"), 0.1,
                   stderr="crash\x01report\n"),
        CaseResult("t2", "/x/t2", "sk", Result("skipped", "no prog"), 0.0),
        CaseResult("t2", "/x/t2", "xf", Result("expected_signal", "aborts", 6), 0.2,
                   metadata={"descr": "d"}),
    ]


def test_junit_xml() -> None:
    root = ET.fromstring(junit_xml(_results()))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"),
            root.get("skipped")) == ("5", "1", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["sub.t", "t2"]
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["ok"].get("classname") == "sub.t" and cases["ok"].get("time") == "0.500"
    assert cases["bad"].find("failure").get("message") == "1 != 2 <&>"
    assert cases["br"].find("error").get("message") == "Premature exit"
    assert cases["sk"].find("skipped") is not None
    xf = cases["xf"]
    assert xf.find("failure") is None and xf.find("error") is None
    assert "expected_signal(6): aborts" in xf.find("system-err").text
    props = {p.get("name"): p.get("value") for p in xf.iter("property")}
    assert props["atf.result"] == "expected_signal"


def test_summary_and_html() -> None:
    s = summary(_results(), wall=1.0)
    assert "===> Failed tests\nsub/t:bad  ->  failed: 1 != 2 <&>  [0.250s]" in s
    assert ("Test cases: 5 total, 1 skipped, 1 expected failures, 1 broken, 1 failed"
            in s)
    h = html_report(_results())
    assert h.count("<tr class=") == 5 and "1 != 2 &lt;&amp;&gt;" in h
