"""pytest plugin: NetBSD ATF test cases as pytest items, run under nbemu.

    pytest --nbemu-atf PATH [--nbemu-atf PATH2 ...] [--nbemu-atf-opts "--ncpu 2"]
           [--nbemu-atf-var VAR=VALUE] [-n N]

PATH is a test program or a directory with a Kyuafile/Atffile tree (``PATH:GLOB``
selects cases), as for ``nbemu atf``.  Each case becomes an item named
``<program>::<case>`` (e.g. ``sub/t_foo::test_bar``): passed -> passed; failed and
broken -> failure with the ATF reason (and the case's output); skipped -> skip;
``expected_*`` -> xfail.  The ATF status goes into the item's user properties
(``atf.result``, ``atf.reason``: pytest's JUnit XML shows them).  With pytest-xdist
(``-n N``), items spread over workers like any others; each worker lists the
programs once and keeps one nbemu fork server.

When ``--nbemu-atf`` is given without other paths, only the ATF cases are
collected (not the ``testpaths`` of the invoking project).

Registered as the ``nbemu_atf`` entry point of the ``pytest11`` group (pyproject),
or load it with ``-p emu.atf.pytest_plugin``.  Without ``--nbemu-atf`` it does
nothing and imports nothing heavy.
"""
from __future__ import annotations

import fnmatch
import os
import shlex

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("nbemu-atf", "NetBSD ATF test programs under nbemu")
    g.addoption("--nbemu-atf", action="append", default=[], dest="nbemu_atf",
                metavar="PATH", help="collect the ATF test cases of PATH (a NetBSD test "
                                     "program, or a directory with a Kyuafile/Atffile)")
    g.addoption("--nbemu-atf-opts", default="", dest="nbemu_atf_opts", metavar="OPTIONS",
                help="nbemu options for every ATF case, as one string (e.g. '--ncpu 2')")
    g.addoption("--nbemu-atf-var", action="append", default=[], dest="nbemu_atf_vars",
                metavar="VAR=VALUE", help="an ATF configuration variable (-v) for every case")


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("nbemu_atf"):
        return
    config.addinivalue_line("markers", "nbemu_atf: an ATF test case run under nbemu")
    # Only ATF cases unless the user named other paths too.
    if getattr(config, "args_source", None) != pytest.Config.ArgsSource.ARGS:
        config.args = []


class AtfCaseFailure(Exception):
    """A case that failed or broke; carries the CaseResult."""

    def __init__(self, r) -> None:
        super().__init__(str(r.result))
        self.r = r


def _runner(config: pytest.Config):
    r = getattr(config, "_nbemu_atf_runner", None)
    if r is None:
        from .runner import Config, Runner
        variables = {}
        for kv in config.getoption("nbemu_atf_vars"):
            k, _, v = kv.partition("=")
            variables[k] = v
        r = Runner(Config(nbemu_opts=shlex.split(config.getoption("nbemu_atf_opts")),
                          variables=variables))
        config._nbemu_atf_runner = r
    return r


def pytest_unconfigure(config: pytest.Config) -> None:
    r = getattr(config, "_nbemu_atf_runner", None)
    if r is not None:
        r.cleanup()
        config._nbemu_atf_runner = None


class AtfProgram(pytest.Collector):
    """One ATF test program (listed with -l under nbemu)."""

    def __init__(self, *, entry, globs: list[str], **kw) -> None:
        super().__init__(**kw)
        self.entry = entry
        self.globs = globs

    def collect(self):
        prog = _runner(self.config).list_program(self.entry)
        if prog.error or prog.skip:
            from .runner import LIST_CASE
            yield AtfCase.from_parent(self, name=LIST_CASE, program=prog, tc=None)
            return
        for tc in prog.cases:
            if not self.globs or any(fnmatch.fnmatchcase(tc.name, g) for g in self.globs):
                yield AtfCase.from_parent(self, name=tc.name, program=prog, tc=tc)


class AtfCase(pytest.Item):
    def __init__(self, *, program, tc, **kw) -> None:
        super().__init__(**kw)
        self.program = program
        self.tc = tc
        self.add_marker("nbemu_atf")

    def runtest(self) -> None:
        from .runner import CaseResult
        from .tp import Result
        prog = self.program
        if self.tc is None:
            r = CaseResult(prog.entry.name, prog.entry.path, self.name,
                           Result("broken", prog.error) if prog.error
                           else Result("skipped", prog.skip or ""), stderr=prog.list_stderr)
        else:
            r = _runner(self.config).run_case(prog, self.tc)
        res = r.result
        self.user_properties.append(("atf.result", res.status))
        if res.reason:
            self.user_properties.append(("atf.reason", res.reason))
        if r.stdout:
            self.add_report_section("call", "stdout (guest)", r.stdout)
        if r.stderr:
            self.add_report_section("call", "stderr (guest)", r.stderr)
        k = res.kyua
        if k == "passed":
            return
        if k == "skipped":
            raise pytest.skip.Exception(res.reason, _use_item_location=True)
        if k == "expected_failure":
            pytest.xfail(str(res))
        raise AtfCaseFailure(r)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, AtfCaseFailure):
            r = excinfo.value.r
            lines = [f"ATF {r.result.status}: {r.result.reason}",
                     f"program: {r.path}", f"case: {r.case}  ({r.duration:.3f}s)"]
            return "\n".join(lines)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.program.entry.path, 0, f"{self.program.entry.name}:{self.name}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    paths = config.getoption("nbemu_atf")
    if not paths:
        return
    from .cli import split_paths
    from .suite import discover
    plain, globs = split_paths(list(paths))
    for p in plain:
        pats = globs.get(os.path.abspath(p), [])
        for entry in discover(p):
            col = AtfProgram.from_parent(session, name=entry.name, nodeid=entry.name,
                                         entry=entry, globs=pats)
            try:
                items.extend(col.collect())
            except Exception as e:                       # noqa: BLE001 - report, go on
                raise pytest.UsageError(f"--nbemu-atf {p}: {e}") from e
