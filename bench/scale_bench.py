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
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fixtures.build import build_c  # noqa: E402


def run(name: str, *args: str) -> tuple[float, dict[str, int]]:
    """(wall seconds of the nbemu process, the fixture's "<what> <ms>" lines)."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "nbemu.emu.cli", str(build_c(name)), *args], cwd=REPO,
                       capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(args)}: exit {r.returncode}: {r.stderr[-200:]}")
    return wall, {k: int(v) for k, v in re.findall(r"^(\w+) (\d+)$", r.stdout, re.M)}


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
    per = {}
    own = (250, 1000) if quick else (1000, 8192)
    for k in own:
        _, t = run("bench_park8k", str(k), "own")
        per[k] = t["created"] / k
    a, b = own
    out.append((f"LWPs with a stack mapping each: create, {a:,} vs {b:,}",
                f"{per[a]:.2f} / {per[b]:.2f} ms per LWP",
                f"**{per[b] / per[a]:.2f}x** per LWP for {b // a}x LWPs (1x = linear)",
                "linear (<= 2x)"))
    for size, label, ks in (("4k", "1-page", (1000, 10000) if quick else (1000, 100000)),
                            ("1", "1 MiB", (500, 2000) if quick else (1000, 10000))):
        per = {}
        for k in ks:
            _, t = run("bench_mmap", str(k), size)
            per[k] = t["mapped"] / k
        a, b = ks
        out.append((f"untouched {label} mmaps, {a:,} vs {b:,}",
                    f"{per[a] * 1e3:.0f} / {per[b] * 1e3:.0f} us per mmap",
                    f"**{per[b] / per[a]:.2f}x** per mmap for {b // a}x mmaps (1x = linear)",
                    "linear (<= 2x)"))
    k = 100 if quick else 300
    wall, t = run("bench_mmap", str(k), "1024")
    out.append((f"{k} untouched 1 GiB mmaps, then exit",
                f"{k / (t['mapped'] / 1e3):.0f} mmaps/s",
                f"whole process {wall:.1f} s (issue 16: ~80/s, exit 295 s)", ""))
    return out


if __name__ == "__main__":
    for r in rows("--quick" in sys.argv):
        print("| " + " | ".join(r) + " |", flush=True)
