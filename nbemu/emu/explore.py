"""`nbemu explore`: run a program under many deterministic schedules and report
the first one that fails, with the command that replays it.

    nbemu explore [--runs N] [--strategy pct|random] [--seed S] [--depth D]
                  [--timeout SEC] [--jobs J] [nbemu options] PROGRAM [ARGS...]
    nbemu explore --replay SEED [--strategy pct --depth D --steps K]
                  [nbemu options] PROGRAM [ARGS...]

Run i (i = 0 .. N-1) uses seed S+i under `--deterministic`; run 0 is the
reference. A run fails when it exits non-zero, crashes, deadlocks (125), hangs
past --timeout, or prints (stdout) something else than the reference. The first
failing run is reported with its replay command; exit status 1 (0: no failure
in N runs, 2: usage).

Strategies (both reproducible from the seed alone):

- random: nbemu's own --deterministic schedule (seeded vCPU choice, seeded
  slice lengths). The replay is plain `nbemu --deterministic --seed SEED ...`.
- pct (default): probabilistic concurrency testing (Burckhardt, Kothari,
  Musuvathi, Nagarakatte, ASPLOS 2010). Each LWP gets a random priority when it
  first appears; the vCPU whose LWP has the highest priority runs; D-1 change
  points are drawn among the K steps of a run (K: system calls of the reference
  run) and at the i-th one the LWP that made that system call drops to priority
  D-1-i, below every other LWP, and loses its CPU at once. A bug of depth d
  (d ordering constraints) is found with probability >= 1/(n K^(d-1)) per run.
  Steps are system calls: the preemption points nbemu can place exactly, and
  the places where racy windows open. Two departures from the paper: an LWP
  whose turn ends while it is still runnable (slice expired, sched_yield)
  twice in a row drops below every other LWP, so that spin-waiting cannot
  starve the LWP it waits for (PCT assumes waiting blocks); and priorities
  pick among vCPUs, while within a vCPU NetBSD's run queue order holds
  (nbemu's default 4 vCPUs give small programs one each).
  The replay is `nbemu explore --replay SEED --strategy pct --depth D --steps K ...`
  (plain nbemu has no PCT scheduler).

The policy object plugs into the kernel's scheduling hook (`Kernel.sched_policy`:
`pick_cpu(busy_cpus)` and `slice_budget(ci, l)`, consulted only in
--deterministic mode) and counts steps through the after-system-call slot.

Each run is a fork of this process (modules already imported), its stdout and
stderr in temporary files; `--jobs J` runs J at once.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from nbemu.syscalls.kern_synch import preempt
from nbemu.syscalls.kernel import DET_SLICE_BLOCKS



# -- the PCT scheduling policy ---------------------------------------------------------------
class PctPolicy:
    """PCT priorities for Kernel.sched_policy (see the module docstring)."""

    PATIENCE = 2          # turns ended still runnable, in a row, before a fairness drop

    def __init__(self, k: Any, seed: int, depth: int = 3, steps: int = 100) -> None:
        self.k = k
        self.rng = random.Random(f"pct:{seed}")
        self.depth = max(1, depth)
        self.steps = max(1, steps)
        n = min(self.depth - 1, self.steps)
        self.change_points = sorted(self.rng.sample(range(1, self.steps + 1), n))
        self.prio: dict[int, float] = {}
        self.step = 0
        self.changed = 0                  # change points passed
        self.stuck: dict[int, int] = {}   # lid -> turns in a row it ended still runnable
        self.last: Any = None             # the LWP of the previous turn
        self.demoted_now = False

    def install(self) -> "PctPolicy":
        from .trace import add_syscall_hook
        self.k.sched_policy = self
        add_syscall_hook(self.k, self.on_syscall)
        return self

    def priority(self, l: Any) -> float:
        p = self.prio.get(l.l_lid)
        if p is None:
            p = self.prio[l.l_lid] = self.depth + self.rng.random()
        return p

    def on_syscall(self, l: Any, code: int, args: tuple, error: int, retval: list) -> None:
        self.step += 1
        if self.changed < len(self.change_points) and self.step == self.change_points[self.changed]:
            self.prio[l.l_lid] = self.depth - 1 - self.changed + 0.5
            self.changed += 1
            self.demoted_now = True
            self.k.platform.request_stop()     # the LWP loses its CPU right after this call

    def _cpu_prio(self, ci: Any) -> tuple[float, Any]:
        best, who = -1.0, None
        if ci.ci_curlwp is not None:
            best, who = self.priority(ci.ci_curlwp), ci.ci_curlwp
        for q in ci.spc_queue:
            for l in q:
                p = self.priority(l)
                if p > best:
                    best, who = p, l
        return best, who

    def _fairness(self) -> None:
        from nbemu.syscalls.lwp import LSONPROC, LSRUN
        prev = self.last
        if prev is None:
            return
        if prev.l_stat in (LSONPROC, LSRUN) and not self.demoted_now:
            n = self.stuck.get(prev.l_lid, 0) + 1
            self.stuck[prev.l_lid] = n
            if n >= self.PATIENCE:
                # It waits for someone without blocking: let every other LWP go first.
                self.prio[prev.l_lid] = min(self.prio.values()) - 1
                self.stuck[prev.l_lid] = 0
        else:
            self.stuck[prev.l_lid] = 0
        self.demoted_now = False

    def pick_cpu(self, busy: list) -> Any:
        self._fairness()
        best = max(busy, key=lambda ci: self._cpu_prio(ci)[0])
        _, who = self._cpu_prio(best)
        cur = best.ci_curlwp
        if cur is not None and who is not cur:
            preempt(self.k, best)          # a queued LWP outranks the current one
        self.last = who
        return best

    def slice_budget(self, ci: Any, l: Any) -> int:
        return self.rng.randint(*DET_SLICE_BLOCKS)


# -- nbemu options -------------------------------------------------------------------------------
def options_from_argv(argv: list[str]):
    """nbemu's own command line (options, PROGRAM, ARGS) -> (Options, program, args).
    The same parser as the nbemu command; --deterministic is implied."""
    from . import cli
    from .boot import Options
    argv = list(argv)
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            break
        if a == "--strace":
            argv[i] = "--strace=-"
        elif a in cli._TAKES_VALUE:
            i += 1
        i += 1
    ns = cli._parser().parse_args(argv)
    from .guest_env import EnvError, guest_env
    try:
        env, _ = guest_env(ns.setenv, ns.unsetenv, ns.root)
    except EnvError as e:
        raise SystemExit(f"nbemu explore: {e}") from None
    strace = None
    if ns.strace is not None:
        strace = sys.stderr if ns.strace == "-" else open(ns.strace, "w")
    opts = Options(ncpu=ns.ncpu, deterministic=True, seed=ns.seed, root=os.path.abspath(ns.root),
                   strace=strace, env=env, argv0=ns.argv0, sched_log=True, trace=ns.trace,
                   timeline=ns.timeline)
    return opts, ns.program, list(ns.args)


@dataclass
class Plan:
    strategy: str
    depth: int
    steps: int
    nbemu_argv: list[str]                    # nbemu options, PROGRAM, ARGS (as given)
    opts_argv: list[str] = field(default_factory=list)    # the options part only
    program_argv: list[str] = field(default_factory=list)  # PROGRAM ARGS

    def replay_command(self, seed: int) -> str:
        if self.strategy == "random":
            cmd = ["nbemu", "--deterministic", "--seed", str(seed)]
        else:
            cmd = ["nbemu", "explore", "--replay", str(seed), "--strategy", "pct",
                   "--depth", str(self.depth), "--steps", str(self.steps)]
        return shlex.join(cmd + self.opts_argv + self.program_argv)


def _split_nbemu_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """nbemu options | PROGRAM ARGS, split where nbemu's own parser finds PROGRAM."""
    from . import cli
    fixed = ["--strace=-" if a == "--strace" else a for a in argv]
    ns = cli._parser().parse_args(fixed)       # (usage errors exit 2, as nbemu's)
    i = len(argv) - len(ns.args) - 1
    if i < 0 or argv[i] != ns.program:
        raise SystemExit(f"nbemu explore: cannot find PROGRAM in {shlex.join(argv)}")
    return argv[:i], argv[i:]


def run_once(plan: Plan, seed: int) -> dict:
    """One run in this process (its output goes to fds 1 and 2): the exit
    status, the steps seen and the schedule hash."""
    from .boot import Session
    from .trace import add_syscall_hook
    opts, program, args = options_from_argv(plan.opts_argv + ["--seed", str(seed)]
                                            + plan.program_argv)
    s = Session(program, args, opts)
    k = s.kernel
    counter = [0]
    if plan.strategy == "pct":
        pol = PctPolicy(k, seed, plan.depth, plan.steps).install()
    else:
        pol = None

        def count(*_a) -> None:
            counter[0] += 1
        add_syscall_hook(k, count)
    real = sys.stderr
    sys.stderr = _DropScheduleLine(real)      # (the hash is returned instead)
    try:
        status = s.run()
    finally:
        sys.stderr.flush()
        sys.stderr = real
    return {"status": status, "steps": pol.step if pol is not None else counter[0],
            "schedule": s.schedule_hash()}


class _DropScheduleLine:
    """stderr without boot's "nbemu: schedule HASH" line (runs keep a schedule log)."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.buf = ""

    def write(self, text: str) -> int:
        self.buf += text
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            if not line.startswith("nbemu: schedule "):
                self.out.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self.buf:
            self.out.write(self.buf)
            self.buf = ""
        self.out.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.out, name)


@dataclass
class Result:
    seed: int
    status: int | None           # None: timed out
    stdout: bytes
    stderr: bytes
    steps: int = 0
    schedule: str = ""
    seconds: float = 0.0


def _fork_run(plan: Plan, seed: int, tmpdir: str) -> tuple[int, tuple[str, str, str]]:
    paths = tuple(os.path.join(tmpdir, f"{seed}.{x}") for x in ("out", "err", "json"))
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:                                    # the child: one run, then _exit
        code = 0
        try:
            fd1 = os.open(paths[0], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            fd2 = os.open(paths[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd1, 1)
            os.dup2(fd2, 2)
            info = run_once(plan, seed)
            with open(paths[2], "w") as f:
                json.dump(info, f)
        except BaseException:                       # noqa: BLE001 (report, never escape)
            import traceback
            traceback.print_exc()
            code = 3
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid, paths


def _collect(pid: int, paths: tuple[str, str, str], seed: int, deadline: float,
             t0: float) -> Result:
    status: int | None = None
    while True:
        done, wst = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            wst = None
            break
        time.sleep(0.005)
    out = open(paths[0], "rb").read() if os.path.exists(paths[0]) else b""
    err = open(paths[1], "rb").read() if os.path.exists(paths[1]) else b""
    info: dict = {}
    if wst is not None and os.path.exists(paths[2]):
        with open(paths[2]) as f:
            info = json.load(f)
        status = info["status"]
    elif wst is not None:
        status = 70                               # the run itself failed: nbemu's bug
    for p in paths:
        if os.path.exists(p):
            os.unlink(p)
    return Result(seed, status, out, err, info.get("steps", 0), info.get("schedule", ""),
                  time.monotonic() - t0)


def failure(r: Result, ref: Result | None) -> str | None:
    """Why run r failed, or None."""
    if r.status is None:
        return "hang: no exit before the timeout"
    if r.status == 125:
        return "deadlock (exit 125)"
    if r.status == 70:
        return "nbemu internal error (exit 70)"
    if r.status > 128:
        from nbemu.syscalls.signals import signame
        return f"crash: killed by signal {r.status - 128} ({signame(r.status - 128)})"
    if r.status != 0:
        return f"exit status {r.status}"
    if ref is not None and r.stdout != ref.stdout:
        a, b = ref.stdout.splitlines(), r.stdout.splitlines()
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return (f"output differs from the reference run at line {i + 1}: "
                        f"{y.decode('latin-1')!r} instead of {x.decode('latin-1')!r}")
        return f"output differs from the reference run ({len(b)} lines instead of {len(a)})"
    return None


def explore(plan: Plan, runs: int, seed: int, timeout: float, jobs: int,
            log=print, on_result=None, compare_output: bool = True
            ) -> tuple[Result | None, str | None, list[Result], Plan]:
    """Runs seeds seed .. seed+runs-1, run 0 first and alone: the reference (and,
    for PCT without --steps, the measure of K under nbemu's ordinary schedule).
    Returns (the failing result or None, why, all results in seed order, the plan
    that replays the failing run). on_result(result, runs done, runs) is called
    as each run finishes."""
    results: list[Result] = []
    note = on_result or (lambda r, done, total: None)
    from . import boot, crash, trace  # noqa: F401  (imported once here, not in every run)
    with tempfile.TemporaryDirectory(prefix="nbemu-explore-") as tmp:
        def start(p: Plan, sd: int) -> tuple:
            t0 = time.monotonic()
            pid, paths = _fork_run(p, sd, tmp)
            return pid, paths, sd, t0

        ref_plan = plan
        if plan.strategy == "pct" and plan.steps <= 0:
            ref_plan = Plan("random", plan.depth, 0, plan.nbemu_argv, plan.opts_argv,
                            plan.program_argv)
        pid, paths, sd, t0 = start(ref_plan, seed)
        ref = _collect(pid, paths, sd, t0 + timeout, t0)
        results.append(ref)
        if plan.strategy == "pct" and plan.steps <= 0:
            plan.steps = max(1, ref.steps)
        log(f"nbemu explore: strategy {plan.strategy}"
            + (f" (depth {plan.depth}, {plan.steps} steps)" if plan.strategy == "pct" else "")
            + f", seeds {seed}..{seed + runs - 1}: {shlex.join(plan.program_argv)}")
        note(ref, 1, runs)
        why = failure(ref, None)
        if why is not None:
            return ref, why, results, ref_plan
        pending: list[tuple] = []
        next_seed = seed + 1
        last = seed + runs - 1
        while pending or next_seed <= last:
            while next_seed <= last and len(pending) < jobs:
                pending.append(start(plan, next_seed))
                next_seed += 1
            pid, paths, sd, t0 = pending.pop(0)
            r = _collect(pid, paths, sd, t0 + timeout, t0)
            results.append(r)
            note(r, len(results), runs)
            why = failure(r, ref if compare_output else None)
            if why is not None:
                for p in pending:                 # the later runs are not needed
                    try:
                        os.kill(p[0], signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    os.waitpid(p[0], 0)
                return r, why, results, plan
    return None, None, results, plan


class Progress:
    """What the user sees while runs go on: with -v, one line per run as it
    finishes; on a terminal, a progress line under them (rewritten in place)."""

    def __init__(self, out: Any, verbose: bool) -> None:
        self.out = out
        self.verbose = verbose
        self.tty = out.isatty()
        self.t0 = time.monotonic()
        self.shown = False

    def clear(self) -> None:
        if self.shown:
            self.out.write("\r\033[K")
            self.out.flush()
            self.shown = False

    def log(self, msg: str) -> None:
        self.clear()
        print(msg, file=self.out, flush=True)

    def result(self, r: Result, done: int, total: int) -> None:
        if self.verbose:
            st = "hang" if r.status is None else f"exit {r.status}"
            self.log(f"  seed {r.seed}: {st}, {r.steps} steps, schedule {r.schedule}, "
                     f"{r.seconds:.2f} s")
        if self.tty:
            self.clear()
            self.out.write(f"nbemu explore: run {done} of {total} (seed {r.seed}), "
                           f"{time.monotonic() - self.t0:.1f} s")
            self.out.flush()
            self.shown = True


# -- command line -------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="nbemu explore",
        usage="nbemu explore [--runs N] [--strategy pct|random] [--seed S] [--depth D] "
              "[--steps K] [--timeout SEC] [--jobs J] [--replay SEED] [-v] "
              "[nbemu options] PROGRAM [ARGS...]",
        description="Run a NetBSD program under many deterministic schedules; report the "
                    "first failing one (non-zero exit, crash, deadlock, hang, or stdout "
                    "different from the first run) with the command that replays it.",
        epilog="nbemu options apply to every run; add --trace or --timeline to the replay "
               "command to look at the failing interleaving. Exit status: 0 no failure "
               "found, 1 a failing run was found (or, with --replay, the guest's own "
               "status), 2 usage.")
    ap.add_argument("--runs", type=int, default=100, metavar="N",
                    help="number of runs (default 100)")
    ap.add_argument("--strategy", choices=("pct", "random"), default="pct",
                    help="pct: priorities and change points (default); random: nbemu's "
                         "seeded --deterministic schedule")
    ap.add_argument("--seed", type=int, default=1, metavar="S",
                    help="first seed (default 1); run i uses S+i")
    ap.add_argument("--depth", type=int, default=3, metavar="D",
                    help="PCT bug depth: D-1 priority change points per run (default 3)")
    ap.add_argument("--steps", type=int, default=0, metavar="K",
                    help="PCT steps per run (default: the reference run's system calls)")
    ap.add_argument("--timeout", type=float, default=60.0, metavar="SEC",
                    help="a run still going after SEC seconds is a hang (default 60)")
    ap.add_argument("--jobs", type=int, default=1, metavar="J",
                    help="runs at once (default 1)")
    ap.add_argument("--replay", type=int, default=None, metavar="SEED",
                    help="run once with this seed's schedule, output to the terminal")
    ap.add_argument("--ignore-output", action="store_true",
                    help="stdout may differ from run to run: only the exit status, crashes, "
                         "deadlocks and hangs are failures (ATF test programs print in "
                         "schedule order; their verdict is the exit status)")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per run")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # explore's own options come first; the rest is an nbemu command line
    ap = _parser()
    own: list[str] = []
    takes = {"--runs", "--strategy", "--seed", "--depth", "--steps", "--timeout", "--jobs",
             "--replay"}
    i = 0
    while i < len(argv):
        a = argv[i]
        name = a.split("=", 1)[0]
        if name in takes:
            own.append(a)
            if "=" not in a and i + 1 < len(argv):
                own.append(argv[i + 1])
                i += 1
        elif a in ("-v", "--verbose", "-h", "--help", "--ignore-output"):
            own.append(a)
        else:
            break
        i += 1
    ns = ap.parse_args(own)
    rest = argv[i:]
    if not rest:
        ap.print_usage(sys.stderr)
        print("nbemu explore: PROGRAM is missing", file=sys.stderr)
        return 2
    opts_argv, program_argv = _split_nbemu_argv(rest)
    if not program_argv:
        print("nbemu explore: PROGRAM is missing", file=sys.stderr)
        return 2
    for bad in ("--deterministic", "--seed"):
        if any(a == bad or a.startswith(bad + "=") for a in opts_argv):
            print(f"nbemu explore: {bad} is explore's to choose (use explore's --seed)",
                  file=sys.stderr)
            return 2
    from .cli import check_program
    bad_program = check_program(program_argv[0], "nbemu explore")
    if bad_program is not None:
        return bad_program
    if ns.runs < 1 or ns.depth < 1 or ns.jobs < 1:
        print("nbemu explore: --runs, --depth and --jobs must be at least 1", file=sys.stderr)
        return 2
    plan = Plan(ns.strategy, ns.depth, ns.steps, rest, opts_argv, program_argv)
    if ns.replay is not None:
        if plan.strategy == "pct" and plan.steps <= 0:
            print("nbemu explore: --replay with --strategy pct needs --steps K "
                  "(as printed by the exploration)", file=sys.stderr)
            return 2
        sys.stdout.flush()
        info = run_once(plan, ns.replay)
        print(f"nbemu explore: replayed seed {ns.replay} ({plan.strategy}): exit "
              f"{info['status']}, schedule {info['schedule']}", file=sys.stderr)
        return info["status"]
    progress = Progress(sys.stderr, ns.verbose)
    log = progress.log
    t0 = time.monotonic()
    bad, why, results, used = explore(plan, ns.runs, ns.seed, ns.timeout, ns.jobs, log,
                                      on_result=progress.result,
                                      compare_output=not ns.ignore_output)
    progress.clear()
    schedules = {r.schedule for r in results if r.schedule}
    dt = time.monotonic() - t0
    if bad is None:
        log(f"nbemu explore: no failure in {len(results)} runs ({len(schedules)} distinct "
            f"schedules, {dt:.1f} s)")
        return 0
    n = bad.seed - ns.seed + 1
    log(f"nbemu explore: run {n} of {ns.runs} (seed {bad.seed}) FAILED: {why}")
    out = bad.stdout.decode("latin-1").splitlines()
    if out:
        log("  its output (last lines):")
        for line in out[-8:]:
            log(f"    {line}")
    errl = [x for x in bad.stderr.decode("latin-1").splitlines() if x.strip()]
    if errl:
        log("  its diagnostics (first lines):")
        for line in errl[:12]:
            log(f"    {line}")
    log(f"nbemu explore: {len(results)} runs, {len(schedules)} distinct schedules, {dt:.1f} s")
    log("replay: " + used.replay_command(bad.seed))
    return 1


if __name__ == "__main__":
    sys.exit(main())
