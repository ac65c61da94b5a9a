"""pytest plugin: NetBSD ATF test cases as pytest items, run under nbemu.

    pytest --nbemu-atf PATH [--nbemu-atf PATH2 ...] [--nbemu-atf-opts "--ncpu 2"]
           [--nbemu-atf-var VAR=VALUE] [-n N]

PATH is a test program or a directory with a Kyuafile/Atffile tree (``PATH:GLOB``
selects cases), as for ``nbemu atf``.  Each case becomes an item named
``<program path>::<case>`` (e.g. ``tests/sub/t_foo::test_bar``, the path relative
to pytest's rootdir as for any test file), an id pytest takes back:
``pytest tests/sub/t_foo::test_bar`` runs that case again (a NetBSD test program
named on the command line is collected as one, even without ``--nbemu-atf``).
Outcomes: passed -> passed; failed and
broken -> failure with the ATF reason (and the case's output); skipped -> skip;
``expected_*`` -> xfail.  The ATF status goes into the item's user properties
(``atf.result``, ``atf.reason``: pytest's JUnit XML shows them).  With pytest-xdist
(``-n N``), items spread over workers like any others; each worker lists the
programs once and keeps one nbemu fork server.

When ``--nbemu-atf`` is given without other paths, only the ATF cases are
collected (not the ``testpaths`` of the invoking project).

Registered as the ``emu.atf.pytest_plugin`` entry point of the ``pytest11`` group
(pyproject): the same name as ``-p emu.atf.pytest_plugin``, which a checkout without
nbemu installed needs and which is then harmless when nbemu is installed (pytest
registers a plugin once per name); ``-p no:emu.atf.pytest_plugin`` turns it off.  Without ``--nbemu-atf`` it does
nothing and imports nothing heavy.
"""
from __future__ import annotations

import fnmatch
import os
import shlex
from pathlib import Path

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
    config.addinivalue_line("markers", "nbemu_atf: an ATF test case run under nbemu")
    if not config.getoption("nbemu_atf"):
        return
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


class AtfProgram(pytest.File):
    """One ATF test program (listed with -l under nbemu): a file node, so that its
    node id is its path, as for any test file."""

    def __init__(self, *, entry=None, globs: list[str] | None = None, **kw) -> None:
        super().__init__(**kw)
        if entry is None:                       # named on pytest's command line
            from .suite import Entry
            entry = Entry(str(self.path), self.path.name, "")
        self.entry = entry
        self.globs = globs or []

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


def _is_netbsd_program(path: Path) -> bool:
    """A NetBSD ELF (the ident note or OS/ABI), read cheaply: only files named on the
    command line are looked at."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    if head != b"\x7fELF":
        return False
    from nbemu.guest.elf import ElfError
    from nbemu.guest.exec_elf import read_program
    try:
        read_program(str(path))
    except ElfError as e:
        return "not supported" in str(e)         # NetBSD, but another architecture
    return True


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    """`pytest PROGRAM::CASE`: the ids this plugin prints, taken back."""
    if file_path not in parent.session._initialpaths:
        return None
    if not os.access(file_path, os.X_OK) or not _is_netbsd_program(file_path):
        return None
    return AtfProgram.from_parent(parent, path=file_path)


def _program_nodeid(config: pytest.Config, path: str) -> str:
    """The program's path relative to the rootdir (with `..` when outside it), so that
    pytest's summary lines name a path that exists, relative to the current directory."""
    rel = os.path.relpath(os.path.abspath(path), config.rootpath)
    return rel.replace(os.sep, "/")


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
            col = AtfProgram.from_parent(session, path=Path(os.path.abspath(entry.path)),
                                         nodeid=_program_nodeid(config, entry.path),
                                         entry=entry, globs=pats)
            try:
                items.extend(col.collect())
            except Exception as e:                       # noqa: BLE001 - report, go on
                raise pytest.UsageError(f"--nbemu-atf {p}: {e}") from e
