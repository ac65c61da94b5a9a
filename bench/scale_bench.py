"""Scale rows for `make bench` (bench/run.py calls rows()): issue 16 item 8's
slow paths, timed by the guest (CLOCK_MONOTONIC, printed by the fixture) and by
the host (wall time of the whole nbemu process).

- fixtures/c/bench_park8k.c: 8,192 LWPs created and parked, then released and
  joined -- with one mapping for every stack, and with a mapping per LWP
  (`own`, as a thread library does). Unicorn rebuilds its memory view on every
  map and unmap at a cost that grows with its number of regions: emu/space.py
  keeps few (adjacent mappings share one).
- fixtures/c/bench_mmap.c: untouched anonymous mappings (1 page, 1 MiB, 1 GiB).
"""
from __future__ import annotations

import re
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fixtures.build import build_c  # noqa: E402


def run(name: str, *args: str) -> tuple[float, dict[str, int]]:
    """(wall seconds of the nbemu process, the fixture's "<what> <ms>" lines;
    "cpu": the process's CPU time in ms -- on a loaded machine the guest-timed
    figures measure the load as much as nbemu)."""
    prog = str(build_c(name))               # (a build's compiler is a child too)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", prog, *args], cwd=REPO,
                       capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(args)}: exit {r.returncode}: {r.stderr[-200:]}")
    out = {k: int(v) for k, v in re.findall(r"^(\w+) (\d+)$", r.stdout, re.M)}
    out["cpu"] = int(1e3 * (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime))
    return wall, out


def rows(quick: bool) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    n = 2048 if quick else 8192
    wall, t = run("bench_park8k", str(n))
    out.append((f"{n:,} LWPs created and parked (one stack mapping), then joined",
                f"create {t['created'] / 1e3:.1f} s, release + join {t['joined'] / 1e3:.1f} s",
                f"whole process {wall:.1f} s (issue 16: 155 s to create 8,192)", "linear"))
    wall_x, t_x = run("bench_park8k", str(n), "exit")
    out.append((f"{n:,} parked LWPs ended by exit()",
                f"{max(wall_x - t_x['created'] / 1e3, 0):.1f} s after the last park",
                "process wall time minus the guest-timed creation (issue 16: 88 s)", "linear"))
    def per_op(name: str, ks: tuple[int, int], *args: str) -> tuple[dict, dict]:
        """Guest-timed ms per operation at each size, and CPU ms per operation
        (the process's CPU time beyond a run of 1, start-up excluded)."""
        base = run(name, "1", *args)[1]["cpu"]
        wall, cpu = {}, {}
        for k in ks:
            t = run(name, str(k), *args)[1]
            wall[k] = t["created" if "created" in t else "mapped"] / k
            cpu[k] = (t["cpu"] - base) / (k - 1)
        return wall, cpu

    own = (250, 1000) if quick else (1000, 8192)
    a, b = own
    w, c = per_op("bench_park8k", own, "own")
    out.append((f"LWPs with a stack mapping each: create, {a:,} vs {b:,}",
                f"CPU {c[a]:.2f} / {c[b]:.2f} ms per LWP (guest-timed {w[a]:.2f} / {w[b]:.2f})",
                f"**{c[b] / c[a]:.2f}x** CPU per LWP for {b // a}x LWPs (1x = linear; "
                "start-up and exit included)", "linear (<= 2x)"))
    for size, label, ks in (("4k", "1-page", (1000, 10000) if quick else (1000, 100000)),
                            ("1", "1 MiB", (500, 2000) if quick else (1000, 10000))):
        a, b = ks
        w, c = per_op("bench_mmap", ks, size)
        out.append((f"untouched {label} mmaps, {a:,} vs {b:,}",
                    f"CPU {c[a] * 1e3:.0f} / {c[b] * 1e3:.0f} us per mmap (guest-timed "
                    f"{w[a] * 1e3:.0f} / {w[b] * 1e3:.0f})",
                    f"**{c[b] / c[a]:.2f}x** CPU per mmap for {b // a}x mmaps (1x = linear; "
                    "exit included)", "linear (<= 2x)"))
    k = 100 if quick else 300
    wall, t = run("bench_mmap", str(k), "1024")
    out.append((f"{k} untouched 1 GiB mmaps, then exit",
                f"{k / (t['mapped'] / 1e3):.0f} mmaps/s",
                f"whole process {wall:.1f} s (issue 16: ~80/s, exit 295 s)", ""))
    return out


if __name__ == "__main__":
    for r in rows("--quick" in sys.argv):
        print("| " + " | ".join(r) + " |", flush=True)
