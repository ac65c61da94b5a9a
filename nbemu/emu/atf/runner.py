"""Run ATF test programs under nbemu: every case in its own nbemu process.

For each program: ``PROG -l`` (under nbemu) lists the cases.  For each case, as
Kyua does:

1. its ``require.*`` metadata is checked against the emulated machine (the
   program's architecture and machine, nbemu's modelled memory, files and programs
   inside the guest root, the guest user, configuration variables); an unmet one
   makes the case ``skipped`` with Kyua's reason;
2. the body runs as ``PROG -r RESFILE -s SRCDIR [-v VAR=VALUE]... CASE`` (``CASE:body``
   when there is a cleanup part) in a fresh work directory that is also HOME and
   TMPDIR, with TZ=UTC, no LANG/LC_*, stdin from /dev/null, in its own process group;
   its ``timeout`` (default 300 s) is enforced by killing that group;
3. the cleanup part, if any, runs in the same work directory (also after a body
   that timed out) with the same timeout;
4. the result file is cross-checked with how the processes ended (emu.atf.tp);
   nbemu's own verdicts come first: a deadlock (exit 125), an emulator error
   (exit 70) or a program nbemu cannot run (126/127) is ``broken`` with nbemu's
   message as the reason.

A program that cannot be listed yields one broken pseudo-case named
``__test_cases_list__`` (Kyua's name) with the precise reason.  Cases marked
``is.exclusive`` run alone after the others.  Nothing a test program does can stop
the runner: every failure becomes a result.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .suite import Entry, discover
from .tp import FormatError, ProcStatus, Result, TestCase, calculate_result, parse_list

# The folder that holds the nbemu package (what PYTHONPATH needs).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LIST_CASE = "__test_cases_list__"
LIST_TIMEOUT = 60.0
OUTPUT_LIMIT = 1 << 20            # bytes of a case's stdout/stderr kept in the reports

EXIT_DEADLOCK = 125
EXIT_INTERNAL = 70


@dataclass
class Config:
    """How to run: nbemu options, parallelism, and the ATF configuration variables."""
    nbemu_opts: list[str] = field(default_factory=list)
    jobs: int = 0                            # 0: os.cpu_count()
    variables: dict[str, str] = field(default_factory=dict)
    keep_workdirs: bool = False
    workroot: str | None = None              # where work directories go (default: TMPDIR)
    python: str = sys.executable
    list_timeout: float = LIST_TIMEOUT
    timeout_override: float | None = None    # replaces every case's timeout (tests, bench)
    fork_server: bool = True                 # fork cases from a warm process (forkserver.py)

    @property
    def root(self) -> str:
        return _opt_value(self.nbemu_opts, "--root") or "/"

    @property
    def njobs(self) -> int:
        return self.jobs if self.jobs > 0 else (os.cpu_count() or 1)


def _opt_value(opts: list[str], name: str) -> str | None:
    val = None
    for i, o in enumerate(opts):
        if o == name and i + 1 < len(opts):
            val = opts[i + 1]
        elif o.startswith(name + "="):
            val = o.split("=", 1)[1]
    return val


@dataclass
class CaseResult:
    program: str                 # display name (relative to the suite top)
    path: str                    # host path of the program
    case: str
    result: Result
    duration: float = 0.0
    stdout: str = ""
    stderr: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    started: float = 0.0         # time.monotonic() when the case started
    ended: float = 0.0

    @property
    def ident(self) -> str:
        return f"{self.program}:{self.case}"


@dataclass
class Program:
    entry: Entry
    cases: list[TestCase] = field(default_factory=list)
    error: str | None = None             # could not be listed: the reason
    skip: str | None = None              # not run at all (unsupported interface)
    machine: str = ""
    arch: str = ""
    list_stderr: str = ""


# ---------------------------------------------------------------- helpers


def program_facts(path: str) -> tuple[str, str]:
    """(machine, machine_arch) of a NetBSD program, e.g. ("amd64", "x86_64").

    Raises guest.elf.ElfError with nbemu's message when nbemu cannot run it.
    """
    from nbemu.guest.exec_elf import read_program
    _, abi = read_program(path)
    return abi.name, abi.machine_arch


def modelled_memory() -> int:
    from nbemu.syscalls.kern_resource import PHYSMEM
    return PHYSMEM


def nbemu_verdict(status: ProcStatus | None, stderr: str) -> str | None:
    """nbemu's own reason for the end of a run, if it was not the guest's doing."""
    if status is None or not status.exited:
        return None
    lines = [ln for ln in stderr.splitlines() if ln.startswith("nbemu: ")]
    if status.exitcode == EXIT_DEADLOCK and any(ln.startswith("nbemu: deadlock") for ln in lines):
        return ("Deadlock: every LWP is blocked forever and no timeout is pending "
                "(nbemu exit 125; the wait-for report is in the case's stderr)")
    if status.exitcode == EXIT_INTERNAL and any("internal error" in ln for ln in lines):
        first = next(ln for ln in lines if "internal error" in ln)
        return f"nbemu internal error (an emulator bug, not the test's): {first[7:]}"
    if status.exitcode in (126, 127) and lines:
        return f"nbemu cannot run the program: {lines[-1][7:]}"
    return None


def _read_text(path: str, limit: int = OUTPUT_LIMIT) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return text if size <= limit else f"[... {size - limit} bytes cut ...]\n" + text


def _guest_path(root: str, host: str) -> str:
    r = os.path.realpath(root)
    h = os.path.realpath(host)
    if r == "/":
        return h
    if h == r:
        return "/"
    if not h.startswith(r + "/"):
        raise ValueError(f"{host} is not inside the guest root {root}")
    return h[len(r):]


_RUNNING: set[int] = set()              # process groups of running cases
_RUNNING_LOCK = threading.Lock()


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def kill_all() -> None:
    """Kill every nbemu process the runner started (on ^C)."""
    with _RUNNING_LOCK:
        groups = list(_RUNNING)
    for g in groups:
        _killpg(g)


@dataclass
class Outcome:
    status: ProcStatus | None            # None: killed at its timeout
    stdout: str
    stderr: str
    duration: float


class Runner:
    """Lists programs and runs their cases; see the module docstring."""

    def __init__(self, config: Config | None = None,
                 on_result: Callable[[CaseResult, int, int], None] | None = None) -> None:
        self.config = config or Config()
        self.on_result = on_result
        self._done = 0
        self._total = 0
        self._lock = threading.Lock()
        self._base_env = self._make_env()
        self._scratch: str | None = None
        self._fs = None                          # ForkServer, started on first use
        self._fs_failed = False
        self._cancelled = threading.Event()
        self.kept: str | None = None             # --keep-workdirs: where they are

    # ------------------------------------------------------------ environment

    def _make_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not (k == "LANG" or k.startswith("LC_"))}
        env["TZ"] = "UTC"
        env["__RUNNING_INSIDE_ATF_RUN"] = "internal-yes-value"
        scrub = ["_NBEMU_ATF_SCRUB"]
        pp = env.get("PYTHONPATH")
        if not pp:
            env["PYTHONPATH"] = REPO
            scrub.append("PYTHONPATH")
        elif REPO not in pp.split(os.pathsep):
            env["PYTHONPATH"] = REPO + os.pathsep + pp
            env["_NBEMU_ATF_PYTHONPATH"] = pp
        env["_NBEMU_ATF_SCRUB"] = ",".join(scrub)
        return env

    def _guest_env_path(self) -> str:
        path = os.environ.get("PATH", "/bin:/usr/bin")
        opts = self.config.nbemu_opts
        for i, o in enumerate(opts):
            if o == "-E" and i + 1 < len(opts) and opts[i + 1].startswith("PATH="):
                path = opts[i + 1][5:]
            if o == "-U" and i + 1 < len(opts) and opts[i + 1] == "PATH":
                path = ""
        return path

    def _scratch_dir(self) -> str:
        with self._lock:
            if self._scratch is None:
                base = self.config.workroot
                root = self.config.root
                if base is None and os.path.realpath(root) != "/":
                    base = os.path.join(root, "tmp")
                    os.makedirs(base, exist_ok=True)
                self._scratch = tempfile.mkdtemp(prefix="nbemu-atf.", dir=base)
            return self._scratch

    def _fork_server(self):
        if not self.config.fork_server or self._fs_failed:
            return None
        with self._lock:
            if self._fs is None:
                from .forkserver import ForkServer
                try:
                    self._fs = ForkServer(self.config.python, self._base_env, REPO)
                except OSError:
                    self._fs_failed = True
                    return None
            return self._fs if self._fs.alive else None

    def cleanup(self) -> None:
        if self._fs is not None:
            self._fs.close()
            self._fs = None
        if self._scratch and not self.config.keep_workdirs:
            shutil.rmtree(self._scratch, ignore_errors=True)
        elif self._scratch:
            self.kept = self._scratch
        self._scratch = None

    # ------------------------------------------------------------ processes

    def _spawn(self, argv: list[str], cwd: str, env: dict[str, str], out: str, err: str,
               timeout: float | None) -> Outcome:
        """Run `python -m nbemu.emu.atf.launch [nbemu options] ARGV`; kill its group at timeout."""
        full = [*self.config.nbemu_opts, *argv]
        fs = self._fork_server()
        if fs is not None:
            from .forkserver import ForkServerError
            t0 = time.monotonic()
            try:
                pid, handle = fs.spawn(full, cwd, env, out, err)
            except ForkServerError:
                self._fs_failed = True
            else:
                with _RUNNING_LOCK:
                    _RUNNING.add(pid)
                try:
                    st = fs.wait(handle, timeout)
                    if st is None:
                        _killpg(pid)
                        fs.wait(handle, None)
                        status: ProcStatus | None = None
                    else:
                        status = ProcStatus.from_returncode(os.waitstatus_to_exitcode(st))
                except ForkServerError as e:
                    _killpg(pid)
                    with open(err, "ab") as fe:
                        fe.write(f"\nnbemu atf: {e}\n".encode())
                    status = ProcStatus(exitcode=EXIT_INTERNAL)
                finally:
                    with _RUNNING_LOCK:
                        _RUNNING.discard(pid)
                return Outcome(status, _read_text(out), _read_text(err),
                               time.monotonic() - t0)
        cmd = [self.config.python, "-m", "nbemu.emu.atf.launch", *full]
        t0 = time.monotonic()
        with open(out, "wb") as fo, open(err, "wb") as fe:
            try:
                p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=fo, stderr=fe, start_new_session=True)
            except OSError as e:
                fe.write(f"nbemu atf: cannot start {cmd[0]}: {e}\n".encode())
                return Outcome(ProcStatus(exitcode=127), "", _read_text(err),
                               time.monotonic() - t0)
            with _RUNNING_LOCK:
                _RUNNING.add(p.pid)
            try:
                try:
                    rc = p.wait(timeout)
                    status = ProcStatus.from_returncode(rc)
                except subprocess.TimeoutExpired:
                    _killpg(p.pid)
                    p.wait()
                    status = None
            finally:
                with _RUNNING_LOCK:
                    _RUNNING.discard(p.pid)
        return Outcome(status, _read_text(out), _read_text(err), time.monotonic() - t0)

    # ------------------------------------------------------------ listing

    def list_program(self, entry: Entry) -> Program:
        prog = Program(entry)
        if entry.error:
            prog.error = entry.error
            return prog
        if entry.interface != "atf":
            prog.skip = (f"The {entry.interface} test interface is not supported by "
                         f"nbemu atf (ATF programs only)")
            return prog
        if not os.path.exists(entry.path):
            prog.error = f"Test program '{entry.path}' does not exist"
            return prog
        if os.path.isdir(entry.path):
            prog.error = f"Test program '{entry.path}' is a directory"
            return prog
        from nbemu.guest.elf import ElfError
        try:
            prog.machine, prog.arch = program_facts(entry.path)
        except ElfError as e:
            prog.error = f"nbemu cannot run the test program: {e}"
            return prog
        except Exception as e:                          # noqa: BLE001 - never crash
            prog.error = f"cannot read the test program: {type(e).__name__}: {e}"
            return prog
        d = tempfile.mkdtemp(prefix="list.", dir=self._scratch_dir())
        try:
            env = dict(self._base_env, HOME=d, TMPDIR=d)
            # Under --root the guest sees the program's folder by its guest path: name
            # it (-s), as the case runs do, or atf-c looks for itself by argv[0].
            srcdir = os.path.dirname(os.path.abspath(entry.path))
            src = ["-s", _guest_path(self.config.root, srcdir)] \
                if os.path.realpath(self.config.root) != "/" \
                and _inside(self.config.root, srcdir) else []
            o = self._spawn([entry.path, *src, "-l"], d, env, os.path.join(d, ".stdout"),
                            os.path.join(d, ".stderr"), self.config.list_timeout)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        prog.list_stderr = o.stderr
        if o.status is None:
            prog.error = f"Test case list timed out (after {self.config.list_timeout:g} s)"
            return prog
        verdict = nbemu_verdict(o.status, o.stderr)
        if verdict:
            prog.error = verdict
            return prog
        if not (o.status.exited and o.status.exitcode == 0):
            last = o.stderr.strip().splitlines()[-1:] or [""]
            prog.error = (f"Test program did not exit cleanly when listing its test cases "
                          f"({o.status})" + (f": {last[0]}" if last[0] else ""))
            return prog
        try:
            prog.cases = parse_list(o.stdout)
        except FormatError as e:
            prog.error = f"Invalid test case list: {e}"
        return prog

    # ------------------------------------------------------------ requirements

    def check_requirements(self, prog: Program, tc: TestCase, workdir: str) -> str | None:
        """Kyua's check_reqs against the emulated machine: the skip reason or None."""
        cfg = self.config.variables
        for v in tc.required_config:
            names = {v, v.replace("-", "_"), v.replace("_", "-")}
            if not names & cfg.keys():
                return f"Required configuration property '{v}' not defined"
        if tc.required_arch and prog.arch not in tc.required_arch:
            return f"Current architecture '{prog.arch}' not supported"
        if tc.execenv not in ("", "host"):
            return (f"'{tc.execenv}' execenv is not supported or not allowed by the "
                    f"runtime user configuration")
        if tc.required_machine and prog.machine not in tc.required_machine:
            return f"Current platform '{prog.machine}' not supported"
        user = tc.required_user
        if user == "root" and os.geteuid() != 0:
            return "Requires root privileges"
        if user == "unprivileged" and os.geteuid() == 0 and not (
                {"unprivileged-user", "unprivileged_user"} & cfg.keys()):
            return ("Requires an unprivileged user but the unprivileged-user configuration "
                    "variable is not defined")
        root = self.config.root
        for f in tc.required_files:
            if not os.path.exists(os.path.join(root, f.lstrip("/"))):
                return f"Required file '{f}' not found"
        for p in tc.required_progs:
            if p.startswith("/"):
                if not os.path.exists(os.path.join(root, p.lstrip("/"))):
                    return f"Required program '{p}' not found"
            else:
                dirs = [d for d in self._guest_env_path().split(":") if d]
                if not any(os.path.isfile(os.path.join(root, d.lstrip("/"), p))
                           and os.access(os.path.join(root, d.lstrip("/"), p), os.X_OK)
                           for d in dirs):
                    return f"Required program '{p}' not found in PATH"
        for m in tc.required_kmods:
            return f"Required kernel module '{m}' not loaded (nbemu has no kernel modules)"
        mem = tc.required_memory
        if mem > 0:
            have = modelled_memory()
            if have < mem:
                return (f"Requires {mem} bytes of physical memory but only {have} "
                        f"available")
        disk = tc.required_diskspace
        if disk > 0:
            free = shutil.disk_usage(workdir).free
            if free < disk:
                return f"Requires {disk} bytes of free disk space but only {free} available"
        return None

    # ------------------------------------------------------------ running a case

    def run_case(self, prog: Program, tc: TestCase) -> CaseResult:
        e = prog.entry
        res = CaseResult(e.name, e.path, tc.name, Result("broken", "not run"),
                         metadata=dict(tc.metadata), started=time.monotonic())
        try:
            self._run_case(prog, tc, res)
        except Exception as ex:                         # noqa: BLE001 - never crash
            res.result = Result("broken", f"nbemu atf runner error: "
                                          f"{type(ex).__name__}: {ex}")
        res.ended = time.monotonic()
        return res

    def _run_case(self, prog: Program, tc: TestCase, res: CaseResult) -> None:
        ctl = tempfile.mkdtemp(prefix=f"{tc.name}.", dir=self._scratch_dir())
        work = os.path.join(ctl, "work")
        os.mkdir(work)
        try:
            skip = self.check_requirements(prog, tc, work)
            if skip:
                res.result = Result("skipped", skip)
                return
            root = self.config.root
            resfile = os.path.join(ctl, "result")
            srcdir = os.path.dirname(os.path.abspath(prog.entry.path))
            args = ["-r", _guest_path(root, resfile), "-s", _guest_path(root, srcdir)
                    if _inside(root, srcdir) else srcdir]
            for k, v in sorted(self.config.variables.items()):
                args += ["-v", f"{k}={v}"]
            env = dict(self._base_env, HOME=_guest_path(root, work),
                       TMPDIR=_guest_path(root, work))
            timeout = (self.config.timeout_override if self.config.timeout_override
                       is not None else tc.timeout)
            part = f"{tc.name}:body" if tc.has_cleanup else tc.name
            body = self._spawn([prog.entry.path, *args, part], work, env,
                               os.path.join(ctl, "stdout"), os.path.join(ctl, "stderr"),
                               timeout)
            res.stdout, res.stderr = body.stdout, body.stderr
            res.duration = body.duration
            cleanup: ProcStatus | None | bool = True
            if tc.has_cleanup:
                c = self._spawn([prog.entry.path, *args[2:], f"{tc.name}:cleanup"], work,
                                env, os.path.join(ctl, "stdout.cleanup"),
                                os.path.join(ctl, "stderr.cleanup"), timeout)
                cleanup = c.status
                res.duration += c.duration
                if c.stdout:
                    res.stdout += "\n--- cleanup stdout ---\n" + c.stdout
                if c.stderr:
                    res.stderr += "\n--- cleanup stderr ---\n" + c.stderr
            verdict = nbemu_verdict(body.status, body.stderr)
            if verdict:
                res.result = Result("broken", verdict)
                return
            try:
                with open(resfile, encoding="utf-8", errors="replace") as f:
                    text: str | None = f.read()
            except FileNotFoundError:
                text = None
            except OSError as ex:
                text = None
                res.stderr += f"\nnbemu atf: cannot read the result file: {ex}\n"
            result = calculate_result(body.status, cleanup, text)
            if body.status is None and result.status == "broken":
                result = Result("broken", f"Test case body timed out (after {timeout:g} s; "
                                          f"nbemu killed)")
            if result.status == "broken" and cleanup is not True and cleanup is not None:
                v = nbemu_verdict(cleanup, res.stderr)
                if v and "cleanup" in result.reason:
                    result = Result("broken", f"Test case cleanup: {v}")
            res.result = result
        finally:
            if not self.config.keep_workdirs:
                shutil.rmtree(ctl, ignore_errors=True)

    # ------------------------------------------------------------ everything

    def _report(self, r: CaseResult) -> None:
        with self._lock:
            self._done += 1
            done, total = self._done, self._total
        if self.on_result is not None:
            self.on_result(r, done, total)

    def run(self, paths: Iterable[str] | Iterable[Entry],
            case_filter: Callable[[Entry, TestCase], bool] | None = None
            ) -> list[CaseResult]:
        """Every case of every program; results in suite order."""
        entries: list[Entry] = []
        for p in paths:
            entries.extend([p] if isinstance(p, Entry) else discover(p))
        try:
            return self._run(entries, case_filter)
        finally:
            self.cleanup()

    def _pool_map(self, fn, items: list) -> list:
        """fn over items on -j threads; on ^C (or any exception) nothing new starts,
        running cases are killed, and the exception goes on."""
        pool = ThreadPoolExecutor(max_workers=self.config.njobs)
        try:
            out = list(pool.map(fn, items))
        except BaseException:
            self._cancelled.set()
            pool.shutdown(wait=False, cancel_futures=True)
            kill_all()
            raise
        pool.shutdown()
        return out

    def _run(self, entries: list[Entry], case_filter) -> list[CaseResult]:
        programs = self._pool_map(self.list_program, entries)
        slots: list[list[CaseResult | None]] = []
        parallel: list[tuple[int, int, Program, TestCase]] = []
        exclusive: list[tuple[int, int, Program, TestCase]] = []
        fixed: list[CaseResult] = []
        for i, prog in enumerate(programs):
            e = prog.entry
            if prog.error or prog.skip:
                r = CaseResult(e.name, e.path, LIST_CASE,
                               Result("broken", prog.error) if prog.error
                               else Result("skipped", prog.skip or ""),
                               stderr=prog.list_stderr)
                slots.append([r])
                fixed.append(r)
                continue
            cases = [tc for tc in prog.cases if case_filter is None or case_filter(e, tc)]
            slots.append([None] * len(cases))
            for j, tc in enumerate(cases):
                (exclusive if tc.is_exclusive else parallel).append((i, j, prog, tc))
        self._total = len(fixed) + len(parallel) + len(exclusive)
        for r in fixed:
            self._report(r)

        def one(item: tuple[int, int, Program, TestCase]) -> None:
            if self._cancelled.is_set():
                return
            i, j, prog, tc = item
            r = self.run_case(prog, tc)
            if self._cancelled.is_set():      # killed by ^C: not a result
                return
            slots[i][j] = r
            self._report(r)

        self._pool_map(one, parallel)
        for item in exclusive:
            one(item)
        return [r for s in slots for r in s if r is not None]


def _inside(root: str, path: str) -> bool:
    try:
        _guest_path(root, path)
        return True
    except ValueError:
        return False
