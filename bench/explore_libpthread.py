"""Schedule exploration of NetBSD's own libpthread tests (issue 12, item 5).

    python -m bench.explore_libpthread [--runs N] [--jobs J] [--ncpu C] [--out BENCHMARKS.md]

Runs ``nbemu explore`` (PCT schedules, seeds 1..N) on the cases of NetBSD's
tests/lib/libpthread t_mutex, t_cond and t_rwlock, built unmodified against NetBSD's
libc/libpthread (fixtures/netbsd_userland.py), and writes one row per case into the
``## Schedule exploration`` section of BENCHMARKS.md (other sections untouched):
runs, distinct schedules, and either "no failure" or the failing seed with the
command that replays it.  Not part of ``make test`` (minutes); tests/
test_netbsd_atf_libpthread.py runs a few seeds of it.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Schedule exploration"

# The cases explored (program -> cases).  mutex2/mutex3, broadcast and cond_timedwait_race
# spin for tens of seconds each under emulation: fewer runs (see main()).
CASES: dict[str, list[str]] = {
    "t_mutex": ["mutex1", "mutex2", "mutex3", "mutex4"],
    "t_cond": ["signal_delay_wait", "signal_before_unlock", "signal_before_unlock_static_init",
               "signal_wait_race", "cond_timedwait_race", "broadcast", "bogus_timedwaits",
               "destroy_after_cancel"],
    "t_rwlock": ["rwlock1", "rwlock_static"],
}
LONG = {"t_mutex:mutex2", "t_mutex:mutex3", "t_cond:cond_timedwait_race", "t_cond:broadcast"}


def explore(prog: Path, case: str, runs: int, jobs: int, ncpu: int, seed: int = 1,
            timeout: int = 600, ignore_output: bool = True) -> tuple[int, str, float]:
    """(exit status, explore's summary/failure lines, wall seconds).  ``timeout``: a
    run still going after that many seconds counts as a hang (generous: the
    machine may be loaded, and a long case makes ~50,000 system calls)."""
    t0 = time.monotonic()
    # (explore's own options first: the first other option starts nbemu's)
    # --ignore-output: the cases print from several threads in schedule order; an ATF
    # case's verdict is its exit status.
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "explore", "--runs", str(runs),
                        "--seed", str(seed), "--jobs", str(jobs), "--timeout", str(timeout),
                        *(["--ignore-output"] if ignore_output else []),
                        "--ncpu", str(ncpu), str(prog), case],
                       cwd=REPO, capture_output=True, text=True)
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("nbemu explore")
             or "replay" in ln]
    if r.returncode not in (0, 1):                 # explore itself failed: say why
        lines += r.stderr.splitlines()[-5:]
    return r.returncode, "\n".join(lines), time.monotonic() - t0


def _row(name: str, runs: int, rc: int, text: str, secs: float) -> str:
    m = re.search(r"no failure in (\d+) runs \((\d+) distinct schedules", text)
    if rc == 0 and m:
        return f"| {name} | {m.group(1)} | {m.group(2)} | no failure | {secs:.0f} s |"
    fail = " ".join(ln.strip() for ln in text.splitlines()[-3:]).replace("|", "\\|")
    return f"| {name} | {runs} | | **{'FAILED' if rc == 1 else f'exit {rc}'}**: {fail} | " \
           f"{secs:.0f} s |"


def write_section(path: Path, text: str) -> None:
    """Replace this tool's section (up to the next `## ` heading) or append it."""
    old = path.read_text() if path.exists() else "# nbemu benchmarks\n"
    m = re.search(rf"^{re.escape(SECTION)}.*?(?=^## |\Z)", old, re.M | re.S)
    new = (old[:m.start()] + text + old[m.end():]) if m else old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.explore_libpthread")
    ap.add_argument("--runs", type=int, default=200, help="seeds per case (default 200)")
    ap.add_argument("--long-runs", type=int, default=20,
                    help="seeds for the long cases (default 20)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--ncpu", type=int, default=2)
    ap.add_argument("--out", default=None, help="BENCHMARKS.md to update (default: print)")
    ns = ap.parse_args(argv)
    from fixtures.netbsd.atf_progs import build_test_programs
    progs = {n: t.path for n, t in build_test_programs("tests/lib/libpthread").items()
             if t.path is not None}
    rows = []
    failed = 0
    for prog, cases in CASES.items():
        for case in cases:
            name = f"{prog}:{case}"
            runs = ns.long_runs if name in LONG else ns.runs
            rc, text, secs = explore(progs[prog], case, runs, ns.jobs, ns.ncpu)
            failed += rc != 0
            rows.append(_row(name, runs, rc, text, secs))
            print(rows[-1], flush=True)
    section = "\n".join([
        SECTION, "",
        f"Written by `python -m bench.explore_libpthread` on {time.strftime('%Y-%m-%d')}: "
        f"`nbemu explore --strategy pct --ignore-output --ncpu {ns.ncpu}` (seeds 1..N, "
        f"{ns.jobs} runs at "
        "once) over NetBSD's own tests/lib/libpthread cases, built unmodified and "
        "statically linked against NetBSD's libc and libpthread. A failure would be listed "
        "with the seed that replays it (`nbemu explore --replay SEED ...`).", "",
        "| case | runs | distinct schedules | result | wall |", "|---|---|---|---|---|",
        *rows, ""])
    if ns.out:
        write_section(Path(ns.out), section)
        print(f"wrote {ns.out}")
    else:
        print(section)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
