"""`make fuzz`: run fixtures/c/sysfuzz_all.c for many seeds and write its figures.

Each run is one nbemu process under `--root` in a fresh scratch folder (path calls
touch nothing else), stdin /dev/null, a host timeout.  An outcome other than exit 0
with the fuzzer's summary is a finding: exit 70 or a Python traceback (a kernel
crash), the guest watchdog's HANG line (a call that never returned), the host timeout
(the emulator itself wedged), or any other exit (the fuzzer killed: a kernel answer
that broke a confinement rule).  Figures go to the `## Fuzzing` section of
BENCHMARKS.md; the rest of the file is kept as it is.

    python -m bench.fuzz_run [--calls 1000000] [--per-run 50000] [--jobs 2]
                             [--arch x86_64,aarch64,...] [--lwps 1,2,4] [--deterministic] [--out BENCHMARKS.md]
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fixtures.build import REPO_ROOT, build_c
from nbemu.syscalls.errno import Errno
from nbemu.syscalls.syscalls_master import SYSCALLS

SECTION = "## Fuzzing"
FINDINGS = Path(tempfile.gettempdir()) / "nbemu-fuzz-findings"


@dataclass
class Run:
    seed: int
    arch: str
    deterministic: bool
    lwps: int = 1
    rc: int | None = None
    calls: int = 0
    executed: int = 0
    skipped: int = 0
    interrupts: int = 0
    called: set[int] = field(default_factory=set)
    errnos: Counter = field(default_factory=Counter)
    tracebacks: int = 0
    problem: str = ""          # "" when the run was clean
    seconds: float = 0.0

    def command(self, ncalls: int) -> str:
        det = " --deterministic --seed %d" % self.seed if self.deterministic else ""
        return (f"nbemu --root SCRATCH{det} sysfuzz_all({self.arch}) {self.seed} {ncalls} "
                f"{self.lwps}")


_SUMMARY = re.compile(r"^SYSFUZZ seed=\S+ calls=(\d+) executed=(\d+) skipped=(\d+) "
                      r"distinct=\d+ table=\d+ beyond=\d+ interrupts=(\d+)", re.M)


def parse(run: Run, out: str, err: str) -> None:
    """Fill run from the fuzzer's report and nbemu's stderr."""
    run.tracebacks = err.count("Traceback (most recent call last)")
    m = _SUMMARY.search(out)
    if m:
        run.calls, run.executed, run.skipped, run.interrupts = map(int, m.groups())
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] == ["ERRNO"]:
            run.errnos[int(parts[1])] += int(parts[2])
        elif parts[:1] == ["CALLED"]:
            run.called.update(int(x) for x in parts[1:])
    hang = re.search(r"^HANG .*$", out, re.M)
    stuck = re.search(r" stuck=([1-9]\d*)", out)
    if run.rc == 70 or run.tracebacks:
        run.problem = "kernel crash (exit 70): " + _tail(err)
    elif hang:
        run.problem = "hang: " + hang.group(0)
    elif stuck:
        run.problem = f"hang: {stuck.group(1)} fuzzing LWPs never came back from a call"
    elif run.rc is None:
        run.problem = "host hang (timeout): " + _tail(err)
    elif run.rc != 0 or not m or "\nEND" not in out:
        run.problem = f"exit {run.rc}: " + _tail(err)


def _tail(err: str, n: int = 6) -> str:
    lines = [x for x in err.splitlines() if "unimplemented system call" not in x]
    return (" | " if n <= 6 else "\n").join(lines[-n:])


def fuzz_once(seed: int, ncalls: int, arch: str = "x86_64", deterministic: bool = False,
              timeout: float = 600, lwps: int = 1, ncpu: int = 2) -> Run:
    prog = build_c("sysfuzz_all", arch)
    run = Run(seed, arch, deterministic, lwps)
    scratch = Path(tempfile.mkdtemp(prefix="nbemu-fuzz-"))
    opts = ["--ncpu", str(ncpu), "--root", str(scratch)]
    if deterministic:
        opts += ["--deterministic", "--seed", str(seed)]
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", *opts, str(prog), str(seed),
                            str(ncalls), str(lwps)], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace", timeout=timeout)
        run.rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
            else (e.stdout or "")
        err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) \
            else (e.stderr or "")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    run.seconds = time.monotonic() - t0
    parse(run, out, err)
    if run.problem:
        # The whole report (crash report, LWP table, last calls) for the finding.
        FINDINGS.mkdir(parents=True, exist_ok=True)
        log = FINDINGS / f"{arch}-seed{seed}-lwps{lwps}.log"
        log.write_text(f"{run.command(ncalls)}\nexit {run.rc}\n--- stdout\n{out[-20000:]}"
                       f"\n--- stderr\n{_tail(err, 400)}\n")
        run.problem += f" (report: {log})"
    return run


def _errno_name(e: int) -> str:
    if e == 0:
        return "success"
    try:
        return Errno(e).name
    except ValueError:
        return f"errno {e}"


def section(runs: list[Run], ncalls: int, wall: float, jobs: int) -> str:
    calls = sum(r.calls for r in runs)
    executed = sum(r.executed for r in runs)
    called = set().union(*(r.called for r in runs))
    table = {n for n in called if n in SYSCALLS}
    implemented_table = len(SYSCALLS)
    errnos: Counter = Counter()
    for r in runs:
        errnos.update(r.errnos)
    problems = [r for r in runs if r.problem]
    crashes = [r for r in problems if r.problem.startswith("kernel crash")]
    hangs = [r for r in problems if "hang" in r.problem]
    modes = sorted({f"{r.arch} " + ("deterministic" if r.deterministic else "fast")
                    for r in runs})
    by_lwps = Counter(r.lwps for r in runs)
    lines = [
        SECTION, "",
        f"Written by `make fuzz` on {time.strftime('%Y-%m-%d')}: "
        f"fixtures/c/sysfuzz_all.c, {len(runs)} runs of {ncalls:,} calls "
        f"(seeds {runs[0].seed}-{runs[-1].seed}; {', '.join(modes)}; "
        + ", ".join(f"{c} with {n} fuzzing LWP{'s' if n > 1 else ''}"
                    for n, c in sorted(by_lwps.items()))
        + f"; {jobs} at a time), each under `nbemu --root` in a fresh scratch folder "
        "(with several LWPs, main makes the calls counted per run and refreshes the "
        "pools under the others' feet).", "",
        "| figure | value |", "|---|---|",
        f"| system calls made (skipped ones excluded) | {executed:,} |",
        f"| calls drawn (skipped ones included) | {calls:,} |",
        f"| distinct numbers called | {len(called)} ({len(table)} of the table's "
        f"{implemented_table} slots 0-{max(SYSCALLS)}, {len(called) - len(table)} beyond) |",
        f"| kernel crashes (exit 70) / Python tracebacks | {len(crashes)} / "
        f"{sum(r.tracebacks for r in runs)} |",
        f"| hangs (guest watchdog or host timeout) | {len(hangs)} |",
        f"| other failed runs | {len(problems) - len(crashes) - len(hangs)} |",
        f"| blocked calls the watchdog ended (EINTR) | {sum(r.interrupts for r in runs):,} |",
        f"| time | {wall:.0f} s wall ({executed / max(wall, 1e-9):,.0f} calls/s) |",
        "", "Results (errno histogram, all runs):", "",
        "| result | calls |", "|---|---|",
    ]
    for e, c in sorted(errnos.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {_errno_name(e)} | {c:,} |")
    if problems:
        lines += ["", "Findings (reproduce with the command shown):", ""]
        for r in problems:
            lines.append(f"- `{r.command(ncalls)}`: {r.problem}")
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    """Replace the `## Fuzzing` section (up to the next `## ` heading) or append it."""
    old = path.read_text() if path.exists() else "# nbemu benchmarks\n"
    m = re.search(r"^## Fuzzing\n.*?(?=^## |\Z)", old, re.M | re.S)
    if m:
        new = old[:m.start()] + text + ("\n" if old[m.end():] else "") + old[m.end():]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1_000_000, help="total calls")
    ap.add_argument("--per-run", type=int, default=50_000, help="calls per nbemu process")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="first seed")
    ap.add_argument("--arch", default="x86_64",
                    help="comma-separated C architectures, taken in turn")
    ap.add_argument("--deterministic", action="store_true",
                    help="every run --deterministic (default: alternate with fast mode)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run")
    ap.add_argument("--lwps", default="1,2,4",
                    help="comma-separated fuzzing LWP counts, one per round in turn")
    ap.add_argument("--out", default="BENCHMARKS.md")
    ns = ap.parse_args(argv)
    nruns = max(1, -(-ns.calls // ns.per_run))
    archs = ns.arch.split(",")
    lwps = [int(x) for x in ns.lwps.split(",")]
    for arch in archs:
        build_c("sysfuzz_all", arch)
    t0 = time.monotonic()
    with ThreadPoolExecutor(ns.jobs) as pool:
        # Every architecture in turn; fast mode and --deterministic alternate per round.
        futs = [pool.submit(fuzz_once, ns.seed + i, ns.per_run, archs[i % len(archs)],
                            ns.deterministic or (i // len(archs)) % 2 == 1, ns.timeout,
                            lwps[(i // len(archs)) % len(lwps)])
                for i in range(nruns)]
        runs = []
        for f in futs:
            r = f.result()
            runs.append(r)
            print(f"seed {r.seed} ({r.arch}, {r.lwps} LWPs): {r.executed:,} calls in {r.seconds:.0f} s"
                  + (f" -- {r.problem}" if r.problem else ""), flush=True)
    text = section(runs, ns.per_run, time.monotonic() - t0, ns.jobs)
    write_section(Path(ns.out), text)
    print(text)
    return 1 if any(r.problem for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
