"""Re-measure some rows of BENCHMARKS.md without a whole `make bench`.

    python -m bench.update_rows [--quick] [--out BENCHMARKS.md] GROUP...

GROUP: scale (bench/scale_bench.py), proc (bench/proc_bench.py), netbsd
(bench/netbsd_bench.py), atf (nbemu/emu/atf/bench.py), startup (bench/startup_bench.py),
lwp (bench/run.py's system call, hop and create rows), lwpinsn (the system call and
the hop in host instructions, callgrind), loop (bench/cpu_loop.py's CPU
loop in ns per iteration, the four ports), loopinsn (the same loop in host
instructions per iteration, callgrind), real (bench/real.py's real-code rows on the
patched engine), esbuild (bench/esbuild_bench.py).  Each group's rows replace
the table's rows of the same name (new ones go at the end of the table), and a line
under the table says which groups were re-measured when; everything else in the
file stays as the last `make bench` wrote it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

Row = tuple[str, str, str, str]


def _groups() -> dict[str, Callable[[bool], list[Row]]]:
    from bench.netbsd_bench import rows as netbsd_rows
    from bench.proc_bench import rows as proc_rows
    from bench.real import rows as real_rows
    from bench.cpu_loop import insn_rows, rows as loop_rows
    from bench.esbuild_bench import rows as esbuild_rows
    from bench.run import lwp_insn_rows, lwp_op_rows, per_op
    from bench.scale_bench import rows as scale_rows
    from bench.startup_bench import rows as startup_rows
    from nbemu.emu.atf.bench import rows as atf_rows
    return {"scale": lambda q: list(scale_rows(q)), "proc": lambda q: list(proc_rows()),
            "netbsd": lambda q: list(netbsd_rows(q)), "atf": lambda q: list(atf_rows(q)),
            "startup": lambda q: list(startup_rows(q)), "lwp": lwp_op_rows,
            "loopinsn": insn_rows, "lwpinsn": lwp_insn_rows,
            "esbuild": lambda q: esbuild_rows(1 if q else 3),
            "real": lambda q: real_rows(q, engine="patched"),
            "loop": lambda q: loop_rows(2_000_000 if q else 20_000_000, per_op,
                                        pairs=3 if q else 9)}


def merge(text: str, rows: list[Row], note: str) -> str:
    """The file with rows replacing same-named table rows (or appended to the table)
    and note after the table."""
    lines = text.splitlines()
    # the first table only (the sections after it have tables of their own)
    first = next((i for i, ln in enumerate(lines) if ln.startswith("| ")), None)
    if first is None:
        raise ValueError("no table in the file")
    table = [first]
    while table[-1] + 1 < len(lines) and lines[table[-1] + 1].startswith("|"):
        table.append(table[-1] + 1)
    table = [i for i in table if lines[i].startswith("| ")]
    name_at = {lines[i].split("|")[1].strip(): i for i in table}
    extra = []
    for r in rows:
        line = "| " + " | ".join(r) + " |"
        if r[0] in name_at:
            lines[name_at[r[0]]] = line
        else:
            extra.append(line)
    end = table[-1] + 1
    # the same note again (the same groups re-measured the same day): one is enough
    after = lines[end:end + 2]
    lines[end:end] = extra + ([] if after == ["", note] else ["", note])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.update_rows")
    ap.add_argument("groups", nargs="+", metavar="GROUP")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    ns = ap.parse_args(argv)
    groups = _groups()
    unknown = [g for g in ns.groups if g not in groups]
    if unknown:
        ap.error(f"unknown group {', '.join(unknown)} (known: {', '.join(groups)})")
    rows: list[Row] = []
    for g in ns.groups:
        got = groups[g](ns.quick)
        for r in got:
            print("| " + " | ".join(r) + " |", flush=True)
        rows += got
    out = Path(ns.out)
    note = (f"Rows of {', '.join(ns.groups)} re-measured on {time.strftime('%Y-%m-%d')} with "
            f"`python -m bench.update_rows {' '.join(ns.groups)}` (the rest: the last "
            "`make bench`).")
    out.write_text(merge(out.read_text(), rows, note))
    print(f"updated {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
