"""Start-up of a whole nbemu process, for `make bench` and bench/update_rows.py (group
`startup`).

Wall time of a process start depends on the machine's load (a loaded 2-core machine
doubles it), so each row gives two figures: the best wall time of several runs, and
the instructions the process executes (valgrind's callgrind, `Ir`), which do not
depend on the load and so compare across commits and machines of the same kind.
The pieces: Python with site, `import unicorn` (the binding and its 20 MB library),
`nbemu --version`, and whole guest runs: a static C program of our runtime, NetBSD's
dynamically linked hello (ld.elf_so + libc.so.12, when the NetBSD userland is built)
and Go's hello (the Go runtime's start, 4 vCPUs), next to the Go program's Linux
build under qemu-x86_64.

    python -m bench.startup_bench          prints the rows
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

Row = tuple[str, str, str, str]
_IR = re.compile(r"I\s+refs:\s+([\d,]+)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)     # (a run that compiles nbemu is not a start)
    return env


def wall(cmd: list[str], reps: int) -> float:
    """Best wall time of reps runs, in seconds (one run first, to warm caches)."""
    subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, check=True)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def instructions(cmd: list[str]) -> int | None:
    """Instructions the process executes (callgrind's Ir), or None without valgrind."""
    vg = shutil.which("valgrind")
    if vg is None:
        return None
    if "nbemu.emu.cli" in cmd:
        # valgrind puts its preload library in LD_PRELOAD, which nbemu passes on
        # to the guest: NetBSD's ld.elf_so then fails to load it and exits early.
        i = cmd.index("nbemu.emu.cli") + 1
        cmd = cmd[:i] + ["-U", "LD_PRELOAD"] + cmd[i:]
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([vg, "--tool=callgrind", f"--callgrind-out-file={d}/cg.%p"] + cmd,
                           cwd=REPO, env=_env(), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed under valgrind: {r.stderr[-300:]}")
    m = _IR.search(r.stderr)
    return int(m.group(1).replace(",", "")) if m else None


def _row(what: str, cmd: list[str], reps: int, ref: str = "", goal: str = "") -> Row:
    t = wall(cmd, reps)
    ir = instructions(cmd)
    ins = f"{ir / 1e6:.0f}M instructions" if ir is not None else "(no valgrind)"
    return (what, f"{t * 1e3:.0f} ms; {ins}", ref, goal)


def rows(quick: bool = False) -> list[Row]:
    from fixtures.build import build_c, build_go
    py = sys.executable
    nb = [py, "-m", "nbemu.emu.cli"]
    reps = 3 if quick else 7
    out = [
        _row("start-up: Python with site (`python -c pass`)", [py, "-c", "pass"], reps),
        _row("start-up: `import unicorn`", [py, "-c", "import unicorn"], reps),
        _row("start-up: `nbemu --version`", nb + ["--version"], reps),
        _row("start-up: static C hello (our runtime), whole process",
             nb + [str(build_c("hello_c"))], reps),
    ]
    try:
        from bench.netbsd_bench import _prog
        from fixtures import netbsd_userland as nu
        nu.netbsd_src()
        nu.check_host_tools()
        sysroot = nu.build_userland("amd64")
        dyn = _prog(sysroot, "hello", ("c",), "dynamic")
        out.append(_row("start-up: NetBSD dynamic hello (ld.elf_so + libc.so.12), whole process",
                        nb + ["--root", str(sysroot), str(dyn)], reps, goal="<= 150 ms"))
    except Exception as e:               # no NetBSD sources: the row says why
        out.append(("start-up: NetBSD dynamic hello", "skipped", str(e).splitlines()[0][:80], ""))
    go = build_go("hello", "netbsd", "amd64")
    ref = ""
    qemu = shutil.which("qemu-x86_64")
    if qemu:
        lx = build_go("hello", "linux", "amd64")
        tq = wall([qemu, str(lx)], reps)
        ref = f"qemu-x86_64 (linux build) {tq * 1e3:.0f} ms"
    out.append(_row("start-up: Go hello (4 vCPUs), whole process", nb + ["--ncpu", "4", str(go)],
                    reps, ref, "<= 1.5x qemu-user"))
    return out


def main() -> int:
    for r in rows("--quick" in sys.argv):
        print("| " + " | ".join(r) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
