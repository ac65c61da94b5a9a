"""LWP scale benchmarks for `make bench` (bench/run.py calls rows()).

- Memory per LWP: the host RSS growth (/proc/self/statm, read in-process by a
  fresh child interpreter for each size) from the moment the first LWP is created
  to the moment all n LWPs of fixtures/c/scale_alive.c are parked; per LWP, and
  per 1,000 LWPs as the slope between two sizes (fixed costs cancel out).  The
  guest's stacks are one mapping written in full before any LWP is created
  (`scale_alive n touch`), so the figure is what nbemu itself spends per LWP: the
  Lwp object, its saved Unicorn context, the blocked system call's continuation,
  sleep-queue and run-queue entries, the u-area accounting.
- _lwp_unpark_all over 1,024 parked LWPs (fixtures/c/scale_unpark.c): one call
  for n = 128, 256, 512, 1024 targets, best of several; the table reports the
  host CPU time of the system call (thread_time_ns around the handler) and us per
  target -- linear means a flat us-per-target column (quadratic would grow 8x from
  128 to 1024) -- beside the guest's own CLOCK_MONOTONIC timing (wall time, trap
  included, inflated when the host deschedules nbemu).

rows(quick) returns (what, value, reference, goal) tuples; nothing is written.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from nbemu.emu.boot import Options, Session  # noqa: E402
from fixtures.build import build_c  # noqa: E402

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _run_captured(s: Session) -> tuple[int, str]:
    """Run a session with the guest's stdout (host fd 1) captured, stderr silenced."""
    sys.stdout.flush()
    out = tempfile.TemporaryFile()
    null = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1), os.dup(2)
    os.dup2(out.fileno(), 1)
    os.dup2(null, 2)
    try:
        status = s.run()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)
    out.seek(0)
    return status, out.read().decode(errors="replace")


def rss_growth_parked(n: int, ncpu: int = 4) -> int:
    """Host RSS growth (bytes) of this process from the first LWP's creation to the
    moment all n LWPs are parked.  Run it in a fresh interpreter (rss_child): memory
    freed by an earlier run in the same process would be reused and hide growth."""
    s = Session(str(build_c("scale_alive")), [str(n), "touch"], Options(ncpu=ncpu))
    k = s.kernel
    st = {"base": None, "peak": None, "parked": 0}

    def listen(kind: str, l, data: dict) -> None:
        if kind == "create" and st["base"] is None and data.get("parent"):
            st["base"] = _rss()
        elif kind == "sleep" and data.get("wmesg") == "parked":
            st["parked"] += 1
            if st["parked"] == n and st["peak"] is None:
                st["peak"] = _rss()
        elif kind == "wakeup" and isinstance(data.get("wchan"), tuple) \
                and data["wchan"][:1] == ("parked",):
            st["parked"] -= 1

    k.listeners.append(listen)
    status, out = _run_captured(s)
    if status != 0 or not out.rstrip().endswith("PASS"):
        raise RuntimeError(f"scale_alive {n} exited {status}: {out[-500:]}")
    if st["base"] is None or st["peak"] is None:
        raise RuntimeError("scale_alive: never saw all LWPs parked")
    return st["peak"] - st["base"]


def rss_child(n: int) -> int:
    """rss_growth_parked(n) in a child interpreter (this module, run as a script)."""
    build_c("scale_alive")
    r = subprocess.run([sys.executable, __file__, "--rss", str(n)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    m = re.search(r"^RSS (\d+)$", r.stdout, re.M)
    if r.returncode != 0 or m is None:
        raise RuntimeError(f"rss child {n}: {r.stdout[-300:]} {r.stderr[-300:]}")
    return int(m.group(1))


def unpark_all_ns(reps: int, ncpu: int = 4, sizes=(128, 256, 512, 1024)
                  ) -> tuple[dict[int, int], dict[int, int]]:
    """One _lwp_unpark_all over n parked LWPs, for each n: (best guest-measured
    time, best host CPU time of the system call), in ns.

    The guest's figure is CLOCK_MONOTONIC around the call (host wall time in the
    default mode), so it includes the trap and whatever else the host did
    meanwhile; on a loaded host a 5 ms call is often descheduled.  The CPU time is
    measured here, around the handler (thread_time_ns), and is what the linearity
    verdict uses."""
    from nbemu.syscalls.table import SYSENT
    ent = next(e for e in SYSENT.values() if e.name == "_lwp_unpark_all")
    orig = ent.handler
    cpu: dict[int, list[int]] = {}

    def timed(l, a, retval):
        t0 = time.thread_time_ns()
        r = orig(l, a, retval)
        cpu.setdefault(a.ntargets, []).append(time.thread_time_ns() - t0)
        return r

    s = Session(str(build_c("scale_unpark")), ["1024", str(reps), *map(str, sizes)],
                Options(ncpu=ncpu))
    ent.handler = timed
    try:
        status, out = _run_captured(s)
    finally:
        ent.handler = orig
    if status != 0 or not out.rstrip().endswith("PASS"):
        raise RuntimeError(f"scale_unpark exited {status}: {out[-500:]}")
    wall = {int(m[1]): int(m[2]) for m in re.finditer(r"unpark_all n=(\d+) best_ns=(\d+)", out)}
    if sorted(wall) != sorted(sizes):
        raise RuntimeError(f"scale_unpark: unexpected output {out[-500:]}")
    # The first `reps` calls of each size are the timed ones (the fixture's final
    # release is one more call of 1,024).
    return wall, {n: min(cpu[n][:reps]) for n in sizes}


def rows(quick: bool) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    sizes = (1000, 2000) if quick else (2000, 8000)
    totals = {n: rss_child(n) for n in sizes}
    for n in sizes:
        out.append((f"host memory per LWP, {n:,} parked at once",
                    f"{totals[n] / n / 1024:.1f} KiB",
                    f"RSS +{totals[n] / 2**20:.1f} MiB from the first _lwp_create to all "
                    f"{n:,} parked (guest stacks excluded)", ""))
    lo, hi = sizes
    slope = (totals[hi] - totals[lo]) / (hi - lo)
    out.append((f"memory per 1,000 parked LWPs (slope {lo:,} -> {hi:,})",
                f"{slope * 1000 / 2**20:.1f} MiB",
                f"{slope / 1024:.1f} KiB per LWP; vs the {lo:,}-LWP average: "
                f"{slope / (totals[lo] / lo):.2f}x (1x = a constant per LWP)", ""))
    wall, cpu = unpark_all_ns(3 if quick else 7)
    base = cpu[128] / 128
    for n in sorted(cpu):
        per = cpu[n] / n
        out.append((f"_lwp_unpark_all of {n:,} parked LWPs (of 1,024)",
                    f"{cpu[n] / 1e3:.0f} us CPU ({per / 1e3:.2f} us per target)",
                    f"per target vs n=128: **{per / base:.2f}x**; guest-timed (wall, with "
                    f"the trap): {wall[n] / 1e3:.0f} us", "linear: ~1x"))
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rss"]:
        print(f"RSS {rss_growth_parked(int(sys.argv[2]))}", flush=True)
        sys.exit(0)
    quick = "--quick" in sys.argv
    for r in rows(quick):
        print("| " + " | ".join(r) + " |")
