"""``nbemu atf``: run NetBSD ATF test programs under nbemu.

    nbemu atf [-j N] [--junit FILE] [--html DIR] [-v VAR=VALUE]... [-q]
              [--list] [--kyua-suite DIR] [--keep-workdirs] [--no-fork-server]
              [nbemu options] PATH[:CASE]...

PATH is a test program or a directory with a Kyuafile/Atffile tree; ``PATH:GLOB``
selects cases (``t_foo:test_*``).  nbemu options (--ncpu, --deterministic, --seed,
--root, --strace, --trace, -E, -U) apply to every case.  Exit status: 0 when every
case passed, was skipped or failed as expected; 1 when any failed or broke; 2 for
usage errors.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import threading
import time

USAGE = __doc__


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="nbemu atf",
        description="Run NetBSD ATF test programs under nbemu, one nbemu process per test "
                    "case, in parallel; Kyua-like summary, JUnit XML and HTML reports.",
        epilog="Exit status: 0 when nothing failed or broke, 1 otherwise, 2 on usage errors. "
               "See README.md, section 'ATF test suites'.")
    ap.add_argument("paths", nargs="+", metavar="PATH[:CASE]",
                    help="a test program, or a directory with a Kyuafile or an Atffile; "
                         ":CASE (a glob) selects test cases")
    ap.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                    help="cases run at once (default: the host's cores)")
    ap.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    ap.add_argument("--html", metavar="DIR", help="write an HTML report (DIR/index.html)")
    ap.add_argument("-v", dest="variables", action="append", default=[], metavar="VAR=VALUE",
                    help="an ATF configuration variable, passed to every case (-v)")
    ap.add_argument("-q", "--quiet", action="store_true",
                    help="print only the cases that did not pass, and the summary")
    ap.add_argument("--list", action="store_true",
                    help="list the test cases (program:case and description); run nothing")
    ap.add_argument("--kyua-suite", metavar="DIR",
                    help="write a suite for the real Kyua into DIR (Kyuafile + wrappers that "
                         "run each program under nbemu with these options); run nothing")
    ap.add_argument("--keep-workdirs", action="store_true",
                    help="keep each case's work directory and output files")
    ap.add_argument("--no-fork-server", action="store_true",
                    help="start every case as a new Python process (slower start-up)")
    ap.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                    help="replace every case's timeout metadata")
    g = ap.add_argument_group("nbemu options (applied to every case)")
    g.add_argument("--ncpu", type=int, metavar="N")
    g.add_argument("--deterministic", action="store_true")
    g.add_argument("--seed", type=int, metavar="S")
    g.add_argument("--root", metavar="DIR")
    g.add_argument("--strace", nargs="?", const="-", default=None, metavar="FILE")
    g.add_argument("--trace", metavar="CLASSES")
    g.add_argument("-E", dest="setenv", action="append", default=[], metavar="VAR=VALUE")
    g.add_argument("-U", dest="unsetenv", action="append", default=[], metavar="VAR")
    return ap


def nbemu_options(ns: argparse.Namespace) -> list[str]:
    opts: list[str] = []
    if ns.ncpu is not None:
        opts += ["--ncpu", str(ns.ncpu)]
    if ns.deterministic:
        opts.append("--deterministic")
    if ns.seed is not None:
        opts += ["--seed", str(ns.seed)]
    if ns.root is not None:
        opts += ["--root", os.path.abspath(ns.root)]
    if ns.strace is not None:
        opts.append("--strace" if ns.strace == "-" else f"--strace={os.path.abspath(ns.strace)}")
    if ns.trace is not None:
        opts += ["--trace", ns.trace]
    for kv in ns.setenv:
        opts += ["-E", kv]
    for k in ns.unsetenv:
        opts += ["-U", k]
    return opts


def split_paths(paths: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """PATH[:GLOB] arguments: the paths and, per path, the case globs (if any)."""
    out: list[str] = []
    globs: dict[str, list[str]] = {}
    for p in paths:
        path, pat = p, None
        if not os.path.exists(p) and ":" in p:
            path, pat = p.rsplit(":", 1)
        ap = os.path.abspath(path)
        if ap not in globs:
            out.append(path)
            globs[ap] = []
        if pat:
            globs[ap].append(pat)
    return out, globs


def kyua_commands(suite_dir: str, kyuafile: str) -> list[str]:
    """What to run after --kyua-suite. Kyua files results under the suite's
    directory name, and `kyua report` without --results-file looks for those of
    the current directory ("No previous results file found for test suite ...");
    --results-file=DIR names the latest results of the suite in DIR, from anywhere."""
    import shlex
    d = shlex.quote(os.path.abspath(suite_dir))
    conf = shlex.quote(os.path.join(os.path.abspath(suite_dir), "kyua.conf"))
    return [f"Kyua suite written: {kyuafile}",
            f"run it with:    kyua --config={conf} test --kyuafile={shlex.quote(kyuafile)}",
            f"report with:    kyua report --results-file={d}",
            f"JUnit XML with: kyua report-junit --results-file={d} --output=report.xml"]


class Progress:
    """Case lines on stdout; on a terminal, a progress bar on stderr under them."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def _bar(self, done: int, total: int) -> str:
        width = 30
        fill = width * done // total if total else width
        el = time.monotonic() - self.t0
        return f"\r\033[K[{'#' * fill}{'.' * (width - fill)}] {done}/{total}  {el:.1f}s"

    def __call__(self, r, done: int, total: int) -> None:
        from .report import case_line
        with self.lock:
            if self.tty:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()
            if not (self.quiet and r.result.good):
                print(case_line(r), flush=True)
            if self.tty:
                sys.stderr.write(self._bar(done, total))
                sys.stderr.flush()

    def finish(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `--strace` takes its FILE only as `--strace=FILE`, as in nbemu's own CLI.
    argv = ["--strace=-" if a == "--strace" else a for a in argv]
    ns = _parser().parse_args(argv)
    variables: dict[str, str] = {}
    for kv in ns.variables:
        if "=" not in kv or kv.startswith("="):
            print(f"nbemu atf: -v {kv}: expected VAR=VALUE", file=sys.stderr)
            return 2
        k, v = kv.split("=", 1)
        variables[k] = v
    if ns.root is not None and not os.path.isdir(ns.root):
        print(f"nbemu atf: --root {ns.root}: not a directory", file=sys.stderr)
        return 2
    if ns.ncpu is not None and not 1 <= ns.ncpu <= 256:
        print("nbemu atf: --ncpu must be between 1 and 256", file=sys.stderr)
        return 2
    opts = nbemu_options(ns)
    paths, globs = split_paths(ns.paths)

    if ns.kyua_suite:
        from .kyua import prepare_suite
        try:
            kf = prepare_suite(ns.kyua_suite, paths, opts, variables, parallelism=ns.jobs)
        except (OSError, ValueError) as e:
            print(f"nbemu atf: {e}", file=sys.stderr)
            return 2
        for line in kyua_commands(ns.kyua_suite, kf):
            print(line)
        return 0

    from .runner import Config, Runner, kill_all
    from .suite import discover

    def case_filter(entry, tc) -> bool:
        # An entry belongs to the PATH it was found under.
        for top, pats in globs.items():
            if entry.path == top or entry.path.startswith(top.rstrip("/") + "/"):
                return not pats or any(fnmatch.fnmatchcase(tc.name, p) for p in pats)
        return True

    config = Config(nbemu_opts=opts, jobs=ns.jobs, variables=variables,
                    keep_workdirs=ns.keep_workdirs, fork_server=not ns.no_fork_server,
                    timeout_override=ns.timeout)
    if ns.list:
        runner = Runner(config)
        try:
            entries = [e for p in paths for e in discover(p)]
            bad = False
            for e in entries:
                prog = runner.list_program(e)
                if prog.error or prog.skip:
                    bad = bad or bool(prog.error)
                    print(f"{e.name}:__test_cases_list__  ->  "
                          f"{'broken: ' + prog.error if prog.error else 'skipped: ' + str(prog.skip)}")
                    continue
                for tc in prog.cases:
                    if case_filter(e, tc):
                        d = f"  ({tc.description})" if tc.description else ""
                        print(f"{e.name}:{tc.name}{d}")
        finally:
            runner.cleanup()
        return 1 if bad else 0

    progress = Progress(ns.quiet)
    runner = Runner(config, on_result=progress)
    t0 = time.monotonic()
    try:
        results = runner.run(paths, case_filter)
    except KeyboardInterrupt:
        kill_all()
        runner.cleanup()
        progress.finish()
        print("nbemu atf: interrupted", file=sys.stderr)
        return 130
    wall = time.monotonic() - t0
    progress.finish()
    from .report import failed, summary, write_html, write_junit
    print()
    print(summary(results, wall))
    if ns.junit:
        write_junit(results, ns.junit)
        print(f"JUnit report: {ns.junit}")
    if ns.html:
        print(f"HTML report: {write_html(results, ns.html, wall)}")
    if runner.kept:
        print(f"Work directories and outputs kept in {runner.kept}")
    if not results:
        print("nbemu atf: no test cases found", file=sys.stderr)
        return 1
    return 1 if failed(results) else 0


if __name__ == "__main__":
    sys.exit(main())
